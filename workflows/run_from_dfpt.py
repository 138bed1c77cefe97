"""Redo the force constants, response and figures of a finished run from its stored DFPT (no ph.x).

    verdi run workflows/run_from_dfpt.py PK [--protocol production] [--pk-file F] [--figures DIR]

PK: a PamWorkChain (e.g. imported from an archive: `verdi archive import`). The new PamWorkChain gets
the structure the old one ran ph.x on and ph.x's retrieved files as inputs (`dfpt`), so its provenance
links back to the original DFPT; q2r.x, the sum rules, the response and the figure data run with the
current code and the given protocol's settings.
"""

import argparse
import sys
from pathlib import Path

from aiida import orm
from aiida.engine import run_get_node

from aiida_llpam.cli.results import write_figures
from aiida_llpam.tools.results import dfpt_retrieved
from aiida_llpam.workflows.pam import PamWorkChain


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pk", help="PK or UUID of the PamWorkChain whose DFPT is reused")
    parser.add_argument("--protocol", default="production", help="settings of q2r, sum rules, response, figures")
    parser.add_argument("--computer", default="localhost")
    parser.add_argument("--pk-file", type=Path)
    parser.add_argument("--figures", type=Path)
    args = parser.parse_args(argv)

    old = orm.load_node(args.pk)
    if not (isinstance(old, orm.WorkChainNode) and old.process_label == "PamWorkChain"):
        sys.exit(f"{args.pk}: not a PamWorkChain")
    if not old.is_finished_ok:
        sys.exit(f"PamWorkChain<{old.pk}> did not finish successfully: its DFPT cannot be reused")
    structure = old.outputs.structure  # the structure ph.x ran on (given or relaxed)
    retrieved = dfpt_retrieved(old)
    codes = [orm.load_code(f"{name}@{args.computer}") for name in ("pw", "ph", "q2r")]
    builder = PamWorkChain.get_builder_from_protocol(*codes, structure, protocol=args.protocol, dfpt=retrieved)
    builder.metadata.label = f"{old.label} (force constants and response redone)".strip()
    builder.metadata.description = f"DFPT of PamWorkChain<{old.uuid}>; q2r.x onwards with the current code"
    _, node = run_get_node(builder)
    print(f"PamWorkChain<{node.pk}> {node.process_state.value}, exit status {node.exit_status}")
    if args.pk_file:
        args.pk_file.write_text(f"{node.pk}\n")
    if not node.is_finished_ok:
        sys.exit(f"the workchain failed: {node.exit_message}")
    if args.figures:
        for path in write_figures(node, args.figures):
            print(f"  figure {path}")


if __name__ == "__main__":
    main()
