"""The interpolated model against ph.x run directly, with real QE on diamond Si (smoke settings, q 2x2x2).

A q point on the DFPT mesh must come back as the DFPT's own matrix (the same scf, the same ph.x settings): the
model reproduces it to ph.x's convergence. A q point off the mesh measures the interpolation. Both go through
PamWorkChain's ``validation_qpoints`` (DirectDfptWorkChain from the run's own scf).
"""

import numpy as np
import pytest

from .conftest import REPO

pytestmark = pytest.mark.qe

ON_MESH, OFF_MESH = [0.5, 0.0, 0.0], [0.25, 0.0, 0.0]


@pytest.fixture(scope="module")
def checked_run(codes):
    from aiida import orm
    from aiida.engine import run_get_node
    from ase.io import read

    from aiida_llpam.workflows.pam import PamWorkChain

    structure = orm.StructureData(ase=read(REPO / "fixtures" / "structures" / "Si_diamond.cif"))
    builder = PamWorkChain.get_builder_from_protocol(
        *codes, structure, protocol="smoke", overrides={"ph_main": {"qpoints": [2, 2, 2]}}
    )
    builder.validation_qpoints = orm.List([ON_MESH, OFF_MESH])
    _, node = run_get_node(builder)
    return node


def test_the_check_runs_from_the_runs_own_scf(checked_run):
    from aiida_llpam.queries import direct_dfpt_checks

    assert checked_run.is_finished_ok, checked_run.exit_message
    direct = [c for c in checked_run.called if c.process_label == "DirectDfptWorkChain"]
    assert len(direct) == 1 and "scf" not in direct[0].inputs  # no second scf: the run's own remote folder
    jobs = [c for c in direct[0].called if c.process_label == "PhBaseWorkChain"]
    assert len(jobs) == 2 and all(job.is_finished_ok for job in jobs)
    # one job per q point, each with ldisp off
    assert all(not job.called[0].inputs.parameters.get_dict()["INPUTPH"].get("ldisp", False) for job in jobs)
    assert [check.pk for check in direct_dfpt_checks(checked_run)] == [checked_run.outputs.direct_dfpt.table.creator.pk]


def test_a_mesh_point_comes_back_as_the_dfpt_matrix(checked_run):
    table = {
        name: checked_run.outputs.direct_dfpt.table.get_array(name)
        for name in ("qpoints", "model_frequencies_cm", "raw_frequencies_cm")
    }
    np.testing.assert_allclose(table["qpoints"][0], ON_MESH, atol=1e-8)
    # the same scf and ph.x settings: the raw direct matrix is the DFPT's, which the model keeps (ph.x noise ~1e-2)
    np.testing.assert_allclose(table["raw_frequencies_cm"][0], table["model_frequencies_cm"][0], atol=0.05)


def test_off_the_mesh_the_interpolation_is_measured(checked_run):
    names = ("model_frequencies_cm", "direct_frequencies_cm", "raw_frequencies_cm", "model_l_z")
    table = {name: checked_run.outputs.direct_dfpt.table.get_array(name) for name in names}
    summary = checked_run.outputs.direct_dfpt.summary.get_dict()
    deviation = np.abs(table["model_frequencies_cm"][1] - table["direct_frequencies_cm"][1])
    assert summary["per_q_max_deviation_cm"][1] == pytest.approx(deviation.max(), rel=1e-12, abs=1e-12)
    # between the DFPT points the model is interpolation: it misses ph.x by far more than at a mesh point
    off, on = (np.abs(table["model_frequencies_cm"][i] - table["raw_frequencies_cm"][i]).max() for i in (1, 0))
    assert off > 0.1 and off > 10 * on
    # Si is centrosymmetric: l^z vanishes (the sum over the branches at a point of the line)
    np.testing.assert_allclose(table["model_l_z"][1].sum(), 0.0, atol=1e-6)


