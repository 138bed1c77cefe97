"""PamWorkChain end-to-end with the real QE binaries (smoke protocol), provenance, physics, validation."""

import tempfile
from pathlib import Path

import numpy as np
import pytest

from aiida_llpam.calculations.ph import PH_PROCESS_TYPES

pytestmark = pytest.mark.qe


def _q2r_file(node) -> str:
    path = Path(tempfile.mkdtemp()) / node.filename
    path.write_text(node.get_content())
    return str(path)


def test_smoke_finishes_with_outputs(smoke_run):
    from aiida_llpam.quantities import OUTPUTS
    from aiida_llpam.queries import run_settings

    assert smoke_run.is_finished_ok, smoke_run.exit_message
    for name in (
        "structure",
        "symmetry",
        "force_constants",
        "settings",
        *(n for n, o in OUTPUTS.items() if not o.optional),
    ):
        assert name in smoke_run.outputs, name
    settings = run_settings(smoke_run)
    assert settings["space_group_number"] == 154 and settings["protocol"] == "smoke"
    assert settings["handedness"] == "right" and settings["enantiomer"] == "P3_221" and settings["sohncke"]
    for key in ("tau_s", "grad_t_k_m", "mesh", "ecutwfc_ry", "qpoints_mesh"):
        assert key in settings
    assert smoke_run.outputs.chi.base.attributes.get("units")["chi_total"] == "kg/m"
    # the symmetry comes from a calcfunction on the structure the DFPT ran on (inside provenance)
    creator = smoke_run.outputs.symmetry.creator
    assert (
        creator.process_label == "crystal_symmetry"
        and creator.inputs.structure.uuid == smoke_run.outputs.structure.uuid
    )


def test_nested_override_reaches_the_calculation(smoke_run):
    from aiida import orm

    from .conftest import SCF_OVERRIDE

    pw = [
        c for c in smoke_run.called_descendants if isinstance(c, orm.CalcJobNode) and c.process_label == "PwCalculation"
    ]
    assert pw and all(
        c.inputs.parameters["ELECTRONS"]["mixing_beta"]
        == SCF_OVERRIDE["scf"]["pw"]["parameters"]["ELECTRONS"]["mixing_beta"]
        for c in pw
    )
    assert all(c.inputs.parameters["ELECTRONS"]["conv_thr"] == 1e-12 for c in pw)  # the protocol's scf section too


def test_unknown_override_key_warns(codes, quartz_structure):
    from aiida_llpam.workflows.pam import PamWorkChain

    with pytest.warns(UserWarning, match="unrecognised key in overrides: scf.pww"):
        PamWorkChain.get_builder_from_protocol(
            *codes, quartz_structure, protocol="smoke", overrides={"scf": {"pww": {}}}
        )


def test_provenance_reaches_dfpt_and_pseudos(smoke_run):
    from aiida import orm

    chi = smoke_run.outputs.gamma_ll
    ancestors = orm.QueryBuilder().append(orm.ArrayData, filters={"id": chi.pk}, tag="out")
    ph = (
        ancestors.append(
            orm.CalcJobNode, with_descendants="out", filters={"process_type": {"in": list(PH_PROCESS_TYPES)}}
        )
        .distinct()
        .all(flat=True)
    )
    assert len(ph) == 1 and ph[0].is_finished_ok
    from aiida_pseudo.data.pseudo import UpfData

    upf = (
        orm.QueryBuilder()
        .append(orm.ArrayData, filters={"id": chi.pk}, tag="out")
        .append(UpfData, with_descendants="out", project="attributes.md5")
        .distinct()
        .all(flat=True)
    )
    family = orm.load_group("llpam/LDA/debian")
    assert set(upf) == {p.md5 for p in family.nodes}


