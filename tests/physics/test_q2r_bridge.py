"""q2r.x reader and the q2r -> phonopy bridge, checked against the real matdyn.x."""

import numpy as np
import pytest

from aiida_llpam.physics import ForceConstantsError, Q2RFormatError, build_phonopy, compute_modes, read_q2r
from aiida_llpam.physics.q2r import parse_q2r
from aiida_llpam.physics.units import THZ_TO_CM

from .conftest import QUARTZ, SILICON, read_matdyn_freq


def test_quartz_header(quartz_fc, quartz_rigid_fc):
    assert quartz_fc.natom == 9
    assert sorted(set(quartz_fc.symbols)) == ["O", "Si"]
    assert quartz_fc.symbols.count("Si") == 3
    masses = dict(zip(quartz_fc.symbols, quartz_fc.masses_amu))
    assert masses["Si"] == pytest.approx(28.0855, abs=0.01)
    assert masses["O"] == pytest.approx(15.999, abs=0.01)
    assert quartz_fc.mesh == (2, 2, 2)
    a, b, c = quartz_fc.lattice_bohr
    assert np.linalg.norm(a) == pytest.approx(np.linalg.norm(b))
    assert np.allclose(c[:2], 0.0) and c[2] > 0
    assert not quartz_fc.is_dipole_subtracted
    assert quartz_rigid_fc.is_dipole_subtracted
    eps = quartz_rigid_fc.dielectric
    assert np.allclose(eps, eps.T, atol=1e-4) and np.all(np.linalg.eigvalsh(eps) > 1.0)
    # charge neutrality of the Born charges (ASR), as ph.x computes them up to a small error
    assert np.abs(quartz_rigid_fc.born_charges.sum(axis=0)).max() < 0.2
    # the same structure in both files
    assert np.allclose(quartz_fc.positions_bohr, quartz_rigid_fc.positions_bohr)


def test_silicon_ibrav2_header():
    si = read_q2r(SILICON / "si.fc")
    assert si.ibrav == 2 and si.natom == 2
    alat = si.alat_bohr
    assert np.allclose(si.lattice_bohr, 0.5 * alat * np.array([[-1, 0, 1], [0, 1, 1], [-1, 1, 0]]))
    assert si.volume_bohr3 == pytest.approx(alat**3 / 4)


def _reduced_from_matdyn(fc, q_cart_2pi_alat):
    return q_cart_2pi_alat @ (fc.lattice_bohr / fc.alat_bohr).T


def test_phonopy_matches_matdyn_without_nac(quartz_fc, quartz_no_nac):
    """Same IFCs, no NAC, matdyn asr='crystal' vs phonopy's symmetrised force constants."""
    q_cart, ref_cm = read_matdyn_freq(QUARTZ / "matdyn_norigid.freq")
    q_red = _reduced_from_matdyn(quartz_fc, q_cart)
    ours = compute_modes(quartz_no_nac, q_red).frequencies_thz * THZ_TO_CM
    assert np.abs(ours - ref_cm).max() <= 0.1


def test_gonze_nac_matches_matdyn_rigid(quartz_fc, quartz):
    """Our recipe (full IFCs + phonopy's Gonze NAC) against matdyn on the dipole-subtracted IFCs.

    Both add back the dipole-dipole sum of Gonze & Lee; they agree up to the
    different real-space treatment of the short-range part.
    """
    q_cart, ref_cm = read_matdyn_freq(QUARTZ / "matdyn_rigid.freq")
    q_red = _reduced_from_matdyn(quartz_fc, q_cart)
    ours = compute_modes(quartz, q_red).frequencies_thz * THZ_TO_CM
    assert np.abs(ours - ref_cm).max() < 2.0


def test_dipole_subtracted_ifcs_with_phonopy_nac_are_wrong(quartz_fc, quartz_rigid_fc):
    """The combination the bridge refuses really is wrong: we show the size of the error."""
    q_cart, ref_cm = read_matdyn_freq(QUARTZ / "matdyn_rigid.freq")
    q_red = _reduced_from_matdyn(quartz_fc, q_cart)
    with pytest.raises(ForceConstantsError, match="dipole"):
        build_phonopy(quartz_rigid_fc, quartz_rigid_fc)
    with pytest.raises(ForceConstantsError, match="dipole"):
        build_phonopy(quartz_rigid_fc)
    # bypass the guard to measure it
    import dataclasses

    plain = dataclasses.replace(quartz_rigid_fc, dielectric=None, born_charges=None)
    wrong = compute_modes(build_phonopy(plain, quartz_rigid_fc), q_red).frequencies_thz * THZ_TO_CM
    assert np.abs(wrong - ref_cm).max() > 20.0


def test_nac_source_must_carry_eps_and_match(quartz_fc):
    with pytest.raises(ForceConstantsError, match="no dielectric"):
        build_phonopy(quartz_fc, quartz_fc)
    si = read_q2r(SILICON / "si.fc")
    rigid = read_q2r(QUARTZ / "quartz_rigid.fc", read_ifc=False)
    import dataclasses

    fake = dataclasses.replace(rigid, positions_bohr=rigid.positions_bohr + 0.1)
    with pytest.raises(ForceConstantsError, match="different structure"):
        build_phonopy(quartz_fc, fake)
    assert si.natom == 2


@pytest.mark.parametrize(
    "text, message",
    [
        ("hello world\n", "not a q2r.x force-constant file"),
        ("  1  2  5  10.0 0 0 0 0 0\n", "ibrav=5"),
        ("  1  1  1  10.0 0 0 0 0 0\n 1 'Si' 25598.0\n 1 1 0.0 0.0 0.0\n F\n 1 1 1\n 1 1 1 1\n", "truncated"),
    ],
)
def test_malformed_files_are_named(text, message):
    with pytest.raises(Q2RFormatError, match=message):
        parse_q2r(text)


def test_missing_file(tmp_path):
    with pytest.raises(Q2RFormatError, match="no such file"):
        read_q2r(tmp_path / "nope.fc")
