"""The one place that defines the k mesh for the Brillouin-zone sums.

A Gamma-centred regular mesh in reduced coordinates of the reciprocal
lattice. It is folded into an irreducible set with the point-group operations
that leave every summand of the response invariant: proper rotations that map
the Cartesian z axis onto +z or -z (l^z v^z, l^z l^z and |M_z|^2 are then
invariant), plus time reversal. Improper operations are never used: they flip
l^z relative to v^z, so the cancellation that makes gamma^NL vanish in a
centrosymmetric or mirror-symmetric crystal must happen in the sum itself.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["KMesh", "make_kmesh", "z_preserving_rotations"]


@dataclasses.dataclass(frozen=True)
class KMesh:
    """A regular mesh and its irreducible part."""

    mesh: tuple[int, int, int]
    addresses: np.ndarray  # (N, 3) integer grid addresses, index = a0 + n0*(a1 + n1*a2)
    ir_index: np.ndarray  # (Nir,) indices of the irreducible points in the full mesh
    ir_weights: np.ndarray  # (Nir,) multiplicities, summing to N
    full_to_ir: np.ndarray  # (N,) position in the irreducible list of each full-mesh point
    rotations_cartesian: np.ndarray  # (ng, 3, 3) the proper rotations folded with (time reversal besides)

    @property
    def num_points(self) -> int:
        return int(np.prod(self.mesh))

    @property
    def qpoints(self) -> np.ndarray:
        """All mesh points, reduced coordinates in [-1/2, 1/2)."""
        return _reduced(self.addresses, self.mesh)

    @property
    def ir_qpoints(self) -> np.ndarray:
        return self.qpoints[self.ir_index]


def _reduced(addresses: np.ndarray, mesh) -> np.ndarray:
    q = addresses / np.asarray(mesh, dtype=float)
    return q - np.floor(q + 0.5)


def z_preserving_rotations(rotations: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    """Keep the proper rotations (reduced, real space) that map z to +-z in Cartesian."""
    lat_t = lattice.T  # columns are lattice vectors: r_cart = lat_t @ r_red
    keep = []
    for rot in rotations:
        cart = lat_t @ rot @ np.linalg.inv(lat_t)
        if np.linalg.det(rot) > 0 and np.allclose(np.abs(cart[:, 2]), [0.0, 0.0, 1.0], atol=1e-6):
            keep.append(rot)
    return np.array(keep, dtype=int).reshape(-1, 3, 3)


def make_kmesh(mesh, rotations: np.ndarray | None = None, lattice: np.ndarray | None = None) -> KMesh:
    """Gamma-centred ``mesh`` folded with the z-preserving proper rotations and time reversal.

    ``rotations`` are real-space point-group operations in reduced coordinates
    (phonopy's ``primitive_symmetry.pointgroup_operations``), ``lattice`` the
    row-vector lattice they refer to. Without them only time reversal is used.
    """
    mesh = tuple(int(n) for n in mesh)
    if len(mesh) != 3 or min(mesh) < 1:
        raise ValueError(f"k mesh must be three positive integers, got {mesh}")
    n = np.array(mesh)
    addresses = np.array([a[::-1] for a in np.ndindex(*mesh[::-1])], dtype=int)  # a0 fastest

    ops, cartesian = [np.eye(3, dtype=int)], [np.eye(3)]
    if rotations is not None:
        lat_t = np.asarray(lattice, dtype=float).T
        for rot in z_preserving_rotations(np.asarray(rotations), np.asarray(lattice, dtype=float)):
            recip = np.rint(np.linalg.inv(rot).T).astype(int)  # q' = R^-T q keeps q.r invariant
            # the operation must map the grid onto itself
            on_grid = n[:, None] * recip / n[None, :]
            if np.allclose(on_grid, np.rint(on_grid)) and not any(np.array_equal(recip, op) for op in ops):
                ops.append(recip)
                cartesian.append(lat_t @ rot @ np.linalg.inv(lat_t))
    ops = np.array(ops)
    ops = np.concatenate([ops, -ops])  # time reversal

    images = np.einsum("gij,nj->gni", ops * (n[:, None] / n[None, :])[None], addresses)
    images = np.rint(images).astype(int) % n
    index = images[..., 0] + n[0] * (images[..., 1] + n[1] * images[..., 2])
    representative = index.min(axis=0)
    ir_index, full_to_ir, weights = np.unique(representative, return_inverse=True, return_counts=True)
    return KMesh(
        mesh=mesh,
        addresses=addresses,
        ir_index=ir_index,
        ir_weights=weights,
        full_to_ir=full_to_ir,
        rotations_cartesian=np.array(cartesian),
    )
