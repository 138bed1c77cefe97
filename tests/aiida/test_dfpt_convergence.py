"""DfptConvergenceWorkChain: input checks, and a real run on the reference archive's ph.x files (no ph.x rerun).

The archive fixtures/reference/quartz_fast.aiida holds a finished fast-protocol DFPT (30/240 Ry, k 2x2x2,
q 2x2x2); it is imported into the test profile so that the workchain can reuse it with the real q2r.x.
"""

from pathlib import Path

import numpy as np
import pytest

from .conftest import REPO

pytestmark = pytest.mark.qe  # q2r.x and the response job run for real (about a minute in all)

ARCHIVE = REPO / "fixtures" / "reference" / "quartz_fast.aiida"
#: small k meshes: the sums differ from the production ones, the bookkeeping is the same
RESPONSE = {
    "mesh": [6, 6, 6],
    "convergence_meshes": [[8, 8, 8]],
    "temperatures_k": {"start": 50.0, "stop": 600.0, "num": 12, "extra": [300.0]},
    "radii_nm": {"start": 0.01, "stop": 100.0, "num": 9, "extra": [20.0]},
}
#: the fast protocol's DFPT with a short band path for the figure data
FAST = {"figures": {"path_points_per_segment": 6}}


@pytest.fixture(scope="module")
def archive_run(llpam_profile):
    """The (latest) PamWorkChain of the reference archive, imported into the test profile: it may hold the run that
    made the DFPT and one that redid the force constants from it (``dfpt``); both lead to the same ph.x files."""
    from aiida import orm
    from aiida.tools.archive import import_archive

    group, _ = orm.Group.collection.get_or_create("test_dfpt_convergence/quartz_fast")
    import_archive(ARCHIVE, group=group)
    runs = [
        n for n in group.nodes if isinstance(n, orm.WorkChainNode) and n.process_type == "aiida.workflows:llpam.pam"
    ]
    return max((n for n in runs if n.is_finished_ok), key=lambda n: n.ctime)


def _builder(codes, structure, variations, reuse=None, response=RESPONSE):
    from aiida import orm

    from aiida_llpam.workflows.convergence import DfptConvergenceWorkChain

    builder = DfptConvergenceWorkChain.get_builder()
    builder.pw_code, builder.ph_code, builder.q2r_code = codes
    builder.structure = structure
    builder.protocol = orm.Str("fast")
    builder.variations = orm.Dict(variations)
    if response is not None:
        builder.response = orm.Dict(response)
    for label, (structure_of, retrieved) in (reuse or {}).items():
        builder.reuse[label] = retrieved
        builder.reuse_structures[label] = structure_of
    return builder


def _validation_error(builder) -> str:
    from aiida_llpam.workflows.convergence import DfptConvergenceWorkChain

    error = DfptConvergenceWorkChain.spec().inputs.validate(builder._inputs(prune=True))  # noqa: SLF001
    return "" if error is None else str(error)


def _dfpt(node):
    from aiida_llpam.queries import dfpt_retrieved

    return node.outputs.structure, dfpt_retrieved(node)


@pytest.mark.parametrize(
    "variations, message",
    [
        ({"k333": {"kpoint": [3, 3, 3]}}, "variations.k333: unknown protocol key(s) kpoint"),
        ({"k333": [3, 3, 3]}, "variations.k333: must be a dict of protocol overrides"),
        ({}, "variations: give at least one label"),
        ({"k": {"response": {"mesh": [4, 4, 4]}}}, "variations.k: sets `response`"),
    ],
)
def test_bad_variations_are_rejected_with_the_label(codes, quartz_structure, variations, message):
    assert message in _validation_error(_builder(codes, quartz_structure, variations))


def test_reused_dfpt_must_match_its_variation(codes, quartz_structure, archive_run):
    reuse = {"k333": _dfpt(archive_run)}
    error = _validation_error(_builder(codes, quartz_structure, {"k333": {"kpoints": [3, 3, 3]}}, reuse))
    assert (
        "reuse.k333: the ph.x run has" in error
        and "'kpoints_mesh': [2, 2, 2]" in error
        and "'kpoints_mesh': [3, 3, 3]" in error
    )
    error = _validation_error(_builder(codes, quartz_structure, {"fast": FAST}, {"other": _dfpt(archive_run)}))
    assert "reuse.other: no variation of that label" in error
    assert (
        _validation_error(_builder(codes, quartz_structure, {"fast": FAST}, reuse={"fast": _dfpt(archive_run)})) == ""
    )


@pytest.fixture(scope="module")
def convergence_run(codes, quartz_structure, archive_run):
    """Two points on the archive's DFPT: "fast" (its own structure) and "wrong_cell" (the unrelaxed cif, which
    the force constants do not describe: that PamWorkChain fails, the table keeps "fast")."""
    from aiida.engine import run_get_node

    dfpt_structure, retrieved = _dfpt(archive_run)
    reuse = {"fast": (dfpt_structure, retrieved), "wrong_cell": (quartz_structure, retrieved)}
    builder = _builder(codes, quartz_structure, {"fast": FAST, "wrong_cell": FAST}, reuse)
    _, node = run_get_node(builder)
    return node


def test_a_failed_point_is_named_and_the_others_are_kept(convergence_run):
    from aiida_llpam.workflows.convergence import DfptConvergenceWorkChain

    exit_code = DfptConvergenceWorkChain.exit_codes.ERROR_SOME_POINTS_FAILED
    assert convergence_run.exit_status == exit_code.status
    assert "wrong_cell" in convergence_run.exit_message and "fast" not in convergence_run.exit_message
    assert convergence_run.outputs.table.base.attributes.get("labels") == ["fast"]


