"""Space group, point group and chirality of a structure from spglib, inside provenance."""

from aiida import orm
from aiida.engine import calcfunction

from aiida_llpam.physics.symmetry import analyse_symmetry


@calcfunction
def crystal_symmetry(structure: orm.StructureData, symprec: orm.Float) -> orm.Dict:
    """Formula, space group (symbol, number), point group, Sohncke (chiral) or not, the enantiomorphic partner
    group, the handedness label of THEORY's convention and the tolerance used (Angstrom)."""
    ase = structure.get_ase()
    info = analyse_symmetry(ase.cell[:], ase.get_scaled_positions(), ase.numbers, symprec.value)
    info["formula"] = structure.get_formula()
    return orm.Dict(info)
