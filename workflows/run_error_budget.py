"""The error budget of a finished run (docs/comparison.md, "Error budget"): one row per source, stored as a node.

    verdi run workflows/run_error_budget.py PK [--direct PK ...] [--fit q1 q3 [--fit-unfolding 2 2 3 ...]] [--qmesh PK]
        [--measured FILE.json] [--computer localhost] [--partial]

PK: the PamWorkChain whose headline numbers get the budget. Rows: its own k-sum convergence; the sum-rule models
on the same DFPT (PamWorkChains with the unfolding supercells 2x2x3, 3x3x2, 3x3x3 and the on-site acoustic rule,
aiida_llpam.cli.trust.DEFAULT_MODELS; made where missing, found where they exist); --direct, finished
DirectDfptWorkChains (workflows/run_direct_dfpt.py) at this run's DFPT settings, whose q points, numbered q1, q2,
... in order, check every model; --fit, labels of those q points that one more model fits (the others are held
out: the budget's sum-rule row counts the models that pass where they did not fit), one such model per
--fit-unfolding (repeatable; default 2 2 2); --qmesh, a run of the same crystal on another q mesh; --measured,
rows measured elsewhere ({source: {"method": ..., "relative": {quantity: size}}}, e.g.
fixtures/reference/measured_production.json). `aiida-llpam show PK` prints the latest budget.
"""

import argparse
from pathlib import Path

from aiida_llpam.cli.trust import error_budget_for


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pk", help="the PamWorkChain")
    parser.add_argument("--direct", action="append", default=[], help="PK of a finished DirectDfptWorkChain")
    parser.add_argument("--fit", nargs="+", default=[], help="direct q points (q1, q2, ...) a further model fits")
    parser.add_argument(
        "--fit-unfolding",
        type=int,
        nargs=3,
        action="append",
        default=[],
        help="unfolding factor of a fitted model (repeatable; default 2 2 2)",
    )
    parser.add_argument("--qmesh", help="PK of a PamWorkChain of the same crystal on another q mesh")
    parser.add_argument("--measured", type=Path, help="JSON rows measured elsewhere")
    parser.add_argument("--computer", default="localhost", help="computer of the q2r and response codes")
    parser.add_argument("--partial", action="store_true", help="a --direct terminated early: its finished q points")
    args = parser.parse_args(argv)
    error_budget_for(
        args.pk,
        args.direct,
        args.qmesh,
        args.measured,
        fit=tuple(args.fit),
        computer=args.computer,
        partial=args.partial,
        fit_unfolding=args.fit_unfolding,
    )


if __name__ == "__main__":
    main()
