"""Mode quantities: THEORY.md section 2 identities, velocities, degenerate subspaces (section 3)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from phonopy.harmonic.derivative_dynmat import DerivativeOfDynamicalMatrix
from phonopy.phonon.group_velocity import GroupVelocity

from aiida_llpam.physics import compute_modes
from aiida_llpam.physics.angular_momentum import angular_momentum_matrices
from aiida_llpam.physics.modes import dynamical_matrices, modes_from_eigensystem, mu_kernels
from aiida_llpam.physics.response import response_sums
from aiida_llpam.physics.units import THZ_BOHR_TO_M_S

RNG = np.random.default_rng(20261123)
GENERIC_Q = RNG.uniform(-0.5, 0.5, size=(12, 3))


def test_polarisation_identities(quartz):
    modes = compute_modes(quartz, GENERIC_Q)
    l_z = modes.l_z_hbar
    assert np.abs(l_z.sum(axis=1)).max() < 1e-10  # trace of M_z is zero
    assert np.abs(modes.l_hbar.sum(axis=1)).max() < 1e-10  # and of M_x, M_y
    assert np.all(np.abs(l_z) <= 1.0 + 1e-10)
    assert_allclose(modes.l_z_atom_hbar.sum(axis=2), l_z, rtol=1e-5, atol=1e-12)  # hbar, |l| <= 1
    m = modes.angular_momentum
    assert_allclose(m, np.conj(np.swapaxes(m, -1, -2)), rtol=1e-5, atol=1e-12)
    assert_allclose(modes.l_hbar[..., 2], l_z, rtol=1e-12, atol=1e-12)  # the same numbers (hbar, |l| <= 1)
    assert np.abs(l_z).max() > 0.1  # quartz is chiral: the identities are not trivially met by l = 0


def test_time_reversal(quartz):
    plus = compute_modes(quartz, GENERIC_Q)
    minus = compute_modes(quartz, -GENERIC_Q)
    assert_allclose(plus.frequencies_thz, minus.frequencies_thz, rtol=1e-5, atol=1e-8)  # THz
    assert_allclose(plus.l_hbar, -minus.l_hbar, rtol=1e-5, atol=1e-7)  # hbar
    assert_allclose(plus.group_velocity_m_s, -minus.group_velocity_m_s, rtol=1e-5, atol=1e-3)  # m/s (km/s scale)
    assert_allclose(plus.mu_z_mu_n, -minus.mu_z_mu_n, rtol=1e-5, atol=1e-9)  # nuclear magnetons


def test_angular_momentum_invariant_under_phase_convention(quartz):
    modes = compute_modes(quartz, GENERIC_Q[:3])
    phases = np.exp(2j * np.pi * quartz.primitive.scaled_positions @ GENERIC_Q[:3].T).T  # (nq, nat)
    rephased = modes.eigenvectors * np.repeat(phases, 3, axis=1)[:, :, None]
    assert_allclose(angular_momentum_matrices(rephased), modes.angular_momentum, rtol=1e-5, atol=1e-12)


def test_group_velocity_matches_phonopy(quartz):
    modes = compute_modes(quartz, GENERIC_Q[:4])
    gv = GroupVelocity(
        quartz.dynamical_matrix,
        symmetry=quartz.primitive_symmetry,
        frequency_factor_to_THz=quartz.unit_conversion_factor,
    )
    gv.run(GENERIC_Q[:4])
    reference = gv.group_velocities * THZ_BOHR_TO_M_S
    assert_allclose(modes.group_velocity_m_s, reference, rtol=1e-6, atol=1e-3)  # m/s
    assert np.abs(reference).max() > 1000.0  # sound velocities of km/s


def test_compiled_derivative_is_gonze_lee(quartz):
    """phonopy documents that its compiled dD/dq may fall back to Wang NAC; ours must equal the Python Gonze-Lee
    path."""
    assert type(quartz.dynamical_matrix).__name__ == "DynamicalMatrixGL"
    qpoints = np.array([[0.0, 0.0, 0.01], [0.02, 0.0, 0.0], [0.01, 0.01, 0.003]])
    _, ddm = dynamical_matrices(quartz, qpoints)
    reference = DerivativeOfDynamicalMatrix(quartz.dynamical_matrix)
    for q, value in zip(qpoints, ddm):
        reference.run(q, force_python=True)
        assert_allclose(value, reference.d_dynamical_matrix, rtol=0, atol=1e-10 * np.abs(value).max())


def _rotate_degenerate(modes, rng):
    """The same eigensystem with a random unitary inside every degenerate subspace."""
    rotated = modes.eigenvectors.copy()
    for iq, labels in enumerate(modes.subspaces):
        for block in np.flatnonzero(np.bincount(labels) >= 2):
            idx = np.flatnonzero(labels == block)
            unitary, _ = np.linalg.qr(rng.normal(size=(len(idx),) * 2) + 1j * rng.normal(size=(len(idx),) * 2))
            rotated[iq][:, idx] = modes.eigenvectors[iq][:, idx] @ unitary
    return rotated


@pytest.mark.parametrize("q", [(0.0, 0.0, 0.0), (1 / 3, 1 / 3, 0.0), (0.0, 0.0, 0.5), (1 / 3, 1 / 3, 0.5)])
def test_every_quantity_invariant_under_degenerate_rotation(quartz, q):
    """THEORY.md section 3: per-branch values and every response summand ignore the basis of a subspace."""
    qpoints = np.array([q])
    dynmat, ddm = dynamical_matrices(quartz, qpoints)
    values, vectors = np.linalg.eigh(dynmat)
    factor = quartz.unit_conversion_factor
    freqs = np.sign(values) * np.sqrt(np.abs(values)) * factor
    kernels = mu_kernels(quartz)
    a = modes_from_eigensystem(qpoints, freqs, vectors, ddm, factor, kernels)
    assert np.bincount(a.subspaces[0]).max() >= 2, "the test point must have a degenerate subspace"
    rotated = _rotate_degenerate(a, RNG)
    assert np.abs(rotated - vectors).max() > 1e-3  # unit eigenvectors: a random rotation moves them by O(1)
    b = modes_from_eigensystem(qpoints, freqs, rotated, ddm, factor, kernels)

    for name in ("l_hbar", "group_velocity_m_s", "mu_z_mu_n"):
        assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-5, atol=1e-7, err_msg=name)
    temperatures = np.array([30.0, 300.0, 1000.0])
    sums_a, sums_b = response_sums(a, temperatures, 0.05), response_sums(b, temperatures, 0.05)
    for name, value in sums_a.items():
        scale = np.abs(value).max() or 1.0
        assert_allclose(value, sums_b[name], rtol=1e-7, atol=1e-9 * scale, err_msg=name)
