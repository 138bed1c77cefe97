"""Phonon magnetic moment from Born effective charges (THEORY.md section 5), in nuclear magnetons.

A moving ion carries the current e Z*_kappa du/dt, so its moment is
(e/2) u x (Z*_kappa du/dt). Per phonon, with eps_z = [[0, 1, 0], [-1, 0, 0], [0, 0, 0]],

    G_kappa = -i (eps_z Z*_kappa + Z*_kappa^T eps_z) / 2      (Hermitian)
    mu^z_{ss'} / mu_N = sum_kappa (m_p / m_kappa) e_{s,kappa}^dagger G_kappa e_{s',kappa}

Z*_kappa[alpha, beta] = dP_alpha / du_beta (phonopy's and QE's index order),
in units of e. For an isotropic Z* = z 1, G = z M_z and mu reduces to
sum_kappa (z_kappa m_p / m_kappa) l_kappa.
"""

from __future__ import annotations

import numpy as np

from .units import PROTON_MASS_AMU

__all__ = ["EPS_Z", "magnetic_moment_kernels", "magnetic_moment_matrix"]

EPS_Z = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])


def magnetic_moment_kernels(born_charges: np.ndarray, masses_amu: np.ndarray) -> np.ndarray:
    """(nat, 3, 3) Hermitian blocks (m_p / m_kappa) G_kappa."""
    born = np.asarray(born_charges, dtype=float)
    g = -0.5j * (EPS_Z @ born + np.transpose(born, (0, 2, 1)) @ EPS_Z)
    return g * (PROTON_MASS_AMU / np.asarray(masses_amu, dtype=float))[:, None, None]


def magnetic_moment_matrix(eigenvectors: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """(nq, nb, nb): mu^z_{ss'} in units of mu_N between the branches at each q."""
    nq, ndim, nb = eigenvectors.shape
    e = eigenvectors.reshape(nq, ndim // 3, 3, nb)
    return np.einsum("qibs,ibc,qict->qst", e.conj(), kernels, e, optimize=True)
