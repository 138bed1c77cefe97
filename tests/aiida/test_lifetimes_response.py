"""A lifetimes node in the response job: read from a kappa file, summed, stored as lifetimes_response; refusals.

The kappa files here are written by the test in phono3py's layout with a constant linewidth on the smoke run's
own mesh, so the expected result is the constant-tau one; the demonstration's real file is in
tests/aiida/test_lifetimes_archive.py.
"""

import h5py
import numpy as np
import pytest

pytestmark = pytest.mark.qe  # uses the smoke run

TAU_S = 3.0e-12


def _kappa_file(path, smoke_run, mesh=None, with_gamma=True):
    """phono3py's kappa layout: mesh, temperature, qpoint, frequency, gamma (T, q, band) on the irreducible points."""
    from aiida_llpam.calculations.functions.phonopy_force_constants import write_force_constants
    from aiida_llpam.physics.phonon import phonopy_from_stored
    from aiida_llpam.physics.settings import ResponseSettings

    settings = ResponseSettings.from_mapping(_parameters(smoke_run))
    write_force_constants(smoke_run.outputs.force_constants, path.with_suffix(".npz"))
    data = np.load(path.with_suffix(".npz"))
    phonon = phonopy_from_stored(data, [str(s) for s in data["symbols"]])
    phonon.run_mesh(mesh or settings.mesh, is_gamma_center=True)
    temperatures = np.array([1.0, 100.0, 2000.0])
    with h5py.File(path, "w") as handle:
        handle["mesh"] = np.asarray(mesh or settings.mesh)
        handle["temperature"] = temperatures
        handle["qpoint"] = phonon.mesh.qpoints
        handle["frequency"] = phonon.mesh.frequencies
        if with_gamma:
            handle["gamma"] = np.full(
                (len(temperatures), *phonon.mesh.frequencies.shape), 1 / (4 * np.pi * TAU_S * 1e12)
            )
    return path


def _lifetimes(path):
    from aiida import orm

    from aiida_llpam.calculations.functions import lifetimes_from_kappa

    return lifetimes_from_kappa.run_get_node(orm.SinglefileData(path))


def _parameters(smoke_run) -> dict:
    """The smoke run's response settings on its one mesh: lifetimes exclude a convergence sequence."""
    parameters = smoke_run.inputs.response.parameters.get_dict()
    return {key: value for key, value in parameters.items() if not key.startswith("convergence_")}


def _response(smoke_run, lifetimes, parameters=None):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_llpam.calculations.response import PamResponseCalculation

    _, node = run_get_node(
        PamResponseCalculation,
        code=smoke_run.inputs.response.code,
        parameters=orm.Dict(parameters or _parameters(smoke_run)),
        force_constants=smoke_run.outputs.force_constants,
        lifetimes=lifetimes,
    )
    return node


def test_constant_linewidths_give_the_constant_tau_result(smoke_run, tmp_path):
    lifetimes, node = _lifetimes(_kappa_file(tmp_path / "kappa-m.hdf5", smoke_run))
    assert node.is_finished_ok and lifetimes.base.attributes.get("units")["gamma_thz"] == "THz"
    response = _response(smoke_run, lifetimes)
    assert response.is_finished_ok, response.exit_message
    out = response.outputs.lifetimes_response
    tau_s = response.outputs.settings["tau_s"]
    constant = response.outputs.gamma_nl.get_array("gamma_nl")  # for tau_s
    scale = np.abs(constant).max()
    np.testing.assert_allclose(
        out.get_array("gamma_nl_tau_modes"), constant * TAU_S / tau_s, rtol=0, atol=1e-10 * scale
    )
    np.testing.assert_allclose(out.get_array("tau_effective_nl_s"), TAU_S, rtol=1e-10)
    assert out.base.attributes.get("units")["mesh_tau_ps"] == "ps"
    assert out.base.attributes.get("bz_temperature_k") == response.outputs.settings["bz_temperature_k"]
    # the input nodes written out for the job are not stored a second time in its repository; its settings file is
    stored = set(response.base.repository.list_object_names())
    assert "parameters.json" in stored and not stored & {"force_constants.npz", "lifetimes.npz"}, stored


def test_lifetimes_of_another_mesh_are_refused_by_the_job(smoke_run, tmp_path):
    lifetimes, _ = _lifetimes(_kappa_file(tmp_path / "kappa-m.hdf5", smoke_run, mesh=(3, 3, 2)))
    response = _response(smoke_run, lifetimes)
    assert response.exit_status == response.process_class.exit_codes.ERROR_INPUTS_REFUSED.status
    assert "lifetimes: computed on the 3x3x2 mesh" in response.exit_message
    assert "lifetimes_response" not in response.outputs


