"""phono3py's displaced supercells for fc3, as structures for pw.x, with the displacement dataset they belong to."""

import json

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_llpam.calculations.rta_job import REFERENCE
from aiida_llpam.physics.third_order import (
    build_phono3py,
    displaced_supercells,
    fit_size,
    random_supercells,
    residual_forces_allowed,
)

from .phonopy_force_constants import stored_arrays


def json_ready(value):
    """phono3py's dataset (numpy inside dicts and lists) as plain JSON values, for a Dict node."""
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value.item() if isinstance(value, np.generic) else value


@calcfunction
def phono3py_supercells(force_constants: orm.ArrayData, parameters: orm.Dict) -> dict:
    """The supercells to compute for fc3 (``supercell_0001``, ... numbered as phono3py's dataset, the skipped
    pairs missing), phono3py's dataset (``dataset``, Angstrom) and its ``phono3py_disp.yaml`` (``disp_yaml``); for
    random snapshots also the undisplaced supercell where symmetry allows its atoms a force (``supercell_0000``,
    whose residual forces the fit subtracts: :data:`aiida_llpam.calculations.rta_job.REFERENCE`) and
    ``fit_size``, the size of symfc's fit (:func:`aiida_llpam.physics.third_order.fit_size`).

    ``parameters``: ``supercell_matrix`` (3x3), ``fc3_method`` (``finite`` or ``random``),
    ``displacement_distance_angstrom``, ``cutoff_pair_distance_angstrom`` (absent: every pair), and for ``random``
    ``number_of_snapshots``, ``random_seed`` and ``plus_minus``, as
    :func:`aiida_llpam.workflows.lifetimes.normalised_parameters` returns them (with the seed drawn).
    """
    settings = parameters.get_dict()
    ph3 = build_phono3py(
        stored_arrays(force_constants), force_constants.base.attributes.get("symbols"), settings["supercell_matrix"]
    )
    outputs = {}
    if settings.get("fc3_method", "finite") == "random":
        yaml_text, cells = random_supercells(
            ph3,
            settings["number_of_snapshots"],
            settings["displacement_distance_angstrom"],
            settings["random_seed"],
            settings["plus_minus"],
        )
        outputs["fit_size"] = orm.Dict(fit_size(ph3, settings.get("cutoff_pair_distance_angstrom")))
        if residual_forces_allowed(ph3):  # else its forces are zero by symmetry (and the scf may not converge)
            outputs[REFERENCE] = _structure(ph3.supercell)
    else:
        yaml_text, cells = displaced_supercells(
            ph3, settings["displacement_distance_angstrom"], settings.get("cutoff_pair_distance_angstrom")
        )
    outputs |= {
        "dataset": orm.Dict(json.loads(json.dumps(json_ready(ph3.dataset)))),
        "disp_yaml": orm.SinglefileData.from_string(yaml_text, filename="phono3py_disp.yaml"),
    }
    for index, cell in enumerate(cells, start=1):
        if cell is None:  # a pair beyond the cutoff: fc3 takes it as zero, no force calculation
            continue
        outputs[f"supercell_{index:04d}"] = _structure(cell)
    return outputs


def _structure(cell) -> orm.StructureData:
    """phonopy's cell (Angstrom) as a StructureData."""
    structure = orm.StructureData(cell=np.asarray(cell.cell))
    for symbol, position in zip(cell.symbols, np.asarray(cell.positions)):
        structure.append_atom(position=position, symbols=symbol)
    return structure