def test_stored_arrays_equal_physics_engine(smoke_run):
    """The stored nodes are exactly what the physics engine gives on the same q2r files (sum rules, last k mesh)."""
    from aiida_llpam.calculations.functions.phonopy_force_constants import phonopy_from_node
    from aiida_llpam.physics import build_phonopy, compute_response, read_q2r
    from aiida_llpam.physics.sum_rules import enforce_rotational_invariance

    fc = read_q2r(_q2r_file(smoke_run.outputs.q2r_force_constants))
    nac = read_q2r(_q2r_file(smoke_run.outputs.q2r_force_constants_nac), read_ifc=False)
    assert not fc.is_dipole_subtracted and nac.is_dipole_subtracted
    settings = smoke_run.outputs.settings.get_dict()
    sum_rules = smoke_run.outputs.force_constants.base.attributes.get("sum_rules")
    assert sum_rules["rotational_invariance"] and sum_rules["born_huang_after"] < 1e-3 * sum_rules["born_huang_before"]
    phonon, _ = enforce_rotational_invariance(build_phonopy(fc, nac), sum_rules["unfolding_factor"])
    # the stored force constants (aiida-phonopy's units, read back in QE units) are these, to rounding; the sums
    # below start from the stored node, since the smoke model's unstable modes amplify rounding in gamma^NL
    stored = phonopy_from_node(smoke_run.outputs.force_constants)
    np.testing.assert_allclose(stored.force_constants, phonon.force_constants, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(stored.supercell.cell, phonon.supercell.cell, rtol=1e-13)
    phonon = stored
    # the smoke protocol sums on 6^3 and then 8^3: the result is the last mesh's
    assert settings["mesh"] == smoke_run.outputs.convergence.get_array("convergence_meshes")[-1].tolist() == [8, 8, 8]
    res = compute_response(
        phonon,
        settings["mesh"],
        settings["temperatures_k"],
        settings["radii_m"],
        settings["tau_s"],
        settings["grad_t_k_m"],
        settings["frequency_cutoff_thz"],
        settings["bz_temperature_k"],
    )
    out = smoke_run.outputs
    chi = out.chi

    def close(actual, desired, rtol):
        """SI values of 1e-17 and less: atol 1e-12 of the largest value, not numpy's absolute 1e-8."""
        np.testing.assert_allclose(actual, desired, rtol=rtol, atol=1e-12 * np.abs(desired).max())

    close(chi.get_array("chi_diagonal"), res.chi_diagonal, rtol=1e-10)
    close(chi.get_array("chi_offdiagonal_pair"), res.chi_offdiagonal_pair, rtol=1e-10)
    close(out.gamma_nl.get_array("gamma_nl"), res.gamma_nl, rtol=1e-8)
    close(out.gamma_ll.get_array("gamma_ll"), res.gamma_ll, rtol=1e-10)
    assert np.array_equal(np.isnan(out.eta.get_array("eta_paper")), np.isnan(res.eta_paper))
    close(out.eta.get_array("eta"), res.eta, rtol=1e-12)
    close(out.magnetization.get_array("gamma_m"), res.gamma_m, rtol=1e-8)
    close(out.bz_contributions.get_array("bz_chi_offdiagonal"), res.bz_chi_offdiagonal, rtol=1e-10)
    assert np.all(res.chi_total > 0)


def test_recompute_response_links_to_original(smoke_run, tmp_path):
    """workflows/recompute_response.py's function: ``-T 150 -T 450 -r 20 --tau 2e-11 --pk-file F``."""
    from aiida import orm

    from aiida_llpam.cli.redo import recompute_response

    pk_file = tmp_path / "pk"
    recompute_response(str(smoke_run.pk), temperatures=[150.0, 450.0], radii=[20.0], tau=2e-11, pk_file=pk_file)
    calc = orm.load_node(int(pk_file.read_text()))
    assert calc.inputs.force_constants.uuid == smoke_run.outputs.force_constants.uuid
    assert list(calc.outputs.chi.get_array("temperatures_k")) == [150.0, 450.0]
    assert calc.outputs.settings["tau_s"] == 2e-11


def _inputs(builder) -> dict:
    return builder._inputs(prune=True)  # noqa: SLF001


def _count_processes():
    from aiida import orm

    return orm.QueryBuilder().append(orm.ProcessNode).count()


@pytest.mark.parametrize(
    "response, message",
    [
        ({"temperatures_k": [-5.0, 300.0]}, "temperatures_k"),
        ({"radii_nm": [0.0]}, "radii_nm"),
        ({"tau_s": 0.0}, "tau_s"),
        ({"mesh": [0, 4, 4]}, "mesh"),
    ],
)
def test_bad_response_settings_rejected_before_anything_runs(codes, quartz_structure, response, message):
    from aiida import orm
    from aiida.engine import run

    from aiida_llpam.workflows.pam import PamWorkChain

    builder = PamWorkChain.get_builder_from_protocol(*codes, quartz_structure, protocol="smoke")
    before = _count_processes()
    with pytest.raises(ValueError, match=message):  # the port validator refuses it as soon as it is set
        builder.response.parameters = orm.Dict({**builder.response.parameters.get_dict(), **response})
    with pytest.raises(ValueError, match=message):  # and so does the process, given the raw inputs
        inputs = _inputs(builder)
        inputs["response"]["parameters"] = orm.Dict({**builder.response.parameters.get_dict(), **response})
        run(PamWorkChain, **inputs)
    assert _count_processes() == before


def test_unknown_protocol_and_missing_pseudo(codes, quartz_structure):
    from aiida import orm
    from aiida.engine import run

    from aiida_llpam.workflows.pam import PamWorkChain

    with pytest.raises(ValueError, match="unknown protocol"):
        PamWorkChain.get_builder_from_protocol(*codes, quartz_structure, protocol="ultra")
    alien = orm.StructureData(cell=quartz_structure.cell)
    alien.append_atom(position=(0, 0, 0), symbols="Ge")
    with pytest.raises(ValueError, match="Ge"):
        PamWorkChain.get_builder_from_protocol(*codes, alien, protocol="smoke")
    builder = PamWorkChain.get_builder_from_protocol(*codes, quartz_structure, protocol="smoke")
    builder.structure = alien
    before = _count_processes()
    with pytest.raises(ValueError, match="no pseudopotential for Ge"):
        run(builder)
    assert _count_processes() == before


def test_smoke_results_are_labelled_not_physical_wherever_shown(smoke_run, tmp_path):
    """Issue 8: the smoke protocol's numbers are not physics; the report, show, list, figures and HDF5 say so."""
    import json
    import subprocess
    import sys

    import h5py
    from aiida.cmdline.utils.common import get_workchain_report
    from aiida.manage import get_manager

    from aiida_llpam.workflows.protocols import UNPHYSICAL_PROTOCOLS

    warning = UNPHYSICAL_PROTOCOLS["smoke"]
    report = get_workchain_report(smoke_run, "REPORT")
    assert warning in report
    # Gamma-only force constants are unstable away from Gamma: the report and show warn, with counts
    assert "WARNING: " in report and "imaginary modes on the band path and next to Gamma (lowest -" in report
    profile = get_manager().get_profile().name

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-c", "from aiida_llpam.cli import main; main()", *args, "-p", profile],
            capture_output=True,
            text=True,
            timeout=600,
        )

    shown = cli("show", str(smoke_run.pk))
    assert shown.returncode == 0 and f"NOTE: {warning}" in shown.stdout
    assert "WARNING: " in shown.stdout and "imaginary modes on the band path and next to Gamma" in shown.stdout
    assert "k-mesh convergence: NOT converged" in shown.stdout
    listed = cli("list")
    assert next(line for line in listed.stdout.splitlines() if line.split()[:1] == [str(smoke_run.pk)]).endswith(
        "(not physical)"
    )
    assert cli("figures", str(smoke_run.pk), "-o", str(tmp_path / "figs")).returncode == 0
    sidecars = [json.loads(p.read_text()) for p in (tmp_path / "figs").glob("*.json")]
    assert len(sidecars) >= 11 and all(s["warning"] == warning for s in sidecars)
    assert cli("export", str(smoke_run.pk), "-o", str(tmp_path / "r.h5")).returncode == 0
    with h5py.File(tmp_path / "r.h5") as h5:
        assert h5.attrs["warning"] == warning


