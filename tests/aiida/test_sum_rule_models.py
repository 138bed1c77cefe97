"""The sum-rule models of the force-constants calcfunction (THEORY.md section 8): the on-site acoustic rule and the
fit to direct ph.x matrices, on the real q 2x2x2 DFPT of quartz (fixtures/dfpt/quartz_q222; no QE run)."""

import numpy as np
import pytest

from .conftest import REPO

QUARTZ = REPO / "fixtures" / "dfpt" / "quartz_q222"


def _inputs():
    from aiida import orm

    from aiida_llpam.calculations.functions.dyn_mat_folder import dyn_folder

    fc = orm.SinglefileData(QUARTZ / "quartz.fc")
    nac = orm.SinglefileData(QUARTZ / "quartz_rigid.fc")
    dfpt = dyn_folder({f"dynamical-matrix-{i}": (QUARTZ / f"quartz.dyn{i}").read_text() for i in range(5)})
    # a single-q "direct" run: the star of M, a mesh point, so the fitted model must reproduce it to rounding
    direct = dyn_folder({"dynamical-matrix-1": (QUARTZ / "quartz.dyn3").read_text()})
    return fc, nac, dfpt, direct


def _rules(acoustic):
    from aiida import orm

    return orm.Dict({"rotational_invariance": True, "unfolding_factor": [2, 2, 2], "acoustic": acoustic})


def test_onsite_rule_and_fit_are_recorded_on_the_node(bare_profile):
    from aiida_llpam.calculations.functions.phonopy_force_constants import phonopy_force_constants, phonopy_from_node
    from aiida_llpam.physics.direct_dfpt import direct_modes, gamma_matrix, onsite_asr_correction
    from aiida_llpam.physics.dynmat import read_dynamical_matrices
    from aiida_llpam.physics.modes import compute_modes

    fc, nac, dfpt, direct = _inputs()
    node = phonopy_force_constants(fc, nac, _rules("onsite"), dfpt=dfpt, q1=direct)
    record = node.base.attributes.get("sum_rules")
    assert record["acoustic"] == "onsite" and len(record["matched_qpoints"]) == 3  # the star of M
    assert "fitted to direct ph.x" in node.base.attributes.get("description")
    phonon = phonopy_from_node(node)
    star = read_dynamical_matrices((QUARTZ / "quartz.dyn3").read_text())
    gamma = read_dynamical_matrices((QUARTZ / "quartz.dyn1").read_text())
    correction = onsite_asr_correction(gamma_matrix(gamma))
    for k, q in enumerate(star.qpoints_reduced):
        expected = direct_modes(star, k, phonon, correction).frequencies_thz
        np.testing.assert_allclose(compute_modes(phonon, q).frequencies_thz, expected, atol=1e-6)  # THz
    assert record["match_residual_ry_bohr2"] < 1e-6
    # a star of the mesh leaves the fit nothing to do: the model is the unfitted one (the fit once took the
    # round-off of its Gram matrix for directions and moved IFCs by a third of the largest)
    unfitted = phonopy_force_constants(fc, nac, _rules("onsite"), dfpt=dfpt)
    scale = np.abs(unfitted.force_constants).max()
    np.testing.assert_allclose(node.force_constants, unfitted.force_constants, rtol=0, atol=1e-10 * scale)


@pytest.mark.parametrize(
    ("acoustic", "with_dfpt", "with_direct", "message"),
    [
        ("onsite", False, False, "needs the DFPT's dyn files"),
        ("crystal", True, True, "fitted only with sum_rules.acoustic = onsite"),
        ("simple", True, False, "sum_rules.acoustic: one of crystal, onsite"),
    ],
)
def test_inconsistent_sum_rule_models_are_refused(bare_profile, acoustic, with_dfpt, with_direct, message):
    from aiida_llpam.calculations.functions.phonopy_force_constants import phonopy_force_constants

    fc, nac, dfpt, direct = _inputs()
    extra = ({"dfpt": dfpt} if with_dfpt else {}) | ({"q1": direct} if with_direct else {})
    with pytest.raises(ValueError, match=message):
        phonopy_force_constants(fc, nac, _rules(acoustic), **extra)


def test_the_budgets_fitted_model_takes_its_unfolding():
    """``run_error_budget.py --fit q2 q3 --fit-unfolding 2 2 3``: the on-site rule on that unfolding, named by it (a
    found model is matched on these settings, so the label and the settings must agree)."""
    from aiida_llpam.cli.trust import FIT_SUM_RULES, fitted_model

    label, rules = fitted_model(("q2", "q3"), (2, 2, 3))
    assert label == "o223_fit_q2_q3"
    assert rules == {**FIT_SUM_RULES, "unfolding_factor": [2, 2, 3]} and rules["acoustic"] == "onsite"
    assert fitted_model(("q1",))[0] == "o222_fit_q1" and FIT_SUM_RULES["unfolding_factor"] == [2, 2, 2]
    with pytest.raises(ValueError, match="three positive integers"):
        fitted_model(("q1",), (2, 0, 3))
