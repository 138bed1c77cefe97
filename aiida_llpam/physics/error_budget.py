"""The error budget of the headline numbers: one row per source of uncertainty, each with its size and method.

Every row is a relative size (fraction of the headline value) per quantity, NaN where the source was not
measured for that quantity. The total is the root of the sum of squares of the measured rows, with the rows
left unmeasured named beside it: a total over fewer sources than the table lists is a lower bound.

Quantities (SI, at the reference temperature of the run's convergence table, 300 K by default):
gamma^NL_zz and gamma^NL_xx (J s K^-1 m^-2), chi_D, chi_OD,N, chi_OD,P (kg/m), gamma^M (A/K), and the three
acoustic sound velocities (m/s) along z, x and y (``acoustic`` output order: ascending per direction).
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = [
    "HEADLINES",
    "PROBE_DIRECTIONS",
    "BudgetRow",
    "ErrorBudget",
    "headline_values",
    "relative_spread",
    "velocity_probes",
]

#: the headline quantities, in table order
HEADLINES = (
    "gamma_nl_zz",
    "gamma_nl_xx",
    "chi_diagonal",
    "chi_offdiagonal_interband",
    "chi_offdiagonal_pair",
    "gamma_m",
    "v_ta1_z",
    "v_ta2_z",
    "v_la_z",
    "v_ta1_x",
    "v_ta2_x",
    "v_la_x",
    "v_ta1_y",
    "v_ta2_y",
    "v_la_y",
)
_VELOCITIES = tuple(name for name in HEADLINES if name.startswith("v_"))
#: reduced directions (of a hexagonal cell, like the default validation q points) along which the direct ph.x point
#: nearest Gamma probes the sound velocities: along c (z); Gamma-K, equivalent to x; Gamma-M, equivalent to y
PROBE_DIRECTIONS = {"z": (0.0, 0.0, 1.0), "x": (1.0, 1.0, 0.0), "y": (1.0, 0.0, 0.0)}


def velocity_probes(qpoints_reduced) -> dict[str, int]:
    """``{axis: index}`` of the q point nearest Gamma along each of :data:`PROBE_DIRECTIONS` (an axis with no point
    along it is left out): chosen by direction, not by position in the list, which a user sets."""
    q = np.asarray(qpoints_reduced, dtype=float).reshape(-1, 3)
    norms = np.linalg.norm(q, axis=1)
    probes = {}
    for axis, direction in PROBE_DIRECTIONS.items():
        unit = np.asarray(direction) / np.linalg.norm(direction)
        along = (norms > 0) & (np.linalg.norm(np.cross(q, unit), axis=1) < 1e-6) & (q @ unit > 0)
        if along.any():
            probes[axis] = int(np.flatnonzero(along)[np.argmin(norms[along])])
    return probes


def headline_values(convergence: dict, gamma_nl: dict, acoustic: dict) -> dict[str, float]:
    """The headline numbers of one run from its outputs ``convergence``, ``gamma_nl`` and ``acoustic`` (arrays).

    The sums are those of the last k mesh of the convergence table at its reference temperature; gamma^NL_xx
    comes from the ``gamma_nl`` output at the stored temperature nearest to it.
    """
    temperature = float(convergence["convergence_temperature_k"])
    values = {name: float(convergence[f"convergence_{name}"][-1]) for name in HEADLINES[:6] if name != "gamma_nl_xx"}
    it = int(np.argmin(np.abs(np.asarray(gamma_nl["temperatures_k"]) - temperature)))
    values["gamma_nl_xx"] = float(np.asarray(gamma_nl["gamma_nl"])[it, 0, 0])
    velocities = np.asarray(acoustic["sound_velocities_m_s"])  # (direction z, x, y; branch ascending)
    for name, value in zip(_VELOCITIES, velocities.reshape(-1)):
        values[name] = float(value)
    return {name: values[name] for name in HEADLINES}


def relative_spread(reference: dict[str, float], others: list[dict[str, float]]) -> dict[str, float]:
    """max_i |other_i - reference| / |reference| per quantity: how far the alternatives move each number."""
    return {
        name: float(max(abs(other[name] - reference[name]) for other in others) / abs(reference[name]))
        for name in HEADLINES
    }


@dataclasses.dataclass(frozen=True)
class BudgetRow:
    """One source: ``relative[name]`` is the size as a fraction of the headline value (NaN: not measured)."""

    source: str
    method: str
    relative: dict[str, float]


@dataclasses.dataclass(frozen=True)
class ErrorBudget:
    """The rows and the headline values they refer to; :meth:`total` adds the measured rows in quadrature."""

    values: dict[str, float]
    rows: tuple[BudgetRow, ...]

    def matrix(self) -> np.ndarray:
        """(rows, quantities) relative sizes, NaN where a row did not measure a quantity."""
        return np.array([[row.relative.get(name, np.nan) for name in HEADLINES] for row in self.rows], dtype=float)

    def total(self) -> np.ndarray:
        """Relative total per quantity: sqrt(sum of squares) over the rows that measured it."""
        return np.sqrt(np.nansum(self.matrix() ** 2, axis=0))

    def unmeasured(self, name: str) -> list[str]:
        """The sources that did not measure quantity ``name`` (the total is a lower bound while any remain)."""
        column = HEADLINES.index(name)
        return [row.source for row, value in zip(self.rows, self.matrix()[:, column]) if np.isnan(value)]

    def lines(self) -> list[str]:
        """The table as text, one line per source and a total; sizes in % of the headline values."""
        matrix, total = self.matrix() * 100, self.total() * 100
        shown = (
            "gamma_nl_zz",
            "gamma_nl_xx",
            "chi_diagonal",
            "chi_offdiagonal_interband",
            "chi_offdiagonal_pair",
            "gamma_m",
            "v_ta1_z",
            "v_ta1_x",
            "v_ta1_y",
        )
        columns = [HEADLINES.index(name) for name in shown]
        short = {
            "gamma_nl_zz": "gNL_zz",
            "gamma_nl_xx": "gNL_xx",
            "chi_diagonal": "chi_D",
            "chi_offdiagonal_interband": "chi_OD,N",
            "chi_offdiagonal_pair": "chi_OD,P",
            "gamma_m": "gamma_M",
        }
        header = f"  {'source':18s}" + "".join(f"{short.get(name, name):>14s}" for name in shown)
        lines = [header, f"  {'value':18s}" + "".join(f"{self.values[name]:14.4g}" for name in shown)]
        for row, sizes in zip(self.rows, matrix):
            cells = "".join(f"{'-':>14s}" if np.isnan(sizes[c]) else f"{sizes[c]:13.2f}%" for c in columns)
            lines.append(f"  {row.source:18s}{cells}")
        lines.append(f"  {'total (quadrature)':18s}" + "".join(f"{total[c]:13.2f}%" for c in columns))
        for row in self.rows:
            lines.append(f"  {row.source}: {row.method}")
        missing = sorted({source for name in shown for source in self.unmeasured(name)})
        if missing:
            lines.append(f"  not measured for every quantity (the total is a lower bound there): {', '.join(missing)}")
        return lines
