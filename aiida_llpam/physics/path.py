"""Mode data along lines in the Brillouin zone, for the paper's Fig. 2(d-f).

* :func:`dispersion_along_path`: frequencies and l^z (total and per species)
  along Gamma-M-K-Gamma-A-L-H-A of a hexagonal lattice;
* :func:`gamma_a_branch`: one branch along Gamma-A (k_z in units of c*);
* :func:`mode_trajectory`: real-space elliptical motion of the atoms in one mode.

Gamma itself: with NAC the modes at q = 0 depend on the direction of
approach, so a path point at Gamma is taken a step of 1e-5 (reduced) along
its segment; l^z of the acoustic triplet at exactly Gamma is undefined, so
:func:`gamma_a_branch` starts one step away from Gamma.
"""

from __future__ import annotations

import numpy as np
from phonopy import Phonopy

from .modes import compute_modes
from .units import BOHR_M

__all__ = ["HEXAGONAL_POINTS", "dispersion_along_path", "gamma_a_branch", "mode_trajectory"]

HEXAGONAL_POINTS = {
    "Gamma": (0.0, 0.0, 0.0),
    "M": (0.5, 0.0, 0.0),
    "K": (1.0 / 3.0, 1.0 / 3.0, 0.0),
    "A": (0.0, 0.0, 0.5),
    "L": (0.5, 0.0, 0.5),
    "H": (1.0 / 3.0, 1.0 / 3.0, 0.5),
}
PAPER_PATH = ("Gamma", "M", "K", "Gamma", "A", "L", "H", "A")
_GAMMA_STEP = 1.0e-5


def _check_hexagonal(phonon: Phonopy) -> None:
    a, b, c = phonon.primitive.cell
    la, lb = np.linalg.norm(a), np.linalg.norm(b)
    cos_ab = a @ b / (la * lb)
    if not (np.isclose(la, lb, rtol=1e-4) and np.isclose(cos_ab, -0.5, atol=1e-4)
            and np.allclose([a[2], b[2], c[0], c[1]], 0.0, atol=1e-6 * la)):
        raise ValueError("the high-symmetry path needs a hexagonal cell (a = b, gamma = 120 deg, c along z)")


def _species_projection(phonon: Phonopy, l_atom: np.ndarray) -> tuple[list[str], np.ndarray]:
    symbols = phonon.primitive.symbols
    species = list(dict.fromkeys(symbols))
    onehot = np.array([[s == sp for sp in species] for s in symbols], dtype=float)  # (nat, nspecies)
    return species, l_atom @ onehot


def _k_cartesian_m(phonon: Phonopy, qpoints: np.ndarray) -> np.ndarray:
    """Wave vectors k = 2 pi q in 1/m."""
    return 2.0 * np.pi * qpoints @ np.linalg.inv(phonon.primitive.cell).T / BOHR_M


def dispersion_along_path(phonon: Phonopy, points_per_segment: int = 40, path=PAPER_PATH) -> dict:
    """Frequencies (THz) and l^z (hbar, total and per species) along ``path``."""
    _check_hexagonal(phonon)
    segments, labels = [], [[0, path[0]]]
    for start, end in zip(path[:-1], path[1:]):
        q0, q1 = np.array(HEXAGONAL_POINTS[start]), np.array(HEXAGONAL_POINTS[end])
        t = np.linspace(0.0, 1.0, points_per_segment)[:, None]
        seg = q0 + t * (q1 - q0)
        direction = (q1 - q0) / np.linalg.norm(q1 - q0)
        at_gamma = np.all(np.abs(seg) < 1e-12, axis=1)
        seg[at_gamma & (t[:, 0] == 0.0)] = _GAMMA_STEP * direction
        seg[at_gamma & (t[:, 0] == 1.0)] = -_GAMMA_STEP * direction
        segments.append(seg)
        labels.append([len(segments) * points_per_segment - 1, end])
    qpoints = np.concatenate(segments)
    modes = compute_modes(phonon, qpoints)
    kcart = _k_cartesian_m(phonon, qpoints)
    steps = np.linalg.norm(np.diff(kcart, axis=0), axis=1)
    steps[points_per_segment - 1 :: points_per_segment] = 0.0  # segment joints repeat a point
    species, l_species = _species_projection(phonon, modes.l_z_atom_hbar)
    return {
        "qpoints": qpoints,
        "distance": np.concatenate([[0.0], np.cumsum(steps)]),
        "frequencies_thz": modes.frequencies_thz,
        "l_z_hbar": modes.l_z_hbar,
        "l_z_species_hbar": l_species,
        "species": species,
        "labels": labels,
    }


def gamma_a_branch(phonon: Phonopy, branch: int = 0, npoints: int = 61) -> dict:
    """One branch (index in ascending frequency) along Gamma-A, k_z in units of c*."""
    _check_hexagonal(phonon)
    kz = np.linspace(0.0, 0.5, npoints)
    kz[0] = _GAMMA_STEP
    modes = compute_modes(phonon, np.stack([np.zeros_like(kz), np.zeros_like(kz), kz], axis=1))
    species, l_species = _species_projection(phonon, modes.l_z_atom_hbar[:, branch, :])
    return {
        "kz_c_star": kz,
        "frequencies_thz": modes.frequencies_thz[:, branch],
        "l_z_hbar": modes.l_z_hbar[:, branch],
        "l_z_species_hbar": l_species,
        "species": species,
        "branch": branch,
    }


def mode_trajectory(
    phonon: Phonopy, q_reduced=(0.0, 0.0, 0.091), branch: int = 0, nframes: int = 33, amplitude_m: float = 2.0e-11
) -> dict:
    """Atomic positions over one period of mode (q, branch).

    u_kappa(t) = Re[A e_kappa / sqrt(m_kappa) exp(i (2 pi q.r_kappa - omega t))], with A
    chosen so that the largest displacement is ``amplitude_m`` (a display scale;
    the shape and sense of the ellipses are the physics).
    """
    modes = compute_modes(phonon, np.array([q_reduced], dtype=float))
    prim = phonon.primitive
    evec = modes.eigenvectors[0, :, branch].reshape(-1, 3) / np.sqrt(prim.masses)[:, None]
    phase = np.exp(2j * np.pi * prim.scaled_positions @ np.asarray(q_reduced, dtype=float))
    wt = np.linspace(0.0, 2.0 * np.pi, nframes)
    disp = np.real((evec * phase[:, None])[None] * np.exp(-1j * wt)[:, None, None])  # (nframes, nat, 3)
    disp *= amplitude_m / np.abs(disp).max()
    equilibrium = prim.positions * BOHR_M
    return {
        "positions_m": equilibrium[None] + disp,
        "equilibrium_m": equilibrium,
        "symbols": list(prim.symbols),
        "l_z_atom_hbar": modes.l_z_atom_hbar[0, branch],
        "l_z_hbar": float(modes.l_z_hbar[0, branch]),
        "frequency_thz": float(modes.frequencies_thz[0, branch]),
        "q_reduced": np.asarray(q_reduced, dtype=float),
        "branch": branch,
        "amplitude_m": amplitude_m,
    }
