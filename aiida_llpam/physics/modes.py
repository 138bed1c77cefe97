"""Phonon modes with their angular momentum and group velocity along z.

For a batch of q points (reduced coordinates) the dynamical matrices D(q) and
dD/dq_z are built with phonopy's batched C kernel (including Gonze NAC when
the phonopy object has NAC parameters); dD/dq_z is a central difference of
dynamical matrices, as in phonopy's ``GroupVelocity(q_length=...)``.

Degenerate branches: l^z and v^z depend on the basis inside a degenerate
subspace. The basis is fixed by diagonalising dD/dq_z inside each subspace
(phonopy's degenerate perturbation theory) and then, where velocities are
still degenerate, M_z inside what remains, so every quantity here is
invariant under a unitary rotation of degenerate eigenvectors.

Units: frequencies in THz, l^z in units of hbar, v^z in m/s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
from phonopy import Phonopy
from phonopy.harmonic.dynamical_matrix import get_dynamical_matrices_at_qpoints

from .units import THZ_BOHR_TO_M_S

__all__ = [
    "PhononModes",
    "compute_modes",
    "dynamical_matrices",
    "iter_modes",
    "mz_matrix",
    "resolve_degeneracies",
]

#: finite-difference step for dD/dq_z, Cartesian 1/bohr (q without 2 pi)
Q_STEP_BOHR_INV = 1.0e-5
#: frequencies closer than this (THz) form one degenerate subspace (phonopy's default)
DEGENERACY_TOLERANCE_THZ = 1.0e-4
#: velocities closer than this (THz*bohr, about 5 mm/s) are degenerate as well
VELOCITY_TOLERANCE_THZ_BOHR = 1.0e-4


@dataclasses.dataclass(frozen=True)
class PhononModes:
    """Modes at ``qpoints``; branch index ascending in frequency."""

    qpoints: np.ndarray  # (nq, 3) reduced
    frequencies_thz: np.ndarray  # (nq, nb)
    eigenvectors: np.ndarray  # (nq, nb, nb), column s is branch s
    mz: np.ndarray  # (nq, nb, nb) M_{ss'} = e_s^dagger M_z e_s'
    group_velocity_z_m_s: np.ndarray  # (nq, nb)

    @property
    def l_z_hbar(self) -> np.ndarray:
        """Phonon polarisation l^z per branch, in units of hbar."""
        return np.einsum("qss->qs", self.mz).real

    @property
    def l_z_atom_hbar(self) -> np.ndarray:
        """Atom-projected l^z, (nq, nb, nat), in units of hbar; sums to ``l_z_hbar``."""
        ex = self.eigenvectors[:, 0::3, :]
        ey = self.eigenvectors[:, 1::3, :]
        return np.transpose(2.0 * (ex.conj() * ey).imag, (0, 2, 1))


def mz_matrix(eigenvectors: np.ndarray) -> np.ndarray:
    """M_{ss'} = e_s^dagger M_z e_s' with M_z = [[0,-i,0],[i,0,0],[0,0,0]] per atom."""
    ex = eigenvectors[:, 0::3, :]
    ey = eigenvectors[:, 1::3, :]
    exy = np.einsum("qas,qat->qst", ex.conj(), ey)
    return -1j * exy + 1j * np.conj(np.transpose(exy, (0, 2, 1)))


def _block_labels(values: np.ndarray, tolerance: float, labels: np.ndarray | None = None) -> np.ndarray:
    """Consecutive runs of sorted ``values`` closer than ``tolerance`` share a label."""
    jump = np.abs(np.diff(values, axis=1)) > tolerance
    if labels is not None:
        jump |= np.diff(labels, axis=1) != 0
    return np.concatenate([np.zeros((len(values), 1), dtype=int), np.cumsum(jump, axis=1)], axis=1)


def _diagonalise_in_blocks(operator: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unitary, block diagonal over equal labels, that diagonalises ``operator`` in each block.

    Blocks are kept apart by shifting block b by b times a bound on the
    operator's spectrum, so one batched ``eigh`` does every block of every q
    and returns branches in the original block order.
    """
    nb = operator.shape[-1]
    same = labels[:, :, None] == labels[:, None, :]
    masked = np.where(same, operator, 0.0)
    bound = 2.0 * nb * (np.abs(operator).max(axis=(1, 2)) + 1.0)
    masked = masked + np.einsum("qs,st->qst", labels * bound[:, None], np.eye(nb))
    values, unitary = np.linalg.eigh(masked)
    return values - labels * bound[:, None], unitary


def resolve_degeneracies(
    frequencies_thz: np.ndarray,
    eigenvectors: np.ndarray,
    ddm_z: np.ndarray,
    factor: float,
    degeneracy_tolerance_thz: float = DEGENERACY_TOLERANCE_THZ,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fix the basis of degenerate subspaces; return (eigenvectors, M_z matrix, v_z in THz*bohr).

    ``ddm_z`` is dD/dq_z in phonopy's internal units per 1/bohr; ``factor``
    converts sqrt(eigenvalue) to THz.
    """
    labels = _block_labels(frequencies_thz, degeneracy_tolerance_thz)
    vmat = np.einsum("qas,qab,qbt->qst", eigenvectors.conj(), ddm_z, eigenvectors)
    dlambda, unitary = _diagonalise_in_blocks(vmat, labels)
    eigenvectors = eigenvectors @ unitary

    with np.errstate(divide="ignore", invalid="ignore"):
        velocity = np.where(
            np.abs(frequencies_thz) > degeneracy_tolerance_thz,
            factor**2 * dlambda / (2.0 * frequencies_thz),
            0.0,
        )
    labels = _block_labels(velocity, VELOCITY_TOLERANCE_THZ_BOHR, labels)
    _, unitary = _diagonalise_in_blocks(mz_matrix(eigenvectors), labels)
    eigenvectors = eigenvectors @ unitary
    return eigenvectors, mz_matrix(eigenvectors), velocity


def dynamical_matrices(phonon: Phonopy, qpoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """D(q) and dD/dq_z (per 1/bohr, central difference) for a batch of reduced q points."""
    nq = len(qpoints)
    step_red = Q_STEP_BOHR_INV * phonon.primitive.cell[:, 2]  # Cartesian z step in reduced coordinates
    shifted = np.concatenate([qpoints, qpoints + step_red, qpoints - step_red])
    dynmat = get_dynamical_matrices_at_qpoints(phonon.dynamical_matrix, shifted)
    return dynmat[:nq], (dynmat[nq : 2 * nq] - dynmat[2 * nq :]) / (2.0 * Q_STEP_BOHR_INV)


def _modes_of_batch(phonon: Phonopy, qpoints: np.ndarray, degeneracy_tolerance_thz: float) -> PhononModes:
    dynmat, ddm_z = dynamical_matrices(phonon, qpoints)
    eigenvalues, eigenvectors = np.linalg.eigh(dynmat)
    factor = phonon.unit_conversion_factor
    frequencies = np.sign(eigenvalues) * np.sqrt(np.abs(eigenvalues)) * factor
    eigenvectors, mz, velocity = resolve_degeneracies(
        frequencies, eigenvectors, ddm_z, factor, degeneracy_tolerance_thz
    )
    return PhononModes(
        qpoints=np.array(qpoints, dtype=float),
        frequencies_thz=frequencies,
        eigenvectors=eigenvectors,
        mz=mz,
        group_velocity_z_m_s=velocity * THZ_BOHR_TO_M_S,
    )


def iter_modes(
    phonon: Phonopy,
    qpoints: np.ndarray,
    chunk_size: int = 256,
    degeneracy_tolerance_thz: float = DEGENERACY_TOLERANCE_THZ,
) -> Iterator[PhononModes]:
    """Modes in batches of ``chunk_size`` q points, so memory stays bounded on large meshes."""
    qpoints = np.asarray(qpoints, dtype=float).reshape(-1, 3)
    for start in range(0, len(qpoints), chunk_size):
        yield _modes_of_batch(phonon, qpoints[start : start + chunk_size], degeneracy_tolerance_thz)


def compute_modes(
    phonon: Phonopy,
    qpoints: np.ndarray,
    degeneracy_tolerance_thz: float = DEGENERACY_TOLERANCE_THZ,
) -> PhononModes:
    """Modes at all ``qpoints`` (reduced coordinates) in one object."""
    qpoints = np.asarray(qpoints, dtype=float).reshape(-1, 3)
    return _modes_of_batch(phonon, qpoints, degeneracy_tolerance_thz)
