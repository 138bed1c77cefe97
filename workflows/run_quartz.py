"""Run PamWorkChain on alpha-quartz on the embedded profile.

    verdi run workflows/run_quartz.py --protocol smoke [--enantiomer right|left] [--pk-file F] [--figures DIR]

right = P3_221 (No. 154), left = P3_121 (No. 152), after Donnay & Le Page (1978).
Prints the PK of the finished workchain and its outputs.
"""

import argparse
import sys
from pathlib import Path

from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import run_get_node
from ase.io import read

import aiida_llpam
from aiida_llpam.cli.results import write_figures
from aiida_llpam.workflows.pam import PamWorkChain

# `verdi run` does not set __file__ to this script: find the fixtures next to the (editable) package
STRUCTURES = Path(aiida_llpam.__file__).resolve().parents[1] / "fixtures" / "structures"
ENANTIOMERS = {"right": "quartz_P3221.cif", "left": "quartz_P3121.cif"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", default="smoke", help="smoke, fast or production (default: smoke)")
    parser.add_argument("--enantiomer", default="right", choices=sorted(ENANTIOMERS))
    parser.add_argument("--computer", default="localhost")
    parser.add_argument("--pk-file", type=Path, help="write the workchain's PK to this file")
    parser.add_argument("--figures", type=Path, help="write the paper's figure panels here (aiida-llpam figures)")
    args = parser.parse_args(argv)

    available = PamWorkChain.get_available_protocols()
    if args.protocol not in available:
        sys.exit(f"unknown protocol {args.protocol!r}: choose from {', '.join(available)}")
    structure = orm.StructureData(ase=read(STRUCTURES / ENANTIOMERS[args.enantiomer]))
    codes = [orm.load_code(f"{name}@{args.computer}") for name in ("pw", "ph", "q2r")]
    builder = PamWorkChain.get_builder_from_protocol(*codes, structure, protocol=args.protocol)
    builder.metadata.label = f"alpha-quartz {args.enantiomer} {args.protocol}"
    _, node = run_get_node(builder)

    print(f"PamWorkChain<{node.pk}> {node.process_state.value}, exit status {node.exit_status}")
    if args.pk_file:
        args.pk_file.write_text(f"{node.pk}\n")
    if not node.is_finished_ok:
        sys.exit(f"the workchain failed: {node.exit_message}")
    for link in sorted(node.base.links.get_outgoing(link_type=LinkType.RETURN).all(), key=lambda lk: lk.link_label):
        print(f"  {link.link_label:26s} {link.node.__class__.__name__}<{link.node.pk}>")
    if args.protocol == "smoke":
        print("NOTE: the smoke protocol makes force constants from Gamma alone: it tests the machinery, "
              "its dispersion and numbers are not physical quartz (use --protocol fast or production)")
    if args.figures:
        for path in write_figures(node, args.figures):
            print(f"  figure {path}")


if __name__ == "__main__":
    main()
