"""One calcfunction per module."""

from .phonopy_force_constants import phonopy_force_constants
from .pam_response import pam_response
from .strip_dielectric import strip_dielectric_block_from_folder

__all__ = ["pam_response", "phonopy_force_constants", "strip_dielectric_block_from_folder"]
