"""The fc3 + RTA job of a LifetimesWorkChain again, on another mesh: the same forces, fit and temperatures.

    verdi run workflows/rerun_rta.py PK --mesh 12 12 8 [--cores 2]

PK: a LifetimesWorkChain whose RTA job was submitted (it may still run). The new job takes that job's inputs with
another mesh; its kappa file gives the convergence of kappa and of the lifetimes in the mesh
(workflows/compare_kappa.py compares it with measured values).
"""

import argparse

from aiida_llpam.cli.redo import rerun_rta


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pk", help="PK or UUID of a LifetimesWorkChain")
    parser.add_argument("--mesh", type=int, nargs=3, required=True, help="RTA mesh (Gamma-centred)")
    parser.add_argument("--cores", type=int, help="OpenMP threads of the job (default: the computer's)")
    args = parser.parse_args(argv)
    return rerun_rta(args.pk, args.mesh, args.cores)


if __name__ == "__main__":
    main()
