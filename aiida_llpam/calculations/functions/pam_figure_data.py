"""Mode data for the figures (band path, the branch along c*, one mode's trajectory), apart from the response."""

from aiida import orm
from aiida.engine import calcfunction

from aiida_llpam.calculations.nodes import build_output
from aiida_llpam.physics.acoustic import acoustic_region
from aiida_llpam.physics.path import dispersion_along_path, gamma_a_branch, mode_trajectory

from .phonopy_force_constants import phonopy_from_node

#: the figure settings and what each must be
FIGURE_KEYS = {
    "path_points_per_segment": "an integer >= 2",
    "trajectory_q": "three numbers (reduced)",
    "trajectory_branch": "a branch index",
}


def validate_figure_parameters(parameters: dict, num_branches: int | None = None) -> str | None:
    """A message naming the first bad figure setting, or None."""
    missing = sorted(set(FIGURE_KEYS) - set(parameters))
    unknown = sorted(set(parameters) - set(FIGURE_KEYS))
    if missing or unknown:
        return f"figures: missing {missing}, unknown {unknown}; expected {', '.join(FIGURE_KEYS)}"
    points, q, branch = (parameters[key] for key in FIGURE_KEYS)
    if not (isinstance(points, int) and points >= 2):
        return f"figures.path_points_per_segment: must be {FIGURE_KEYS['path_points_per_segment']}, got {points!r}"
    if not (isinstance(q, list) and len(q) == 3 and all(isinstance(x, (int, float)) for x in q)):
        return f"figures.trajectory_q: must be {FIGURE_KEYS['trajectory_q']}, got {q!r}"
    if not (isinstance(branch, int) and branch >= 0 and (num_branches is None or branch < num_branches)):
        return f"figures.trajectory_branch: must be a branch index below {num_branches}, got {branch!r}"
    return None


@calcfunction
def pam_figure_data(force_constants: orm.ArrayData, parameters: orm.Dict) -> dict:
    """Outputs ``dispersion``, ``acoustic``, ``gamma_a`` and ``trajectory`` (registry outputs of source "figures")."""
    p = parameters.get_dict()
    phonon = phonopy_from_node(force_constants)
    error = validate_figure_parameters(p, 3 * len(phonon.primitive))
    if error:
        raise ValueError(error)
    branch = p["trajectory_branch"]
    dispersion = dispersion_along_path(phonon, p["path_points_per_segment"])
    return {
        "dispersion": build_output("dispersion", dispersion),
        "acoustic": build_output(
            "acoustic", acoustic_region(phonon, dispersion["frequencies_thz"], dispersion["qpoints"])
        ),
        "gamma_a": build_output("gamma_a", gamma_a_branch(phonon, branch)),
        "trajectory": build_output("trajectory", mode_trajectory(phonon, p["trajectory_q"], branch)),
    }
