"""One ph.x job per irreducible q point (PhQpointsWorkChain) gives the single job's force constants (real QE, Si)."""

import numpy as np
import pytest

from tests.provenance import called, dyn_numbers

from .conftest import run_silicon

pytestmark = pytest.mark.qe


@pytest.fixture(scope="module")
def silicon_parallel_run(codes):
    """silicon_run's inputs with parallelize_qpoints: the q jobs run side by side in this process."""
    return run_silicon(codes, parallelize_qpoints=True)


def _n_qpoints(run):
    """The number of irreducible q points ph.x found on the mesh (its list, the "-0" file)."""
    folder = called(run, "ph").outputs.retrieved
    return int(folder.base.repository.get_object_content("DYN_MAT/dynamical-matrix-0", mode="r").split("\n")[1])


def test_each_irreducible_q_point_is_its_own_ph_job(silicon_parallel_run, silicon_run):
    from aiida import orm

    assert silicon_parallel_run.is_finished_ok, silicon_parallel_run.exit_message
    dfpt = called(silicon_parallel_run, "ph")
    assert dfpt.process_label == "PhQpointsWorkChain" and dfpt.is_finished_ok
    n_qpoints = called(dfpt, "ph_init").outputs.output_parameters["number_of_qpoints"]
    assert n_qpoints == _n_qpoints(silicon_run) > 2  # QE's list, as the single job computed it
    ph_jobs = [n for n in dfpt.called_descendants if isinstance(n, orm.CalcJobNode)]
    ranges = sorted(
        (job.inputs.parameters["INPUTPH"].get("start_q"), job.inputs.parameters["INPUTPH"].get("last_q"))
        for job in ph_jobs
        if job.inputs.parameters["INPUTPH"].get("start_irr") != 0
    )
    assert ranges == [(i, i) for i in range(1, n_qpoints + 1)]  # each q point once, nothing computed twice
    # the jobs overlapped in time: the last one started before the first one ended
    q_jobs = [called(called(dfpt, f"ph_q{i}"), "iteration_01") for i in range(1, n_qpoints + 1)]
    assert max(job.ctime for job in q_jobs) < min(job.mtime for job in q_jobs)
    # only the Gamma job has eps/Z*: QE drops epsil away from Gamma
    collected = dfpt.outputs.retrieved
    has_eps = {
        name: "Dielectric Tensor" in collected.base.repository.get_object_content(f"DYN_MAT/{name}", mode="r")
        for name in collected.base.repository.list_object_names("DYN_MAT")
        if not name.endswith("-0")
    }
    assert has_eps == {f"dynamical-matrix-{i}": i == 1 for i in range(1, n_qpoints + 1)}


def test_force_constants_equal_the_single_job(silicon_parallel_run, silicon_run):
    assert silicon_run.is_finished_ok and silicon_parallel_run.is_finished_ok
    single = called(silicon_run, "ph").outputs.retrieved
    collected = called(silicon_parallel_run, "ph").outputs.retrieved
    assert _n_qpoints(silicon_parallel_run) == _n_qpoints(silicon_run)
    single_numbers, collected_numbers = dyn_numbers(single), dyn_numbers(collected)
    assert sorted(single_numbers) == sorted(collected_numbers)
    for name in single_numbers:
        a, b = single_numbers[name], collected_numbers[name]
        assert a.shape == b.shape and a.size > 50
        # same scf, same ph.x inputs and MPI layout: the q points are independent DFPT problems
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-9, err_msg=name)
    fc_single = silicon_run.outputs.force_constants.force_constants
    fc_parallel = silicon_parallel_run.outputs.force_constants.force_constants
    scale = np.abs(fc_single).max()
    assert np.abs(fc_parallel - fc_single).max() < 1e-7 * scale
    born = [run.outputs.force_constants.born_charges for run in (silicon_run, silicon_parallel_run)]
    np.testing.assert_allclose(born[1], born[0], atol=1e-8)


def test_run_settings_follow_the_collected_folder_to_ph(silicon_parallel_run, silicon_run):
    from aiida_llpam.queries import dfpt_retrieved, dfpt_settings, dfpt_structure

    retrieved = dfpt_retrieved(silicon_parallel_run)
    assert retrieved.creator.process_label == "collect_dynamical_matrices"
    assert dfpt_settings(retrieved) == dfpt_settings(dfpt_retrieved(silicon_run))
    assert dfpt_settings(retrieved)["qpoints_mesh"] == [2, 2, 2]
    assert dfpt_structure(retrieved).uuid == silicon_parallel_run.outputs.structure.uuid


def test_collecting_refuses_an_incomplete_mesh(silicon_parallel_run):
    from aiida_llpam.calculations.functions.collect_dynamical_matrices import collect_dynamical_matrices

    dfpt = called(silicon_parallel_run, "ph")
    n_qpoints = _n_qpoints(silicon_parallel_run)
    folders = {f"q{i}": called(dfpt, f"ph_q{i}").outputs.retrieved for i in range(1, n_qpoints + 1)}
    with pytest.raises(ValueError, match=f"the mesh has {n_qpoints} irreducible q points, the jobs computed 2"):
        collect_dynamical_matrices(q1=folders["q1"], q2=folders["q2"])
    with pytest.raises(ValueError, match="job q2 wrote no dynamical-matrix-2"):
        collect_dynamical_matrices(q1=folders["q1"], q2=folders["q3"], q3=folders["q3"])


