"""The PamWorkChain builder of one crystal run, shared by workflows/run_crystal.py and workflows/screen.py."""

from __future__ import annotations

from aiida_llpam.structures import MIRROR_OPERATION


def pam_builder(
    codes,
    structure,
    info: dict,
    enantiomer: str,
    protocol: str,
    family: str,
    symprec: float,
    source: str,
    original=None,
    options: dict | None = None,
):
    """The builder of one run, labelled "<formula> <space group> <enantiomer> <protocol>" and described by its
    source; ``info``: ``symmetry_of`` of ``structure``; ``original``: the stored StructureData that ``structure``
    is the mirror image of (None for an as-is run), named in both descriptions; ``options``: of every CalcJob."""
    from aiida_llpam.workflows.pam import PamWorkChain

    overrides = {"symprec": symprec, "pseudo_family": family}
    builder = PamWorkChain.get_builder_from_protocol(
        *codes, structure, protocol=protocol, overrides=overrides, options=options
    )
    builder.metadata.label = f"{info['formula']} {info['space_group']} {enantiomer} {protocol}"
    description = f"{info['formula']} {info['space_group']} (No. {info['space_group_number']}) from {source}"
    if original is not None:
        description += f"; enantiomer: {MIRROR_OPERATION} of StructureData {original.uuid}"
        structure.description = f"{MIRROR_OPERATION} of StructureData {original.uuid}"
    builder.metadata.description = description
    return builder
