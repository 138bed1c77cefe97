"""A denser q mesh from a coarse DFPT and single-q ph.x runs at the stars it lacks gives the force constants of
ph.x run on that mesh (real QE, diamond Si, smoke settings: q 2x2x2 -> 4x4x4)."""

import numpy as np
import pytest

from .conftest import REPO

pytestmark = [pytest.mark.qe, pytest.mark.extended]


def _run_on_mesh(codes, mesh):
    from aiida import orm
    from aiida.engine import run_get_node
    from ase.io import read

    from aiida_llpam.workflows.pam import PamWorkChain

    structure = orm.StructureData(ase=read(REPO / "fixtures" / "structures" / "Si_diamond.cif"))
    builder = PamWorkChain.get_builder_from_protocol(
        *codes, structure, protocol="smoke", overrides={"ph_main": {"qpoints": mesh}}
    )
    _, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    return node


def test_assembled_mesh_gives_the_mesh_runs_force_constants(codes, silicon_run):
    from aiida.engine import run_get_node

    from aiida_llpam.cli.redo import denser_mesh_cover, run_from_dfpt, single_q_folders
    from aiida_llpam.queries import dfpt_retrieved, dfpt_settings, dfpt_wall_time_s
    from aiida_llpam.workflows.direct_dfpt import DirectDfptWorkChain

    mesh = [4, 4, 4]
    direct = []
    for _ in range(3):  # pw.x may keep fewer symmetries than spglib: a class can take a second round
        _, missing = denser_mesh_cover(dfpt_retrieved(silicon_run), mesh, single_q_folders(direct))
        if not len(missing):
            break
        builder = DirectDfptWorkChain.get_builder_from_run(silicon_run, *codes[:2], qpoints=missing.tolist())
        _, node = run_get_node(builder)
        assert node.is_finished_ok, node.exit_message
        direct.append(node.pk)
    assembled = run_from_dfpt(str(silicon_run.pk), protocol="smoke", qmesh=mesh, direct=direct)
    reference = _run_on_mesh(codes, mesh)

    retrieved = dfpt_retrieved(assembled)
    assert retrieved.creator.process_label == "assemble_dynamical_matrices"
    assert dfpt_settings(retrieved)["qpoints_mesh"] == mesh
    assert dfpt_wall_time_s(retrieved) > dfpt_wall_time_s(dfpt_retrieved(silicon_run))
    ours = assembled.outputs.force_constants.force_constants
    theirs = reference.outputs.force_constants.force_constants
    assert ours.shape == theirs.shape
    scale = np.abs(theirs).max()  # eV/A^2
    # two scf runs and ph.x's own convergence (tr2_ph) apart: the same force constants to ph.x's noise
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(
        assembled.outputs.force_constants.born_charges, reference.outputs.force_constants.born_charges, atol=1e-4
    )
