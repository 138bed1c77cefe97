"""Space group, point group and chirality of a crystal (spglib), and which response tensors symmetry allows.

A crystal is chiral when its space group is a Sohncke group: it has no
improper operation (no inversion, mirror, glide or rotoinversion). Eleven
pairs of Sohncke groups are enantiomorphic (the mirror image of a crystal in
one is in the other). Labels: ``enantiomer`` is the space-group symbol for
those pairs; for alpha-quartz (and other quartz-type crystals in 152/154)
``handedness`` follows Donnay & Le Page (1978): P3_221 is right-handed,
P3_121 left-handed. gamma^NL and gamma^M pair an axial with a polar vector, so
any improper operation forces them to zero.
"""

from __future__ import annotations

import numpy as np
import spglib

__all__ = ["ENANTIOMORPHIC_PAIRS", "analyse_symmetry"]

#: the 11 enantiomorphic pairs of space groups (International Tables numbers)
ENANTIOMORPHIC_PAIRS = {
    76: 78, 91: 95, 92: 96, 144: 145, 151: 153, 152: 154, 169: 170, 171: 172, 178: 179, 180: 181, 212: 213,
}  # fmt: skip
ENANTIOMORPHIC_PAIRS.update({b: a for a, b in list(ENANTIOMORPHIC_PAIRS.items())})
#: Donnay & Le Page (1978) for quartz-type structures
QUARTZ_HANDEDNESS = {154: "right", 152: "left"}


def analyse_symmetry(lattice, scaled_positions, numbers, symprec: float = 1e-3) -> dict:
    """JSON-ready description (see the module docstring); raises ValueError if spglib finds no symmetry."""
    dataset = spglib.get_symmetry_dataset((np.asarray(lattice), np.asarray(scaled_positions), np.asarray(numbers)), symprec=symprec)
    if dataset is None:
        raise ValueError(f"spglib found no space group at symprec = {symprec} (overlapping atoms or a bad cell?)")
    proper = bool(np.all(np.linalg.det(dataset.rotations) > 0))
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
        "gamma_nl_allowed": proper,
        "symprec_angstrom": float(symprec),
    }


def spglib_hall_number(space_group_number: int) -> int:
    """The first (standard) Hall number of a space group."""
    for hall in range(1, 531):
        if spglib.get_spacegroup_type(hall).number == space_group_number:
            return hall
    raise ValueError(f"no space group {space_group_number}")