def test_a_builder_from_the_run_gives_each_ph_job_its_share_of_the_cores(checked_run, codes):
    from aiida_llpam.queries import dfpt_ph_calculation, dfpt_retrieved
    from aiida_llpam.workflows.direct_dfpt import DirectDfptWorkChain

    pw, ph = codes[0], codes[1]
    dfpt_ph = dfpt_ph_calculation(dfpt_retrieved(checked_run))
    default = DirectDfptWorkChain.get_builder_from_run(checked_run, pw, ph, qpoints=[OFF_MESH])
    assert default.ph.ph.metadata.options.resources == dfpt_ph.get_options()["resources"]
    shared = DirectDfptWorkChain.get_builder_from_run(checked_run, pw, ph, qpoints=[OFF_MESH], ph_mpiprocs=1)
    assert shared.ph.ph.metadata.options.resources == {"num_machines": 1, "num_mpiprocs_per_machine": 1}
    assert shared.ph.ph.metadata.options.max_wallclock_seconds == dfpt_ph.get_options()["max_wallclock_seconds"]
    # the scf keeps the DFPT's own resources: it runs alone, before the q points
    assert shared.scf.pw.metadata.options.resources == default.scf.pw.metadata.options.resources


def test_a_denser_mesh_takes_the_direct_runs_and_names_what_it_lacks(checked_run):
    """Si q 2x2x2 -> 4x4x4: the DFPT's stars, the direct run at 0.25 and a duplicate of a mesh star (ON_MESH); the
    points still missing are named, with the command that runs them, before anything is stored."""
    from aiida import orm

    from aiida_llpam.cli.redo import denser_mesh_cover, run_from_dfpt, single_q_folders
    from aiida_llpam.queries import dfpt_retrieved

    direct = [c for c in checked_run.called if c.process_label == "DirectDfptWorkChain"][0]
    folders = single_q_folders([direct.pk])
    assert len(folders) == 2
    retrieved = dfpt_retrieved(checked_run)
    n_dfpt = len(retrieved.base.repository.list_object_names("DYN_MAT")) - 1
    cover, missing = denser_mesh_cover(retrieved, [4, 4, 4], folders)
    on_mesh, off_mesh = sorted(folders, key=lambda label: int(label[1:]))  # the order of validation_qpoints
    assert cover.duplicates == [n_dfpt] and cover.off_mesh == []  # ON_MESH's star is the DFPT's own
    assert cover.chosen[0] == 0 and sorted(cover.chosen) == [*range(n_dfpt), n_dfpt + 1]
    # 64 points: 8 on the 2x2x2 mesh, the star of 0.25 (and of -0.25) from the direct run, the rest missing
    star = len(read_dyn_star(folders[off_mesh]))
    assert len(cover.missing) == 64 - 8 - star > 0
    # every point named is one still missing, each class of the crystal's symmetry once
    missing_addresses = {tuple(a) for a in cover.missing}
    assert all(tuple(np.rint(np.mod(q, 1) * 4).astype(int) % 4) in missing_addresses for q in missing)
    # Si 4x4x4 has 8 classes, 2x2x2's 3 are covered; pw.x keeps fewer symmetries than spglib here (the FFT grid),
    # so ph.x's star of 0.25 is part of its class, whose rest is named again
    assert 1 <= len(missing) <= 8 - 3
    nodes = orm.QueryBuilder().append(orm.Node).count()
    refusal = (
        rf"lacks {len(missing)} stars \(\d+ of its points\): .*workflows/run_direct_dfpt\.py {checked_run.pk} --qpoint"
    )
    with pytest.raises(SystemExit, match=refusal):
        run_from_dfpt(str(checked_run.pk), protocol="smoke", qmesh=[4, 4, 4], direct=[direct.pk])
    assert orm.QueryBuilder().append(orm.Node).count() == nodes


def read_dyn_star(folder) -> np.ndarray:
    """The q points (2 pi/alat) of a single-q run's dyn file."""
    from aiida_llpam.calculations.functions.dyn_mat_folder import only_dyn_file

    return only_dyn_file(folder).q_2pi_alat