def test_per_q_inputs_refuse_a_q_list_and_preset_q_ranges(codes, silicon_run):
    from aiida import orm

    from aiida_llpam.workflows.ph_qpoints import PhQpointsWorkChain

    ph = called(silicon_run, "ph")
    inputs = {
        "ph": {
            "code": codes[1],
            "parent_folder": ph.inputs.ph.parent_folder,
            "parameters": orm.Dict({"INPUTPH": {"start_q": 2}}),
        }
    }
    mesh = orm.KpointsData()
    mesh.set_kpoints_mesh([2, 2, 2])
    listed = orm.KpointsData()
    listed.set_kpoints([[0.0, 0.0, 0.0]])
    validate = PhQpointsWorkChain.validate_inputs
    assert "start_q are set by PhQpointsWorkChain" in validate({**inputs, "qpoints": mesh}, None)
    inputs["ph"]["parameters"] = orm.Dict({"INPUTPH": {"tr2_ph": 1e-16}})
    assert "must be a mesh" in validate({**inputs, "qpoints": listed}, None)
    assert validate({**inputs, "qpoints": mesh}, None) is None


def test_progress_lists_every_q_job_as_done_with_its_irreps(silicon_parallel_run):
    """`aiida-llpam progress` on the real per-q-point run: one row per q job, each done with all the irreducible
    representations its own ph.x output lists."""
    import re

    from aiida_llpam.monitor import dfpt_progress

    dfpt = called(silicon_parallel_run, "ph")
    progress = dfpt_progress(silicon_parallel_run)
    assert [row.index for row in progress.rows] == list(range(1, _n_qpoints(silicon_parallel_run) + 1))
    for row in progress.rows:
        job = called(called(dfpt, f"ph_q{row.index}"), "iteration_01")
        text = job.outputs.retrieved.base.repository.get_object_content("aiida.out", mode="r")
        (n_irreps,) = {int(n) for n in re.findall(r"There are\s+(\d+) irreducible representations", text)}
        assert (row.state, row.irreps_done, row.n_irreps) == ("done", n_irreps, n_irreps)
        assert row.elapsed_s > 0


@pytest.fixture(scope="module")
def silicon_split_run(codes, silicon_run):
    """PhQpointsWorkChain with split_representations on silicon_run's scf and ph.x inputs, two representations per
    job, the jobs side by side in this process, one MPI process each: 16 jobs of two processes on two cores spent
    most of their time waiting for each other (296 s against 38 s for the single job)."""
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_llpam.workflows.ph_qpoints import PhQpointsWorkChain

    ph = called(silicon_run, "ph")
    calc = called(ph, "iteration_01")
    options = {key: calc.get_option(key) for key in ("withmpi", "max_wallclock_seconds")}
    options["resources"] = {"num_machines": 1, "num_mpiprocs_per_machine": 1}
    inputs = {
        "ph": {
            "code": ph.inputs.ph.code,
            "parameters": ph.inputs.ph.parameters,
            "parent_folder": ph.inputs.ph.parent_folder,
            "metadata": {"options": {key: value for key, value in options.items() if value is not None}},
        },
        "qpoints": ph.inputs.qpoints,
        "split_representations": orm.Bool(True),
        "representations_per_job": orm.Int(2),
    }
    _, node = run_get_node(PhQpointsWorkChain, **inputs)
    return node


def _ph_output(job) -> str:
    return job.outputs.retrieved.base.repository.get_object_content("aiida.out", mode="r")


def test_split_route_runs_each_group_of_representations_as_its_own_ph_job(silicon_split_run, silicon_run):
    import re

    from aiida import orm

    from aiida_llpam.calculations.ph_gather import PhGatherCalculation, piece_range

    assert silicon_split_run.is_finished_ok, silicon_split_run.exit_message
    n_qpoints = _n_qpoints(silicon_run)
    labels = {link.link_label: link.node for link in silicon_split_run.base.links.get_outgoing()}
    pieces = sorted((piece_range(label), node) for label, node in labels.items() if "_irr" in label)
    ph_jobs = set()
    for index in range(1, n_qpoints + 1):
        setup = called(called(silicon_split_run, f"q{index}_setup"), "iteration_01")
        (n_irreps,) = {int(n) for n in re.findall(r"There are\s+(\d+) irreducible representations", _ph_output(setup))}
        # the electric field is solved once, in Gamma's setup
        assert ("Electric Fields Calculation" in _ph_output(setup)) == (index == 1)
        ranges = [(first, last) for (iq, first, last), _ in pieces if iq == index]
        expected = [(first, min(first + 1, n_irreps)) for first in range(1, n_irreps + 1, 2)]
        assert ranges == expected  # every representation once, in groups of two
        for (iq, first, last), node in pieces:
            if iq != index:
                continue
            assert node.process_label == "PhBaseWorkChain" and node.is_finished_ok
            jobs = [n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)]
            assert len(jobs) == 1  # nothing failed: one ph.x run per piece
            inputph = jobs[0].inputs.parameters["INPUTPH"]
            assert (inputph["start_q"], inputph["last_q"], inputph["start_irr"], inputph["last_irr"]) == (
                index,
                index,
                first,
                last,
            )
            text = _ph_output(jobs[0])
            # the pieces reuse the setup's bands and eps/Z*, they only solve for their representations
            assert "Band Structure Calculation" not in text and "Electric Fields Calculation" not in text
            ph_jobs.add(jobs[0].pk)
        gather = called(silicon_split_run, f"q{index}_gather")
        assert isinstance(gather.process_class, type) and issubclass(gather.process_class, PhGatherCalculation)
        assert sorted(gather.inputs.pieces) == sorted(f"q{index}_irr{a}_{b}" for a, b in expected)
        assert PhGatherCalculation.computed_nothing(_ph_output(gather))  # all representations came from the pieces
    assert len(ph_jobs) == len(pieces)  # every piece its own ph.x CalcJob


