"""The PAM response of one force-constants node: one output node per registry output, plus the settings."""

from aiida import orm
from aiida.engine import calcfunction

from aiida_llpam.calculations.nodes import build_outputs
from aiida_llpam.physics import ResponseSettings, response_from_settings

from .phonopy_force_constants import phonopy_from_node


@calcfunction
def pam_response(force_constants: orm.ArrayData, parameters: orm.Dict) -> dict:
    """gamma^NL_ij, chi pieces, gamma^LL, eta (free and paper), <L_z>, gamma^M, <M_z>, chi_ML, BZ maps, mesh modes.

    ``parameters``: the response settings of :mod:`aiida_llpam.physics.settings`
    (validated there; unknown keys are refused). ``settings`` echoes them in SI
    units (radii in m).
    """
    settings = ResponseSettings.from_mapping(parameters.get_dict())
    result = response_from_settings(phonopy_from_node(force_constants), settings)
    outputs = build_outputs("response", result, {"temperatures_k": settings.temperatures_k, "radii_m": settings.radii_m})
    outputs["settings"] = orm.Dict(settings.as_dict())
    return outputs
