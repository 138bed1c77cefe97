"""Phonon modes with their operator matrices: angular momentum, velocity and magnetic moment.

For a batch of q points (reduced coordinates) D(q) comes from phonopy's
batched C kernel and dD/dq_j (Cartesian, per 1/bohr) from phonopy's analytic
``DerivativeOfDynamicalMatrix``, both with Gonze NAC when the phonopy object
carries NAC parameters.

Every operator is kept as a full matrix between branches (THEORY.md
sections 2, 3, 5), so sums can be traces over degenerate subspaces:

* ``angular_momentum`` M^alpha_{ss'} (units of hbar);
* ``velocity`` V^j_{ss'} = e_s^dagger (dD/dk_j) e_s' / (omega_s + omega_s') (m/s);
  inside one subspace it is THEORY's dD/dk / (2 omega_S), whose diagonal is
  the group velocity;
* ``magnetic_moment`` mu^z_{ss'} (units of mu_N), when Born charges are known.

Per-branch values (``l_hbar``, ``group_velocity_m_s``, ``mu_z_mu_n``) are
eigenvalues of each operator restricted to its degenerate subspace, so no
basis choice can change them (:mod:`aiida_llpam.physics.degeneracy`).

Units: frequencies in THz, l in hbar, velocities in m/s, mu in mu_N.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
from phonopy import Phonopy
from phonopy.harmonic.derivative_dynmat import DerivativeOfDynamicalMatrix
from phonopy.harmonic.dynamical_matrix import get_dynamical_matrices_at_qpoints

from .angular_momentum import angular_momentum_matrices, atom_projected_lz
from .degeneracy import DEGENERACY_TOLERANCE_THZ, block_eigenvalues, diagonalise_in_blocks, subspace_labels
from .magnetic_moment import magnetic_moment_kernels, magnetic_moment_matrix
from .units import THZ_BOHR_TO_M_S

__all__ = ["PhononModes", "compute_modes", "dynamical_matrices", "iter_modes", "modes_from_eigensystem", "mu_kernels"]


@dataclasses.dataclass(frozen=True)
class PhononModes:
    """Modes at ``qpoints``; branch index ascending in frequency."""

    qpoints: np.ndarray  # (nq, 3) reduced
    frequencies_thz: np.ndarray  # (nq, nb)
    eigenvectors: np.ndarray  # (nq, nb, nb), column s is branch s
    subspaces: np.ndarray  # (nq, nb) degenerate-subspace label of each branch
    angular_momentum: np.ndarray  # (nq, 3, nb, nb) M^alpha_{ss'}, hbar
    velocity_m_s: np.ndarray  # (nq, 3, nb, nb) V^j_{ss'}, m/s
    magnetic_moment: np.ndarray | None  # (nq, nb, nb) mu^z_{ss'}, mu_N; None without Born charges

    @property
    def same_subspace(self) -> np.ndarray:
        """(nq, nb, nb) True where two branches belong to one degenerate subspace."""
        return self.subspaces[:, :, None] == self.subspaces[:, None, :]

    @property
    def l_hbar(self) -> np.ndarray:
        """(nq, nb, 3) phonon polarisation per branch (basis-free at degeneracies), units of hbar."""
        return np.stack([block_eigenvalues(self.angular_momentum[:, a], self.subspaces) for a in range(3)], axis=-1)

    @property
    def l_z_hbar(self) -> np.ndarray:
        """(nq, nb) l^z per branch, units of hbar."""
        return block_eigenvalues(self.angular_momentum[:, 2], self.subspaces)

    @property
    def l_z_atom_hbar(self) -> np.ndarray:
        """(nq, nb, nat) atom-projected l^z in the basis of definite l^z inside each subspace; sums to ``l_z_hbar``."""
        _, unitary = diagonalise_in_blocks(self.angular_momentum[:, 2], self.subspaces)
        return atom_projected_lz(self.eigenvectors @ unitary)

    @property
    def group_velocity_m_s(self) -> np.ndarray:
        """(nq, nb, 3) d omega / d k per branch (degenerate perturbation theory), m/s."""
        return np.stack([block_eigenvalues(self.velocity_m_s[:, j], self.subspaces) for j in range(3)], axis=-1)

    @property
    def group_velocity_z_m_s(self) -> np.ndarray:
        return block_eigenvalues(self.velocity_m_s[:, 2], self.subspaces)

    @property
    def mu_z_mu_n(self) -> np.ndarray:
        """(nq, nb) phonon magnetic moment mu^z per branch, units of mu_N (NaN without Born charges)."""
        if self.magnetic_moment is None:
            return np.full(self.frequencies_thz.shape, np.nan)
        return block_eigenvalues(self.magnetic_moment, self.subspaces)


def dynamical_matrices(phonon: Phonopy, qpoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """D(q) (nq, nb, nb) and the analytic dD/dq_j (nq, 3, nb, nb), Cartesian per 1/bohr (q without 2 pi)."""
    dynmat = get_dynamical_matrices_at_qpoints(phonon.dynamical_matrix, qpoints)
    derivative = DerivativeOfDynamicalMatrix(phonon.dynamical_matrix)
    ddm = np.empty((len(qpoints), 3) + dynmat.shape[1:], dtype=complex)
    for i, q in enumerate(qpoints):
        derivative.run(q)
        ddm[i] = derivative.d_dynamical_matrix
    return dynmat, ddm


def modes_from_eigensystem(
    qpoints: np.ndarray,
    frequencies_thz: np.ndarray,
    eigenvectors: np.ndarray,
    ddm: np.ndarray,
    factor: float,
    mu_kernels: np.ndarray | None = None,
    degeneracy_tolerance_thz: float = DEGENERACY_TOLERANCE_THZ,
) -> PhononModes:
    """Operator matrices from eigenpairs and dD/dq; ``factor`` converts sqrt(eigenvalue) to THz.

    Exposed so that a model dynamical matrix (tests) goes through exactly the
    code the crystal does.
    """
    nu_sum = frequencies_thz[:, :, None] + frequencies_thz[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        # d nu/dq = factor^2 d lambda/dq / (2 nu); pairs with a non-positive frequency carry no velocity
        inv = np.where(nu_sum > 0.0, factor**2 / nu_sum, 0.0)
    vmat = np.einsum("qas,qjab,qbt->qjst", eigenvectors.conj(), ddm, eigenvectors, optimize=True)
    return PhononModes(
        qpoints=np.asarray(qpoints, dtype=float),
        frequencies_thz=frequencies_thz,
        eigenvectors=eigenvectors,
        subspaces=subspace_labels(frequencies_thz, degeneracy_tolerance_thz),
        angular_momentum=angular_momentum_matrices(eigenvectors),
        velocity_m_s=vmat * inv[:, None] * THZ_BOHR_TO_M_S,
        magnetic_moment=None if mu_kernels is None else magnetic_moment_matrix(eigenvectors, mu_kernels),
    )


def mu_kernels(phonon: Phonopy) -> np.ndarray | None:
    """Magnetic-moment kernels from the phonopy object's Born charges; None without NAC parameters."""
    nac = phonon.nac_params
    if not nac or nac.get("born") is None:
        return None
    return magnetic_moment_kernels(nac["born"], phonon.primitive.masses)


def _modes_of_batch(phonon: Phonopy, qpoints: np.ndarray, degeneracy_tolerance_thz: float) -> PhononModes:
    dynmat, ddm = dynamical_matrices(phonon, qpoints)
    eigenvalues, eigenvectors = np.linalg.eigh(dynmat)
    factor = phonon.unit_conversion_factor
    frequencies = np.sign(eigenvalues) * np.sqrt(np.abs(eigenvalues)) * factor
    return modes_from_eigensystem(
        qpoints, frequencies, eigenvectors, ddm, factor, mu_kernels(phonon), degeneracy_tolerance_thz
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
