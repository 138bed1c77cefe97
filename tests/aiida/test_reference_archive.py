"""The committed reference archives: imported into a profile with no QE codes, reproduced as figures/tables/HDF5.

fixtures/reference/quartz_*.aiida are runs of the current workflow.
"""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

REFERENCE = Path(__file__).resolve().parents[2] / "fixtures" / "reference"
#: the reference runs, one per protocol (the fitted sum-rule model of the production DFPT is tested on its own)
ARCHIVES = [REFERENCE / f"quartz_{protocol}.aiida" for protocol in ("fast", "production")]
PROFILE = "llpam-archive"


def cli(*args):
    """The command line in this process (click's runner: no interpreter start per call), on the profile the
    current archive was imported into; the result has ``returncode``, ``stdout`` and ``stderr`` as a subprocess's."""
    from types import SimpleNamespace

    from aiida.manage import get_manager
    from click.testing import CliRunner

    from aiida_llpam.cli import main

    result = CliRunner().invoke(main, [*args, "-p", get_manager().get_profile().name])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)


def test_reference_archives_are_committed():
    assert {"quartz_fast.aiida", "quartz_production.aiida"} <= {a.name for a in ARCHIVES}


def import_into_own_profile(archive: Path, tag: str):
    """A fresh sqlite_dos profile (no computer, no codes) with only ``archive`` in it; the PamWorkChain."""
    runs = import_runs(archive, tag)
    newest = max(runs, key=lambda node: node.ctime)
    # a run redone from a stored DFPT (workflows/run_from_dfpt.py) brings the run that made that DFPT, and no other
    assert all(run.uuid in newest.description and "dfpt" in newest.inputs for run in runs if run is not newest)
    return newest


def import_runs(archive: Path, tag: str) -> list:
    """``archive`` imported into the sqlite_dos profile of ``tag`` (made if missing; no computer can run there);
    every PamWorkChain in that profile."""
    from aiida import load_profile, orm
    from aiida.manage.configuration import create_profile, get_config
    from aiida.tools.archive import import_archive

    profile = f"{PROFILE}-{tag}"
    config = get_config(create=True)
    if profile not in config.profile_names:
        create_profile(
            config,
            storage_backend="core.sqlite_dos",
            storage_config={"filepath": str(Path(config.dirpath) / "repository" / profile)},
            name=profile,
            email="archive@localhost",
        )
        config.store()
    load_profile(profile, allow_switch=True)
    import_archive(archive)
    # the archive brings its code and computer nodes, but nothing here can run them
    assert all(not computer.is_configured for computer in orm.Computer.collection.all())
    return (
        orm.QueryBuilder()
        .append(orm.WorkChainNode, filters={"process_type": "aiida.workflows:llpam.pam"})
        .all(flat=True)
    )


@pytest.fixture(scope="module", params=ARCHIVES, ids=[a.stem for a in ARCHIVES])
def imported(request):
    return import_into_own_profile(request.param, request.param.stem)


def test_archive_holds_a_finished_run_with_full_provenance(imported, request):
    from aiida import orm

    assert imported.is_finished_ok
    ph = (
        orm.QueryBuilder()
        .append(orm.ArrayData, filters={"id": imported.outputs.gamma_ll.pk}, tag="out")
        .append(
            orm.CalcJobNode, with_descendants="out", filters={"process_type": "aiida.calculations:quantumespresso.ph"}
        )
        .distinct()
        .all(flat=True)
    )
    assert len(ph) == 1
    from aiida_llpam.queries import run_settings

    settings = run_settings(imported)
    archive = request.node.callspec.params["imported"]
    assert archive.stem == f"quartz_{settings['protocol']}"  # the file says which protocol made it
    assert settings["relaxed"] and settings["space_group_number"] == 154 and settings["handedness"] == "right"


