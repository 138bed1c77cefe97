"""Force constants for phonopy from the two q2r.x files, stored as one aiida-phonopy ``ForceConstantsData`` node.

The node is aiida-phonopy's own type, in its units (Angstrom, eV/Angstrom^2, the NAC factor of
``get_phonopy_instance``), so ``node.get_phonopy_instance()`` and aiida-phonopy's ``PhonopyCalculation``
take it as it is. aiida-llpam works in QE units (bohr, Ry): :func:`stored_arrays` converts back, and
also reads the plain ``ArrayData`` (QE units, array names of ``UNITS``) of runs made before.
"""

import numpy as np
from aiida import orm
from aiida.engine import calcfunction
from aiida_phonopy.data import ForceConstantsData
from phonopy.structure.atoms import PhonopyAtoms

from aiida_llpam.physics import build_phonopy
from aiida_llpam.physics.direct_dfpt import gamma_matrix, star_matches
from aiida_llpam.physics.q2r import parse_q2r
from aiida_llpam.physics.sum_rules import enforce_rotational_invariance, onsite_acoustic_sum_rule
from aiida_llpam.physics.units import BOHR_ANGSTROM, RY_BOHR2_IN_EV_ANGSTROM2

from .dyn_mat_folder import direct_dyn_files, gamma_dyn_file

#: the arrays aiida-llpam reads (QE units), as stored on the ArrayData of earlier runs
UNITS = {
    "lattice_bohr": "bohr",
    "positions_bohr": "bohr",
    "masses_amu": "amu",
    "supercell_matrix": "1",
    "force_constants": "Ry/bohr^2",
    "born_charges": "e",
    "dielectric": "1",
}
#: the sum-rule settings and their meaning (the workchain's ``sum_rules`` input)
SUM_RULE_KEYS = {
    "rotational_invariance": "true: impose Born-Huang + Huang invariance by unfolding (THEORY.md section 8)",
    "unfolding_factor": "three positive integers: the supercell of the corrected IFCs is this times the q mesh",
    "acoustic": "'crystal': phonopy's ASR projection at Gamma of q2r.x's IFCs; 'onsite': the on-site correction "
    "from ph.x's raw Gamma matrix at every q, as the direct check applies it (needs the DFPT's dyn files)",
}
#: the acoustic sum rules of SUM_RULE_KEYS["acoustic"]; runs made before it existed used "crystal"
ACOUSTIC_RULES = ("crystal", "onsite")


def validate_sum_rules(parameters: dict) -> str | None:
    """A message naming the first bad sum-rule setting, or None."""
    if set(parameters) - {"acoustic"} != set(SUM_RULE_KEYS) - {"acoustic"}:
        return (
            f"sum_rules: expected the keys {', '.join(SUM_RULE_KEYS)} (acoustic optional, default crystal), "
            f"got {', '.join(sorted(parameters))}"
        )
    if parameters.get("acoustic", "crystal") not in ACOUSTIC_RULES:
        return f"sum_rules.acoustic: one of {', '.join(ACOUSTIC_RULES)}, got {parameters['acoustic']!r}"
    if not isinstance(parameters["rotational_invariance"], bool):
        return f"sum_rules.rotational_invariance: must be true or false, got {parameters['rotational_invariance']!r}"
    factor = parameters["unfolding_factor"]
    if not (isinstance(factor, list) and len(factor) == 3 and all(isinstance(n, int) and n >= 1 for n in factor)):
        return f"sum_rules.unfolding_factor: must be {SUM_RULE_KEYS['unfolding_factor']}, got {factor!r}"
    return None


def validate_fit_inputs(settings: dict, has_dfpt: bool, n_direct: int) -> str | None:
    """What the on-site rule and a fit to direct ph.x runs need, or None."""
    acoustic = settings.get("acoustic", "crystal")
    if acoustic == "onsite" and not has_dfpt:
        return "sum_rules.acoustic = onsite needs the DFPT's dyn files (input dfpt): the raw Gamma matrix"
    if n_direct and (acoustic != "onsite" or not settings["rotational_invariance"]):
        return (
            "direct ph.x runs are fitted only with sum_rules.acoustic = onsite and rotational_invariance true: "
            "the direct matrices carry the on-site correction, and the fit is part of the redistribution"
        )
    return None


