"""Is the cell the DFPT perturbed in equilibrium? (THEORY.md section 8: the Huang conditions assume it.)

The rotational sum rules impose the Born-Huang and Huang invariance of a crystal at zero stress. Under a
residual stress sigma the correct conditions carry sigma, so imposing the zero-stress ones shifts the elastic
constants by about sigma: on quartz's smallest shear constant (C66 ~ 40 GPa) 1 GPa is 2.5 %, about 1.2 % in a
transverse sound velocity. On force constants of a cell far from equilibrium (the experimental cell in LDA)
the correction cannot make the acoustic region stable at all. Residual forces mean the atoms sit off their
equilibrium positions: the harmonic expansion is then about the wrong point.

Units: stress in GPa (aiida-quantumespresso's ``output_trajectory`` array ``stress``), forces in eV/Angstrom
(its array ``forces``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["DEFAULT_THRESHOLDS", "equilibrium_problems", "validate_thresholds"]

#: refuse above these: |sigma_ij| in GPa (2.5 % of quartz's C66) and |F| in eV/Angstrom (about 2 mRy/bohr, twice
#: aiida-quantumespresso's default force threshold of a relaxation)
DEFAULT_THRESHOLDS = {"max_stress_gpa": 1.0, "max_force_ev_angstrom": 0.05, "refuse": True}


def validate_thresholds(parameters: dict) -> str | None:
    """A message naming the first bad key of an equilibrium-thresholds mapping, or None."""
    if set(parameters) != set(DEFAULT_THRESHOLDS):
        expected = ", ".join(DEFAULT_THRESHOLDS)
        return f"equilibrium: expected exactly the keys {expected}, got {', '.join(sorted(parameters))}"
    for key in ("max_stress_gpa", "max_force_ev_angstrom"):
        value = parameters[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            return f"equilibrium.{key}: must be a positive number, got {value!r}"
    if not isinstance(parameters["refuse"], bool):
        return f"equilibrium.refuse: must be true (refuse) or false (warn), got {parameters['refuse']!r}"
    return None


def equilibrium_problems(
    stress_gpa, forces_ev_angstrom, max_stress_gpa: float, max_force_ev_angstrom: float
) -> list[str]:
    """What exceeds the thresholds, each named with its value; [] for a cell in equilibrium."""
    problems = []
    stress = np.asarray(stress_gpa, dtype=float)
    largest = float(np.abs(stress).max())
    if largest > max_stress_gpa:
        diagonal = ", ".join(f"{value:.2f}" for value in np.diag(stress))
        problems.append(
            f"residual stress {largest:.2f} GPa (diagonal {diagonal} GPa) exceeds {max_stress_gpa:g} GPa: "
            "vc-relax the cell at the DFPT's own cut-off first"
        )
    force = float(np.linalg.norm(np.asarray(forces_ev_angstrom, dtype=float), axis=-1).max())
    if force > max_force_ev_angstrom:
        problems.append(
            f"largest residual force {force:.3f} eV/A exceeds {max_force_ev_angstrom:g} eV/A: relax the atoms first"
        )
    return problems
