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
    settings: dict | None = None,
):
    """The builder of one run, labelled "<formula> <space group> <enantiomer> <protocol>" and described by its
    source; ``info``: ``symmetry_of`` of ``structure``; ``original``: the stored StructureData that ``structure``
    is the mirror image of (None for an as-is run), named in both descriptions; ``options``: of every CalcJob;
    ``settings``: the protocol's DFPT settings to replace, any of ``kpoints`` and ``qpoints`` (meshes), ``ecutwfc``
    and ``ecutrho`` (Ry), also named in the label."""
    from aiida_llpam.workflows.pam import PamWorkChain

    settings = settings or {}
    overrides = {"symprec": symprec, "pseudo_family": family}
    overrides.update({key: settings[key] for key in ("kpoints", "ecutwfc", "ecutrho") if key in settings})
    if "qpoints" in settings:
        overrides["ph_main"] = {"qpoints": settings["qpoints"]}
    builder = PamWorkChain.get_builder_from_protocol(
        *codes, structure, protocol=protocol, overrides=overrides, options=options
    )
    builder.metadata.label = f"{info['formula']} {info['space_group']} {enantiomer} {protocol}"
    if settings:
        builder.metadata.label += " " + ", ".join(f"{key} {_text(value)}" for key, value in settings.items())
    description = f"{info['formula']} {info['space_group']} (No. {info['space_group_number']}) from {source}"
    if original is not None:
        description += f"; enantiomer: {MIRROR_OPERATION} of StructureData {original.uuid}"
        structure.description = f"{MIRROR_OPERATION} of StructureData {original.uuid}"
    builder.metadata.description = description
    return builder


def _text(value) -> str:
    return "x".join(str(n) for n in value) if isinstance(value, list | tuple) else f"{value:g}"
