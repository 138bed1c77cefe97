"""The acoustic region: is the interpolated model stable next to Gamma, and how fast is sound (THEORY.md section 8).

gamma^NL comes from the chiral TA pair next to Gamma, where a broken rotational
invariance leaves a pocket of imaginary frequencies that a band path or a k mesh
can step over (quartz, q 2x2x2: |k_z| < 0.03 c*). The check therefore samples a
sphere of directions at radii from 1e-4 to 5e-2 bohr^-1 (no 2 pi) around Gamma,
and the band path. Sound velocities are nu/|q| of the three lowest branches at
one small |q| along given Cartesian directions.
"""

from __future__ import annotations

import numpy as np
from phonopy import Phonopy
from phonopy.harmonic.dynamical_matrix import get_dynamical_matrices_at_qpoints

from .path import at_gamma
from .units import THZ_BOHR_TO_M_S

__all__ = ["IMAGINARY_TOLERANCE_THZ", "acoustic_region", "frequencies_thz", "near_gamma_qpoints", "sound_velocities"]

#: a mode below -this (THz) counts as imaginary: 1.5e-3 THz = 0.05 cm^-1, above the numerical zero of the
#: acoustic triplet at Gamma (phonopy ASR + Gonze NAC on quartz: -0.014 cm^-1) and far below any physical pocket
IMAGINARY_TOLERANCE_THZ = 1.5e-3
#: Cartesian directions of the stored sound velocities: along c (z), x and y
SOUND_DIRECTIONS = np.eye(3)[[2, 0, 1]]
#: |q| (1/bohr, no 2 pi) of the sound velocity: 2e-3 bohr^-1 = 0.02 c* for quartz, in the linear region
SOUND_PROBE_Q_BOHR = 2.0e-3


def frequencies_thz(phonon: Phonopy, q_cart_bohr: np.ndarray) -> np.ndarray:
    """Frequencies (THz, negative = imaginary) at Cartesian q (1/bohr, no 2 pi), ascending."""
    eigenvalues = np.linalg.eigvalsh(
        get_dynamical_matrices_at_qpoints(phonon.dynamical_matrix, q_cart_bohr @ phonon.primitive.cell.T)
    )
    return np.sign(eigenvalues) * np.sqrt(np.abs(eigenvalues)) * phonon.unit_conversion_factor


def near_gamma_qpoints(num_directions: int = 200, radii_bohr=np.geomspace(1e-4, 5e-2, 12)) -> np.ndarray:
    """Cartesian q (1/bohr): a Fibonacci sphere of directions times each radius."""
    i = np.arange(num_directions) + 0.5
    polar, azimuth = np.arccos(1.0 - 2.0 * i / num_directions), np.pi * (1.0 + 5.0**0.5) * i
    directions = np.stack([np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)], axis=1)
    return (np.asarray(radii_bohr)[:, None, None] * directions[None]).reshape(-1, 3)


def sound_velocities(phonon: Phonopy, directions=SOUND_DIRECTIONS, q_bohr: float = SOUND_PROBE_Q_BOHR) -> np.ndarray:
    """nu/|q| of the three lowest branches (m/s, ascending) along each Cartesian direction, shape (directions, 3)."""
    directions = np.asarray(directions, dtype=float)
    directions = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    return frequencies_thz(phonon, q_bohr * directions)[:, :3] / q_bohr * THZ_BOHR_TO_M_S


def acoustic_region(phonon: Phonopy, path_frequencies_thz: np.ndarray, path_qpoints: np.ndarray | None = None) -> dict:
    """Lowest frequencies (THz) on the path and next to Gamma, imaginary modes counted there, sound velocities (m/s).

    With ``path_qpoints`` (reduced, one per row of ``path_frequencies_thz``) the acoustic triplet at Gamma (the
    path's points next to it, :func:`aiida_llpam.physics.path.at_gamma`) is left
    out of the path's lowest frequency and count: it is zero by the sum rule, and its numerical zero depends on the
    model (-0.06 cm^-1 with the on-site rule on the production quartz), not on the physics next to Gamma.
    """
    near = frequencies_thz(phonon, near_gamma_qpoints())
    path = np.array(path_frequencies_thz, dtype=float)
    if path_qpoints is not None:
        path[at_gamma(path_qpoints), :3] = np.inf
    return {
        "path_lowest_frequency_thz": float(path.min()),
        "near_gamma_lowest_frequency_thz": float(near.min()),
        "num_imaginary_modes": int((path < -IMAGINARY_TOLERANCE_THZ).sum() + (near < -IMAGINARY_TOLERANCE_THZ).sum()),
        "sound_directions": SOUND_DIRECTIONS,
        "sound_velocities_m_s": sound_velocities(phonon),
    }
