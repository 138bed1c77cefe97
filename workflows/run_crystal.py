"""Run PamWorkChain on any crystal: a file ASE reads (CIF, POSCAR, xyz with a cell, ...) or a stored StructureData.

    verdi run workflows/run_crystal.py STRUCTURE [--protocol fast] [--enantiomer as-is|other]
        [--pseudo-family LABEL] [--symprec 1e-3] [--computer localhost] [--pk-file F] [--figures DIR]
        [--quiet] [--dry-run]

STRUCTURE is a path, or the PK or UUID of a stored StructureData. Before anything is stored the structure is
checked (aiida_llpam.structures: a readable crystal, ordered, no overlapping atoms, every element in the
pseudo family), oriented (trigonal, tetragonal, hexagonal: unique axis along z; cubic and lower: as given) and,
with --enantiomer other, mirrored (z -> -z). The script prints the space group, point group, whether it is a
Sohncke (chiral) group, the enantiomorphic partner, the handedness label and which components of gamma^NL
and gamma^M symmetry allows (an achiral crystal still runs, as a control). --dry-run stops there, with the builder made and
nothing stored. Otherwise it runs like workflows/run_quartz.py (PK as soon as it exists, progress lines, the
outputs at the end). A mirrored run records the original structure's UUID and "mirror z -> -z" in the
workchain's description and, after the run, in its extra ``enantiomer_of``. See docs/crystals.md.
"""

import argparse
import sys
from pathlib import Path

from aiida import orm
from aiida.common.exceptions import NotExistent

from aiida_llpam.cli.launch import print_outcome, run_with_progress
from aiida_llpam.cli.results import write_figures
from aiida_llpam.physics.symmetry import response_symmetry_text
from aiida_llpam.structures import (
    MIRROR_OPERATION,
    StructureError,
    check_pseudopotentials,
    family_elements,
    handedness_label,
    load_structure,
    mark_enantiomer,
    mirror_z,
    orient_unique_axis,
    symmetry_of,
)
from aiida_llpam.workflows.crystal import pam_builder
from aiida_llpam.workflows.pam import PamWorkChain
from aiida_llpam.workflows.protocols import UNPHYSICAL_PROTOCOLS

ENANTIOMERS = ("as-is", "other")


def symmetry_lines(info: dict) -> list[str]:
    """What spglib says about the structure that will run, for people."""
    partner = info["enantiomorphic_partner"] or ("none (both enantiomers share the group)" if info["sohncke"] else "-")
    lines = [
        f"structure: {info['formula']}, {info['crystal_system']}",
        f"space group: {info['space_group']} (No. {info['space_group_number']}), point group {info['point_group']} "
        f"(spglib, symprec {info['symprec_angstrom']:g} A)",
        f"Sohncke (chiral): {'yes' if info['sohncke'] else 'no'}",
        f"enantiomorphic partner: {partner}",
        f"handedness: {handedness_label(info)}",
    ]
    lines.append(f"response: {response_symmetry_text(info)}")
    if not info["gamma_nl_allowed"] or not info["gamma_m_allowed"]:
        lines.append("the run goes ahead as a control: expect zero within numerical noise where symmetry says so")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("structure", help="a structure file ASE reads (CIF, ...) or a StructureData PK/UUID")
    parser.add_argument("--protocol", default="fast", help="smoke (not physical), fast or production (default: fast)")
    parser.add_argument("--enantiomer", default="as-is", choices=ENANTIOMERS, help="other: the mirror image z -> -z")
    parser.add_argument("--pseudo-family", help="aiida-pseudo family label (default: the protocol's)")
    parser.add_argument("--symprec", type=float, default=1e-3, help="spglib tolerance in Angstrom (default: 1e-3)")
    parser.add_argument("--computer", default="localhost")
    parser.add_argument("--pk-file", type=Path, help="write the workchain's PK to this file")
    parser.add_argument("--figures", type=Path, help="write the figure panels here (aiida-llpam figures)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines while the workchain runs")
    parser.add_argument("--dry-run", action="store_true", help="check, print the symmetry, make the builder; no storing")
    args = parser.parse_args(argv)

    available = PamWorkChain.get_available_protocols()
    if args.protocol not in available:
        sys.exit(f"unknown protocol {args.protocol!r}: choose from {', '.join(available)}")
    if args.symprec <= 0:
        sys.exit(f"--symprec must be positive, got {args.symprec}")
    family = args.pseudo_family or PamWorkChain.get_protocol_inputs(args.protocol)["pseudo_family"]
    try:
        atoms, source_uuid = load_structure(args.structure)
        check_pseudopotentials(atoms.get_chemical_symbols(), family_elements(family), family)
        oriented, orientation = orient_unique_axis(atoms, args.symprec)
        run_atoms = mirror_z(oriented) if args.enantiomer == "other" else oriented
        info = symmetry_of(run_atoms, args.symprec)
    except (StructureError, ValueError) as exc:
        sys.exit(f"refused: {exc}")

    source = f"StructureData {source_uuid}" if source_uuid else str(args.structure)
    print(f"read {source}: {len(atoms)} atoms; {orientation.note}")
    original = None
    if args.enantiomer == "other":
        before = symmetry_of(oriented, args.symprec)
        print(f"enantiomer other: {MIRROR_OPERATION} of {before['space_group']} (No. {before['space_group_number']}) "
              f"-> {info['space_group']} (No. {info['space_group_number']})")  # fmt: skip
        if source_uuid and not orientation.changed:
            original = orm.load_node(source_uuid)
        else:
            original = orm.StructureData(ase=oriented)
            original.label = f"{before['formula']} {before['space_group']} (original of a mirrored run)"
            original.description = f"{source}, oriented: {orientation.note}"
    for line in symmetry_lines(info):
        print(line)

    try:
        codes = [orm.load_code(f"{name}@{args.computer}") for name in ("pw", "ph", "q2r")]
    except NotExistent as exc:
        sys.exit(f"{exc}: run `aiida-llpam setup` (or give --computer)")
    structure = orm.StructureData(ase=run_atoms)
    builder = pam_builder(codes, structure, info, args.enantiomer, args.protocol, family, args.symprec, source, original)
    print(f"pseudo family {family}, protocol {args.protocol}, computer {args.computer}")
    if args.protocol in UNPHYSICAL_PROTOCOLS:
        print(
            f"NOTE: {UNPHYSICAL_PROTOCOLS[args.protocol]}: it tests the machinery (use --protocol fast or production)"
        )
    if args.dry_run:
        print("dry run: structure checked and builder made; nothing stored, nothing run")
        return builder

    if original is not None and not original.is_stored:
        original.store()
    node = run_with_progress(builder, quiet=args.quiet, pk_file=args.pk_file)
    if original is not None:
        mark_enantiomer(node, original)
    if not print_outcome(node):
        sys.exit(f"the workchain failed: {node.exit_message}")
    if not info["gamma_m_allowed"]:
        print(f"{response_symmetry_text(info)}: the stored values there are numerical noise")
    if args.figures:
        for path in write_figures(node, args.figures):
            print(f"  figure {path}")
    return node


if __name__ == "__main__":
    main()