def test_lifetimes_with_a_convergence_sequence_are_refused(smoke_run, tmp_path):
    lifetimes, _ = _lifetimes(_kappa_file(tmp_path / "kappa-m.hdf5", smoke_run))
    parameters = {**_parameters(smoke_run), "convergence_meshes": [[8, 8, 8]]}
    response = _response(smoke_run, lifetimes, parameters)
    assert response.exit_status == response.process_class.exit_codes.ERROR_INPUTS_REFUSED.status
    assert "convergence_meshes: mode-resolved lifetimes are on one mesh" in response.exit_message


def test_a_kappa_file_without_linewidths_is_refused(smoke_run, tmp_path):
    _, node = _lifetimes(_kappa_file(tmp_path / "kappa-m.hdf5", smoke_run, with_gamma=False))
    assert node.exit_status == 300 and "no gamma" in node.exit_message
    assert not node.base.links.get_outgoing().all()  # nothing half-stored


def test_kappa_is_compared_with_measured_values_as_a_node(llpam_profile, tmp_path):
    """kappa_comparison: a Dict from the kappa file and the measured values, linked to both; measured temperatures
    outside the RTA's end it with exit 300 and nothing stored."""
    from aiida import orm

    from aiida_llpam.calculations.functions import kappa_comparison
    from aiida_llpam.queries import kappa_comparisons

    path = tmp_path / "kappa-m444.hdf5"
    with h5py.File(path, "w") as handle:
        handle["temperature"] = np.array([100.0, 300.0])
        handle["kappa"] = np.array([[9.0, 9.0, 20.0, 0, 0, 0], [3.0, 3.0, 8.0, 0, 0, 0]])
    kappa = orm.SinglefileData(path).store()
    measured = {"source": "a test", "temperatures_k": [300.0], "perpendicular_w_mk": [6.0], "parallel_w_mk": [10.0]}
    result, node = kappa_comparison.run_get_node(kappa, orm.Dict(measured))
    assert node.is_finished_ok
    assert result["ratio_perpendicular"] == [0.5] and result["ratio_parallel"] == [0.8]
    assert [c.uuid for c in kappa_comparisons(kappa)] == [result.uuid]
    _, node = kappa_comparison.run_get_node(kappa, orm.Dict(measured | {"temperatures_k": [600.0]}))
    assert node.exit_status == 300 and "outside the RTA's 100-300 K" in node.exit_message
    assert not list(node.outputs) and [c.uuid for c in kappa_comparisons(kappa)] == [result.uuid]


def test_the_comparison_node_holds_the_measured_diffusivity_beside_kappa_over_c(llpam_profile, tmp_path):
    """kappa_comparison with measured D: the calcfunction reads the kappa, the heat capacity and the cell volume
    from one open file and stores D = kappa / (C / V) beside the measured one; a file without the volume ends it
    with exit 300, nothing stored."""
    from aiida import orm

    from aiida_llpam.calculations.functions import kappa_comparison

    from ..physics.test_lifetimes import kappa_file_with_volume

    path = kappa_file_with_volume(tmp_path / "kappa-m444.hdf5")
    measured = {
        "source": "a test", "temperatures_k": [300.0], "perpendicular_w_mk": [6.0], "parallel_w_mk": [10.0],
        "diffusivity": {"source": "flash", "temperatures_k": [100.0, 300.0], "exponent_perpendicular": 1.6,
                        "exponent_parallel": 1.8,
                        "values": {"temperatures_k": [300.0], "perpendicular_mm2_s": [2.0], "parallel_mm2_s": [4.0]}},
    }  # fmt: skip
    result, node = kappa_comparison.run_get_node(orm.SinglefileData(path).store(), orm.Dict(measured))
    assert node.is_finished_ok, node.exit_message
    per_volume = 3.0e-4 * 1.602176634e-19 / 120.0e-30  # J/(m^3 K) at 300 K
    values = result["diffusivity"]["values"]
    assert values["computed_perpendicular_mm2_s"] == pytest.approx([6.0 / per_volume * 1e6], rel=1e-5)
    assert values["ratio_parallel"] == pytest.approx([10.0 / per_volume * 1e6 / 4.0], rel=1e-5)
    with h5py.File(path, "a") as handle:
        del handle["kappa_unit_conversion"]
    _, node = kappa_comparison.run_get_node(orm.SinglefileData(path).store(), orm.Dict(measured))
    assert node.exit_status == 300 and "no kappa_unit_conversion" in node.exit_message
    assert not list(node.outputs)