def test_figures_from_stored_nodes(imported, tmp_path):
    from aiida_llpam.queries import run_settings

    out = cli("figures", imported.uuid, "-o", str(tmp_path / "figs"))
    assert out.returncode == 0, out.stderr
    files = sorted((tmp_path / "figs").glob("*.png"))
    from aiida_llpam.queries import direct_dfpt_checks

    # the production reference carries its check against direct DFPT, drawn beside the paper's panels
    checked = ["direct_dfpt_check"] if direct_dfpt_checks(imported) else []
    assert [f.stem for f in files] == sorted(
        checked
        + [
            "fig2d_dispersion",
            "fig2e_gamma_a_species",
            "fig2f_trajectories",
            "fig3b_gamma_ll_map",
            "fig3c_gamma_ll_cut",
            "fig3d_bz_diagonal",
            "fig3e_bz_offdiagonal",
            "fig3f_pam_density",
            "dispersion_mu",
            "gamma_nl_tensor",
            "magnetization",
            "kmesh_convergence",
        ]
    )
    import matplotlib.image as mpimg

    for f in files:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = mpimg.imread(f)
        assert image.shape[0] > 200 and image.shape[1] > 300 and image.std() > 0.01  # not blank
        sidecar = json.loads(Path(f"{f}.json").read_text())
        assert sidecar["sources"]["workchain"] == imported.uuid
    if run_settings(imported)["protocol"] == "fast":  # the format option once: the same drawing code otherwise
        out = cli("figures", str(imported.pk), "-o", str(tmp_path / "pdf"), "--format", "pdf")
        assert out.returncode == 0 and all(p.read_bytes()[:5] == b"%PDF-" for p in (tmp_path / "pdf").glob("*.pdf"))


def _shown(stdout: str) -> dict[str, str]:
    """name -> rest of the line, for the quantity lines of `show`."""
    return {
        line.split()[0]: line.split(None, 1)[1]
        for line in stdout.splitlines()
        if line.startswith("  ") and line.split()
    }


def test_list_and_show_print_stored_values(imported):
    out = cli("list")
    assert out.returncode == 0, out.stderr
    from aiida_llpam.queries import run_settings

    assert (
        str(imported.pk) in out.stdout and run_settings(imported)["protocol"] in out.stdout and "P3_221" in out.stdout
    )
    out = cli("show", str(imported.pk))
    assert out.returncode == 0, out.stderr
    shown = _shown(out.stdout)
    chi = imported.outputs.chi
    i = int(np.argmin(np.abs(chi.get_array("temperatures_k") - 300.0)))
    # abs=0 throughout: SI values of ~1e-17, which approx's default abs=1e-12 would accept whatever they were
    assert float(shown["chi_diagonal"].split()[0]) == pytest.approx(chi.get_array("chi_diagonal")[i], rel=1e-5, abs=0)
    g = imported.outputs.gamma_ll
    j = int(np.argmin(np.abs(np.log(g.get_array("radii_m") / 20e-9))))
    assert float(shown["gamma_ll"].split()[0]) == pytest.approx(g.get_array("gamma_ll")[i, j], rel=1e-5, abs=0)
    # issue 7: eta (free), eta_paper, gamma^NL_ij, gamma^M and <M_z> at 300 K, with units
    eta = imported.outputs.eta
    assert float(shown["eta"].split()[0]) == pytest.approx(eta.get_array("eta")[i, j], rel=1e-5, abs=0)
    assert float(shown["eta_paper"].split()[0]) == pytest.approx(eta.get_array("eta_paper")[i, j], rel=1e-5, abs=0)
    assert shown["gamma_nl"].startswith("[[") and shown["gamma_nl"].endswith("J s K^-1 m^-2")
    assert shown["gamma_m"].endswith("A/K") and shown["magnetization_bare"].endswith("A/m")
    assert "T = 300 K" in out.stdout
    # issue 8: no imaginary mode (the rotational sum rules), and the k sums with their convergence
    assert "WARNING" not in out.stdout
    assert ", 0 imaginary modes" in out.stdout and "sum rules: ASR; Born-Huang residual" in out.stdout
    table = imported.outputs.convergence
    assert "k-mesh convergence: converged (tolerance 1.0%)" in out.stdout
    gamma = table.get_array("convergence_gamma_nl_zz")
    headline = next(line for line in out.stdout.splitlines() if line.split()[:1] == ["gamma_nl_zz"] and "+-" in line)
    assert float(headline.split()[1]) == pytest.approx(gamma[-1], rel=1e-4, abs=0)
    assert float(headline.split()[3]) == pytest.approx(abs(gamma[-1] - gamma[-2]), rel=0.05, abs=0)
    assert abs(gamma[-1] - gamma[-2]) < 0.01 * gamma[-1]


#: experimental elastic constants of alpha-quartz (GPa, room temperature) and density (kg/m^3); trigonal class 32
ELASTIC_GPA = {"C11": 86.8, "C12": 7.0, "C13": 11.9, "C14": -18.0, "C33": 105.8, "C44": 58.2}
DENSITY_KG_M3 = 2648.0


