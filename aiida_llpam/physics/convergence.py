"""Convergence of the k sums: a mesh sequence refined until the headline sums stop moving.

The sums near Gamma converge slowly: the acoustic modes carry l = +-1 and a
Bose factor ~ kT/(hbar omega), and the Gamma point itself is left out, so the
error falls roughly as 1/N with an odd/even ripple (quartz, q 3x3x2, 300 K:
gamma^NL_zz moves 3 % between 20^3 and 24^3 and 1 % between 24^3 and 32^3).
:func:`converge` sums on ``mesh`` and then on each of ``convergence_meshes`` in
turn, and stops at the first mesh where every tracked quantity at the
reference temperature changed by less than the tolerance (relative) from the
previous mesh. The change of that last step is the stated k-mesh uncertainty.
Sums that symmetry makes vanish (gamma^NL_zz and gamma^M of an achiral crystal
whose group forbids zz, e.g. silicon) are round-off of ~1e-31 that changes by
hundreds of percent between meshes: they stay in the table but are not tracked
(``tracked``; :func:`tracked_by_symmetry`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

__all__ = ["TRACKED", "MeshConvergence", "converge", "tracked_by_symmetry"]

#: the quantities whose convergence is checked (PamResponse attributes); gamma_m is NaN without Born charges
TRACKED = ("gamma_nl_zz", "chi_diagonal", "chi_offdiagonal_interband", "chi_offdiagonal_pair", "gamma_m")
#: the tracked sums that are zz components of gamma^NL-like (polar -> axial) tensors: symmetry may forbid them. The
#: chi pieces are even in l (and chi_OD,N holds interband matrix elements of L, which inversion does not kill).
ZZ_AXIAL = ("gamma_nl_zz", "gamma_m")


def tracked_by_symmetry(zz_allowed: bool) -> tuple[str, ...]:
    """The :data:`TRACKED` sums symmetry allows; ``zz_allowed``: the crystal's point group allows gamma^NL_zz
    (``analyse_symmetry(...)["gamma_m_allowed"]``)."""
    return TRACKED if zz_allowed else tuple(name for name in TRACKED if name not in ZZ_AXIAL)


@dataclasses.dataclass(frozen=True)
class MeshConvergence:
    """The convergence table: one row per mesh tried, the tracked values at ``temperature_k``."""

    meshes: np.ndarray  # (m, 3)
    temperature_k: float
    tolerance: float
    values: dict[str, np.ndarray]  # name -> (m,)
    tracked: tuple[str, ...] = TRACKED  # the sums whose change decides convergence

    @property
    def relative_change(self) -> np.ndarray:
        """(m,) largest |change| / |value| over the tracked quantities from the previous mesh; NaN for the first."""
        table = np.array([self.values[name] for name in self.tracked])  # (quantities, m)
        change = np.abs(np.diff(table, axis=1)) / np.abs(table[:, 1:])
        return np.concatenate([[np.nan], np.nanmax(change, axis=0)]) if table.shape[1] > 1 else np.array([np.nan])

    @property
    def converged(self) -> bool:
        """True when the last step changed every tracked quantity by less than the tolerance (False: one mesh only)."""
        return bool(len(self.meshes) > 1 and self.relative_change[-1] < self.tolerance)

    def uncertainty(self, name: str) -> float:
        """|change| of ``name`` in the last step (its unit); NaN with one mesh."""
        column = self.values[name]
        return float(abs(column[-1] - column[-2])) if len(column) > 1 else float("nan")

    @classmethod
    def from_arrays(cls, arrays: dict) -> MeshConvergence:
        """The table of the registry's stored ``convergence_*`` arrays (the inverse of :meth:`as_arrays`); tables
        stored before ``convergence_tracked`` tracked every sum."""
        mask = np.asarray(arrays.get("convergence_tracked", np.ones(len(TRACKED))), dtype=bool)
        return cls(
            meshes=np.asarray(arrays["convergence_meshes"]),
            temperature_k=float(arrays["convergence_temperature_k"]),
            tolerance=float(arrays["convergence_tolerance"]),
            values={name: np.asarray(arrays[f"convergence_{name}"], dtype=float) for name in TRACKED},
            tracked=tuple(name for name, kept in zip(TRACKED, mask) if kept),
        )

    def as_arrays(self) -> dict[str, np.ndarray]:
        """The registry's ``convergence_*`` arrays."""
        arrays = {f"convergence_{name}": np.asarray(column) for name, column in self.values.items()}
        arrays.update(
            convergence_meshes=np.asarray(self.meshes),
            convergence_temperature_k=np.asarray(self.temperature_k),
            convergence_tolerance=np.asarray(self.tolerance),
            convergence_max_relative_change=self.relative_change,
            convergence_converged=np.asarray(int(self.converged)),
            convergence_tracked=np.array([int(name in self.tracked) for name in TRACKED]),
        )
        return arrays


def converge(
    sums_on: Callable,
    settings,
    report: Callable[[str], None] = lambda _: None,
    tracked: tuple[str, ...] = TRACKED,
):
    """(the result on the last mesh summed, its :class:`MeshConvergence`).

    ``sums_on(mesh)`` returns a PamResponse on that mesh; ``settings`` is the
    ResponseSettings (``mesh``, ``convergence_meshes``, tolerance, temperature).
    ``report`` receives one line per mesh. ``tracked``: the sums whose change decides convergence.
    """
    meshes = [settings.mesh, *settings.convergence_meshes]
    it = int(np.argmin(np.abs(settings.temperatures_k - settings.convergence_temperature_k)))
    values: dict[str, list[float]] = {name: [] for name in TRACKED}
    for count, mesh in enumerate(meshes, start=1):
        result = sums_on(mesh)
        for name in TRACKED:
            values[name].append(float(getattr(result, name)[it]))
        table = MeshConvergence(
            np.array(meshes[:count]),
            float(settings.temperatures_k[it]),
            settings.convergence_tolerance,
            {name: np.array(column) for name, column in values.items()},
            tracked,
        )
        line = f"k mesh {'x'.join(map(str, mesh))}: {tracked[0]} {values[tracked[0]][-1]:.4e}"
        report(line + (f", largest relative change {table.relative_change[-1]:.2%}" if count > 1 else ""))
        if table.converged:
            break
    return result, table
