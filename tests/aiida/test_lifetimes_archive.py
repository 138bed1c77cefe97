"""The lifetimes demonstration on quartz (fixtures/lifetimes/): imported into a profile with no codes, reproduced.

The archive holds the LifetimesWorkChain (phono3py supercells, every pw.x force, fc3, the RTA) and the
PamWorkChain whose response took its lifetimes, with the production DFPT they share.
"""

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from .test_reference_archive import cli, import_runs

LIFETIMES = Path(__file__).resolve().parents[2] / "fixtures" / "lifetimes"
ARCHIVE = LIFETIMES / "quartz_lifetimes.aiida"


@pytest.fixture(scope="module")
def imported():
    """(the PamWorkChain with lifetimes, the LifetimesWorkChain) of the archive."""
    from aiida import orm

    runs = [run for run in import_runs(ARCHIVE, "lifetimes") if "lifetimes_response" in run.outputs]
    assert len(runs) == 1
    lifetimes = orm.QueryBuilder().append(
        orm.WorkChainNode, filters={"process_type": "aiida.workflows:llpam.lifetimes"}
    )
    (lifetimes,) = lifetimes.all(flat=True)
    return runs[0], lifetimes


def test_the_kappa_fixture_is_the_stored_file(imported):
    _, lifetimes = imported
    kappa = lifetimes.outputs.kappa
    fixture = LIFETIMES / kappa.filename
    assert hashlib.sha256(fixture.read_bytes()).hexdigest() == hashlib.sha256(kappa.get_content(mode="rb")).hexdigest()


def test_provenance_from_forces_to_response(imported):
    run, lifetimes = imported
    assert lifetimes.is_finished_ok and run.is_finished_ok
    forces = [c for c in lifetimes.called if c.process_label == "PwBaseWorkChain"]
    supercells = next(c for c in lifetimes.called if c.process_label == "phono3py_supercells")
    # one pw.x force job per supercell the calcfunction made (its other outputs: dataset, disp_yaml)
    assert len(forces) == len(supercells.base.links.get_outgoing().all()) - 2 and all(f.is_finished_ok for f in forces)
    # fc3 and the RTA of this archive ran in the calcfunction that the job llpam.rta replaced: its nodes still
    # load, with every force as an input, though its code is gone
    rta = lifetimes.outputs.kappa.creator
    assert rta.process_label == "phono3py_fc3_kappa" and lifetimes.outputs.fc3.creator.uuid == rta.uuid
    inputs = {link.link_label: link.node for link in rta.base.links.get_incoming().all()}
    assert {f.outputs.output_trajectory.uuid for f in forces} <= {node.uuid for node in inputs.values()}
    response = run.outputs.lifetimes_response.creator
    assert response.inputs.lifetimes.uuid == lifetimes.outputs.lifetimes.uuid
    # the same harmonic model: the response's force constants equal those phono3py took as fc2
    from aiida_llpam.calculations.functions.phonopy_force_constants import stored_arrays

    ours, theirs = stored_arrays(response.inputs.force_constants), stored_arrays(lifetimes.inputs.force_constants)
    np.testing.assert_allclose(ours["force_constants"], theirs["force_constants"], rtol=0, atol=1e-12)


def test_stored_response_is_reproduced_from_stored_inputs(imported):
    """The mode-resolved sums, recomputed here from the stored force constants, settings and lifetimes."""
    from aiida_llpam.calculations.functions.phonopy_force_constants import phonopy_from_node
    from aiida_llpam.physics.lifetimes import Lifetimes
    from aiida_llpam.physics.response import response_from_settings
    from aiida_llpam.physics.settings import ResponseSettings

    run, _ = imported
    response = run.outputs.lifetimes_response.creator
    node = response.inputs.lifetimes
    result = response_from_settings(
        phonopy_from_node(response.inputs.force_constants),
        ResponseSettings.from_mapping(response.inputs.parameters.get_dict()),
        lifetimes=Lifetimes.from_arrays({name: node.get_array(name) for name in node.get_arraynames()}),
    )
    stored = run.outputs.lifetimes_response
    for name in ("gamma_nl_tau_modes", "gamma_m_tau_modes", "cumulative_gamma_nl_zz_tau_modes", "tau_effective_nl_s"):
        # atol: the off-diagonal terms that symmetry makes zero are summation noise (1e-33 against 1e-16), whose
        # sign depends on the order of the sums (threads, BLAS); the elements that carry physics agree to 1e-9
        value = stored.get_array(name)
        scale = np.abs(value).max()
        np.testing.assert_allclose(getattr(result, name), value, rtol=1e-9, atol=1e-12 * scale, err_msg=name)


def test_mode_resolved_response_is_physical(imported):
    run, _ = imported
    out = run.outputs.lifetimes_response
    temperatures = out.get_array("temperatures_k")
    tau = out.get_array("tau_effective_nl_s")
    assert np.all(np.isfinite(tau)) and np.all(tau > 0)
    # anharmonic lifetimes shorten as T rises: the effective tau falls from the lowest to the highest temperature
    assert tau[-1] < tau[0]
    # the cumulative sums end at the totals; point group 32: gamma^NL diagonal, xx = yy
    np.testing.assert_allclose(
        out.get_array("cumulative_gamma_nl_zz_tau_modes")[:, -1], out.get_array("gamma_nl_zz_tau_modes"), rtol=1e-9
    )
    g = out.get_array("gamma_nl_tau_modes")[np.argmin(np.abs(temperatures - 300.0))]
    assert g[0, 0] == pytest.approx(g[1, 1], rel=1e-6) and abs(g[0, 1]) < 1e-9 * abs(g[2, 2])
    tau_ps = out.get_array("mesh_tau_ps")
    assert np.all(tau_ps[np.isfinite(tau_ps)] > 0)


def test_show_prints_gamma_nl_with_both_taus_at_300_k(imported):
    run, _ = imported
    result = cli("show", str(run.pk))
    assert result.returncode == 0, result.stderr
    values = {}
    for name in ("gamma_nl_zz", "gamma_nl_zz_tau_modes", "tau_effective_nl_s"):
        match = re.search(rf"^\s+{name}\s+(\S+)\s", result.stdout, re.M)
        assert match, name
        values[name] = float(match.group(1))
    assert "at T = 300 K" in result.stdout
    out = run.outputs.lifetimes_response
    it = int(np.argmin(np.abs(out.get_array("temperatures_k") - 300.0)))
    assert values["gamma_nl_zz_tau_modes"] == pytest.approx(out.get_array("gamma_nl_zz_tau_modes")[it], rel=1e-6)


def test_lifetimes_figure_from_stored_nodes(imported, tmp_path):
    from aiida_llpam.cli.figures import write_lifetimes_figure

    run, _ = imported
    path = write_lifetimes_figure(run, tmp_path / "lifetimes.png")
    assert path.stat().st_size > 10_000
