"""Mode quantities: THEORY.md section 2 identities, velocities, degenerate subspaces."""

import numpy as np
import pytest
from phonopy.phonon.group_velocity import GroupVelocity

from aiida_llpam.physics import compute_modes
from aiida_llpam.physics.modes import (
    DEGENERACY_TOLERANCE_THZ,
    _block_labels,
    dynamical_matrices,
    mz_matrix,
    resolve_degeneracies,
)
from aiida_llpam.physics.units import THZ_BOHR_TO_M_S

RNG = np.random.default_rng(20261123)
GENERIC_Q = RNG.uniform(-0.5, 0.5, size=(12, 3))


def test_polarisation_identities(quartz):
    modes = compute_modes(quartz, GENERIC_Q)
    l = modes.l_z_hbar
    assert np.abs(l.sum(axis=1)).max() < 1e-10  # trace of M_z is zero
    assert np.all(np.abs(l) <= 1.0 + 1e-10)
    assert np.allclose(modes.l_z_atom_hbar.sum(axis=2), l, atol=1e-12)
    assert np.allclose(modes.mz, np.conj(np.transpose(modes.mz, (0, 2, 1))), atol=1e-12)
    assert np.abs(l).max() > 0.1  # quartz is chiral: the identities are not trivially met by l = 0


def test_time_reversal(quartz):
    plus = compute_modes(quartz, GENERIC_Q)
    minus = compute_modes(quartz, -GENERIC_Q)
    assert np.allclose(plus.frequencies_thz, minus.frequencies_thz, atol=1e-8)
    assert np.allclose(plus.l_z_hbar, -minus.l_z_hbar, atol=1e-7)
    assert np.allclose(plus.group_velocity_z_m_s, -minus.group_velocity_z_m_s, atol=1e-3)


def test_mz_invariant_under_phase_convention(quartz):
    modes = compute_modes(quartz, GENERIC_Q[:3])
    phases = np.exp(2j * np.pi * quartz.primitive.scaled_positions @ GENERIC_Q[:3].T).T  # (nq, nat)
    rephased = modes.eigenvectors * np.repeat(phases, 3, axis=1)[:, :, None]
    assert np.allclose(mz_matrix(rephased), modes.mz, atol=1e-12)


def test_group_velocity_matches_phonopy(quartz):
    modes = compute_modes(quartz, GENERIC_Q[:4])
    gv = GroupVelocity(
        quartz.dynamical_matrix, symmetry=quartz.primitive_symmetry, frequency_factor_to_THz=quartz.unit_conversion_factor
    )
    gv.run(GENERIC_Q[:4])
    reference = gv.group_velocities[:, :, 2] * THZ_BOHR_TO_M_S
    assert np.allclose(modes.group_velocity_z_m_s, reference, rtol=1e-4, atol=0.05)
    assert np.abs(reference).max() > 1000.0  # sound velocities of km/s


@pytest.mark.parametrize("q", [(0.0, 0.0, 0.0), (1 / 3, 1 / 3, 0.0), (0.0, 0.0, 0.5), (1 / 3, 1 / 3, 0.5)])
def test_degenerate_subspace_rotation_invariance(quartz, q):
    qpoints = np.array([q])
    dynmat, ddm = dynamical_matrices(quartz, qpoints)
    values, vectors = np.linalg.eigh(dynmat)
    factor = quartz.unit_conversion_factor
    freqs = np.sign(values) * np.sqrt(np.abs(values)) * factor
    labels = _block_labels(freqs, DEGENERACY_TOLERANCE_THZ)[0]
    sizes = np.bincount(labels)
    assert sizes.max() >= 2, "the test point must have a degenerate subspace"

    rotated = vectors.copy()
    for block in np.flatnonzero(sizes >= 2):
        idx = np.flatnonzero(labels == block)
        z = RNG.normal(size=(len(idx), len(idx))) + 1j * RNG.normal(size=(len(idx), len(idx)))
        unitary, _ = np.linalg.qr(z)
        rotated[0][:, idx] = vectors[0][:, idx] @ unitary
    assert not np.allclose(rotated, vectors)

    _, mz_a, v_a = resolve_degeneracies(freqs, vectors, ddm, factor)
    _, mz_b, v_b = resolve_degeneracies(freqs, rotated, ddm, factor)
    assert np.allclose(v_a, v_b, atol=1e-6)
    assert np.allclose(np.einsum("qss->qs", mz_a).real, np.einsum("qss->qs", mz_b).real, atol=1e-7)
    assert np.allclose(np.abs(mz_a) ** 2, np.abs(mz_b) ** 2, atol=1e-7)
