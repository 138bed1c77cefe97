"""The supercell forces of a LifetimesWorkChain against the same supercells on a denser k mesh."""

import numpy as np
from aiida import orm
from aiida.engine import ExitCode, calcfunction

from aiida_llpam.calculations.rta_job import REFERENCE
from aiida_llpam.physics.third_order import force_mesh_differences, opposite_pairs


@calcfunction
def supercell_kpoints_check(dataset: orm.Dict, **forces: orm.TrajectoryData) -> orm.Dict:
    """``forces``: ``coarse_<label>`` and ``dense_<label>`` (pw.x ``output_trajectory``, eV/Angstrom) of the same
    random snapshots of ``dataset`` (phono3py's, Angstrom) and, where the run had it, of the undisplaced supercell
    (subtracted on each mesh). Returns the labels, the snapshot pairs and
    :func:`~aiida_llpam.physics.third_order.force_mesh_differences`; a label on one mesh only is refused (300)."""
    coarse = {key.removeprefix("coarse_"): node for key, node in forces.items() if key.startswith("coarse_")}
    dense = {key.removeprefix("dense_"): node for key, node in forces.items() if key.startswith("dense_")}
    if sorted(coarse) != sorted(dense) or len(coarse) + len(dense) != len(forces):
        return ExitCode(300, f"forces: coarse {sorted(coarse)} and dense {sorted(dense)} are not the same supercells")
    labels = sorted(label for label in coarse if label != REFERENCE)

    def table(nodes):
        values = np.array([nodes[label].get_array("forces")[-1] for label in labels])
        return values - nodes[REFERENCE].get_array("forces")[-1] if REFERENCE in nodes else values

    displacements = np.asarray(dataset["displacements"], dtype=float)
    pairs = opposite_pairs(displacements[[int(label.split("_")[-1]) - 1 for label in labels]])
    result = force_mesh_differences(table(coarse), table(dense), pairs)
    return orm.Dict({"labels": labels, "pairs": [list(pair) for pair in pairs], **result})
