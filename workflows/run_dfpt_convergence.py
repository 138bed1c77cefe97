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
from pathlib import Path

from aiida_llpam.cli.convergence import VARIATIONS, run_dfpt_convergence


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", default="fast", help="base protocol of every point")
    parser.add_argument("--variations", type=json.loads, default=VARIATIONS, help="JSON: label -> protocol overrides")
    parser.add_argument("--response-protocol", default="production", help="whose response section every point uses")
    parser.add_argument("--structure", help="PK of the structure of the points with their own DFPT")
    parser.add_argument(
        "--reuse", action="append", default=[], metavar="LABEL=PK", help="reuse that PamWorkChain's DFPT"
    )
    parser.add_argument("--computer", default="localhost")
    parser.add_argument("--figure", type=Path, help="write the convergence figure here (png/pdf)")
    parser.add_argument(
        "--show", metavar="PK", help="print the table (and --figure) of a finished workchain; run nothing"
    )
    return run_dfpt_convergence(**vars(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
