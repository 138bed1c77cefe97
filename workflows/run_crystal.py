"""Run PamWorkChain on any crystal: a file ASE reads (CIF, POSCAR, xyz with a cell, ...) or a stored StructureData.

    verdi run workflows/run_crystal.py STRUCTURE [--protocol fast] [--enantiomer as-is|other]
        [--pseudo-family LABEL] [--symprec 1e-3] [--computer localhost] [--pk-file F] [--figures DIR]
        [--quiet] [--dry-run] [--kpoints N N N] [--qpoints N N N] [--ecutwfc RY] [--ecutrho RY]
    verdi -p llpam-daemon run workflows/run_crystal.py STRUCTURE --submit [--protocol ...] [--pk-file F]

STRUCTURE is a path, or the PK or UUID of a stored StructureData. Before anything is stored the structure is
checked (aiida_llpam.structures: a readable crystal, ordered, no overlapping atoms, every element in the
pseudo family), oriented (trigonal, tetragonal, hexagonal: unique axis along z; cubic and lower: as given) and,
with --enantiomer other, mirrored (z -> -z). The script prints the space group, point group, whether it is a
Sohncke (chiral) group, the enantiomorphic partner, the handedness label and which components of gamma^NL
and gamma^M symmetry allows (an achiral crystal still runs, as a control). --dry-run stops there, with the
builder made and nothing stored. Otherwise it runs like workflows/run_quartz.py (PK as soon as it exists,
progress lines, the outputs at the end). A mirrored run records the original structure's UUID and
"mirror z -> -z" in the workchain's description and, after the run, in its extra ``enantiomer_of``. --submit
hands the workchain to the daemon and returns at once, as workflows/run_quartz.py --submit does (computer
localhost-slurm where the profile has it, one ph.x job per q point side by side). See docs/crystals.md.
"""

import argparse
from pathlib import Path

from aiida_llpam.cli.runs import CRYSTAL_ENANTIOMERS, add_job_arguments, run_crystal
from aiida_llpam.configure import SLURM_COMPUTER


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("structure", help="a structure file ASE reads (CIF, ...) or a StructureData PK/UUID")
    parser.add_argument("--protocol", default="fast", help="smoke (not physical), fast or production (default: fast)")
    parser.add_argument(
        "--enantiomer", default="as-is", choices=CRYSTAL_ENANTIOMERS, help="other: the mirror image z -> -z"
    )
    parser.add_argument("--pseudo-family", help="aiida-pseudo family label (default: the protocol's)")
    parser.add_argument("--symprec", type=float, default=1e-3, help="spglib tolerance in Angstrom (default: 1e-3)")
    parser.add_argument("--computer", help=f"default: localhost, with --submit {SLURM_COMPUTER} if the profile has it")
    parser.add_argument("--pk-file", type=Path, help="write the workchain's PK to this file")
    parser.add_argument("--figures", type=Path, help="write the figure panels here (aiida-llpam figures)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines while the workchain runs")
    parser.add_argument(
        "--dry-run", action="store_true", help="check, print the symmetry, make the builder; no storing"
    )
    parser.add_argument("--submit", action="store_true", help="hand the workchain to the daemon and return at once")
    dft = parser.add_argument_group("DFPT settings (default: the protocol's)")
    dft.add_argument("--kpoints", nargs=3, type=int, help="scf k mesh (Monkhorst-Pack)")
    dft.add_argument("--qpoints", nargs=3, type=int, help="ph.x q mesh")
    dft.add_argument("--ecutwfc", type=float, help="wave-function cut-off, Ry")
    dft.add_argument("--ecutrho", type=float, help="density cut-off, Ry (at least 4 x ecutwfc)")
    add_job_arguments(parser)
    return run_crystal(**vars(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
