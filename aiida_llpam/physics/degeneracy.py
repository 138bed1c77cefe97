"""Degenerate subspaces (THEORY.md section 3): labels, block masks and basis-free branch values.

Inside a subspace S of branches whose frequencies agree to a tolerance, the
eigenvectors are defined only up to a unitary rotation. Sums are written as
traces over S (see :mod:`aiida_llpam.physics.response`); a value *per branch*
is taken as an eigenvalue of the operator restricted to S, which no basis
choice can change. Where S is one branch this is the plain diagonal element.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DEGENERACY_TOLERANCE_THZ", "block_eigenvalues", "diagonalise_in_blocks", "subspace_labels"]

#: frequencies closer than this (THz) form one degenerate subspace (phonopy's default)
DEGENERACY_TOLERANCE_THZ = 1.0e-4


def subspace_labels(frequencies_thz: np.ndarray, tolerance_thz: float = DEGENERACY_TOLERANCE_THZ) -> np.ndarray:
    """(nq, nb) integer label per branch; consecutive (ascending) frequencies closer than the tolerance share one."""
    jump = np.abs(np.diff(frequencies_thz, axis=-1)) > tolerance_thz
    zeros = np.zeros(frequencies_thz.shape[:-1] + (1,), dtype=int)
    return np.concatenate([zeros, np.cumsum(jump, axis=-1)], axis=-1)


def diagonalise_in_blocks(operator: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and a block-diagonal unitary that diagonalise the Hermitian ``operator`` (nq, nb, nb) per block.

    Blocks are kept apart by shifting block b by b times a bound on the
    operator's spectrum, so one batched ``eigh`` treats every block of every q
    and returns branches in the original block order.
    """
    nb = operator.shape[-1]
    same = labels[:, :, None] == labels[:, None, :]
    masked = np.where(same, operator, 0.0)
    bound = 2.0 * nb * (np.abs(operator).max(axis=(1, 2)) + 1.0)
    shift = labels * bound[:, None]
    values, unitary = np.linalg.eigh(masked + shift[:, :, None] * np.eye(nb))
    return values - shift, unitary


def block_eigenvalues(operator: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(nq, nb) eigenvalues of the Hermitian ``operator`` restricted to each degenerate block (basis-free)."""
    return diagonalise_in_blocks(operator, labels)[0]
