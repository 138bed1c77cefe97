"""Rotational invariance by unfolding (THEORY.md section 8) on the real q 2x2x2 DFPT of quartz (fixtures/dfpt)."""

import numpy as np
import pytest
from phonopy.harmonic.dynamical_matrix import get_dynamical_matrices_at_qpoints

from aiida_llpam.physics.acoustic import IMAGINARY_TOLERANCE_THZ, acoustic_region, near_gamma_qpoints, sound_velocities
from aiida_llpam.physics.path import dispersion_along_path
from aiida_llpam.physics.sum_rules import (
    enforce_rotational_invariance,
    invariance_residuals,
    onsite_acoustic_sum_rule,
)
from aiida_llpam.physics.units import THZ_TO_CM


@pytest.fixture(scope="module")
def corrected(quartz):
    return enforce_rotational_invariance(quartz)


def frequencies_cm(phonon, q_reduced):
    eigenvalues = np.linalg.eigvalsh(
        get_dynamical_matrices_at_qpoints(phonon.dynamical_matrix, np.atleast_2d(q_reduced))
    )
    return np.sign(eigenvalues) * np.sqrt(np.abs(eigenvalues)) * phonon.unit_conversion_factor * THZ_TO_CM


def test_the_dfpt_model_has_the_pocket_and_the_correction_removes_it(quartz, corrected):
    big, report = corrected
    near = near_gamma_qpoints() @ quartz.primitive.cell.T
    assert frequencies_cm(quartz, near).min() < -2.0  # the TA pocket along c (q 2x2x2: -2.7 cm^-1)
    assert frequencies_cm(big, near).min() > -IMAGINARY_TOLERANCE_THZ * THZ_TO_CM
    assert report.born_huang_before > 0.1 and report.born_huang_after < 1e-4 * report.born_huang_before
    assert report.huang_after < 1e-3 * report.huang_before
    assert invariance_residuals(big)[0] == pytest.approx(report.born_huang_after, rel=1e-6, abs=0)  # a small residual
    assert report.max_change_ry_bohr2 < 1e-4 * report.max_force_constant_ry_bohr2  # a tiny redistribution


def test_every_dfpt_dynamical_matrix_is_kept(quartz, corrected):
    big, _ = corrected
    dfpt_mesh = np.array(list(np.ndindex(2, 2, 2))) / 2.0  # the q mesh ph.x computed
    assert np.array_equal(np.diag(big.supercell_matrix), [4, 4, 4])
    np.testing.assert_allclose(frequencies_cm(big, dfpt_mesh), frequencies_cm(quartz, dfpt_mesh), atol=1e-6)
    # between the DFPT points the interpolation changes
    assert np.abs(frequencies_cm(big, [0.02, 0, 0]) - frequencies_cm(quartz, [0.02, 0, 0])).max() > 0.5


def test_symmetry_and_lo_to_are_kept(corrected):
    big, _ = corrected
    # a general q and its images under the point group (reciprocal rotations act as R^T)
    q = np.array([0.13, 0.05, 0.21])
    images = np.array([q @ rotation for rotation in big.primitive_symmetry.pointgroup_operations])
    assert len(np.unique(images.round(8), axis=0)) == 6
    np.testing.assert_allclose(frequencies_cm(big, images), np.repeat(frequencies_cm(big, q), 6, axis=0), atol=1e-3)
    along_x, along_z = frequencies_cm(big, [1e-4, 0, 0])[0], frequencies_cm(big, [0, 0, 1e-4])[0]
    assert np.abs(along_x - along_z).max() > 5.0  # LO-TO splitting depends on the direction (NAC kept)


def test_acoustic_region_of_the_corrected_model(corrected):
    big, _ = corrected
    region = acoustic_region(big, dispersion_along_path(big, 20)["frequencies_thz"])
    assert region["num_imaginary_modes"] == 0
    assert region["near_gamma_lowest_frequency_thz"] > 0
    velocities = region["sound_velocities_m_s"]
    assert velocities.shape == (3, 3) and np.all(np.diff(velocities, axis=1) >= 0)
    # the chiral splitting of the TA pair along the screw axis, linear in q
    assert velocities[0, 1] - velocities[0, 0] > 50.0


def test_the_acoustic_triplet_at_gamma_is_not_counted_as_imaginary(corrected):
    """Issue 18: a numerical zero of the triplet at Gamma just below the tolerance (the on-site rule leaves
    -0.06 cm^-1) is no imaginary mode; the same value anywhere else on the path is one."""
    big, _ = corrected
    dispersion = dispersion_along_path(big, 20)
    frequencies, qpoints = np.array(dispersion["frequencies_thz"]), dispersion["qpoints"]
    at_gamma = np.flatnonzero(np.linalg.norm(qpoints, axis=1) < 1e-4)  # the path stands 1e-5 off Gamma
    assert len(at_gamma) >= 2
    frequencies[at_gamma, :3] = -2 * IMAGINARY_TOLERANCE_THZ
    assert acoustic_region(big, frequencies)["num_imaginary_modes"] == 3 * len(at_gamma)  # without the q points
    region = acoustic_region(big, frequencies, qpoints)
    assert region["num_imaginary_modes"] == 0 and region["path_lowest_frequency_thz"] > 0
    frequencies[at_gamma[0] + 1, 0] = -2 * IMAGINARY_TOLERANCE_THZ  # next to Gamma: counted
    region = acoustic_region(big, frequencies, qpoints)
    assert region["num_imaginary_modes"] == 1
    assert region["path_lowest_frequency_thz"] == pytest.approx(-2 * IMAGINARY_TOLERANCE_THZ, rel=1e-12, abs=0)


