"""Run PamWorkChain on alpha-quartz on the embedded profile.

    verdi run workflows/run_quartz.py [--protocol fast|production|smoke] [--enantiomer right|left] [--pk-file F] [--figures DIR] [--quiet]
    verdi -p llpam-daemon run workflows/run_quartz.py --submit [--protocol ...] [--pk-file F]

right = P3_221 (No. 154), left = P3_121 (No. 152), after Donnay & Le Page (1978).
Prints the PK of the workchain as soon as it exists (and writes it to --pk-file then), while it runs a
progress line when the running step changes (for ph.x: q point, representation, elapsed and remaining
time; checked every 10 s, repeated once a minute if unchanged; off with --quiet), at the end its outputs.

With --submit the workchain goes to the daemon of the profile (one with a broker and a running daemon, as
`aiida-llpam setup --services` makes) and the script returns at once: follow it with `aiida-llpam progress PK`.
On such a profile the computer defaults to localhost-slurm, the one-node SLURM cluster of the services.
"""

import argparse
import sys
from pathlib import Path

from aiida import orm
from aiida.common.exceptions import NotExistent
from aiida.engine import submit
from aiida.manage import get_manager
from ase.io import read

import aiida_llpam
from aiida_llpam.cli.launch import daemon_unavailable_reason, print_outcome, run_with_progress
from aiida_llpam.cli.results import write_figures
from aiida_llpam.configure import SLURM_COMPUTER
from aiida_llpam.workflows.pam import PamWorkChain
from aiida_llpam.workflows.protocols import UNPHYSICAL_PROTOCOLS

# `verdi run` does not set __file__ to this script: find the fixtures next to the (editable) package
STRUCTURES = Path(aiida_llpam.__file__).resolve().parents[1] / "fixtures" / "structures"
ENANTIOMERS = {"right": "quartz_P3221.cif", "left": "quartz_P3121.cif"}


def default_computer(submit: bool) -> str:
    """localhost, or for a submitted run the SLURM computer of the services' profile when this profile has it."""
    if submit:
        try:
            return orm.load_computer(SLURM_COMPUTER).label
        except NotExistent:
            pass
    return "localhost"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", default="fast", help="smoke (not physical), fast or production (default: fast)")
    parser.add_argument("--enantiomer", default="right", choices=sorted(ENANTIOMERS))
    parser.add_argument("--computer", help=f"default: localhost, with --submit {SLURM_COMPUTER} if the profile has it")
    parser.add_argument("--pk-file", type=Path, help="write the workchain's PK to this file")
    parser.add_argument("--figures", type=Path, help="write the paper's figure panels here (aiida-llpam figures)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines while the workchain runs")
    parser.add_argument("--submit", action="store_true", help="hand the workchain to the daemon and return at once")
    args = parser.parse_args(argv)
    if args.submit and args.figures:
        sys.exit(
            "--figures needs the finished run: with --submit, write them later with `aiida-llpam figures PK -o DIR`"
        )
    if args.submit and (reason := daemon_unavailable_reason()):
        sys.exit(f"cannot submit: {reason}")

    available = PamWorkChain.get_available_protocols()
    if args.protocol not in available:
        sys.exit(f"unknown protocol {args.protocol!r}: choose from {', '.join(available)}")
    structure = orm.StructureData(ase=read(STRUCTURES / ENANTIOMERS[args.enantiomer]))
    codes = [orm.load_code(f"{name}@{args.computer or default_computer(args.submit)}") for name in ("pw", "ph", "q2r")]
    builder = PamWorkChain.get_builder_from_protocol(*codes, structure, protocol=args.protocol)
    builder.metadata.label = f"alpha-quartz {args.enantiomer} {args.protocol}"
    if args.submit:
        node = submit(builder)
        if args.pk_file:
            args.pk_file.write_text(f"{node.pk}\n")
        profile = get_manager().get_profile().name
        print(f"{node.process_label}<{node.pk}> submitted to the daemon of profile {profile}; follow it with:")
        print(f"    aiida-llpam progress {node.pk} -p {profile} --watch 30")
        return
    node = run_with_progress(builder, quiet=args.quiet, pk_file=args.pk_file)

    if not print_outcome(node):
        sys.exit(f"the workchain failed: {node.exit_message}")
    if args.protocol in UNPHYSICAL_PROTOCOLS:
        print(
            f"NOTE: {UNPHYSICAL_PROTOCOLS[args.protocol]}: it tests the machinery (use --protocol fast or production)"
        )
    if args.figures:
        for path in write_figures(node, args.figures):
            print(f"  figure {path}")


if __name__ == "__main__":
    main()
