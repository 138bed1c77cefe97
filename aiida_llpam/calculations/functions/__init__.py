"""One calcfunction per module."""

from .crystal_symmetry import crystal_symmetry
from .direct_dfpt_check import direct_dfpt_check
from .fc3_comparison import fc3_comparison
from .kappa_comparison import kappa_comparison
from .lifetimes_from_kappa import lifetimes_from_kappa
from .mirror_dfpt import mirror_dfpt_z
from .pam_figure_data import pam_figure_data
from .phonopy_force_constants import phonopy_force_constants
from .strip_dielectric import strip_dielectric_block_from_folder
from .supercell_kpoints_check import supercell_kpoints_check

__all__ = [
    "crystal_symmetry",
    "direct_dfpt_check",
    "fc3_comparison",
    "kappa_comparison",
    "lifetimes_from_kappa",
    "mirror_dfpt_z",
    "pam_figure_data",
    "phonopy_force_constants",
    "strip_dielectric_block_from_folder",
    "supercell_kpoints_check",
]
