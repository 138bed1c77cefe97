"""DFPT convergence of the PAM response (issue 8): one PamWorkChain per DFPT setting, a table and a figure.

    verdi -p llpam run workflows/run_dfpt_convergence.py [--protocol fast] [--variations JSON]
        [--structure PK] [--response-protocol production] [--reuse LABEL=PK ...] [--figure PATH]
    verdi -p llpam run workflows/run_dfpt_convergence.py --show PK [--figure PATH]   # a finished one's table

The default variations are the four points of docs/convergence.md: "fast" (the base protocol), "k333"
(scf k 3x3x3), "ecut40" (40/320 Ry) and "production" (k 3x3x3, q 3x3x2). ``--reuse LABEL=PK`` takes the
DFPT (ph.x retrieved files and the structure it ran on) of the finished PamWorkChain PK for that label,
which must have exactly that label's cut-offs, k and q meshes (checked before anything runs). The points that
run their own DFPT use ``--structure`` (default: the structure the first reused run ran ph.x on), without
a new vc-relax, so that they differ from it only in the DFPT setting. Every point is summed with the response
settings of ``--response-protocol``. The workchain runs the points one after the other.
"""

import argparse
import json
import sys
from pathlib import Path

from aiida import orm
from aiida.engine import run_get_node

from aiida_llpam.calculations.nodes import read_output
from aiida_llpam.plotting.convergence import plot_dfpt_convergence
from aiida_llpam.queries import dfpt_retrieved, dfpt_wall_time_s
from aiida_llpam.workflows.convergence import DfptConvergenceWorkChain
from aiida_llpam.workflows.pam import PamWorkChain

VARIATIONS = {
    "fast": {},
    "k333": {"kpoints": [3, 3, 3], "run_relax": False},
    "ecut40": {"ecutwfc": 40, "ecutrho": 320, "run_relax": False},
    "production": {"kpoints": [3, 3, 3], "ph_main": {"qpoints": [3, 3, 2]}},
}


def print_table(table: orm.ArrayData) -> None:
    """The table node as text: settings, sums +- k-mesh uncertainty, Gamma frequencies, wall time."""
    data = read_output(table)
    print(f"reference temperature {data['temperature_k'][0]:.0f} K; sums on the last k mesh of each response; "
          "+- = |last k-mesh step|")  # fmt: skip
    header = f"{'label':12s} {'Ry':>7s} {'k':>5s} {'q':>5s} {'reuse':>5s} {'gamma_nl_zz':>21s} {'chi_D':>21s} " \
             f"{'chi_OD,N':>21s} {'chi_OD,P':>21s} {'gamma_m':>21s} {'wall s':>7s}"
    print(header)
    for i, label in enumerate(data["labels"]):
        mesh = ["".join(str(int(n)) for n in data[key][i]) for key in ("kpoints_mesh", "qpoints_mesh")]
        sums = " ".join(
            f"{data[name][i]:10.4e}+-{data[name + '_kmesh_uncertainty'][i]:8.2e}"
            for name in ("gamma_nl_zz", "chi_diagonal", "chi_offdiagonal_interband", "chi_offdiagonal_pair", "gamma_m")
        )
        print(f"{label:12s} {data['ecutwfc_ry'][i]:3.0f}/{data['ecutrho_ry'][i]:3.0f} {mesh[0]:>5s} {mesh[1]:>5s} "
              f"{int(data['dfpt_reused'][i]):5d} {sums} {data['wall_time_s'][i]:7.0f}")  # fmt: skip
    print("cost (s): the point's PamWorkChain, and the ph.x run of its DFPT (for a reused DFPT: paid in its own run)")
    for i, label in enumerate(data["labels"]):
        ph_s = dfpt_wall_time_s(dfpt_retrieved(orm.load_node(data["workchains"][i])))
        print(f"{label:12s} workchain {data['wall_time_s'][i]:7.0f}  ph.x {ph_s:7.0f}")
    print("Gamma frequencies (cm^-1, TO, ascending) and the lowest frequency next to Gamma:")
    for i, label in enumerate(data["labels"]):
        freqs = " ".join(f"{f:.1f}" for f in data["gamma_frequencies_cm"][i])
        print(f"{label:12s} near Gamma {data['near_gamma_lowest_frequency_cm'][i]:7.2f}  Gamma {freqs}")


def parse_reuse(items: list[str]) -> dict[str, orm.WorkChainNode]:
    reuse = {}
    for item in items:
        label, sep, pk = item.partition("=")
        if not sep:
            sys.exit(f"--reuse {item}: expected LABEL=PK")
        node = orm.load_node(pk)
        if not (isinstance(node, orm.WorkChainNode) and node.process_label == "PamWorkChain" and node.is_finished_ok):
            sys.exit(f"--reuse {item}: {pk} is not a finished PamWorkChain")
        reuse[label] = node
    return reuse


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", default="fast", help="base protocol of every point")
    parser.add_argument("--variations", type=json.loads, default=VARIATIONS, help="JSON: label -> protocol overrides")
    parser.add_argument("--response-protocol", default="production", help="whose response section every point uses")
    parser.add_argument("--structure", help="PK of the structure of the points with their own DFPT")
    parser.add_argument("--reuse", action="append", default=[], metavar="LABEL=PK", help="reuse that PamWorkChain's DFPT")
    parser.add_argument("--computer", default="localhost")
    parser.add_argument("--figure", type=Path, help="write the convergence figure here (png/pdf)")
    parser.add_argument("--show", metavar="PK", help="print the table (and --figure) of a finished workchain; run nothing")
    args = parser.parse_args(argv)

    if args.show:
        report(orm.load_node(args.show), args.figure)
        return
    reuse = parse_reuse(args.reuse)
    dfpt = {label: (node.outputs.structure, dfpt_retrieved(node)) for label, node in reuse.items()}
    if args.structure:
        structure = orm.load_node(args.structure)
    elif dfpt:
        structure = next(iter(dfpt.values()))[0]
    else:
        sys.exit("give --structure (or --reuse, whose first structure is then used)")
    codes = [orm.load_code(f"{name}@{args.computer}") for name in ("pw", "ph", "q2r")]

    builder = DfptConvergenceWorkChain.get_builder()
    builder.pw_code, builder.ph_code, builder.q2r_code = codes
    builder.structure = structure
    builder.protocol = orm.Str(args.protocol)
    builder.variations = orm.Dict(args.variations)
    builder.response = orm.Dict(PamWorkChain.get_protocol_inputs(args.response_protocol)["response"])
    builder.reuse = {label: retrieved for label, (_, retrieved) in dfpt.items()}
    builder.reuse_structures = {label: s for label, (s, _) in dfpt.items()}
    builder.metadata.label = f"dfpt convergence ({args.protocol}: {', '.join(args.variations)})"
    _, node = run_get_node(builder)
    report(node, args.figure)


def report(node: orm.WorkChainNode, figure: Path | None) -> None:
    """State, table and (optionally) figure of a DfptConvergenceWorkChain."""
    print(f"DfptConvergenceWorkChain<{node.pk}> {node.process_state.value}, exit status {node.exit_status}"
          + (f": {node.exit_message}" if node.exit_message else ""))  # fmt: skip
    if "table" not in node.outputs:
        sys.exit("no table")
    print_table(node.outputs.table)
    if figure:
        print(f"figure {plot_dfpt_convergence(read_output(node.outputs.table), figure)}")


if __name__ == "__main__":
    main()
