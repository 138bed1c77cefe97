"""The equilibrium check before the sum rules (aiida_llpam.physics.equilibrium)."""

import numpy as np
import pytest

from aiida_llpam.physics.equilibrium import DEFAULT_THRESHOLDS, equilibrium_problems, validate_thresholds

#: the scf of the production quartz DFPT (fixtures/reference/quartz_production.aiida): GPa and eV/A
PRODUCTION_STRESS_GPA = np.diag([-0.4649, -0.4649, -0.3739])
PRODUCTION_MAX_FORCE = 0.0025


def test_the_production_cell_passes_the_default_thresholds():
    forces = np.zeros((9, 3))
    forces[0, 0] = PRODUCTION_MAX_FORCE
    assert equilibrium_problems(PRODUCTION_STRESS_GPA, forces, 1.0, 0.05) == []


def test_stress_and_forces_are_named_with_their_values():
    forces = np.zeros((9, 3))
    forces[4] = [0.06, 0.08, 0.0]  # |F| = 0.1 eV/A
    problems = equilibrium_problems(np.diag([-3.2, -3.2, -2.5]), forces, 1.0, 0.05)
    assert len(problems) == 2
    assert "3.20 GPa" in problems[0] and "vc-relax" in problems[0]
    assert "0.100 eV/A" in problems[1]
    # an off-diagonal (shear) stress counts too
    assert equilibrium_problems(np.array([[0, 1.5, 0], [1.5, 0, 0], [0, 0, 0]]), np.zeros((1, 3)), 1.0, 0.05)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"max_stress_gpa": 0}, "max_stress_gpa: must be a positive number"),
        ({"max_force_ev_angstrom": True}, "max_force_ev_angstrom: must be a positive number"),
        ({"refuse": "yes"}, "refuse: must be true"),
    ],
)
def test_bad_thresholds_are_named(change, message):
    assert validate_thresholds(DEFAULT_THRESHOLDS) is None
    assert message in validate_thresholds({**DEFAULT_THRESHOLDS, **change})
    assert "expected exactly the keys" in validate_thresholds({"max_stress_gpa": 1.0})
