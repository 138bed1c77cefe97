"""Screen a folder of structures: one PamWorkChain per structure and enantiomer, submitted to the daemon.

    verdi -p llpam-daemon run workflows/screen.py FOLDER [--pattern '*'] [--protocol fast]
        [--enantiomers both|as-is] [--pseudo-family LABEL] [--symprec 1e-3] [--max-concurrent 2]
        [--group LABEL] [--computer localhost-slurm] [--wait] [--poll 30] [--dry-run]

Every file in FOLDER matching --pattern (hidden files left out) is checked as workflows/run_crystal.py checks
one (aiida_llpam.structures: readable, ordered, no overlapping atoms, every element in the pseudo family)
and oriented the same way. A file that is refused is reported by name with the reason and skipped; the
others go ahead. With --enantiomers both (the default) a chiral (Sohncke) crystal gets two runs, as-is and
its mirror image z -> -z; an achiral crystal gets only as-is, since its mirror image is the same crystal.

The runs are submitted through the daemon with aiida-submission-controller: at most --max-concurrent of them
are active at a time in the group (default llpam/screen/<protocol>, made if missing). A run is identified
by the extras screen_sha256 (of the file's bytes: a renamed file is the same structure, an edited one a new
one), screen_enantiomer, screen_protocol and screen_pseudo_family; one with these extras already in the group
is not submitted again, whether it is running, finished or failed (to retry a failed run, take it out of
the group: verdi group remove-nodes -G GROUP PK). Each run carries the label, description and, for the
mirror image, the extra enantiomer_of that run_crystal.py gives it; the mirror image's original is the
as-is run's input structure when that run is in the group.

Without --wait the script submits one batch, prints the state of every run and returns: run it again (by
hand or from cron) to top up the slots, it never submits a run twice. With --wait it submits, waits --poll
seconds, submits again as slots free up, printing a status line when something changes, until every run
has finished. --dry-run checks the files and lists what is done, running and would be submitted now,
storing nothing.

Needs a profile with a broker and a running daemon (the daemon profile of docs/scaleout.md); the embedded
sqlite profile has no broker and is refused. Each run's DFPT is one ph.x job per q point, the daemon running
them side by side (the script says so). See docs/crystals.md.
"""

import argparse
from pathlib import Path

from aiida_llpam.cli.screening import ENANTIOMER_CHOICES, screen
from aiida_llpam.configure import SLURM_COMPUTER


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="the folder of structure files (any format ASE reads)")
    parser.add_argument("--pattern", default="*", help="which files of the folder, a glob (default: all)")
    parser.add_argument("--protocol", default="fast", help="smoke (not physical), fast or production (default: fast)")
    parser.add_argument(
        "--enantiomers",
        default="both",
        choices=ENANTIOMER_CHOICES,
        help="both: chiral crystals also run mirrored (achiral ones as-is only); as-is: no mirror",
    )
    parser.add_argument("--pseudo-family", help="aiida-pseudo family label (default: the protocol's)")
    parser.add_argument("--symprec", type=float, default=1e-3, help="spglib tolerance in Angstrom (default: 1e-3)")
    parser.add_argument("--max-concurrent", type=int, default=2, help="runs active at a time in the group (default: 2)")
    parser.add_argument("--group", help="the group of the runs (default: llpam/screen/<protocol>)")
    parser.add_argument("--computer", default=SLURM_COMPUTER, help=f"(default: {SLURM_COMPUTER})")
    parser.add_argument("--wait", action="store_true", help="keep submitting until every run has finished")
    parser.add_argument("--poll", type=float, default=30.0, help="seconds between checks with --wait (default: 30)")
    parser.add_argument("--dry-run", action="store_true", help="list what is done and what would be submitted now")
    return screen(**vars(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