def test_sound_velocity_is_the_slope(corrected):
    big, _ = corrected
    slope = [sound_velocities(big, [[0, 0, 1]], q)[0] for q in (1e-3, 2e-3)]
    np.testing.assert_allclose(slope[0], slope[1], rtol=0.05)


def test_bad_factor_is_refused(quartz):
    with pytest.raises(ValueError, match="factor"):
        enforce_rotational_invariance(quartz, factor=(2, 2))


def _dyn(index):
    from aiida_llpam.physics.dynmat import read_dynamical_matrices

    from .conftest import QUARTZ

    return read_dynamical_matrices((QUARTZ / f"quartz.dyn{index}").read_text())


def test_onsite_rule_gives_every_mesh_matrix_minus_the_gamma_on_site_term(quartz):
    from aiida_llpam.physics.direct_dfpt import direct_modes, gamma_matrix, onsite_asr_correction

    gamma = _dyn(1)
    onsite = onsite_acoustic_sum_rule(quartz, gamma_matrix(gamma))
    correction = onsite_asr_correction(gamma_matrix(gamma))
    moved = 0.0
    for index in (1, 2, 3, 4):
        star = _dyn(index)
        for k, q in enumerate(star.qpoints_reduced):
            direct = direct_modes(star, k, quartz, correction).frequencies_thz[0] * THZ_TO_CM
            np.testing.assert_allclose(frequencies_cm(onsite, q)[0], direct, atol=1e-5)  # cm^-1
            moved = max(moved, np.abs(frequencies_cm(quartz, q)[0] - direct)[3:].max())
    assert moved > 0.5  # the crystal rule keeps ph.x's optical modes off Gamma; the on-site rule moves them
    row_sums = np.asarray(onsite.force_constants).sum(axis=1)
    assert np.abs(row_sums).max() < 1e-10 * np.abs(onsite.force_constants).max()  # the ASR holds


def _star_matrices(phonon, q):
    """Phi(q) and Phi(-q) = Phi(q)* (Ry/bohr^2, not mass-weighted) of a model: the matches of a star {q, -q}."""
    sqrt_m = np.repeat(np.sqrt(phonon.primitive.masses), 3)
    phi = get_dynamical_matrices_at_qpoints(phonon.dynamical_matrix, np.array([q]))[0] * np.outer(sqrt_m, sqrt_m)
    return [(np.asarray(q, dtype=float), phi), (-np.asarray(q, dtype=float), phi.conj())]


def test_fit_reproduces_a_reachable_off_mesh_matrix_and_keeps_the_mesh_and_the_invariance(quartz, corrected):
    """Model A: the sum rules fitted to a perturbed matrix at q1 (a model the fit can reach). Fitting the plain
    model to A's matrices at another q2 must then give A's matrices there, with the mesh and invariance kept."""
    plain, _ = corrected
    rng = np.random.default_rng(7)
    q1, q2 = (0.0, 0.0, 0.1), (0.13, 0.0, 0.07)
    (_, phi1), _ = _star_matrices(plain, q1)
    noise = rng.normal(size=phi1.shape) + 1j * rng.normal(size=phi1.shape)
    phi1 = phi1 + 1e-3 * np.abs(phi1).max() * (noise + noise.conj().T)
    model_a, _ = enforce_rotational_invariance(quartz, matches=[(np.array(q1), phi1), (-np.array(q1), phi1.conj())])
    targets = _star_matrices(model_a, q2)
    fitted, report = enforce_rotational_invariance(quartz, matches=targets)

    before = np.abs(frequencies_cm(plain, q2) - frequencies_cm(model_a, q2)).max()
    after = np.abs(frequencies_cm(fitted, q2) - frequencies_cm(model_a, q2)).max()
    assert before > 0.05 and after < 1e-3 * before  # cm^-1
    assert report.match_residual_ry_bohr2 < 1e-6 * np.abs(targets[0][1]).max()
    assert report.matched_qpoints == (q2, tuple(-x for x in q2))
    dfpt_mesh = np.array(list(np.ndindex(2, 2, 2))) / 2.0
    np.testing.assert_allclose(frequencies_cm(fitted, dfpt_mesh), frequencies_cm(quartz, dfpt_mesh), atol=1e-6)
    assert report.born_huang_after < 1e-4 * report.born_huang_before
    # the Huang brackets come from finite differences of Phi(q), which a fitted model's far images make noisier
    assert report.huang_after < 5e-3 * report.huang_before  # measured 2.1e-3


def test_the_fit_map_is_the_change_of_the_dynamical_matrix(quartz):
    """The linear map of :func:`_match_columns` (IFC orbit values -> Phi(q)) against phonopy's own Phi(q)."""
    from aiida_llpam.physics import sum_rules

    big, _ = sum_rules._embed(quartz, (1, 1, 1))
    orbit = sum_rules._permutation_orbits(big)
    values = np.random.default_rng(3).normal(size=orbit.max() + 1) * 1e-3  # Ry/bohr^2
    q = np.array([0.03, 0.07, 0.11])
    predicted = sum_rules._match_columns(big, q, orbit, orbit.max() + 1).T @ values
    before = sum_rules._matrices(big, q[None])[0]
    big.force_constants = np.asarray(big.force_constants) + values[orbit].reshape(np.shape(big.force_constants))
    change = sum_rules._as_real(sum_rules._matrices(big, q[None])[0] - before)
    np.testing.assert_allclose(predicted, change, atol=1e-10 * np.abs(change).max())
