"""Phonon angular-momentum matrices (THEORY.md section 2), dimensionless (units of hbar).

Per atom (M_alpha)_{beta gamma} = -i eps_{alpha beta gamma}; between branches
at one k, M^alpha_{ss'} = e_s^dagger M_alpha e_s' (Hermitian), and the
polarisation l^alpha_s = M^alpha_{ss} (Zhang & Niu 2014). Eigenvectors are
phonopy's: 3n components ordered (atom, Cartesian), column s is branch s.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LEVI_CIVITA", "angular_momentum_matrices", "atom_projected_lz"]

LEVI_CIVITA = np.zeros((3, 3, 3))
LEVI_CIVITA[0, 1, 2] = LEVI_CIVITA[1, 2, 0] = LEVI_CIVITA[2, 0, 1] = 1.0
LEVI_CIVITA[0, 2, 1] = LEVI_CIVITA[2, 1, 0] = LEVI_CIVITA[1, 0, 2] = -1.0


def angular_momentum_matrices(eigenvectors: np.ndarray) -> np.ndarray:
    """(nq, 3, nb, nb): M^alpha_{ss'} for alpha = x, y, z."""
    nq, ndim, nb = eigenvectors.shape
    e = eigenvectors.reshape(nq, ndim // 3, 3, nb)
    # sum over atoms of e*_{a beta s} (-i eps_{alpha beta gamma}) e_{a gamma t}
    return -1j * np.einsum("abc,qibs,qict->qast", LEVI_CIVITA, e.conj(), e, optimize=True)


def atom_projected_lz(eigenvectors: np.ndarray) -> np.ndarray:
    """(nq, nb, nat): the diagonal l^z of each branch restricted to each atom's block; sums to l^z."""
    ex = eigenvectors[:, 0::3, :]
    ey = eigenvectors[:, 1::3, :]
    return np.transpose(2.0 * (ex.conj() * ey).imag, (0, 2, 1))
