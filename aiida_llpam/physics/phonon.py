"""The one place that turns q2r.x force constants into a phonopy object.

LO-TO splitting: q2r.x run on dyn files whose Gamma file carries eps/Z*
writes *dipole-subtracted* IFCs. phonopy's Gonze NAC expects the full IFCs,
so the correct recipe is

* ``fc``: q2r.x run on the same dyn files with the dielectric block removed
  (:func:`aiida_llpam.physics.dynmat.strip_dielectric_block`),
* ``nac``: any q2r.x file of the same structure that carries eps/Z*
  (its IFCs are not used).

Using a dipole-subtracted file as ``fc`` is refused: with phonopy's NAC on top
the dipole part would be counted twice (hundreds of cm^-1 off), without it the
long-range part is missing.
"""

from __future__ import annotations

import numpy as np
from phonopy import Phonopy
from phonopy.interface.calculator import get_calculator_physical_units
from phonopy.structure.atoms import PhonopyAtoms

from .q2r import Q2RForceConstants

__all__ = [
    "ForceConstantsError",
    "build_phonopy",
    "compact_force_constants",
    "phonopy_from_arrays",
    "phonopy_from_stored",
    "set_nac",
]


class ForceConstantsError(ValueError):
    """Force constants and NAC parameters that must not be combined."""


def compact_force_constants(fc: Q2RForceConstants, phonon: Phonopy) -> np.ndarray:
    """q2r IFCs as phonopy's compact array (n_prim, n_super, 3, 3) in Ry/bohr^2.

    q2r.x writes Phi(j1, j2, na1, na2; R) for atom na1 displaced in the cell at
    R and atom na2 in the home cell; phonopy stores fc[p, s, a, b] for the
    force on primitive atom p along a from supercell atom s displaced along b.
    """
    nat = fc.natom
    mesh = np.array(fc.mesh)
    # q2r's lattice vectors R refer to the positions as written in the file, not wrapped into [0, 1)
    scaled = fc.positions_bohr @ np.linalg.inv(fc.lattice_bohr)
    cells = np.array(list(np.ndindex(*fc.mesh)))  # (m1, m2, m3) in file order of our array
    # supercell fractional coordinates of atom na1 in cell R, for every (R, na1)
    q2r_spos = (cells[:, None, :] + scaled[None, :, :]) / mesh  # (ncell, nat, 3)
    sc_spos = phonon.supercell.scaled_positions
    diff = q2r_spos.reshape(-1, 1, 3) - sc_spos[None, :, :]
    diff -= np.rint(diff)
    dist = np.linalg.norm(diff @ phonon.supercell.cell, axis=-1)
    site = np.argmin(dist, axis=1)
    if not np.all(dist[np.arange(len(site)), site] < 1e-4):
        raise ForceConstantsError("q2r lattice points do not map onto phonopy's supercell")
    site = site.reshape(len(cells), nat)  # supercell index of (R, na1)

    ifc = fc.ifc_ry_bohr2.reshape(len(cells), nat, nat, 3, 3)  # [R, na1, na2, j1, j2]
    out = np.zeros((nat, len(sc_spos), 3, 3))
    out[np.arange(nat)[None, None, :], site[:, :, None]] = ifc.transpose(0, 1, 2, 4, 3)
    return out


def _same_structure(a: Q2RForceConstants, b: Q2RForceConstants) -> bool:
    return (
        a.natom == b.natom
        and a.symbols == b.symbols
        and np.allclose(a.lattice_bohr, b.lattice_bohr, atol=1e-4)
        and np.allclose(a.positions_bohr, b.positions_bohr, atol=1e-4)
    )


def build_phonopy(
    fc: Q2RForceConstants,
    nac: Q2RForceConstants | None = None,
    symmetrize: bool = True,
) -> Phonopy:
    """A phonopy object (bohr, Ry, THz) with the q2r IFCs and optional Gonze NAC.

    ``symmetrize`` imposes the acoustic sum rule and index permutation
    symmetry on the force constants (phonopy's ``symmetrize_force_constants``).
    """
    if fc.ifc_ry_bohr2 is None:
        raise ForceConstantsError("the force-constant file was read without its IFC block")
    if fc.is_dipole_subtracted:
        raise ForceConstantsError(
            "the force-constant file carries eps/Z*, so q2r.x subtracted the dipole part "
            "from its IFCs: phonopy's NAC would count it twice. Run q2r.x on dyn files "
            "whose Gamma file has the dielectric block removed and pass this file as the NAC source"
        )
    if nac is not None:
        if not nac.is_dipole_subtracted:
            raise ForceConstantsError("the NAC file carries no dielectric tensor and Born charges")
        if not _same_structure(fc, nac):
            raise ForceConstantsError("the NAC file describes a different structure than the force-constant file")

    phonon = phonopy_from_arrays(fc.lattice_bohr, fc.symbols, fc.positions_bohr, fc.masses_amu, np.diag(fc.mesh))
    phonon.force_constants = compact_force_constants(fc, phonon)
    if symmetrize:
        phonon.symmetrize_force_constants()
    if nac is not None:
        set_nac(phonon, nac.born_charges, nac.dielectric)
    return phonon


def phonopy_from_arrays(
    lattice_bohr,
    symbols,
    positions_bohr,
    masses_amu,
    supercell_matrix,
    force_constants_ry_bohr2=None,
    born_charges=None,
    dielectric=None,
) -> Phonopy:
    """A phonopy object in QE units (bohr, Ry) from stored arrays (e.g. an AiiDA node).

    ``force_constants_ry_bohr2`` is phonopy's compact or full array, already
    symmetrised; eps/Z* switch on Gonze NAC.
    """
    cell = PhonopyAtoms(
        symbols=list(symbols),
        cell=np.asarray(lattice_bohr, dtype=float),
        positions=np.asarray(positions_bohr, dtype=float),
        masses=np.asarray(masses_amu, dtype=float),
    )
    phonon = Phonopy(
        cell, supercell_matrix=np.asarray(supercell_matrix), primitive_matrix="P", calculator="qe", log_level=0
    )
    if force_constants_ry_bohr2 is not None:
        phonon.force_constants = np.asarray(force_constants_ry_bohr2, dtype=float)
    if born_charges is not None:
        set_nac(phonon, born_charges, dielectric)
    return phonon


def phonopy_from_stored(arrays, symbols) -> Phonopy:
    """:func:`phonopy_from_arrays` from a mapping with the arrays of the force-constants node (its names and units)."""
    return phonopy_from_arrays(
        arrays["lattice_bohr"],
        symbols,
        arrays["positions_bohr"],
        arrays["masses_amu"],
        arrays["supercell_matrix"],
        arrays["force_constants"],
        arrays["born_charges"],
        arrays["dielectric"],
    )


def set_nac(phonon: Phonopy, born_charges, dielectric) -> None:
    """Switch on phonopy's Gonze NAC with Born charges and eps as written by q2r.x."""
    phonon.nac_params = {
        "born": np.asarray(born_charges, dtype=float),
        "dielectric": np.asarray(dielectric, dtype=float),
        "factor": get_calculator_physical_units("qe").nac_factor,
        "method": "gonze",
    }
