"""fc3 from the supercell forces and phono3py's RTA on the response mesh: the two files of the lifetimes."""

import contextlib
import tempfile
from pathlib import Path

import numpy as np
from aiida import orm
from aiida.engine import ExitCode, calcfunction
from phono3py.file_IO import write_fc3_to_hdf5

from aiida_llpam.physics.third_order import build_phono3py, kappa_rta, produce_fc3

from .phonopy_force_constants import stored_arrays


@calcfunction
def phono3py_fc3_kappa(force_constants: orm.ArrayData, dataset: orm.Dict, parameters: orm.Dict, **forces) -> dict:
    """``fc3`` (phono3py's ``fc3.hdf5``, eV/Angstrom^3) and ``kappa`` (its ``kappa-m*.hdf5`` of the RTA on
    ``parameters['mesh']`` at ``parameters['temperatures_k']``), with the DFPT fc2 and eps/Z* of ``force_constants``.

    ``forces``: ``supercell_0001``, ... the ``output_trajectory`` of each supercell's pw.x run (eV/Angstrom), one
    for every supercell of ``dataset`` that phono3py computes. A missing or misshapen one is refused (300).
    """
    settings = parameters.get_dict()
    ph3 = build_phono3py(stored_arrays(force_constants), force_constants.base.attributes.get("symbols"),
                         settings["supercell_matrix"])  # fmt: skip
    ph3.dataset = dataset.get_dict()
    cells = ph3.supercells_with_displacements
    natom = len(ph3.supercell)
    table = np.zeros((len(cells), natom, 3))
    for index, cell in enumerate(cells, start=1):
        if cell is None:
            continue
        label = f"supercell_{index:04d}"
        if label not in forces:
            return ExitCode(300, f"no forces for {label} of the dataset")
        values = forces[label].get_array("forces")[-1]
        if values.shape != (natom, 3):
            return ExitCode(300, f"{label}: forces of shape {values.shape}, the supercell has {natom} atoms")
        table[index - 1] = values  # eV/Angstrom, phono3py's unit
    fc3 = produce_fc3(ph3, table)
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        write_fc3_to_hdf5(fc3, filename="fc3.hdf5", p2s_map=ph3.primitive.p2s_map)
        fc3_node = orm.SinglefileData(Path(folder) / "fc3.hdf5")
    kappa = kappa_rta(ph3, settings["mesh"], settings["temperatures_k"])
    mesh = "".join(str(n) for n in settings["mesh"])
    return {"fc3": fc3_node, "kappa": orm.SinglefileData.from_bytes(kappa, filename=f"kappa-m{mesh}.hdf5")}
