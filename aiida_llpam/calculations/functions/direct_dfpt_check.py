"""The stored force-constant model against ph.x run directly at q points off the DFPT mesh."""

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_llpam.physics.direct_dfpt import compare_with_model, summarise

from .dyn_mat_folder import direct_dyn_files, gamma_dyn_file
from .phonopy_force_constants import phonopy_from_node

#: units of the arrays of the output ``table``
UNITS = {
    "qpoints": "reduced",
    "model_frequencies_cm": "cm^-1",
    "direct_frequencies_cm": "cm^-1",
    "raw_frequencies_cm": "cm^-1",
    "model_l_z": "hbar",
    "direct_l_z": "hbar",
    "model_mu_z": "mu_N",
    "direct_mu_z": "mu_N",
    "model_ta_splitting_cm": "cm^-1",
    "direct_ta_splitting_cm": "cm^-1",
    "gamma_asr_violation_cm": "cm^-1",
}


@calcfunction
def direct_dfpt_check(force_constants: orm.Data, dfpt: orm.FolderData, **direct: orm.FolderData) -> dict:
    """Outputs ``table`` (ArrayData, units in the attribute ``units``) and ``summary`` (Dict).

    ``force_constants``: the model (a ForceConstantsData of PamWorkChain); ``dfpt``: the retrieved dyn files of
    the DFPT it was made from (its raw Gamma matrix gives the on-site ASR correction); ``direct``: one retrieved
    folder per q point (link labels ``q<i>``), each of a single-q ph.x run.
    """
    table = compare_with_model(phonopy_from_node(force_constants), gamma_dyn_file(dfpt), direct_dyn_files(direct))
    node = orm.ArrayData()
    for name, value in table.items():
        node.set_array(name, np.asarray(value))
    node.base.attributes.set("units", UNITS)
    return {"table": node, "summary": orm.Dict(summarise(table))}
