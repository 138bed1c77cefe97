"""A crystal structure for PamWorkChain from any file ASE reads or a stored StructureData: checked, oriented, mirrored.

Everything here works on ``ase.Atoms`` and needs no AiiDA profile, except ``load_structure`` for a PK/UUID
and ``family_elements`` (they import AiiDA when called). Bad input raises ``StructureError`` with a message
that names the problem, before anything is stored:

* a path that does not exist or is not a structure ASE can read, or has no 3-D periodic cell;
* a disordered CIF (a site with fractional or mixed occupancy);
* overlapping atoms (closer than ``MIN_DISTANCE_ANGSTROM``, periodic images included; the pair is named);
* an element with no pseudopotential in the chosen aiida-pseudo family (element and family named).

Conventions (docs/crystals.md): for uniaxial crystals (trigonal, tetragonal, hexagonal, by spglib) the unique
axis is put along Cartesian z by a proper rotation (and, where the axis is a lattice vector, a cyclic
relabelling of the lattice vectors so that it is the third, c), so that gamma^NL_zz is the paper's gamma^NL.
Cubic and lower-symmetry crystals keep the given orientation (the full tensor is the answer). Every cell is
made right-handed. The other enantiomer is the mirror image z -> -z on a right-handed lattice
(a, b, -(mirrored c)): fractional z -> -z, as tests/physics/test_response.py's ``mirror_z`` does for force
constants. Lengths in Angstrom.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

from aiida_llpam.physics.symmetry import analyse_symmetry

__all__ = [
    "ENANTIOMER_EXTRA",
    "MIN_DISTANCE_ANGSTROM",
    "MIRROR_OPERATION",
    "Orientation",
    "StructureError",
    "check_occupancies",
    "check_overlaps",
    "check_pseudopotentials",
    "crystal_system",
    "family_elements",
    "handedness_label",
    "load_structure",
    "make_right_handed",
    "mark_enantiomer",
    "mirror_z",
    "orient_unique_axis",
    "read_structure_file",
    "symmetry_of",
]

#: atoms closer than this (Angstrom) are refused as overlapping; the shortest real bonds (H-H) are 0.74 A
MIN_DISTANCE_ANGSTROM = 0.5
#: how the other enantiomer is made, as recorded in descriptions and extras
MIRROR_OPERATION = "mirror z -> -z"
#: the extra of a run on a mirror image: {"structure_uuid": the original's UUID, "operation": MIRROR_OPERATION}
ENANTIOMER_EXTRA = "enantiomer_of"
#: a site counts as fully occupied within this
OCCUPANCY_TOLERANCE = 1e-3
UNIAXIAL = ("trigonal", "tetragonal", "hexagonal")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


class StructureError(ValueError):
    """A structure that cannot be used; the message names the problem."""


def crystal_system(space_group_number: int) -> str:
    """The crystal system of a space group (International Tables number 1-230)."""
    for last, name in (
        (2, "triclinic"),
        (15, "monoclinic"),
        (74, "orthorhombic"),
        (142, "tetragonal"),
        (167, "trigonal"),
        (194, "hexagonal"),
        (230, "cubic"),
    ):
        if 1 <= space_group_number <= last:
            return name
    raise ValueError(f"no space group {space_group_number}")


def _site_label(atoms: Atoms, index: int) -> str:
    return f"{atoms[index].symbol}{index + 1}"


# ---- reading and refusing ----------------------------------------------------------------------------------


def check_occupancies(atoms: Atoms, source: str = "structure") -> None:
    """Refuse partial or mixed occupancy (ASE's CIF reader puts site occupancies in ``info['occupancy']``)."""
    occupancy = atoms.info.get("occupancy") or {}
    for key, species in sorted(occupancy.items(), key=lambda item: str(item[0])):
        site = int(key) + 1 if str(key).isdigit() else key  # ASE's 0-based index of the site in the file's list
        if len(species) > 1:
            mixed = ", ".join(f"{symbol} {float(value):g}" for symbol, value in species.items())
            raise StructureError(
                f"{source}: disordered structure, site {site} is shared by {mixed}; "
                "give an ordered structure (one element per site, occupancy 1)"
            )
        for symbol, value in species.items():
            if abs(float(value) - 1.0) > OCCUPANCY_TOLERANCE:
                raise StructureError(
                    f"{source}: disordered structure, site {site} ({symbol}) has occupancy "
                    f"{float(value):g}; give an ordered structure (occupancy 1 everywhere)"
                )


def check_overlaps(atoms: Atoms, min_distance: float = MIN_DISTANCE_ANGSTROM, source: str = "structure") -> None:
    """Refuse two atoms (or an atom and its own periodic image) closer than ``min_distance`` Angstrom."""
    i, j, d = neighbor_list("ijd", atoms, min_distance)
    if len(d):
        k = int(np.argmin(d))
        pair = (
            f"{_site_label(atoms, int(i[k]))} and its periodic image"
            if i[k] == j[k]
            else f"{_site_label(atoms, int(i[k]))} and {_site_label(atoms, int(j[k]))}"
        )
        raise StructureError(
            f"{source}: overlapping atoms, {pair} are {d[k]:.3f} A apart (less than {min_distance:g} A)"
        )


def _check_cell(atoms: Atoms, source: str) -> Atoms:
    if len(atoms) == 0:
        raise StructureError(f"{source}: no atoms in it")
    if atoms.cell.rank != 3 or abs(atoms.cell.volume) < 1e-6:
        raise StructureError(f"{source}: no 3-D periodic cell (a crystal structure needs three lattice vectors)")
    unknown = sorted({atom.symbol for atom in atoms if atom.number == 0})
    if unknown:
        raise StructureError(f"{source}: unknown element {', '.join(unknown)}")
    atoms = atoms.copy()
    atoms.pbc = True
    return atoms


def validate_atoms(atoms: Atoms, source: str = "structure", min_distance: float = MIN_DISTANCE_ANGSTROM) -> Atoms:
    """A periodic copy of ``atoms`` after every check that needs no pseudopotential family."""
    atoms = _check_cell(atoms, source)
    check_occupancies(atoms, source)
    check_overlaps(atoms, min_distance, source)
    return atoms


def read_structure_file(path, min_distance: float = MIN_DISTANCE_ANGSTROM) -> Atoms:
    """The structure in ``path`` (any format ASE reads, CIF included; the last block/frame of several), checked."""
    from ase.io import read

    path = Path(path)
    if not path.exists():
        raise StructureError(f"{path}: no such file")
    if not path.is_file():
        raise StructureError(f"{path}: not a file")
    try:
        atoms = read(path)  # CIF: fractional_occupancies=True by default, so a disordered file shows in info
    except Exception as exc:  # noqa: BLE001 - ASE raises anything from StopIteration to UnknownFileTypeError
        detail = f" ({exc.__class__.__name__}: {exc})" if str(exc) else f" ({exc.__class__.__name__})"
        raise StructureError(f"{path}: not a crystal structure ASE can read{detail}") from None
    if isinstance(atoms, list):
        atoms = atoms[-1]
    return validate_atoms(atoms, str(path), min_distance)


def load_structure(identifier, min_distance: float = MIN_DISTANCE_ANGSTROM) -> tuple[Atoms, str | None]:
    """(atoms, uuid): from a file path, or from a stored StructureData by PK or UUID (then its UUID; needs a profile).

    A path that exists is read as a file; otherwise an integer or a UUID is looked up in the loaded profile.
    """
    text = str(identifier)
    if Path(text).exists() or not (text.isdigit() or _UUID.match(text)):
        return read_structure_file(text, min_distance), None
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    try:
        node = orm.load_node(int(text) if text.isdigit() else text)
    except (NotExistent, MultipleObjectsError) as exc:
        raise StructureError(f"{text}: no such file, and no single stored node with this PK/UUID ({exc})") from None
    if not isinstance(node, orm.StructureData):
        raise StructureError(f"{text}: {node.__class__.__name__}<{node.pk}> is not a StructureData")
    return validate_atoms(node.get_ase(), f"StructureData<{node.pk}>", min_distance), node.uuid


def check_pseudopotentials(symbols, available, family: str) -> None:
    """Refuse elements of ``symbols`` that have no pseudopotential among ``available`` (family ``family``)."""
    missing = sorted(set(symbols) - set(available))
    if missing:
        plural = "elements" if len(missing) > 1 else "element"
        has = ", ".join(sorted(available)) or "none"
        raise StructureError(
            f"no pseudopotential for {plural} {', '.join(missing)} in the pseudo family {family} "
            f"(it has {has}); choose another with --pseudo-family"
        )


def family_elements(label: str) -> list[str]:
    """The elements of the aiida-pseudo family ``label`` in the loaded profile."""
    from aiida import orm
    from aiida_pseudo.groups.family import PseudoPotentialFamily

    found = orm.QueryBuilder().append(PseudoPotentialFamily, filters={"label": label}).first(flat=True)
    if found is None:
        raise StructureError(f"no pseudopotential family {label} in this profile (aiida-pseudo list shows them)")
    return list(found.elements)


# ---- symmetry, orientation and the mirror image ------------------------------------------------------------


def symmetry_of(atoms: Atoms, symprec: float = 1e-3) -> dict:
    """``analyse_symmetry`` of ``atoms`` plus the crystal system and the formula."""
    info = analyse_symmetry(atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers, symprec)
    info["crystal_system"] = crystal_system(info["space_group_number"])
    info["formula"] = atoms.get_chemical_formula()
    return info


def make_right_handed(atoms: Atoms) -> tuple[Atoms, bool]:
    """The same crystal on a right-handed lattice (a and b swapped if det < 0); True if it changed."""
    if np.linalg.det(atoms.cell[:]) > 0:
        return atoms.copy(), False
    scaled = atoms.get_scaled_positions(wrap=False)[:, [1, 0, 2]]
    out = atoms.copy()
    out.set_cell(atoms.cell[:][[1, 0, 2]], scale_atoms=False)
    out.set_scaled_positions(scaled)
    return out, True


def _unique_axis(atoms: Atoms, symprec: float) -> np.ndarray:
    """The fractional direction u (W u = u) of a 3-, 4- or 6-fold axis of the space group, largest entry +1."""
    import spglib

    dataset = spglib.get_symmetry_dataset((atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers), symprec=symprec)
    for rotation in dataset.rotations:
        proper = np.linalg.det(rotation) * rotation  # a rotoinversion's rotation part
        if round(np.trace(proper)) in (0, 1, 2):  # 3-, 4- or 6-fold
            _, _, vh = np.linalg.svd(proper - np.eye(3))
            u = vh[-1]
            return u / u[np.argmax(np.abs(u))]
    raise ValueError("no 3-, 4- or 6-fold axis in a uniaxial group (symprec too tight?)")


@dataclass(frozen=True)
class Orientation:
    """What ``orient_unique_axis`` did: ``changed``, and a sentence for people."""

    changed: bool
    note: str


def orient_unique_axis(atoms: Atoms, symprec: float = 1e-3) -> tuple[Atoms, Orientation]:
    """Right-handed cell; for trigonal, tetragonal and hexagonal crystals the unique axis along +z.

    Where the axis is a lattice vector, the lattice vectors are relabelled cyclically (keeping the handedness)
    so that it is c; then a proper rotation takes that axis to z and the first lattice vector into the xz plane
    (along x when it is perpendicular to the axis, as for hexagonal and tetragonal cells). Fractional positions
    and the chirality are unchanged. Other crystal systems keep their orientation.
    """
    atoms, flipped = make_right_handed(atoms)
    notes = ["cell made right-handed (a and b swapped)"] if flipped else []
    system = crystal_system(symmetry_of(atoms, symprec)["space_group_number"])
    if system not in UNIAXIAL:
        notes.append(f"{system}: orientation kept (the full gamma^NL tensor is the answer)")
        return atoms, Orientation(flipped, "; ".join(notes))
    u = _unique_axis(atoms, symprec)
    lattice = atoms.cell[:]
    scaled = atoms.get_scaled_positions(wrap=False)
    along = [i for i in range(3) if np.allclose(np.delete(u, i), 0.0, atol=1e-8)]
    if along and along[0] != 2:
        order = [(along[0] + 1) % 3, (along[0] + 2) % 3, along[0]]  # cyclic: the handedness is kept
        lattice, scaled = lattice[order], scaled[:, order]
        notes.append(f"lattice vectors relabelled so that the unique axis is c (old {'abc'[along[0]]})")
        axis = lattice[2]
    else:
        axis = u @ lattice
    z = axis / np.linalg.norm(axis)
    x = lattice[0] - (lattice[0] @ z) * z
    x = x / np.linalg.norm(x)
    rotation = np.array([x, np.cross(z, x), z])  # rows: the new Cartesian axes, det +1
    new_lattice = lattice @ rotation.T
    rotated = not np.allclose(new_lattice, lattice, atol=1e-10)
    if rotated:
        notes.append("rotated so that the unique axis is along z")
    else:
        new_lattice = lattice  # already in place: keep the numbers exactly
    changed = flipped or rotated or bool(along and along[0] != 2)
    if not changed:
        notes.append(f"{system}: unique axis already along z")
        return atoms, Orientation(False, "; ".join(notes))  # untouched, to the last digit
    out = atoms.copy()
    out.set_cell(new_lattice, scale_atoms=False)
    out.set_scaled_positions(scaled)
    return out, Orientation(True, "; ".join(notes))


def mirror_z(atoms: Atoms) -> Atoms:
    """The mirror image z -> -z on the right-handed lattice (a, b, -(mirrored c)): fractional z -> -z.

    With s = diag(1, 1, -1) the Cartesian positions become r s and the lattice rows (a s, b s, -c s), whose
    determinant equals the original's. For a cell with c along z and a, b in the xy plane the lattice is
    unchanged. A chiral crystal goes to its enantiomorphic partner group (P3_221 -> P3_121), or to the other
    enantiomer in the same Sohncke group where the group has no partner (P2_13).
    """
    s = np.diag([1.0, 1.0, -1.0])
    lattice = atoms.cell[:] @ s
    lattice[2] *= -1.0
    scaled = atoms.get_scaled_positions(wrap=False)
    scaled[:, 2] = -scaled[:, 2]
    out = atoms.copy()
    out.set_cell(lattice, scale_atoms=False)
    out.set_scaled_positions(scaled)
    out.wrap()
    return out


def handedness_label(symmetry: dict, short: bool = False) -> str:
    """The handedness of a crystal from its symmetry description (``analyse_symmetry`` / the ``symmetry`` output).

    Convention (docs/crystals.md): quartz-type groups 152/154 by Donnay & Le Page (1978), P3_221 right and
    P3_121 left; the other enantiomorphic pairs by the space-group symbol itself (the two enantiomers are in
    different groups); Sohncke groups with no partner (e.g. P2_13, P2_12_12_1) have no label from symmetry
    alone (both enantiomers share the group; ``--enantiomer other`` records which run is the mirror image).
    ``short``: one word for tables.
    """
    if not symmetry.get("sohncke"):
        return "achiral" if short else "none: achiral (the space group has an improper operation)"
    if symmetry.get("handedness"):
        return symmetry["handedness"] if short else f"{symmetry['handedness']} (Donnay & Le Page 1978, quartz type)"
    if symmetry.get("enantiomer"):
        if short:
            return symmetry["enantiomer"]
        return (
            f"{symmetry['enantiomer']} (the space group names the enantiomer; "
            f"the mirror image is in {symmetry['enantiomorphic_partner']})"
        )
    if short:
        return "chiral"
    return (
        f"not named by symmetry: both enantiomers are in {symmetry.get('space_group')} "
        "(--enantiomer other records which run is the mirror image)"
    )


def mark_enantiomer(node, original) -> None:
    """Record on the run ``node`` that its structure is the mirror image of the StructureData ``original``
    (the extra ENANTIOMER_EXTRA, which ``aiida-llpam table`` reads)."""
    node.base.extras.set(ENANTIOMER_EXTRA, {"structure_uuid": original.uuid, "operation": MIRROR_OPERATION})
