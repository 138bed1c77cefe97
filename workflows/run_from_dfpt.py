"""Redo the force constants, response and figures of a finished run from its stored DFPT (no ph.x).

    verdi run workflows/run_from_dfpt.py PK [--protocol production] [--enantiomer as-is|other] [--pk-file F]
        [--figures DIR]

PK: a PamWorkChain (e.g. imported from an archive: `verdi archive import`) whose ph.x finished (the
workchain itself may have failed later). The new PamWorkChain gets
the structure the old one ran ph.x on and ph.x's retrieved files as inputs (`dfpt`), so its provenance
links back to the original DFPT; q2r.x, the sum rules, the response and the figure data run with the
current code and the given protocol's settings.

--enantiomer other: the other enantiomer from the same ph.x run. The structure is mirrored z -> -z
(structures.mirror_z) and so are ph.x's dynamical matrices, eps and Z* (calcfunction mirror_dfpt_z,
in the provenance): the mirror is an exact symmetry of DFPT on symmetric k and q meshes, and
tests/aiida/test_enantiomers.py checks on quartz that the result equals ph.x run on the mirror image. The
run carries the extra `enantiomer_of` (the original structure's UUID, the operation) as run_crystal.py's do.
"""

import argparse
import sys
from pathlib import Path

from aiida import orm
from aiida.engine import run_get_node

from aiida_llpam.calculations.functions import mirror_dfpt_z
from aiida_llpam.cli.results import write_figures
from aiida_llpam.queries import dfpt_retrieved, dfpt_structure
from aiida_llpam.structures import MIRROR_OPERATION, mark_enantiomer, mirror_z
from aiida_llpam.workflows.pam import PamWorkChain


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pk", help="PK or UUID of the PamWorkChain whose DFPT is reused")
    parser.add_argument("--protocol", default="production", help="settings of q2r, sum rules, response, figures")
    parser.add_argument("--enantiomer", default="as-is", choices=("as-is", "other"), help="other: the mirror image z -> -z")
    parser.add_argument("--computer", default="localhost")
    parser.add_argument("--pk-file", type=Path)
    parser.add_argument("--figures", type=Path)
    args = parser.parse_args(argv)

    old = orm.load_node(args.pk)
    if not (isinstance(old, orm.WorkChainNode) and old.process_label == "PamWorkChain"):
        sys.exit(f"{args.pk}: not a PamWorkChain")
    try:  # a run that failed after its ph.x finished (e.g. in the response) still has a DFPT to reuse
        retrieved = dfpt_retrieved(old)
    except ValueError as exc:
        sys.exit(f"{exc}: its DFPT cannot be reused")
    structure = dfpt_structure(retrieved)  # the structure ph.x ran on (given or relaxed)
    description = f"DFPT of PamWorkChain<{old.uuid}>; q2r.x onwards with the current code"
    if args.enantiomer == "other":
        original = structure
        structure = orm.StructureData(ase=mirror_z(original.get_ase()))
        structure.description = f"{MIRROR_OPERATION} of StructureData {original.uuid}"
        retrieved = mirror_dfpt_z(retrieved)
        description += f"; enantiomer: {MIRROR_OPERATION} of StructureData {original.uuid} and of its ph.x files"
    codes = [orm.load_code(f"{name}@{args.computer}") for name in ("pw", "ph", "q2r")]
    builder = PamWorkChain.get_builder_from_protocol(*codes, structure, protocol=args.protocol, dfpt=retrieved)
    suffix = "other enantiomer from the mirrored DFPT" if args.enantiomer == "other" else "force constants and response redone"
    builder.metadata.label = f"{old.label} ({suffix})".strip()
    builder.metadata.description = description
    _, node = run_get_node(builder)
    if args.enantiomer == "other":
        mark_enantiomer(node, original)
    print(f"PamWorkChain<{node.pk}> {node.process_state.value}, exit status {node.exit_status}")
    if args.pk_file:
        args.pk_file.write_text(f"{node.pk}\n")
    if not node.is_finished_ok:
        sys.exit(f"the workchain failed: {node.exit_message}")
    if args.figures:
        for path in write_figures(node, args.figures):
            print(f"  figure {path}")


if __name__ == "__main__":
    main()
