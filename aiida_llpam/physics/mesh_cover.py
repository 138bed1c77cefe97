"""A ph.x q mesh put together from the dyn files of other ph.x runs on the same ground state.

Every dyn file of ph.x holds the dynamical matrices of the star of one q, and of the star of -q where time
reversal does not map the star onto itself. A run on a coarse mesh therefore already holds every star of a denser
mesh that contains its points (3x3x2 inside 6x6x2), and single-q runs (``ldisp = .false.``, e.g. a
DirectDfptWorkChain's) hold the others. q2r.x needs each point of the mesh exactly once, with the file that holds
Gamma first; the order of the others does not matter (q2r.x reads every q of every file). Where the files come
from more than one run, they must describe the same crystal: the same header (alat, lattice, positions).

Reduced q are in units of the reciprocal lattice vectors (q . a_i, no 2 pi).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from .dynmat import DynamicalMatrixFile

__all__ = ["MeshCover", "cover_mesh", "irreducible_representatives"]

#: tolerance on a reduced q coordinate times the mesh size: ph.x writes q with 9 decimals in 2 pi/alat
GRID_TOLERANCE = 1e-5
#: tolerance on the header (alat in bohr, lattice and positions in alat) for files of one crystal
HEADER_TOLERANCE = 1e-6


@dataclasses.dataclass(frozen=True)
class MeshCover:
    """Which files make the mesh: ``chosen`` (indices into the files given, Gamma's first), ``duplicates`` (files
    whose star is already covered), ``off_mesh`` (files with a q not on the mesh) and the grid addresses no file
    covers, ``missing`` ((n, 3) integers; reduced q = address / mesh)."""

    mesh: tuple[int, int, int]
    chosen: list[int]
    duplicates: list[int]
    off_mesh: list[int]
    missing: np.ndarray

    @property
    def complete(self) -> bool:
        return not len(self.missing)


def _grid_addresses(q_reduced: np.ndarray, mesh: np.ndarray) -> np.ndarray | None:
    """(n, 3) addresses of ``q_reduced`` folded into [0, mesh), or None if one q is off the mesh."""
    scaled = q_reduced * mesh
    nearest = np.rint(scaled)
    if np.abs(scaled - nearest).max() > GRID_TOLERANCE:
        return None
    return np.mod(nearest.astype(int), mesh)


def _check_same_crystal(files: Sequence[DynamicalMatrixFile], names: Sequence[str]) -> None:
    first = files[0]
    for index, dyn in enumerate(files[1:], start=1):
        same = (
            abs(dyn.alat_bohr - first.alat_bohr) <= HEADER_TOLERANCE
            and dyn.positions_alat.shape == first.positions_alat.shape
            and np.abs(dyn.lattice_alat - first.lattice_alat).max() <= HEADER_TOLERANCE
            and np.abs(dyn.positions_alat - first.positions_alat).max() <= HEADER_TOLERANCE
        )
        if not same:
            raise ValueError(
                f"{names[index]} describes another crystal than {names[0]} (alat, lattice or positions differ): "
                "the files must come from ph.x runs on the same scf"
            )


def cover_mesh(
    mesh: Sequence[int], files: Sequence[DynamicalMatrixFile], names: Sequence[str] | None = None
) -> MeshCover:
    """Choose, in the order given, the files whose stars make the q mesh ``mesh``.

    A file is taken when every q it holds lies on the mesh and none of them is covered yet; a file whose q are all
    covered already is a duplicate (the first one given wins). A file that covers part of what another covers
    means the runs disagree on the symmetry: ValueError, as for files of different crystals. ``names``: how the
    messages call the files (default "dyn file <index>").
    """
    mesh_array = np.array(mesh, dtype=int)
    if mesh_array.shape != (3,) or (mesh_array < 1).any():
        raise ValueError(f"a q mesh is three positive integers, not {list(mesh)}")
    if not files:
        raise ValueError("no dyn file to make the mesh from")
    names = list(names) if names is not None else [f"dyn file {i}" for i in range(len(files))]
    _check_same_crystal(files, names)
    covered = np.full(tuple(mesh_array), -1, dtype=int)
    chosen, duplicates, off_mesh = [], [], []
    for index, dyn in enumerate(files):
        addresses = _grid_addresses(dyn.qpoints_reduced, mesh_array)
        if addresses is None:
            off_mesh.append(index)
            continue
        owners = covered[tuple(addresses.T)]
        if (owners >= 0).all():
            duplicates.append(index)
            continue
        if (owners >= 0).any():
            other = int(owners[owners >= 0][0])
            raise ValueError(
                f"{names[index]} shares some q points of its star with {names[other]} but not all: "
                "the runs disagree on the symmetry of the crystal"
            )
        covered[tuple(addresses.T)] = index
        chosen.append(index)
    gamma_owner = int(covered[0, 0, 0])
    if gamma_owner >= 0:  # q2r.x reads Gamma's file first
        chosen.remove(gamma_owner)
        chosen.insert(0, gamma_owner)
    missing = np.argwhere(covered < 0)
    return MeshCover(tuple(int(n) for n in mesh_array), chosen, duplicates, off_mesh, missing)


def irreducible_representatives(
    addresses: np.ndarray, mesh: Sequence[int], lattice, scaled_positions, numbers, symprec: float = 1e-3
) -> np.ndarray:
    """(m, 3) reduced q, folded into (-1/2, 1/2]: one of ``addresses`` in each class they meet under the crystal's
    point group and time reversal (spglib's irreducible mesh), i.e. the single-q ph.x runs that would cover them.

    Each point is one of ``addresses`` itself, not spglib's representative of its class: where pw.x keeps fewer
    symmetries than spglib finds (a fractional translation that does not fit the FFT grid), ph.x's star of a point
    is a part of the class, and the part still missing is then named by the next call, never a covered point.
    """
    import spglib

    mesh_array = np.array(mesh, dtype=int)
    mapping, grid = spglib.get_ir_reciprocal_mesh(
        mesh_array, (lattice, scaled_positions, numbers), is_shift=[0, 0, 0], is_time_reversal=True, symprec=symprec
    )
    class_of = {tuple(np.mod(address, mesh_array)): int(mapping[i]) for i, address in enumerate(grid)}
    first = {}
    for address in np.asarray(addresses, dtype=int).reshape(-1, 3):
        first.setdefault(class_of[tuple(address)], address)
    reduced = np.array([first[c] / mesh_array for c in sorted(first)], dtype=float).reshape(-1, 3)
    return reduced - np.rint(reduced - 1e-9)
