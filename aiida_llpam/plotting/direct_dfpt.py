"""The model against direct DFPT, drawn from the arrays of a ``direct_dfpt_check`` table (no AiiDA)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .style import WIDTH, new_figure, styled


def q_label(q_reduced) -> str:
    """``q = (0.1, 0, 0)``: ph.x writes q in Cartesian units, so reduced coordinates come back with round-off (8e-11
    for 0); 4 decimals, and + 0.0 turns -0 into 0."""
    return f"q = ({', '.join(f'{x:g}' for x in np.round(np.asarray(q_reduced, dtype=float), 4) + 0.0)})"


@styled
def plot_direct_check(table: dict, path, sources: dict | None = None) -> Path:
    """Left: model minus direct DFPT (cm^-1) for every branch against its direct frequency, one marker per q point.
    Right: the three acoustic branches, model (line) and direct (markers) per q point, with the raw direct ones.
    Writes ``path.json`` beside it (panel, caption, ``sources``), as the paper's panels have."""
    path = Path(path)
    qpoints = np.asarray(table["qpoints"])
    model, direct, raw = (
        np.asarray(table[key]) for key in ("model_frequencies_cm", "direct_frequencies_cm", "raw_frequencies_cm")
    )
    fig, (left, right) = new_figure((2 * WIDTH, 2.6), ncols=2)
    labels = [q_label(q) for q in qpoints]
    for i, label in enumerate(labels):
        left.plot(direct[i], model[i] - direct[i], "o", ms=3, label=label)
    left.axhline(0.0, color="0.6", lw=0.5)
    left.set_xlabel(r"direct DFPT frequency (cm$^{-1}$)")
    left.set_ylabel(r"model $-$ direct (cm$^{-1}$)")
    left.legend(frameon=False, fontsize=5)
    x = np.arange(len(qpoints))
    for branch, marker in zip(range(3), ("o", "s", "^")):
        right.plot(x, model[:, branch], color=f"C{branch}", lw=0.8, label=f"model {branch + 1}")
        right.plot(x, direct[:, branch], marker, color=f"C{branch}", ms=4, ls="none", label=f"direct {branch + 1}")
        right.plot(x, raw[:, branch], marker, color=f"C{branch}", ms=4, ls="none", mfc="none", alpha=0.5)
    right.set_xticks(x, labels, rotation=30, ha="right", fontsize=5)
    right.set_ylabel(r"acoustic branches (cm$^{-1}$)")
    right.set_title("open markers: raw direct DFPT (no ASR)", fontsize=6)
    fig.subplots_adjust(wspace=0.35)
    right.legend(frameon=False, fontsize=5)
    fig.savefig(path, bbox_inches="tight")
    caption = "The stored model against ph.x run directly at q points off the DFPT mesh (on-site ASR correction)."
    sidecar = {"panel": "direct_dfpt_check", "caption": caption, "sources": sources or {}}
    Path(f"{path}.json").write_text(json.dumps(sidecar, indent=1) + "\n")
    return path