def test_table_holds_the_settings_and_sums_of_the_point(convergence_run, archive_run):
    from aiida import orm

    from aiida_llpam.calculations.nodes import read_output

    table = read_output(convergence_run.outputs.table)
    child = orm.load_node(table["workchains"][0])
    assert child.inputs.dfpt.uuid == _dfpt(archive_run)[1].uuid
    assert table["ecutwfc_ry"].tolist() == [30.0] and table["ecutrho_ry"].tolist() == [240.0]
    assert table["kpoints_mesh"].tolist() == [[2, 2, 2]] and table["qpoints_mesh"].tolist() == [[2, 2, 2]]
    assert table["dfpt_reused"].tolist() == [1.0]
    assert table["response_mesh"].tolist() == [[8, 8, 8]]
    # the row is the child's stored result at the T nearest the reference temperature, not a recomputation
    temperatures = child.outputs.chi.get_array("temperatures_k")
    it = int(np.argmin(np.abs(temperatures - 300.0)))
    assert table["temperature_k"][0] == pytest.approx(300.0)
    # SI values of ~1e-17: abs=0, since approx's default abs=1e-12 would accept anything
    assert table["gamma_nl_zz"][0] == pytest.approx(
        read_output(child.outputs.gamma_nl)["gamma_nl_zz"][it], rel=1e-12, abs=0
    )
    for name in ("chi_diagonal", "chi_offdiagonal_interband", "chi_offdiagonal_pair"):
        assert table[name][0] == pytest.approx(child.outputs.chi.get_array(name)[it], rel=1e-12, abs=0), name
    # two meshes summed (6^3, 8^3): a finite uncertainty, which on such coarse meshes is not zero
    assert np.all(np.isfinite(table["gamma_nl_zz_kmesh_uncertainty"])) and table["gamma_nl_zz_kmesh_uncertainty"][0] > 0
    assert 0 < table["wall_time_s"][0] < 600


def test_gamma_frequencies_are_quartz_tos(convergence_run):
    """27 branches; the acoustic triplet at zero (sum rules); the lowest optical E mode near 128 cm^-1 (expt)."""
    from aiida_llpam.calculations.nodes import read_output

    table = read_output(convergence_run.outputs.table)
    freqs = table["gamma_frequencies_cm"][0]
    assert freqs.shape == (27,)
    assert np.all(np.abs(freqs[:3]) < 1.0)
    assert 115.0 < freqs[3] < 145.0 and freqs[4] == pytest.approx(freqs[3], abs=0.1)  # doubly degenerate E
    assert 1000.0 < freqs[-1] < 1300.0
    assert table["near_gamma_lowest_frequency_cm"][0] > -20.0
    # the raw DFPT before any sum rule breaks the ASR at Gamma (the fast archive: about 10 cm^-1, measured by hand)
    violation = table["gamma_asr_violation_cm"][0]
    assert violation.shape == (3,) and np.all(np.isfinite(violation)) and np.abs(violation).max() > 1.0


def test_cell_and_sound_velocities_are_those_of_the_point(convergence_run):
    """The point's cell (the fast archive's vc-relaxed one) and its ``acoustic`` velocities, row by row."""
    from aiida import orm

    from aiida_llpam.calculations.nodes import read_output

    table = read_output(convergence_run.outputs.table)
    child = orm.load_node(table["workchains"][0])
    a, b, c = table["cell_lengths_angstrom"][0]
    # the fast archive's vc-relax (fixtures/reference/README.md): a = 4.8468 A, c = 5.3684 A
    assert (
        a == pytest.approx(4.8468, abs=5e-4)
        and b == pytest.approx(a, abs=1e-6)
        and c == pytest.approx(5.3684, abs=5e-4)
    )
    velocities = table["sound_velocities_m_s"][0]
    assert velocities.shape == (3, 3)
    np.testing.assert_allclose(
        velocities, read_output(child.outputs.acoustic)["sound_velocities_m_s"], rtol=1e-12, atol=0
    )
    # along c: TA pair near 3.7-4.0 km/s, LA near 6.3 km/s (the archive's show, README)
    assert 3.0e3 < velocities[0, 0] < velocities[0, 1] < 4.5e3 < 5.8e3 < velocities[0, 2] < 6.8e3


def test_printed_table_carries_cell_and_velocities(convergence_run, capsys):
    from aiida_llpam.cli.convergence import print_table

    print_table(convergence_run.outputs.table)
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("fast") and " a " in line)
    assert "a 4.846" in line and "c 5.368" in line and "z 3.69/3.98/6.26" in line


def test_figures_are_drawn_from_the_stored_arrays(convergence_run, tmp_path):
    from aiida import orm

    from aiida_llpam.calculations.nodes import read_output
    from aiida_llpam.plotting.convergence import plot_dfpt_convergence
    from aiida_llpam.plotting.panels import plot_kmesh_convergence

    table = read_output(convergence_run.outputs.table)
    child = orm.load_node(table["workchains"][0])
    for path in (
        plot_dfpt_convergence(table, tmp_path / "dfpt.png"),
        plot_kmesh_convergence(read_output(child.outputs.convergence), tmp_path / "kmesh.png"),
    ):
        assert isinstance(path, Path) and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
