"""L-L feedback on the thermal PAM (THEORY.md section 6), with the correct sign.

H_LL = (L_z^tot)^2 / (2 I_c) is a positive energy: in mean field the lattice
rotates against the phonons and <L_z>^total = <L_z>^NL / (1 + gamma^LL), with
gamma^LL = 2 chi / (rho r^2). The paper's Eq. (6), 1/(1 - gamma^LL), takes the
opposite sign; it is kept as ``eta_paper`` for comparison only. A clamped
sample has no rotational freedom: eta = 1.

Units: chi in kg/m, rho in kg/m^3, r in m; gamma^LL and eta dimensionless.
"""

from __future__ import annotations

import numpy as np

__all__ = ["eta_free", "eta_paper", "gamma_ll", "r_paper"]


def gamma_ll(chi_kg_m: np.ndarray, mass_density_kg_m3: float, radii_m: np.ndarray) -> np.ndarray:
    """(nT, nr) = 2 chi(T) / (rho r^2)."""
    return np.outer(chi_kg_m, 2.0 / (mass_density_kg_m3 * np.asarray(radii_m) ** 2))


def eta_free(gamma: np.ndarray) -> np.ndarray:
    """1 / (1 + gamma^LL), in (0, 1] for gamma^LL >= 0: the coupling suppresses the PAM of a free sample."""
    return 1.0 / (1.0 + np.asarray(gamma, dtype=float))


def eta_paper(gamma: np.ndarray) -> np.ndarray:
    """The paper's 1 / (1 - gamma^LL); NaN for gamma^LL >= 1 (never negative or infinite)."""
    gamma = np.asarray(gamma, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(gamma < 1.0, 1.0 / (1.0 - gamma), np.nan)


def r_paper(chi_kg_m: np.ndarray, mass_density_kg_m3: float) -> np.ndarray:
    """sqrt(2 chi / rho) (m): where the paper's eta diverges. Not a sample size (about 0.2 A for quartz)."""
    return np.sqrt(2.0 * np.asarray(chi_kg_m) / mass_density_kg_m3)
