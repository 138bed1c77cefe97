"""DFPT convergence of the PAM response (issue 8): what ``workflows/run_dfpt_convergence.py`` does.

:func:`run_dfpt_convergence` runs a DfptConvergenceWorkChain (one PamWorkChain per DFPT setting) in this
interpreter, or with ``show`` reads a finished one, and prints its table (:func:`print_table`) and optionally
draws the figure. Refusals end the process with the reason (``sys.exit``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from aiida import orm
from aiida.engine import run_get_node

from aiida_llpam.calculations.nodes import read_output
from aiida_llpam.plotting.convergence import plot_dfpt_convergence
from aiida_llpam.queries import ResultsError, dfpt_retrieved, dfpt_wall_time_s, load_pam_workchain
from aiida_llpam.workflows.convergence import DfptConvergenceWorkChain
from aiida_llpam.workflows.pam import PamWorkChain

from .runs import load_codes

#: the four points of docs/convergence.md: label -> overrides of the base protocol
VARIATIONS = {
    "fast": {},
    "k333": {"kpoints": [3, 3, 3], "run_relax": False},
    "ecut40": {"ecutwfc": 40, "ecutrho": 320, "run_relax": False},
    "production": {"kpoints": [3, 3, 3], "ph_main": {"qpoints": [3, 3, 2]}},
}


def print_table(table: orm.ArrayData) -> None:
    """The table node as text: settings, sums +- k-mesh uncertainty, Gamma frequencies, wall time."""
    data = read_output(table)
    print(
        f"reference temperature {data['temperature_k'][0]:.0f} K; sums on the last k mesh of each response; "
        "+- = |last k-mesh step|"
    )
    header = (
        f"{'label':12s} {'Ry':>7s} {'k':>5s} {'q':>5s} {'reuse':>5s} {'gamma_nl_zz':>21s} {'chi_D':>21s} "
        f"{'chi_OD,N':>21s} {'chi_OD,P':>21s} {'gamma_m':>21s} {'wall s':>7s}"
    )
    print(header)
    for i, label in enumerate(data["labels"]):
        mesh = ["".join(str(int(n)) for n in data[key][i]) for key in ("kpoints_mesh", "qpoints_mesh")]
        sums = " ".join(
            f"{data[name][i]:10.4e}+-{data[name + '_kmesh_uncertainty'][i]:8.2e}"
            for name in ("gamma_nl_zz", "chi_diagonal", "chi_offdiagonal_interband", "chi_offdiagonal_pair", "gamma_m")
        )
        print(
            f"{label:12s} {data['ecutwfc_ry'][i]:3.0f}/{data['ecutrho_ry'][i]:3.0f} {mesh[0]:>5s} {mesh[1]:>5s} "
            f"{int(data['dfpt_reused'][i]):5d} {sums} {data['wall_time_s'][i]:7.0f}"
        )
    print("cost (s): the point's PamWorkChain, and the ph.x run of its DFPT (for a reused DFPT: paid in its own run)")
    for i, label in enumerate(data["labels"]):
        ph_s = dfpt_wall_time_s(dfpt_retrieved(orm.load_node(data["workchains"][i])))
        print(f"{label:12s} workchain {data['wall_time_s'][i]:7.0f}  ph.x {ph_s:7.0f}")
    print("Gamma frequencies (cm^-1, TO, ascending), the lowest frequency next to Gamma, and the raw acoustic")
    print("frequencies at Gamma before any sum rule (the DFPT's ASR violation):")
    for i, label in enumerate(data["labels"]):
        freqs = " ".join(f"{f:.1f}" for f in data["gamma_frequencies_cm"][i])
        violation = ", ".join(f"{f:.1f}" for f in data.get("gamma_asr_violation_cm", np.full((i + 1, 3), np.nan))[i])
        print(
            f"{label:12s} near Gamma {data['near_gamma_lowest_frequency_cm'][i]:7.2f}  raw acoustic {violation}  "
            f"Gamma {freqs}"
        )
    if "sound_velocities_m_s" not in data:
        return
    print("cell ph.x ran on (A) and sound velocities (km/s; TA1/TA2/LA) along z, x and y:")
    for i, label in enumerate(data["labels"]):
        a, _, c = data["cell_lengths_angstrom"][i]
        velocities = "  ".join(
            f"{direction} " + "/".join(f"{v / 1e3:.2f}" for v in data["sound_velocities_m_s"][i][d])
            for d, direction in enumerate("zxy")
        )
        print(f"{label:12s} a {a:.4f} c {c:.4f}  {velocities}")


def parse_reuse(items: list[str]) -> dict[str, orm.WorkChainNode]:
    """``LABEL=PK`` items -> {label: finished PamWorkChain}; exits naming a malformed item or a wrong node."""
    reuse = {}
    for item in items:
        label, sep, pk = item.partition("=")
        if not sep:
            sys.exit(f"--reuse {item}: expected LABEL=PK")
        try:
            reuse[label] = load_pam_workchain(pk)
        except ResultsError as exc:
            sys.exit(f"--reuse {item}: {exc}")
    return reuse


def report(node: orm.WorkChainNode, figure: Path | None) -> None:
    """State, table and (optionally) figure of a DfptConvergenceWorkChain."""
    print(
        f"DfptConvergenceWorkChain<{node.pk}> {node.process_state.value}, exit status {node.exit_status}"
        + (f": {node.exit_message}" if node.exit_message else "")
    )
    if "table" not in node.outputs:
        sys.exit("no table")
    print_table(node.outputs.table)
    if figure:
        print(f"figure {plot_dfpt_convergence(read_output(node.outputs.table), figure)}")


def run_dfpt_convergence(
    protocol: str = "fast",
    variations: dict | None = None,
    response_protocol: str = "production",
    structure: str | None = None,
    reuse: list[str] = (),
    computer: str = "localhost",
    figure: Path | None = None,
    show: str | None = None,
) -> orm.WorkChainNode:
    """A DfptConvergenceWorkChain: one PamWorkChain per label of ``variations`` (default :data:`VARIATIONS`),
    overrides of ``protocol``, each summed with ``response_protocol``'s response settings; then its table.

    ``reuse``: ``LABEL=PK`` items whose finished PamWorkChain's DFPT that label takes; ``structure``: PK of the
    structure of the other points (default: the first reused run's). ``show``: the PK of a finished one, whose
    table (and ``figure``) is printed, nothing run. Returns the workchain node.
    """
    if show:
        node = orm.load_node(show)
        report(node, figure)
        return node
    variations = VARIATIONS if variations is None else variations
    dfpt = {label: (node.outputs.structure, dfpt_retrieved(node)) for label, node in parse_reuse(reuse).items()}
    if structure:
        structure = orm.load_node(structure)
    elif dfpt:
        structure = next(iter(dfpt.values()))[0]
    else:
        sys.exit("give --structure (or --reuse, whose first structure is then used)")

    builder = DfptConvergenceWorkChain.get_builder()
    builder.pw_code, builder.ph_code, builder.q2r_code = load_codes(computer)
    builder.structure = structure
    builder.protocol = orm.Str(protocol)
    builder.variations = orm.Dict(variations)
    builder.response = orm.Dict(PamWorkChain.get_protocol_inputs(response_protocol)["response"])
    builder.reuse = {label: retrieved for label, (_, retrieved) in dfpt.items()}
    builder.reuse_structures = {label: s for label, (s, _) in dfpt.items()}
    builder.metadata.label = f"dfpt convergence ({protocol}: {', '.join(variations)})"
    _, node = run_get_node(builder)
    report(node, figure)
    return node
