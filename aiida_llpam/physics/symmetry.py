"""Space group, point group and chirality of a crystal (spglib), and which response tensors symmetry allows.

A crystal is chiral when its space group is a Sohncke group: it has no
improper operation (no inversion, mirror, glide or rotoinversion). Eleven
pairs of Sohncke groups are enantiomorphic (the mirror image of a crystal in
one is in the other). Labels: ``enantiomer`` is the space-group symbol for
those pairs; for alpha-quartz (and other quartz-type crystals in 152/154)
``handedness`` follows Donnay & Le Page (1978): P3_221 is right-handed,
P3_121 left-handed.

gamma^NL_ij maps a polar vector (grad T) to an axial one (L), so every point-group
operation R must leave it as det(R) R gamma R^T. The allowed form is the image of
the group average of that map (``axial_tensor_form``). Inversion kills every
component; a single mirror only some (normal z: all but xz, zx, yz, zy), so an
achiral, non-centrosymmetric crystal (point groups m, mm2, -4, -42m) may carry an
off-diagonal gamma^NL although its pseudoscalar trace and, for a mirror normal to z,
gamma^NL_zz vanish. gamma^M (M_z from dT/dz) is the zz component of a tensor of the
same kind. THEORY.md section 4 ("zero with inversion or a mirror") is the
statement for the trace and for quartz's components.
"""

from __future__ import annotations

import numpy as np
import spglib

__all__ = [
    "ENANTIOMORPHIC_PAIRS",
    "analyse_symmetry",
    "axial_tensor_form",
    "cartesian_rotations",
    "response_symmetry_text",
]

#: the 11 enantiomorphic pairs of space groups (International Tables numbers)
ENANTIOMORPHIC_PAIRS = {
    76: 78,
    91: 95,
    92: 96,
    144: 145,
    151: 153,
    152: 154,
    169: 170,
    171: 172,
    178: 179,
    180: 181,
    212: 213,
}
ENANTIOMORPHIC_PAIRS.update({b: a for a, b in list(ENANTIOMORPHIC_PAIRS.items())})
#: Donnay & Le Page (1978) for quartz-type structures
QUARTZ_HANDEDNESS = {154: "right", 152: "left"}
#: a projected component below this (relative to 1) is zero by symmetry
FORM_TOLERANCE = 1e-8
AXES = "xyz"


def cartesian_rotations(lattice, rotations) -> np.ndarray:
    """spglib's rotations (acting on fractional coordinates of ``lattice``, rows = vectors) in Cartesian form."""
    basis = np.asarray(lattice, dtype=float).T
    return np.einsum("ij,njk,kl->nil", basis, np.asarray(rotations, dtype=float), np.linalg.inv(basis))


def axial_tensor_form(rotations_cart) -> dict:
    """Which components of a polar-to-axial rank-2 tensor (gamma^NL) the point group allows.

    Projector P = <det(R) R (x) R> over the group acting on row-major 3x3 tensors; its rank is the
    number of independent constants. Returns ``allowed`` (3x3 bools), ``independent`` (the rank) and
    ``relations`` (e.g. "xx = yy", read off P: equal rows mean equal components, opposite rows opposite).
    """
    rotations = np.asarray(rotations_cart, dtype=float)
    dets = np.linalg.det(rotations)
    projector = np.einsum("n,nij,nkl->ikjl", dets, rotations, rotations).reshape(9, 9) / len(rotations)
    allowed = np.linalg.norm(projector, axis=1) > FORM_TOLERANCE
    relations = []
    names = [AXES[i] + AXES[j] for i in range(3) for j in range(3)]
    for a in range(9):
        for b in range(a + 1, 9):
            if not (allowed[a] and allowed[b]):
                continue
            for sign, text in ((1, "="), (-1, "= -")):
                if np.allclose(projector[a], sign * projector[b], atol=FORM_TOLERANCE):
                    relations.append(f"{names[a]} {text} {names[b]}")
    return {
        "allowed": allowed.reshape(3, 3).tolist(),
        "independent": int(round(np.trace(projector))),
        "relations": relations,
    }


def analyse_symmetry(lattice, scaled_positions, numbers, symprec: float = 1e-3) -> dict:
    """JSON-ready description (see the module docstring); raises ValueError if spglib finds no symmetry."""
    dataset = spglib.get_symmetry_dataset(
        (np.asarray(lattice), np.asarray(scaled_positions), np.asarray(numbers)), symprec=symprec
    )
    if dataset is None:
        raise ValueError(f"spglib found no space group at symprec = {symprec} (overlapping atoms or a bad cell?)")
    proper = bool(np.all(np.linalg.det(dataset.rotations) > 0))
    form = axial_tensor_form(cartesian_rotations(lattice, dataset.rotations))
    number = int(dataset.number)
    partner = ENANTIOMORPHIC_PAIRS.get(number)
    partner_symbol = spglib.get_spacegroup_type(spglib_hall_number(partner)).international_short if partner else None
    return {
        "space_group": str(dataset.international),
        "space_group_number": number,
        "hall_number": int(dataset.hall_number),
        "point_group": str(dataset.pointgroup),
        "sohncke": proper,
        "enantiomorphic_partner": partner_symbol,
        "enantiomer": str(dataset.international) if partner else None,
        "handedness": QUARTZ_HANDEDNESS.get(number),
        "centrosymmetric": bool(any(np.array_equal(r, -np.eye(3, dtype=int)) for r in dataset.rotations)),
        "gamma_nl_allowed": form["independent"] > 0,
        "gamma_nl_form": form,
        "gamma_m_allowed": bool(form["allowed"][2][2]),
        "symprec_angstrom": float(symprec),
    }


def response_symmetry_text(info: dict) -> str:
    """What symmetry allows of gamma^NL and gamma^M, for people (``info``: an ``analyse_symmetry`` result).

    Symmetry records made before the tensor form was stored only know whether the group is Sohncke.
    """
    kind = (
        "chiral (Sohncke)"
        if info["sohncke"]
        else "achiral" + (", centrosymmetric" if info.get("centrosymmetric") else "")
    )
    form = info.get("gamma_nl_form")
    if form is None:
        return kind + ("" if info["sohncke"] else ": gamma^NL and gamma^M vanish by symmetry")
    if form["independent"] == 0:
        return f"{kind}: gamma^NL and gamma^M vanish by symmetry"
    components = [AXES[i] + AXES[j] for i in range(3) for j in range(3) if form["allowed"][i][j]]
    text = f"{kind}: gamma^NL allowed in {', '.join(components)} ({form['independent']} independent"
    text += f"; {', '.join(form['relations'])})" if form["relations"] else ")"
    if not info["gamma_m_allowed"]:
        text += "; gamma^NL_zz and gamma^M vanish by symmetry"
    return text


def spglib_hall_number(space_group_number: int) -> int:
    """The first (standard) Hall number of a space group."""
    for hall in range(1, 531):
        if spglib.get_spacegroup_type(hall).number == space_group_number:
            return hall
    raise ValueError(f"no space group {space_group_number}")
