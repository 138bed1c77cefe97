"""One ``DYN_MAT`` folder from the ph.x jobs of the per-q-point DFPT (``PhQpointsWorkChain``), as one job writes it."""

from aiida import orm
from aiida.engine import calcfunction

from .dyn_mat_folder import PREFIX, dyn_folder, read_dyn_files


@calcfunction
def collect_dynamical_matrices(**retrieved: orm.FolderData) -> orm.FolderData:
    """``dynamical-matrix-<i>`` of each job ``q<i>`` (keyword = ``q`` + QE's q index) and the list of q points ``-0``.

    Every job lists the q points of the whole mesh in its ``-0`` file: they must agree, and the jobs must
    cover that list exactly once, or q2r.x would build the force constants from a partial or mixed mesh.
    """
    listing, collected = None, {}
    for key in sorted(retrieved, key=lambda k: int(k[1:])):
        index = int(key[1:])
        files = read_dyn_files(retrieved[key])
        missing = [name for name in (f"{PREFIX}0", f"{PREFIX}{index}") if name not in files]
        if missing:
            raise ValueError(f"job {key} wrote no {', '.join(missing)}: it did not finish q point {index}")
        if listing is None:
            listing = files[f"{PREFIX}0"]
        elif files[f"{PREFIX}0"] != listing:
            raise ValueError(f"job {key} lists other q points than job q1: the jobs ran on different meshes")
        collected[f"{PREFIX}{index}"] = files[f"{PREFIX}{index}"]
    n_qpoints = int(listing.split("\n")[1])
    expected = {f"{PREFIX}{i}" for i in range(1, n_qpoints + 1)}
    if set(collected) != expected:
        raise ValueError(f"the mesh has {n_qpoints} irreducible q points, the jobs computed {len(collected)}")
    return dyn_folder({f"{PREFIX}0": listing, **collected})