def christoffel_velocities_km_s(direction) -> np.ndarray:
    """Ascending sound velocities of the experimental elastic tensor along ``direction`` (Cartesian, z = c, x = a)."""
    c = ELASTIC_GPA
    c66 = (c["C11"] - c["C12"]) / 2
    voigt = np.array(
        [
            [c["C11"], c["C12"], c["C13"], c["C14"], 0, 0],
            [c["C12"], c["C11"], c["C13"], -c["C14"], 0, 0],
            [c["C13"], c["C13"], c["C33"], 0, 0, 0],
            [c["C14"], -c["C14"], 0, c["C44"], 0, 0],
            [0, 0, 0, 0, c["C44"], c["C14"]],
            [0, 0, 0, 0, c["C14"], c66],
        ]
    )
    pair = [[0, 5, 4], [5, 1, 3], [4, 3, 2]]
    n = np.asarray(direction, dtype=float) / np.linalg.norm(direction)
    tensor = np.array(
        [[[[voigt[pair[i][j], pair[k][m]] for m in range(3)] for k in range(3)] for j in range(3)] for i in range(3)]
    )
    return np.sqrt(np.linalg.eigvalsh(np.einsum("ijkl,j,l->ik", tensor, n, n)) * 1e9 / DENSITY_KG_M3) / 1e3


def test_christoffel_reference_gives_the_measured_velocities_along_c():
    np.testing.assert_allclose(christoffel_velocities_km_s([0, 0, 1]), [4.69, 4.69, 6.32], atol=0.01)


@pytest.fixture(scope="module")
def production_acoustic():
    """The production run's phonopy model (from its stored force constants) and its stored sound velocities (km/s)."""
    from aiida_llpam.calculations.functions.phonopy_force_constants import phonopy_from_node

    node = import_into_own_profile(REFERENCE / "quartz_production.aiida", "quartz_production")
    return phonopy_from_node(node.outputs.force_constants), node.outputs.acoustic.get_array(
        "sound_velocities_m_s"
    ) / 1e3


@pytest.mark.parametrize("direction", ["z", "x", "y"])
def test_production_sound_velocities_against_experiment(direction, production_acoustic):
    """From the stored force constants of the production run, the slope at Gamma vs the experimental elastic tensor.

    Along c and along the twofold axis a (x) every branch is within 15 %. Along y the slow shear (C66) is 19 %
    below experiment (LDA at the relaxed, 3 % denser cell); it is pinned so that a change is noticed.
    """
    from aiida_llpam.physics.acoustic import sound_velocities

    phonon, stored_all = production_acoustic
    vector = {"z": [0, 0, 1], "x": [1, 0, 0], "y": [0, 1, 0]}[direction]
    computed = sound_velocities(phonon, [vector])[0] / 1e3
    stored = stored_all[{"z": 0, "x": 1, "y": 2}[direction]]
    np.testing.assert_allclose(computed, stored, rtol=1e-8)
    deviation = computed / christoffel_velocities_km_s(vector) - 1
    if direction == "y":
        assert -0.25 < deviation[0] < -0.15 and np.all(np.abs(deviation[1:]) < 0.15)
    else:
        assert np.all(np.abs(deviation) < 0.15), deviation


def test_hdf5_round_trip(imported, tmp_path):
    target = tmp_path / "results.h5"
    out = cli("export", str(imported.pk), "-o", str(target))
    assert out.returncode == 0, out.stderr
    with h5py.File(target) as h5:
        assert h5.attrs["workchain_uuid"] == imported.uuid
        assert np.array_equal(h5["gamma_ll/gamma_ll"][()], imported.outputs.gamma_ll.get_array("gamma_ll"))
        assert np.array_equal(h5["chi/chi_total"][()], imported.outputs.chi.get_array("chi_total"))
        assert np.array_equal(h5["gamma_nl/gamma_nl"][()], imported.outputs.gamma_nl.get_array("gamma_nl"))
        bz = imported.outputs.bz_contributions.get_array("bz_chi_offdiagonal")
        assert np.array_equal(h5["bz_contributions/bz_chi_offdiagonal"][()], bz)
        assert np.array_equal(h5["dispersion/l_hbar"][()], imported.outputs.dispersion.get_array("l_hbar"))
        assert h5["chi/chi_total"].attrs["units"] == "kg/m"
        assert json.loads(h5["chi"].attrs["source_uuids"])["chi"] == imported.outputs.chi.uuid
        assert json.loads(h5["settings"].attrs["tau_s"]) == imported.outputs.settings["tau_s"]


#: the error paths do not depend on what the profile holds: one archive is enough
FAST = [archive for archive in ARCHIVES if archive.stem == "quartz_fast"]


