"""Check the force-constant model of a finished run against ph.x run directly at q points off its DFPT mesh.

    verdi run workflows/run_direct_dfpt.py PK [--qpoint Q1 Q2 Q3 ... | --qmesh N1 N2 N3 [--direct PK ...]]
        [--computer LABEL] [--mpiprocs N] [--submit]

PK: a PamWorkChain (e.g. imported from fixtures/reference/quartz_production.aiida). The scf of its DFPT runs
again with the same inputs, then one ph.x job per q point (default: Gamma-A at 0.05, 0.1, 0.2 c*, 0.1 along
Gamma-M and Gamma-K), side by side where a daemon runs them (--submit). The table and summary are the
outputs of the DirectDfptWorkChain; `aiida-llpam show` on the run prints them (docs/theory.md, section on
the direct check). ``--qmesh N1 N2 N3``: one point of each star of that denser q mesh which neither the run's
DFPT nor the single-q runs of the DirectDfptWorkChains ``--direct`` hold, the points run_from_dfpt.py --qmesh
needs (docs/theory.md, the denser mesh). ``--mpiprocs N``: MPI processes of each ph.x job (default: those of the
DFPT's ph.x); on one node give each point its share of the cores (DirectDfptWorkChain.get_builder_from_run says
why).
"""

import argparse

from aiida import orm

from aiida_llpam.cli.launch import launch
from aiida_llpam.cli.redo import denser_mesh_cover, single_q_folders
from aiida_llpam.queries import dfpt_retrieved
from aiida_llpam.workflows.direct_dfpt import DirectDfptWorkChain


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pk", help="PK or UUID of the PamWorkChain whose model is checked")
    parser.add_argument("--qpoint", nargs=3, type=float, action="append", help="reduced q point (repeatable)")
    parser.add_argument("--qmesh", nargs=3, type=int, help="the stars of this denser q mesh still without ph.x")
    parser.add_argument("--direct", action="append", default=[], help="with --qmesh: DirectDfptWorkChain PK done")
    parser.add_argument("--computer", default="localhost", help="computer of the pw and ph codes")
    parser.add_argument("--mpiprocs", type=int, help="MPI processes of each ph.x job (default: the DFPT's)")
    parser.add_argument("--submit", action="store_true", help="submit to the daemon instead of running here")
    args = parser.parse_args(argv)
    if args.qmesh and args.qpoint:
        parser.error("give --qpoint or --qmesh, not both")
    if args.direct and not args.qmesh:
        parser.error("--direct needs --qmesh")
    run = orm.load_node(args.pk)
    qpoints = args.qpoint
    if args.qmesh:
        _, missing = denser_mesh_cover(dfpt_retrieved(run), args.qmesh, single_q_folders(args.direct))
        if not len(missing):
            parser.exit(message=f"the {args.qmesh} q mesh has ph.x at every star already\n")
        qpoints = missing.tolist()
        print(f"{len(qpoints)} stars of the {args.qmesh} q mesh without ph.x: {qpoints}")
    codes = [orm.load_code(f"{name}@{args.computer}") for name in ("pw", "ph")]
    builder = DirectDfptWorkChain.get_builder_from_run(run, *codes, qpoints=qpoints, ph_mpiprocs=args.mpiprocs)
    builder.metadata.label = f"direct DFPT check of PamWorkChain<{run.pk}>"
    launch(builder, submit=args.submit)


if __name__ == "__main__":
    main()
