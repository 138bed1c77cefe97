"""The DFPT convergence figure, drawn from plain arrays (no AiiDA).

:func:`plot_dfpt_convergence` takes the arrays of a ``DfptConvergenceWorkChain`` table
(``read_output(node)``: settings, sums with ``*_kmesh_uncertainty``, ``gamma_frequencies_cm``,
attribute ``labels``), writes one file and returns its path. The k-mesh convergence of one run is a
panel of :mod:`aiida_llpam.plotting.panels` (``aiida-llpam figures``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .panels import SYMBOLS
from .style import WIDTH, new_figure, styled

#: Gamma branches drawn (ascending order, 0-2 acoustic): the four lowest optical modes and the highest
OPTICAL_BRANCHES = (3, 4, 5, 6, -1)


@styled
def plot_dfpt_convergence(table: dict, path) -> Path:
    """The DFPT table against the setting label: gamma^NL_zz, the chi pieces, gamma^M (error bars: the k-mesh
    uncertainty) and Gamma frequencies, each relative to the last label (taken as the reference); where the table
    has them (tables made since 2026-12-04), the sound velocities and the DFPT's raw acoustic frequencies at Gamma."""
    path = Path(path)
    labels = list(table["labels"])
    x = np.arange(len(labels))
    acoustic_rows = "sound_velocities_m_s" in table
    fig, axes = new_figure(
        (2 * WIDTH, 6.9 if acoustic_rows else 4.6), nrows=3 if acoustic_rows else 2, ncols=2, sharex=True
    )
    panels = (
        (axes[0, 0], ("gamma_nl_zz",), r"$\gamma^{NL}_{zz}$ (J s K$^{-1}$ m$^{-2}$)"),
        (axes[0, 1], ("chi_diagonal", "chi_offdiagonal_interband", "chi_offdiagonal_pair"), r"$\chi$ (kg/m)"),
        (axes[1, 0], ("gamma_m",), r"$\gamma^M$ (A/K)"),
    )
    for ax, names, ylabel in panels:
        for shift, name in enumerate(names):
            ax.errorbar(
                x + 0.06 * (shift - (len(names) - 1) / 2),
                table[name],
                yerr=table[f"{name}_kmesh_uncertainty"],
                marker="o",
                ms=3,
                capsize=2,
                lw=0.8,
                label=SYMBOLS[name],
            )
        ax.set_ylabel(ylabel)
        if len(names) > 1:
            ax.legend(frameon=False)
    ax = axes[1, 1]
    freqs = np.asarray(table["gamma_frequencies_cm"])
    for branch in OPTICAL_BRANCHES:
        column = freqs[:, branch]
        ax.plot(
            x,
            column - column[-1],
            marker="o",
            ms=3,
            lw=0.8,
            label=f"branch {branch % freqs.shape[1] + 1}: {column[-1]:.1f}",
        )
    ax.axhline(0.0, color="0.6", lw=0.5)
    ax.set_ylabel(f"$\\omega_\\Gamma - \\omega_\\Gamma$({labels[-1]}) (cm$^{{-1}}$)")
    ax.legend(
        frameon=False, fontsize=5, loc="lower left", title=f"TO at $\\Gamma$, {labels[-1]} value", title_fontsize=5
    )
    # the acoustic check is an absolute number (negative: imaginary), so it gets its own axis
    near = ax.twinx()
    near.plot(x, np.asarray(table["near_gamma_lowest_frequency_cm"]), marker="s", ms=3, lw=0.8, ls="--", color="k")
    near.set_ylabel("lowest next to $\\Gamma$ (cm$^{-1}$, dashed)")
    if acoustic_rows:
        _plot_acoustic(axes[2, 0], axes[2, 1], x, table)
    settings = [
        f"{label}\n{table['ecutwfc_ry'][i]:.0f} Ry\nk{''.join(str(int(n)) for n in table['kpoints_mesh'][i])} "
        f"q{''.join(str(int(n)) for n in table['qpoints_mesh'][i])}"
        for i, label in enumerate(labels)
    ]
    for ax in axes[-1]:
        ax.set_xticks(x, settings, fontsize=6)
    temperature = float(np.asarray(table["temperature_k"])[0])
    fig.suptitle(f"DFPT convergence at {temperature:.0f} K (error bars: k-mesh uncertainty of the sums)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    return path


def _plot_acoustic(velocity_ax, violation_ax, x, table: dict) -> None:
    """Sound velocities (km/s; TA1, TA2, LA along z, x, y) and the raw acoustic frequencies at Gamma (cm^-1)."""
    velocities = np.asarray(table["sound_velocities_m_s"]) / 1e3  # (row, direction z/x/y, branch ascending)
    for d, (direction, marker) in enumerate(zip("zxy", "os^")):
        for b, (branch, color) in enumerate(zip(("TA1", "TA2", "LA"), ("C0", "C1", "C2"))):
            velocity_ax.plot(
                x, velocities[:, d, b], marker=marker, ms=3, lw=0.8, color=color, label=f"{branch} along {direction}"
            )
    velocity_ax.set_ylabel("sound velocity (km/s)")
    velocity_ax.legend(frameon=False, fontsize=5, ncols=3)
    violation = np.asarray(table["gamma_asr_violation_cm"])
    for branch in range(violation.shape[1]):
        violation_ax.plot(x, violation[:, branch], marker="o", ms=3, lw=0.8, label=f"acoustic {branch + 1}")
    violation_ax.axhline(0.0, color="0.6", lw=0.5)
    violation_ax.set_ylabel("raw acoustic at $\\Gamma$ (cm$^{-1}$)")
    violation_ax.legend(frameon=False, fontsize=5, title="ASR violation, before any sum rule", title_fontsize=5)