def test_a_stored_dfpt_is_reused_with_provenance(smoke_run, codes):
    """Starting from the retrieved files of the smoke run's ph.x: no pw.x or ph.x runs, the same force constants."""
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_llpam.workflows.pam import PamWorkChain

    ph = next(c for c in smoke_run.called_descendants if c.process_type in PH_PROCESS_TYPES)
    builder = PamWorkChain.get_builder_from_protocol(
        *codes, smoke_run.outputs.structure, protocol="smoke", dfpt=ph.outputs.retrieved
    )
    _, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    ran = {c.process_type.rsplit(".", 1)[-1] for c in node.called_descendants if isinstance(c, orm.CalcJobNode)}
    assert ran == {"q2r", "response"}
    assert node.inputs.dfpt.creator.uuid == ph.uuid
    np.testing.assert_array_equal(
        node.outputs.force_constants.get_array("force_constants"),
        smoke_run.outputs.force_constants.get_array("force_constants"),
    )
    # a DFPT on another cell is refused before any response is computed
    other = smoke_run.outputs.structure.clone()
    other.reset_cell((np.array(other.cell) * 1.02).tolist())
    _, bad = run_get_node(
        PamWorkChain.get_builder_from_protocol(*codes, other, protocol="smoke", dfpt=ph.outputs.retrieved)
    )
    assert bad.exit_status == PamWorkChain.exit_codes.ERROR_DFPT_STRUCTURE_MISMATCH.status
    assert "chi" not in bad.outputs and "force_constants" not in bad.outputs