@pytest.mark.parametrize("imported", FAST, ids=[a.stem for a in FAST], indirect=True)
@pytest.mark.parametrize("identifier, message", [("999999", "no node"), ("no-such-label", "no node")])
def test_bad_identifier_is_one_line_error(imported, identifier, message):
    for command in ("show", "figures", "export"):
        extra = ["-o", "/tmp/llpam-never"] if command != "show" else []
        out = cli(command, identifier, *extra)
        assert out.returncode != 0
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], out.stderr


def test_node_that_is_not_a_pam_workchain(imported):
    """`show`, `progress` and the scripts (through one loader) refuse another node in one line, and take the run
    by its UUID."""
    from aiida_llpam.cli.redo import pam_workchain

    for command in ("show", "progress"):
        out = cli(command, str(imported.outputs.settings.pk))
        assert out.returncode != 0
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "not an aiida-llpam PamWorkChain" in lines[0], (command, out.stderr)
    with pytest.raises(SystemExit, match="not an aiida-llpam PamWorkChain"):
        pam_workchain(str(imported.outputs.settings.pk), finished=True)
    assert pam_workchain(imported.uuid, finished=True).pk == imported.pk


def test_progress_shows_every_q_point_of_a_finished_dfpt_as_done():
    """`aiida-llpam progress` on the fast run that made the DFPT: each q point of the mesh done with all its
    irreps (as many as its ph.x output lists), and the run redone from that DFPT refused in one line."""
    import re

    runs = import_runs(REFERENCE / "quartz_fast.aiida", "quartz_fast")
    dfpt_run = next(run for run in runs if "dfpt" not in run.inputs)
    ph = next(n for n in dfpt_run.called_descendants if n.process_label == "PhCalculation")
    n_q = ph.outputs.output_parameters["number_of_qpoints"]
    text = ph.outputs.retrieved.base.repository.get_object_content(ph.get_option("output_filename"), mode="r")
    n_irreps = [int(n) for n in re.findall(r"There are\s+(\d+) irreducible representations", text)]
    assert n_q == len(n_irreps) == 4

    out = cli("progress", str(dfpt_run.pk))
    assert out.returncode == 0, out.stderr
    header, *rows = out.stdout.splitlines()
    assert header.startswith(f"PamWorkChain<{dfpt_run.pk}> ") and "finished (exit status 0)" in header
    assert len(rows) == n_q
    for index, (row, n) in enumerate(zip(rows, n_irreps), start=1):
        assert row.startswith(f"  q {index}/{n_q} (") and row.endswith(f": done, irrep {n}/{n}"), row

    redone = next(run for run in runs if "dfpt" in run.inputs)
    out = cli("progress", str(redone.pk))
    assert out.returncode == 1 and out.stderr.strip().count("\n") == 0 and "runs no DFPT" in out.stderr, out.stderr


def test_the_production_model_against_direct_dfpt():
    """The production reference holds ph.x run directly at 0.05, 0.1, 0.2 and 0.15 c* along Gamma-A and at 0.1 along
    Gamma-M and Gamma-K, and the check of its model against them (docs/comparison.md): measured, not tuned; what this
    test holds is what the data says."""
    from aiida_llpam.calculations.nodes import read_output
    from aiida_llpam.queries import direct_dfpt_checks

    run = import_into_own_profile(REFERENCE / "quartz_production.aiida", "direct")
    # each DirectDfptWorkChain checked its own points; the latest check (the one `show` prints) takes all six
    check = direct_dfpt_checks(run)[-1]
    table, summary = read_output(check.outputs.table), check.outputs.summary.get_dict()
    np.testing.assert_allclose(
        table["qpoints"],
        [[0, 0, 0.05], [0, 0, 0.1], [0, 0, 0.2], [0, 0, 0.15], [0.1, 0, 0], [0.1, 0.1, 0]],
        atol=1e-8,
    )
    # the raw DFPT breaks the ASR at Gamma by -20, -20, -11 cm^-1; the check removes it on site
    np.testing.assert_allclose(table["gamma_asr_violation_cm"], [-20.1, -20.1, -11.3], atol=0.1)
    assert np.all(table["direct_frequencies_cm"][:, :3] > 10.0) and table["raw_frequencies_cm"][0, 0] < 0
    # the chiral TA pair: l^z = -+1 in the model and in ph.x at 0.05 c*
    np.testing.assert_allclose(table["direct_l_z"][0, :2], table["model_l_z"][0, :2], atol=0.02)
    assert table["model_l_z"][0, 0] == pytest.approx(-0.99, abs=0.01)
    # along Gamma-K q lies on a C2 axis, which reverses l^z: it vanishes, in the model and in ph.x (to 1e-6 hbar in
    # ph.x's nearly degenerate TA2/LA pair, against -0.33 hbar of the lowest mode at Gamma-M, which keeps no C2)
    np.testing.assert_allclose(table["direct_l_z"][5], 0.0, atol=1e-5)
    np.testing.assert_allclose(table["model_l_z"][5], 0.0, atol=1e-5)
    assert table["direct_l_z"][4, 0] == pytest.approx(-0.33, abs=0.01)
    # measured: acoustic within 3.14 cm^-1 (at Gamma-M), optical within 5.9 (3.3 against the raw matrix), TA
    # splitting 11-36 % along Gamma-A and 90 % at Gamma-M: the default model fails the check
    assert summary["max_acoustic_deviation_cm"] == pytest.approx(3.14, abs=0.01)
    assert summary["max_deviation_above_threshold_cm"] == pytest.approx(5.86, abs=0.01)
    np.testing.assert_allclose(
        summary["ta_splitting_relative_deviation"], [0.36, 0.20, 0.11, 0.13, 0.90, 0.15], atol=0.01
    )


