"""Copy ph.x's dynamical matrices without the dielectric block, laid out as Q2rCalculation's parent."""

from aiida import orm
from aiida.engine import calcfunction

from aiida_llpam.physics.dynmat import has_dielectric_block, strip_dielectric_block

DYN_MAT = "DYN_MAT"  # PhCalculation._FOLDER_DYNAMICAL_MATRIX, which Q2rCalculation copies from a FolderData


@calcfunction
def strip_dielectric_block_from_folder(retrieved: orm.FolderData) -> orm.FolderData:
    """The ``DYN_MAT`` files of a PhCalculation, the Gamma file without eps/Z*.

    q2r.x run on these writes the full IFCs (no dipole subtraction), which is
    what phonopy's Gonze NAC needs.
    """
    names = retrieved.base.repository.list_object_names(DYN_MAT)
    folder = orm.FolderData()
    stripped = 0
    for name in names:
        text = retrieved.base.repository.get_object_content(f"{DYN_MAT}/{name}", mode="r")
        # the "-0" file is the list of q points, not a dynamical matrix
        if text.lstrip().startswith("Dynamical matrix file") and has_dielectric_block(text):
            text = strip_dielectric_block(text)
            stripped += 1
        folder.base.repository.put_object_from_bytes(text.encode(), f"{DYN_MAT}/{name}")
    if stripped != 1:
        raise ValueError(f"expected exactly one dyn file with eps/Z* (the Gamma file), found {stripped}")
    return folder
