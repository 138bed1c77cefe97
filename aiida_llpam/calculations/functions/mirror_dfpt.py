"""ph.x's dynamical matrices of the mirror image: the other enantiomer's DFPT from one ph.x run."""

from aiida import orm
from aiida.engine import calcfunction

from aiida_llpam.physics.dynmat import mirror_z

from .strip_dielectric import DYN_MAT


@calcfunction
def mirror_dfpt_z(retrieved: orm.FolderData) -> orm.FolderData:
    """The ``DYN_MAT`` files of a PhCalculation for the crystal mirrored z -> -z (``physics.dynmat.mirror_z``).

    A ``PamWorkChain`` given this as ``dfpt``, with the mirrored structure (``tools.structures.mirror_z``),
    runs q2r.x and the rest for the other enantiomer; ``tests/aiida/test_enantiomers.py`` checks on quartz
    that this equals ph.x run on the mirror image.
    """
    names = retrieved.base.repository.list_object_names(DYN_MAT)
    if not names:
        raise ValueError(f"{retrieved.__class__.__name__}<{retrieved.pk}> has no {DYN_MAT} folder: not a ph.x mesh run")
    folder = orm.FolderData()
    for name in names:
        text = retrieved.base.repository.get_object_content(f"{DYN_MAT}/{name}", mode="r")
        folder.base.repository.put_object_from_bytes(mirror_z(text).encode(), f"{DYN_MAT}/{name}")
    return folder
