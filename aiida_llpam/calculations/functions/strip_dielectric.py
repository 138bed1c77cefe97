"""Copy ph.x's dynamical matrices without the dielectric block, laid out as Q2rCalculation's parent."""

from aiida import orm
from aiida.engine import calcfunction

from aiida_llpam.physics.dynmat import has_dielectric_block, strip_dielectric_block

from .dyn_mat_folder import dyn_folder, read_dyn_files


def _is_dielectric_gamma_file(text: str) -> bool:
    # the "-0" file is the list of q points, not a dynamical matrix
    return text.lstrip().startswith("Dynamical matrix file") and has_dielectric_block(text)


@calcfunction
def strip_dielectric_block_from_folder(retrieved: orm.FolderData) -> orm.FolderData:
    """The ``DYN_MAT`` files of a PhCalculation, the Gamma file without eps/Z*.

    q2r.x run on these writes the full IFCs (no dipole subtraction), which is
    what phonopy's Gonze NAC needs.
    """
    files = read_dyn_files(retrieved)
    stripped = sum(_is_dielectric_gamma_file(text) for text in files.values())
    if stripped != 1:
        raise ValueError(f"expected exactly one dyn file with eps/Z* (the Gamma file), found {stripped}")
    return dyn_folder(files, lambda text: strip_dielectric_block(text) if _is_dielectric_gamma_file(text) else text)
