"""A ``DYN_MAT`` folder on a denser q mesh, from a finished DFPT and single-q ph.x runs at the stars it lacks."""

from aiida import orm
from aiida.engine import calcfunction

from aiida_llpam.physics.dynmat import read_dynamical_matrices
from aiida_llpam.physics.mesh_cover import cover_mesh

from .dyn_mat_folder import PREFIX, dyn_folder, qpoint_labels, read_dyn_files


def dyn_texts(dfpt: orm.FolderData, direct: dict[str, orm.FolderData]) -> dict[str, str]:
    """{name: text} of the dyn files of a mesh run's folder (``-1`` onwards), then of each single-q run ``q<i>``,
    in that order; the names say where each file is (for messages)."""
    files = read_dyn_files(dfpt)
    texts = {
        f"{name} of FolderData<{dfpt.pk}>": files[name]
        for name in (f"{PREFIX}{i}" for i in range(1, len(files)))
        if name in files
    }
    for label in qpoint_labels(direct):
        for name, text in read_dyn_files(direct[label]).items():
            texts[f"{name} of {label} (FolderData<{direct[label].pk}>)"] = text
    return texts


@calcfunction
def assemble_dynamical_matrices(qpoints: orm.KpointsData, dfpt: orm.FolderData, **direct: orm.FolderData):
    """The dyn files of ``dfpt`` (a mesh run's retrieved folder) and of the single-q runs ``q1``, ``q2``, ... whose
    stars make the mesh of ``qpoints``, with Gamma's first and a ``-0`` file listing the mesh, as q2r.x reads it.

    The files must come from ph.x runs on one scf (same header). Where a star is in more than one file, the first
    is kept (``dfpt``'s before the single-q runs); files with q off the mesh are left out. ValueError where the
    files do not cover the mesh (:func:`aiida_llpam.physics.mesh_cover.cover_mesh`).
    """
    mesh = qpoints.get_kpoints_mesh()[0]
    named = dyn_texts(dfpt, direct)
    texts = list(named.values())
    files = [read_dynamical_matrices(text) for text in texts]
    cover = cover_mesh(mesh, files, list(named))
    if not cover.complete:
        raise ValueError(f"the dyn files leave {len(cover.missing)} of the {mesh} mesh's q points uncovered")
    first_q = [files[i].q_2pi_alat[0] for i in cover.chosen]
    listing = "".join(f"{n:4d}" for n in mesh) + f"\n{len(cover.chosen):4d}\n"
    listing += "".join("".join(f"{x:24.15E}" for x in q) + "\n" for q in first_q)
    collected = {f"{PREFIX}{new}": texts[old] for new, old in enumerate(cover.chosen, start=1)}
    return dyn_folder({f"{PREFIX}0": listing, **collected})