def test_split_route_gives_the_single_jobs_dynamical_matrices(silicon_split_run, silicon_run):
    from aiida_llpam.physics.dynmat import read_dynamical_matrices

    assert silicon_split_run.is_finished_ok, silicon_split_run.exit_message
    single = called(silicon_run, "ph").outputs.retrieved
    split = silicon_split_run.outputs.retrieved
    names = single.base.repository.list_object_names("DYN_MAT")
    assert sorted(split.base.repository.list_object_names("DYN_MAT")) == sorted(names)  # the same folder for q2r.x

    def content(folder, name):
        return folder.base.repository.get_object_content(f"DYN_MAT/{name}", mode="r")

    assert content(split, "dynamical-matrix-0") == content(single, "dynamical-matrix-0")  # the same q list
    for name in names:
        if name.endswith("-0"):
            continue
        # matched by q point: ph.x may list the points of a star in another order
        a, b = (read_dynamical_matrices(content(folder, name)) for folder in (single, split))
        assert len(a.q_2pi_alat) == len(b.q_2pi_alat)
        scale = np.abs(a.phi_ry_bohr2).max()
        for q, phi in zip(a.q_2pi_alat, a.phi_ry_bohr2, strict=True):
            (match,) = np.flatnonzero(np.abs(b.q_2pi_alat - q).max(axis=1) < 1e-6)
            # the same DFPT problems solved to tr2_ph = 1e-16, with one process instead of the single job's two
            # (another distribution of the G vectors, another path to convergence): measured up to 3e-6 of the
            # largest element; a representation computed from a wrong pattern or start differs by its own size
            np.testing.assert_allclose(b.phi_ry_bohr2[match], phi, rtol=0, atol=2e-5 * scale, err_msg=name)
    # eps and Z*, in the Gamma file after its one matrix
    gamma = [dyn_numbers(folder)["dynamical-matrix-1"] for folder in (single, split)]
    np.testing.assert_allclose(gamma[1], gamma[0], rtol=0, atol=2e-5 * np.abs(gamma[0]).max())


def test_split_inputs_refuse_groups_of_no_representation(codes, silicon_run):
    from aiida import orm

    from aiida_llpam.workflows.ph_pieces import representation_groups
    from aiida_llpam.workflows.ph_qpoints import PhQpointsWorkChain

    ph = called(silicon_run, "ph")
    mesh = orm.KpointsData()
    mesh.set_kpoints_mesh([2, 2, 2])
    inputs = {
        "ph": {
            "code": codes[1],
            "parent_folder": ph.inputs.ph.parent_folder,
            "parameters": orm.Dict({"INPUTPH": {"tr2_ph": 1e-16}}),
        },
        "qpoints": mesh,
        "split_representations": orm.Bool(True),
    }
    validate = PhQpointsWorkChain.validate_inputs
    for per_job in (0, -2):
        message = validate({**inputs, "representations_per_job": orm.Int(per_job)}, None)
        assert message == f"representations_per_job: must be at least 1, not {per_job}"
    assert validate({**inputs, "representations_per_job": orm.Int(3)}, None) is None
    inputs["ph"]["parameters"] = orm.Dict({"INPUTPH": {"lqdir": True}})
    assert "lqdir are set by PhQpointsWorkChain" in validate(inputs, None)
    with pytest.raises(ValueError, match="at least 1"):
        representation_groups(5, 0)
    assert representation_groups(5, 2) == [(1, 2), (3, 4), (5, 5)]


def test_pam_workchain_splits_only_the_per_q_route(bare_profile):
    from aiida import orm

    from aiida_llpam.workflows.pam_inputs import validate_inputs

    serial = {"parallelize_qpoints": orm.Bool(False), "representations_per_job": orm.Int(2)}
    assert "set parallelize_qpoints too" in validate_inputs(serial, None)
    empty = {"parallelize_qpoints": orm.Bool(True), "representations_per_job": orm.Int(0)}
    assert validate_inputs(empty, None) == "representations_per_job: must be at least 1, not 0"