def test_measured_values_outside_the_rta_temperatures_are_refused_before_anything_runs(smoke_run, tmp_path):
    """run_lifetimes --measured: a measured temperature (here the diffusivity's 153 K) outside the RTA's
    temperatures ends the script before any job, not after the pw.x runs with the response left undone."""
    import json

    from aiida import orm

    from aiida_llpam.cli.lifetimes import run_lifetimes

    measured = tmp_path / "measured.json"
    values = {"temperatures_k": [153.15], "perpendicular_mm2_s": [8.0], "parallel_mm2_s": [15.7]}
    diffusivity = {"source": "flash", "temperatures_k": [220.0, 400.0], "exponent_perpendicular": 1.6,
                   "exponent_parallel": 1.8, "values": values}  # fmt: skip
    measured.write_text(json.dumps({"source": "a test", "temperatures_k": [300.0], "perpendicular_w_mk": [6.2],
                                    "parallel_w_mk": [10.4], "diffusivity": diffusivity}))  # fmt: skip
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(SystemExit, match=r"--measured: measured diffusivity: 153.15 K outside the RTA's 200-400 K"):
        run_lifetimes(str(smoke_run.pk), temperatures=[200.0, 300.0, 400.0], measured=measured)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_compare_kappa_names_what_it_cannot_take(llpam_profile, tmp_path):
    from aiida import orm

    from aiida_llpam.cli.lifetimes import _measured, compare_kappa

    measured = tmp_path / "measured.json"
    measured.write_text('{"source": "a test", "temperatures_k": [300.0]}')
    node = orm.Dict({}).store()
    with pytest.raises(SystemExit, match="neither a LifetimesWorkChain nor an RTA job nor a PamWorkChain"):
        compare_kappa(str(node.pk), measured)
    with pytest.raises(SystemExit, match="no perpendicular_w_mk, parallel_w_mk"):
        _measured(measured)


def test_show_prints_kappa_beside_the_effective_tau(codes, smoke_run, tmp_path):
    """A PamWorkChain whose response took lifetimes: ``show`` gives the RTA's kappa at the shown temperature (read
    from the kappa file, interpolated in T), the effective tau of the response, and every stored comparison."""
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_llpam.calculations.functions import kappa_comparison
    from aiida_llpam.cli.results import lifetimes_lines
    from aiida_llpam.queries import dfpt_retrieved, dfpt_structure, gather
    from aiida_llpam.workflows.pam import PamWorkChain

    path = _kappa_file(tmp_path / "kappa-m.hdf5", smoke_run)
    # T = 1, 100, 2000 K; xx, yy, zz, yz, xz, xy in W/(m K): linear in T (0.04 T perpendicular, 0.09 T along c),
    # so show's interpolation to the response's temperature is exact
    with h5py.File(path, "a") as handle:
        handle["kappa"] = np.array([[0.04 * t, 0.04 * t, 0.09 * t, 0, 0, 0] for t in (1.0, 100.0, 2000.0)])
    lifetimes, _ = _lifetimes(path)
    kappa = lifetimes.creator.inputs.kappa
    measured = {"source": "a test", "temperatures_k": [100.0], "perpendicular_w_mk": [8.0], "parallel_w_mk": [10.0]}
    comparison, _ = kappa_comparison.run_get_node(kappa, orm.Dict(measured))
    retrieved = dfpt_retrieved(smoke_run)
    builder = PamWorkChain.get_builder_from_protocol(
        *codes, dfpt_structure(retrieved), protocol="smoke", dfpt=retrieved
    )
    builder.response.parameters = orm.Dict(_parameters(smoke_run))
    builder.response.lifetimes = lifetimes
    _, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    response = gather(node)[0]["response"]  # what show reads
    it = int(np.argmin(np.abs(np.asarray(response["temperatures_k"]) - 100.0)))
    t = response["temperatures_k"][it]
    lines = lifetimes_lines(node, response, it)
    assert (
        f"SinglefileData<{kappa.pk}>) at {t:g} K: kappa {0.04 * t:.3g} W/(m K) perpendicular to c, {0.09 * t:.3g}"
        in lines[0]
    )
    assert f"effective tau {TAU_S * 1e12:.3g} ps (gamma^NL_zz)" in lines[0]
    assert lines[1].startswith("  gamma^NL_zz by mode frequency, constant tau | tau_ks (J s K^-1 m^-2): below 60 cm^-1")
    assert len(lines) == 4 and lines[2] == f"  kappa computed/measured W/(m K) (ratio), Dict<{comparison.pk}>, a test:"
    assert (
        lines[3]
        == "    100 K: perpendicular to c 4/8 (0.50), along c 9/10 (0.90); anisotropy along c / perpendicular 2.25/1.25"
    )
