"""Run PamWorkChain on alpha-quartz on the embedded profile.

    verdi run workflows/run_quartz.py [--protocol fast|production|smoke] [--enantiomer right|left] [--pk-file F]
        [--figures DIR] [--quiet]
    verdi -p llpam-daemon run workflows/run_quartz.py --submit [--protocol ...] [--pk-file F]

right = P3_221 (No. 154), left = P3_121 (No. 152), after Donnay & Le Page (1978).
Prints the PK of the workchain as soon as it exists (and writes it to --pk-file then), while it runs a
progress line when the running step changes (for ph.x: q point, representation, elapsed and remaining
time; checked every 10 s, repeated once a minute if unchanged; off with --quiet), at the end its outputs.

With --submit the workchain goes to the daemon of the profile (one with a broker and a running daemon, as
`python deploy/services.py up` makes) and the script returns at once: follow it with `aiida-llpam progress PK`.
On such a profile the computer defaults to localhost-slurm, the one-node SLURM cluster of the services, and
each q point of the DFPT is its own ph.x job, the daemon running them side by side (the script says which).
"""

import argparse
from pathlib import Path

from aiida_llpam.cli.runs import QUARTZ_ENANTIOMERS, add_job_arguments, run_quartz
from aiida_llpam.configure import SLURM_COMPUTER


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", default="fast", help="smoke (not physical), fast or production (default: fast)")
    parser.add_argument("--enantiomer", default="right", choices=sorted(QUARTZ_ENANTIOMERS))
    parser.add_argument("--computer", help=f"default: localhost, with --submit {SLURM_COMPUTER} if the profile has it")
    parser.add_argument("--pk-file", type=Path, help="write the workchain's PK to this file")
    parser.add_argument("--figures", type=Path, help="write the paper's figure panels here (aiida-llpam figures)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines while the workchain runs")
    parser.add_argument("--submit", action="store_true", help="hand the workchain to the daemon and return at once")
    add_job_arguments(parser)
    return run_quartz(**vars(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
