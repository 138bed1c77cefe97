"""The supercell forces of a LifetimesWorkChain against the same supercells on a denser k mesh.

    verdi run workflows/check_supercell_kpoints.py PK --kpoints 2 2 2 [--snapshots 1] [--mpiprocs 2] [--pk-file F]

PK: a finished LifetimesWorkChain of random snapshots. The first --snapshots snapshots, their opposites and the
undisplaced supercell run again through pw.x with the run's own inputs on the Gamma-centred --kpoints mesh (no
Gamma tricks); the calcfunction supercell_kpoints_check stores how their forces differ, whole, in the odd
(harmonic) part and in the even part (the fc3 signal), each as rms difference over rms.
"""

import argparse
from pathlib import Path

from aiida_llpam.cli.rta import check_supercell_kpoints


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pk", help="PK or UUID of a finished LifetimesWorkChain of random snapshots")
    parser.add_argument("--kpoints", type=int, nargs=3, required=True, help="the denser supercell k mesh")
    parser.add_argument("--snapshots", type=int, default=1, help="snapshots checked (with their opposites)")
    parser.add_argument("--mpiprocs", type=int, help="MPI processes of each pw.x job (default: the run's)")
    parser.add_argument("--pk-file", type=Path, help="write the comparison's PK here")
    args = parser.parse_args(argv)
    return check_supercell_kpoints(args.pk, args.kpoints, args.snapshots, args.mpiprocs, args.pk_file)


if __name__ == "__main__":
    main()