@calcfunction
def phonopy_force_constants(
    force_constants: orm.SinglefileData,
    nac_force_constants: orm.SinglefileData,
    sum_rules: orm.Dict,
    dfpt: orm.FolderData | None = None,
    **direct: orm.FolderData,
) -> ForceConstantsData:
    """phonopy's compact force constants (ASR imposed, optionally rotationally invariant) plus eps/Z* for Gonze NAC.

    ``force_constants``: q2r.x file without dipole subtraction; ``nac_force_constants``:
    q2r.x file that carries eps/Z* (its IFCs are not used); ``sum_rules``: see
    :data:`SUM_RULE_KEYS`. With rotational invariance the IFCs live on the unfolded
    supercell (every DFPT dynamical matrix kept); the attribute ``sum_rules`` records
    the residuals before and after. ``dfpt``: the retrieved dyn files of the DFPT (the raw Gamma matrix of the
    on-site rule); ``direct``: retrieved folders of single-q ph.x runs at the DFPT's settings (labels ``q<i>``)
    whose matrices the redistribution fits (:func:`aiida_llpam.physics.sum_rules.enforce_rotational_invariance`).
    Rebuild the phonopy object in QE units with :func:`phonopy_from_node`,
    or in aiida-phonopy's units with ``node.get_phonopy_instance()``.
    """
    settings = sum_rules.get_dict()
    error = validate_sum_rules(settings) or validate_fit_inputs(settings, dfpt is not None, len(direct))
    if error:
        raise ValueError(error)
    fc = parse_q2r(force_constants.get_content(), source="force_constants")
    nac = parse_q2r(nac_force_constants.get_content(), read_ifc=False, source="nac_force_constants")
    phonon = build_phonopy(fc, nac)
    record = dict(settings)
    matches = []
    if settings.get("acoustic", "crystal") == "onsite":
        gamma = gamma_dyn_file(dfpt)
        phonon = onsite_acoustic_sum_rule(phonon, gamma_matrix(gamma))
        matches = star_matches(gamma, direct_dyn_files(direct))
    if settings["rotational_invariance"]:
        phonon, report = enforce_rotational_invariance(phonon, settings["unfolding_factor"], matches=matches)
        record.update(report.as_dict())
    node = ForceConstantsData(
        phonopy_atoms=PhonopyAtoms(
            symbols=list(fc.symbols),
            cell=np.asarray(fc.lattice_bohr) * BOHR_ANGSTROM,
            positions=np.asarray(fc.positions_bohr) * BOHR_ANGSTROM,
            masses=np.asarray(fc.masses_amu),
        ),
        supercell_matrix=np.asarray(phonon.supercell_matrix).tolist(),
        primitive_matrix=np.eye(3).tolist(),
    )
    node.set_force_constants(np.asarray(phonon.force_constants) * RY_BOHR2_IN_EV_ANGSTROM2)
    node.set_born_charges(np.asarray(nac.born_charges))
    node.set_dielectric(np.asarray(nac.dielectric))
    node.base.attributes.set("units", {"force_constants": "eV/Angstrom^2", "cell": "Angstrom", "born_charges": "e"})
    node.base.attributes.set("qpoints_mesh", list(fc.mesh))
    node.base.attributes.set("sum_rules", record)
    node.base.attributes.set(
        "description",
        "q2r.x IFCs without dipole subtraction (ASR imposed"
        + (" on site from ph.x's Gamma matrix" if settings.get("acoustic") == "onsite" else "")
        + (", Born-Huang + Huang invariance by unfolding" if settings["rotational_invariance"] else "")
        + (f", fitted to direct ph.x at {len(matches)} q points" if matches else "")
        + ") + eps/Z* for Gonze NAC",
    )
    return node


def stored_arrays(node: orm.ArrayData) -> dict:
    """The arrays of :data:`UNITS` (QE units) of a force-constants node, old (``ArrayData``) or new
    (``ForceConstantsData``)."""
    if not isinstance(node, ForceConstantsData):
        return {name: node.get_array(name) for name in UNITS}
    return {
        "lattice_bohr": np.asarray(node.cell) / BOHR_ANGSTROM,
        "positions_bohr": np.asarray(node.positions) / BOHR_ANGSTROM,
        "masses_amu": np.asarray(node.masses),
        "supercell_matrix": np.asarray(node.supercell_matrix),
        "force_constants": node.force_constants / RY_BOHR2_IN_EV_ANGSTROM2,
        "born_charges": node.born_charges,
        "dielectric": node.dielectric,
    }


def phonopy_from_node(node: orm.ArrayData):
    """The phonopy object (QE units) of a node made by :func:`phonopy_force_constants`."""
    from aiida_llpam.physics.phonon import phonopy_from_stored

    return phonopy_from_stored(stored_arrays(node), node.base.attributes.get("symbols"))


def write_force_constants(node: orm.ArrayData, handle) -> None:
    """The node's arrays (QE units) and symbols as one .npz file (what the response job reads)."""
    np.savez(handle, symbols=np.array(node.base.attributes.get("symbols")), **stored_arrays(node))
