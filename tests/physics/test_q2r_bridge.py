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
    np.testing.assert_allclose(c[:2], 0.0, rtol=0, atol=1e-8)  # bohr: c along z
    assert c[2] > 0
    assert not quartz_fc.is_dipole_subtracted
    assert quartz_rigid_fc.is_dipole_subtracted
    eps = quartz_rigid_fc.dielectric
    np.testing.assert_allclose(eps, eps.T, rtol=1e-5, atol=1e-4)  # dimensionless, eps ~ 2-5
    assert np.all(np.linalg.eigvalsh(eps) > 1.0)
    # charge neutrality of the Born charges (ASR), as ph.x computes them up to a small error
    assert np.abs(quartz_rigid_fc.born_charges.sum(axis=0)).max() < 0.2
    # the same structure in both files
    np.testing.assert_allclose(quartz_fc.positions_bohr, quartz_rigid_fc.positions_bohr, rtol=1e-5, atol=1e-8)  # bohr


def test_silicon_ibrav2_header():
    si = read_q2r(SILICON / "si.fc")
    assert si.ibrav == 2 and si.natom == 2
    alat = si.alat_bohr
    np.testing.assert_allclose(
        si.lattice_bohr, 0.5 * alat * np.array([[-1, 0, 1], [0, 1, 1], [-1, 1, 0]]), rtol=1e-5, atol=1e-8
    )
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
    """Our recipe (full IFCs + phonopy's Gonze NAC) against matdyn.x on the dipole-subtracted IFCs.

    At the commensurate q points both must give back the DFPT dynamical
    matrices; next to Gamma both add the same non-analytic term, so the LO-TO
    split optical modes (above 100 cm^-1) must agree. Off-grid points are not
    compared: the two schemes interpolate different short-range parts, which
    on a 2x2x2 grid differ by tens of cm^-1.
    """
    q_cart, ref_cm = read_matdyn_freq(QUARTZ / "matdyn_rigid.freq")
    q_red = _reduced_from_matdyn(quartz_fc, q_cart)
    ours = compute_modes(quartz, q_red).frequencies_thz * THZ_TO_CM
    commensurate = np.all(np.abs(q_red * 2 - np.rint(q_red * 2)) < 1e-6, axis=1) & (np.abs(q_red).sum(axis=1) > 1e-3)
    near_gamma = np.abs(q_red).sum(axis=1) < 1e-3
    assert commensurate.sum() == 4 and near_gamma.sum() == 2
    assert np.abs(ours[commensurate] - ref_cm[commensurate]).max() <= 0.1
    # next to Gamma: optical modes within 5 cm^-1 (matdyn.x applies its ASR to the dipole-subtracted
    # IFCs, which at these low cut-offs shifts its near-Gamma modes by a few cm^-1; see the next test)
    optical = ref_cm[near_gamma] > 100.0
    assert np.abs(ours[near_gamma][optical] - ref_cm[near_gamma][optical]).max() < 5.0
    # and the LO-TO splitting is really there: along z and along x the spectra differ
    assert np.abs(ours[near_gamma][0] - ours[near_gamma][1]).max() > 5.0


def test_gamma_optical_modes_match_dfpt(quartz):
    """At Gamma (analytic part) the optical modes are ph.x's own, up to the ASR correction."""
    dfpt_thz = [
        float(line.split()[4]) for line in (QUARTZ / "quartz.dyn1").read_text().splitlines() if "freq (" in line
    ]
    ours = compute_modes(quartz, np.zeros((1, 3))).frequencies_thz[0]
    optical = np.array(dfpt_thz) * THZ_TO_CM > 100.0
    assert optical.sum() == 24
    assert np.abs(ours[optical] - np.array(dfpt_thz)[optical]).max() * THZ_TO_CM < 0.5


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