def test_the_6x6x2_model_reproduces_every_direct_point_and_shows_its_budget():
    """The production reference on q 6x6x2 (fixtures/reference/quartz_production_q662.aiida; docs/comparison.md):
    the 3x3x2 ph.x run and eight single-q ph.x runs assembled, on-site ASR, unfolding 2x2x3, fitted to ph.x at 0.1
    and 0.2 c* and at 0.1 along Gamma-M, against the held-out 0.05 and 0.15 c* and 0.1 along Gamma-K. Issue 18's
    criteria (acoustic 1.5 cm^-1, above 100 cm^-1 2.5 cm^-1, TA splitting 25 %) hold at every point; measured, not
    tuned (the margins are small: 1.41 cm^-1 at Gamma-K, 24 % at 0.05 c*). `show` prints its error budget."""
    from aiida_llpam.calculations.nodes import read_output
    from aiida_llpam.cli.trust import held_out_verdict
    from aiida_llpam.physics.direct_dfpt import failed_criteria
    from aiida_llpam.queries import direct_dfpt_checks

    runs = import_runs(REFERENCE / "quartz_production_q662.aiida", "q662")
    (run,) = [node for node in runs if "fit_direct" in node.inputs]
    record = run.outputs.force_constants.base.attributes.get("sum_rules")
    assert record["acoustic"] == "onsite" and list(record["factor"]) == [2, 2, 3]
    assert len(record["matched_qpoints"]) == 2 + 2 + 6  # the stars {q, -q} of 0.1 and 0.2 c*, and Gamma-M's
    # the DFPT is the assembled 6x6x2 mesh, every point once, from the coarse run and the single-q runs
    assembly = run.inputs.dfpt.creator
    assert assembly.process_label == "assemble_dynamical_matrices"
    assert assembly.inputs.qpoints.get_kpoints_mesh()[0] == [6, 6, 2]
    assert sorted(key for key in assembly.inputs if key.startswith("q") and key != "qpoints") == [
        f"q{i}" for i in range(1, 9)
    ]
    (check,) = direct_dfpt_checks(run)
    table, summary = read_output(check.outputs.table), check.outputs.summary.get_dict()
    np.testing.assert_allclose(
        table["qpoints"],
        [[0, 0, 0.05], [0, 0, 0.1], [0, 0, 0.2], [0, 0, 0.15], [0.1, 0, 0], [0.1, 0.1, 0]],
        atol=1e-8,
    )
    held_out, held_summary, failed = held_out_verdict(run, check)
    assert held_out == [0, 3, 5] and failed == []
    assert held_summary["max_acoustic_deviation_cm"] == pytest.approx(1.41, abs=0.01)
    assert failed_criteria(summary) == []
    # the worst acoustic miss is the TA pair at Gamma-K; on 3x3x2 the default model missed it by 2.6, the one fitted
    # along c by 4.3 (docs/comparison.md)
    acoustic = np.abs(table["model_frequencies_cm"] - table["direct_frequencies_cm"])[:, :3].max(axis=1)
    assert np.argmax(acoustic) == 5 and acoustic[5] == pytest.approx(1.41, abs=0.01)

    out = cli("show", str(run.pk))
    assert out.returncode == 0, out.stderr
    assert "WARNING" not in out.stdout and ", 0 imaginary modes" in out.stdout
    assert "TA splitting 25%) at the points it did not fit: met" in out.stdout
    budget = out.stdout[out.stdout.index("error budget at 300 K") :].splitlines()
    rows = {line.split()[0]: line for line in budget[1:]}
    assert {"value", "k", "sum-rule", "q", "direct", "cut-off", "functional", "total"} <= set(rows)
