"""A DYN_MAT folder assembled from stored dyn files is one q2r.x reads as the original run's (real q2r.x, the quartz
q 2x2x2 fixture); what it cannot cover is refused."""

import shutil
import subprocess

import numpy as np
import pytest

from aiida_llpam.physics.q2r import read_q2r

from ..physics.conftest import QUARTZ


def _folder(names: dict[str, str]):
    from aiida import orm

    folder = orm.FolderData()
    for name, source in names.items():
        folder.base.repository.put_object_from_bytes((QUARTZ / source).read_bytes(), f"DYN_MAT/{name}")
    return folder.store()


def _mesh(mesh):
    from aiida import orm

    qpoints = orm.KpointsData()
    qpoints.set_kpoints_mesh(mesh)
    return qpoints


@pytest.mark.skipif(shutil.which("q2r.x") is None, reason="needs QE's q2r.x")
def test_assembled_folder_gives_the_runs_force_constants(bare_profile, tmp_path):
    from aiida_llpam.calculations.functions.assemble_dynamical_matrices import assemble_dynamical_matrices

    # the "coarse run" holds Gamma and one star; two "single-q runs" hold the others, one of them twice
    coarse = _folder(
        {"dynamical-matrix-0": "quartz.dyn0", "dynamical-matrix-1": "quartz.dyn1", "dynamical-matrix-2": "quartz.dyn3"}
    )
    single = {
        f"q{i}": _folder({"dynamical-matrix": source})
        for i, source in enumerate(["quartz.dyn4", "quartz.dyn2", "quartz.dyn3"], start=1)
    }
    assembled = assemble_dynamical_matrices(_mesh([2, 2, 2]), coarse, **single)
    names = sorted(assembled.base.repository.list_object_names("DYN_MAT"))
    assert names == [f"dynamical-matrix-{i}" for i in range(5)]
    listing = assembled.base.repository.get_object_content("DYN_MAT/dynamical-matrix-0", mode="r").split("\n")
    assert listing[0].split() == ["2", "2", "2"] and int(listing[1]) == 4
    assert "Dielectric Tensor" in assembled.base.repository.get_object_content("DYN_MAT/dynamical-matrix-1", mode="r")
    for name in names:
        (tmp_path / f"quartz.dyn{name.rsplit('-', 1)[1]}").write_text(
            assembled.base.repository.get_object_content(f"DYN_MAT/{name}", mode="r")
        )
    shutil.copy(QUARTZ / "q2r_rigid.in", tmp_path)
    subprocess.run("q2r.x < q2r_rigid.in > q2r.out", shell=True, cwd=tmp_path, check=True)
    ours, theirs = read_q2r(tmp_path / "quartz_rigid.fc"), read_q2r(QUARTZ / "quartz_rigid.fc")
    scale = np.abs(theirs.ifc_ry_bohr2).max()  # Ry/bohr^2
    np.testing.assert_allclose(ours.ifc_ry_bohr2, theirs.ifc_ry_bohr2, rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(ours.born_charges, theirs.born_charges, rtol=0, atol=1e-9)  # e, order 1


def test_an_uncovered_mesh_is_refused(bare_profile):
    from aiida_llpam.calculations.functions.assemble_dynamical_matrices import assemble_dynamical_matrices

    coarse = _folder(
        {"dynamical-matrix-0": "quartz.dyn0", "dynamical-matrix-1": "quartz.dyn1", "dynamical-matrix-2": "quartz.dyn2"}
    )
    with pytest.raises(ValueError, match="leave 3 of the"):
        assemble_dynamical_matrices(_mesh([2, 2, 2]), coarse, q1=_folder({"dynamical-matrix": "quartz.dyn3"}))


def test_a_file_of_another_crystal_is_named(bare_profile):
    from aiida import orm

    from aiida_llpam.calculations.functions.assemble_dynamical_matrices import assemble_dynamical_matrices

    coarse = _folder({"dynamical-matrix-0": "quartz.dyn0", "dynamical-matrix-1": "quartz.dyn1"})
    text = (QUARTZ / "quartz.dyn3").read_text()
    assert text.count("8.8793844") == 1  # alat (bohr) in the header
    other = orm.FolderData()
    other.base.repository.put_object_from_bytes(text.replace("8.8793844", "8.9793844").encode(), "DYN_MAT/dyn")
    other.store()
    with pytest.raises(ValueError, match=rf"dyn of q1 \(FolderData<{other.pk}>\) describes another crystal"):
        assemble_dynamical_matrices(_mesh([2, 2, 2]), coarse, q1=other)
