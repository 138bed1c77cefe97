"""Rotational invariance by unfolding (THEORY.md section 8) on the real q 2x2x2 DFPT of quartz (fixtures/dfpt)."""

import numpy as np
import pytest
from phonopy.harmonic.dynamical_matrix import get_dynamical_matrices_at_qpoints

from aiida_llpam.physics.acoustic import IMAGINARY_TOLERANCE_THZ, acoustic_region, near_gamma_qpoints, sound_velocities
from aiida_llpam.physics.path import dispersion_along_path
from aiida_llpam.physics.sum_rules import enforce_rotational_invariance, invariance_residuals
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


def test_sound_velocity_is_the_slope(corrected):
    big, _ = corrected
    slope = [sound_velocities(big, [[0, 0, 1]], q)[0] for q in (1e-3, 2e-3)]
    np.testing.assert_allclose(slope[0], slope[1], rtol=0.05)


def test_bad_factor_is_refused(quartz):
    with pytest.raises(ValueError, match="factor"):
        enforce_rotational_invariance(quartz, factor=(2, 2))
