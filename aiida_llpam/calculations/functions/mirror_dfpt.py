"""ph.x's dynamical matrices of the mirror image: the other enantiomer's DFPT from one ph.x run."""

from aiida import orm
from aiida.engine import calcfunction

from aiida_llpam.physics.dynmat import mirror_z

from .dyn_mat_folder import dyn_folder, read_dyn_files


@calcfunction
def mirror_dfpt_z(retrieved: orm.FolderData) -> orm.FolderData:
    """The ``DYN_MAT`` files of a PhCalculation for the crystal mirrored z -> -z (``physics.dynmat.mirror_z``).

    A ``PamWorkChain`` given this as ``dfpt``, with the mirrored structure (``structures.mirror_z``),
    runs q2r.x and the rest for the other enantiomer; ``tests/aiida/test_enantiomers.py`` checks on quartz
    that this equals ph.x run on the mirror image.
    """
    return dyn_folder(read_dyn_files(retrieved), mirror_z)
