"""Mode data along lines in the Brillouin zone, for the paper's Fig. 2(d-f).

* :func:`band_path`: the paper's Gamma-M-K-Gamma-A-L-H-A for a hexagonal
  lattice; seekpath's path (Hinuma et al. 2017) for any other cell given in
  seekpath's standard orientation; otherwise Gamma to the half reciprocal
  vectors and back (never an error: the figure step runs after the DFPT);
* :func:`dispersion_along_path`: frequencies, l (x, y, z), l^z per species
  and mu^z along that path;
* :func:`gamma_a_branch`: one branch from Gamma along the third reciprocal
  vector to the zone boundary (Gamma-A for hexagonal and tetragonal cells);
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

__all__ = ["HEXAGONAL_POINTS", "at_gamma", "band_path", "dispersion_along_path", "gamma_a_branch", "mode_trajectory"]

HEXAGONAL_POINTS = {
    "Gamma": (0.0, 0.0, 0.0),
    "M": (0.5, 0.0, 0.0),
    "K": (1.0 / 3.0, 1.0 / 3.0, 0.0),
    "A": (0.0, 0.0, 0.5),
    "L": (0.5, 0.0, 0.5),
    "H": (1.0 / 3.0, 1.0 / 3.0, 0.5),
}
PAPER_PATH = ("Gamma", "M", "K", "Gamma", "A", "L", "H", "A")
#: reduced units: the path stands this far off Gamma along each segment, so that the NAC has a direction there
_GAMMA_STEP = 1.0e-5


def at_gamma(qpoints_reduced: np.ndarray) -> np.ndarray:
    """The rows of :func:`dispersion_along_path`'s q points (reduced) that stand for Gamma (``_GAMMA_STEP`` off it)."""
    return np.linalg.norm(np.asarray(qpoints_reduced, dtype=float), axis=1) <= 2 * _GAMMA_STEP


def _is_hexagonal(cell: np.ndarray) -> bool:
    a, b, c = cell
    la, lb = np.linalg.norm(a), np.linalg.norm(b)
    cos_ab = a @ b / (la * lb)
    return bool(
        np.isclose(la, lb, rtol=1e-4)
        and np.isclose(cos_ab, -0.5, atol=1e-4)
        and np.allclose([a[2], b[2], c[0], c[1]], 0.0, atol=1e-6 * la)
    )


def _seekpath_points(phonon: Phonopy) -> tuple[dict, list] | None:
    """seekpath's points in our reduced coordinates, if our cell is its primitive cell up to an integer basis change."""
    import seekpath

    prim = phonon.primitive
    result = seekpath.get_path((prim.cell, prim.scaled_positions, prim.numbers), with_time_reversal=True)
    basis = np.asarray(result["primitive_lattice"]) @ np.linalg.inv(prim.cell)
    if not np.allclose(basis, np.rint(basis), atol=1e-3) or abs(round(np.linalg.det(basis))) != 1:
        return None  # rotated with respect to seekpath's standard orientation
    # seekpath's lattice is B @ ours, so reciprocal reduced coordinates map as q = p @ B^-T
    to_ours = np.linalg.inv(np.rint(basis)).T
    points = {label: tuple(np.asarray(p) @ to_ours) for label, p in result["point_coords"].items()}
    return points, [tuple(segment) for segment in result["path"]]


def band_path(phonon: Phonopy) -> tuple[dict, list[tuple[str, str]], str]:
    """(points in reduced coordinates, segments, name of the choice) for the dispersion figure."""
    if _is_hexagonal(phonon.primitive.cell):
        return HEXAGONAL_POINTS, list(zip(PAPER_PATH[:-1], PAPER_PATH[1:])), "hexagonal (the paper's path)"
    found = _seekpath_points(phonon)
    if found is not None:
        points, segments = found
        points["Gamma"] = points.pop("GAMMA", (0.0, 0.0, 0.0))
        segments = [tuple("Gamma" if p == "GAMMA" else p for p in seg) for seg in segments]
        return points, segments, "seekpath (Hinuma et al. 2017)"
    points = {"Gamma": (0.0, 0.0, 0.0), "X": (0.5, 0.0, 0.0), "Y": (0.0, 0.5, 0.0), "Z": (0.0, 0.0, 0.5)}
    return (
        points,
        [("Gamma", "X"), ("X", "Gamma"), ("Gamma", "Y"), ("Y", "Gamma"), ("Gamma", "Z")],
        "half reciprocal vectors",
    )


def _species_projection(phonon: Phonopy, l_atom: np.ndarray) -> tuple[list[str], np.ndarray]:
    symbols = phonon.primitive.symbols
    species = list(dict.fromkeys(symbols))
    onehot = np.array([[s == sp for sp in species] for s in symbols], dtype=float)  # (nat, nspecies)
    return species, l_atom @ onehot


def _k_cartesian_m(phonon: Phonopy, qpoints: np.ndarray) -> np.ndarray:
    """Wave vectors k = 2 pi q in 1/m."""
    return 2.0 * np.pi * qpoints @ np.linalg.inv(phonon.primitive.cell).T / BOHR_M


def dispersion_along_path(phonon: Phonopy, points_per_segment: int = 40) -> dict:
    """Frequencies (THz), l (hbar, x/y/z and l^z per species) and mu^z (mu_N) along :func:`band_path`.

    ``labels`` are [index, label] of every segment end; a label "A|B" marks a jump.
    """
    points, path, lattice = band_path(phonon)
    segments, labels = [], [[0, path[0][0]]]
    for start, end in path:
        if labels[-1][1] != start:  # a jump in the path: join the two labels at the same tick
            labels[-1][1] = f"{labels[-1][1]}|{start}"
        q0, q1 = np.array(points[start], dtype=float), np.array(points[end], dtype=float)
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
    steps[points_per_segment - 1 :: points_per_segment] = 0.0  # segment joints repeat a point (or jump)
    species, l_species = _species_projection(phonon, modes.l_z_atom_hbar)
    return {
        "qpoints": qpoints,
        "distance": np.concatenate([[0.0], np.cumsum(steps)]),
        "frequencies_thz": modes.frequencies_thz,
        "l_hbar": modes.l_hbar,
        "l_z_species_hbar": l_species,
        "mu_z_mu_n": modes.mu_z_mu_n,
        "species": species,
        "labels": labels,
        "lattice": lattice,
    }


def gamma_a_branch(phonon: Phonopy, branch: int = 0, npoints: int = 61) -> dict:
    """One branch (index in ascending frequency) from Gamma to half the third reciprocal vector (units of c*)."""
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
