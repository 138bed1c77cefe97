"""Two fc3 of one supercell and the kappa each gave, stored with both.

    verdi run workflows/compare_fc3.py PK REFERENCE_PK

PK, REFERENCE_PK: finished RTA jobs (workflows/rerun_rta.py makes them) or LifetimesWorkChains, of the same crystal,
fc3 supercell, mesh and temperatures; e.g. symfc's fit to random snapshots against phono3py's finite differences.
The two routes hold different triplets (phono3py's cut-off is on the displaced pair, symfc's on every pair of a
triplet): rerun both with `rerun_rta.py PK --triplets-within-angstrom D` (D no more than the finite route's
cut-off) and compare those. The comparison is a Dict made by the calcfunction fc3_comparison: the fc3 difference
over the reference's norm, and kappa of both perpendicular to and along z at every temperature.
"""

import argparse

from aiida_llpam.cli.rta import compare_fc3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pk", help="PK or UUID of an RTA job or a LifetimesWorkChain")
    parser.add_argument("reference_pk", help="the same of the reference (e.g. the finite displacements)")
    args = parser.parse_args(argv)
    return compare_fc3(args.pk, args.reference_pk)


if __name__ == "__main__":
    main()
