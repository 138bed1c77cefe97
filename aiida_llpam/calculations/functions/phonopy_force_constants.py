"""Force constants for phonopy from the two q2r.x files, stored as one node."""

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_llpam.physics import build_phonopy
from aiida_llpam.physics.q2r import parse_q2r

UNITS = {
    "lattice_bohr": "bohr",
    "positions_bohr": "bohr",
    "masses_amu": "amu",
    "supercell_matrix": "1",
    "force_constants": "Ry/bohr^2",
    "born_charges": "e",
    "dielectric": "1",
}


@calcfunction
def phonopy_force_constants(force_constants: orm.SinglefileData, nac_force_constants: orm.SinglefileData) -> orm.ArrayData:
    """phonopy's compact force constants (ASR imposed) plus eps/Z* for Gonze NAC.

    ``force_constants``: q2r.x file without dipole subtraction; ``nac_force_constants``:
    q2r.x file that carries eps/Z* (its IFCs are not used). Rebuild the phonopy
    object with :func:`phonopy_from_node`.
    """
    fc = parse_q2r(force_constants.get_content(), source="force_constants")
    nac = parse_q2r(nac_force_constants.get_content(), read_ifc=False, source="nac_force_constants")
    phonon = build_phonopy(fc, nac)
    node = orm.ArrayData()
    node.set_array("lattice_bohr", np.asarray(fc.lattice_bohr))
    node.set_array("positions_bohr", np.asarray(fc.positions_bohr))
    node.set_array("masses_amu", np.asarray(fc.masses_amu))
    node.set_array("supercell_matrix", np.diag(fc.mesh))
    node.set_array("force_constants", np.asarray(phonon.force_constants))
    node.set_array("born_charges", np.asarray(nac.born_charges))
    node.set_array("dielectric", np.asarray(nac.dielectric))
    node.base.attributes.set("symbols", list(fc.symbols))
    node.base.attributes.set("units", UNITS)
    node.base.attributes.set("description", "q2r.x IFCs without dipole subtraction (ASR imposed) + eps/Z* for Gonze NAC")
    return node


def phonopy_from_node(node: orm.ArrayData):
    """The phonopy object of a node made by :func:`phonopy_force_constants`."""
    from aiida_llpam.physics.phonon import phonopy_from_stored

    return phonopy_from_stored({name: node.get_array(name) for name in UNITS}, node.base.attributes.get("symbols"))


def write_force_constants(node: orm.ArrayData, handle) -> None:
    """The node's arrays and symbols as one .npz file (what the response job reads)."""
    np.savez(handle, symbols=np.array(node.base.attributes.get("symbols")), **{name: node.get_array(name) for name in UNITS})
