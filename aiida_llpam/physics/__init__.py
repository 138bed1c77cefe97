"""Pure-numpy physics of aiida-llpam (no AiiDA import): q2r.x IFCs -> phonopy -> PAM response."""

from .mesh import KMesh, make_kmesh
from .modes import PhononModes, compute_modes, iter_modes
from .phonon import ForceConstantsError, build_phonopy
from .q2r import Q2RForceConstants, Q2RFormatError, read_q2r
from .response import PamResponse, compute_response, response_from_settings
from .settings import ResponseSettings

__all__ = [
    "ForceConstantsError",
    "KMesh",
    "PamResponse",
    "PhononModes",
    "Q2RForceConstants",
    "Q2RFormatError",
    "ResponseSettings",
    "build_phonopy",
    "compute_modes",
    "compute_response",
    "iter_modes",
    "make_kmesh",
    "read_q2r",
    "response_from_settings",
]
