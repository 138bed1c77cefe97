"""The error budget of a finished run (docs/comparison.md, "Error budget"): one row per source, stored as a node.

    verdi run workflows/run_error_budget.py PK [--direct PK] [--qmesh PK] [--measured FILE.json]
        [--unfolding 2 2 3 ...] [--computer localhost]

PK: the PamWorkChain whose headline numbers get the budget. Rows: its own k-sum convergence; the sum-rule models
on the same DFPT (PamWorkChains with each --unfolding supercell, default 2x2x3, 3x3x2, 3x3x3; made where missing,
found where they exist); --qmesh, a run of the same crystal on another q mesh; --direct, a finished
DirectDfptWorkChain (workflows/run_direct_dfpt.py) whose ph.x runs check this run's model; --measured, rows
measured elsewhere ({source: {"method": ..., "relative": {quantity: size}}}, e.g.
fixtures/reference/measured_production.json). `aiida-llpam show PK` prints the latest budget.
"""

import argparse
from pathlib import Path

from aiida_llpam.cli.trust import DEFAULT_UNFOLDINGS, error_budget_for


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pk", help="the PamWorkChain")
    parser.add_argument("--direct", help="PK of a finished DirectDfptWorkChain at this run's DFPT settings")
    parser.add_argument("--qmesh", help="PK of a PamWorkChain of the same crystal on another q mesh")
    parser.add_argument("--measured", type=Path, help="JSON rows measured elsewhere")
    parser.add_argument("--unfolding", nargs=3, type=int, action="append", help="an unfolding supercell (repeatable)")
    parser.add_argument("--computer", default="localhost", help="computer of the q2r and response codes")
    parser.add_argument("--partial", action="store_true", help="--direct terminated early: use its finished q points")
    args = parser.parse_args(argv)
    error_budget_for(
        args.pk,
        args.direct,
        args.qmesh,
        args.measured,
        args.unfolding or DEFAULT_UNFOLDINGS,
        args.computer,
        args.partial,
    )


if __name__ == "__main__":
    main()
