"""The table of a DFPT convergence study (one row per setting) as one ArrayData, inside provenance."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_llpam.calculations.functions.phonopy_force_constants import phonopy_from_node
from aiida_llpam.calculations.nodes import read_output
from aiida_llpam.physics.convergence_table import TRACKED, gamma_frequencies_cm, reference_values
from aiida_llpam.physics.direct_dfpt import raw_gamma_acoustic_cm
from aiida_llpam.physics.units import BOHR_ANGSTROM, THZ_TO_CM
from aiida_llpam.quantities import QUANTITIES

from .dyn_mat_folder import gamma_dyn_file

#: the per-row settings the caller passes in ``rows`` (read from provenance by the workchain)
SETTINGS_UNITS = {
    "ecutwfc_ry": "Ry",
    "ecutrho_ry": "Ry",
    "kpoints_mesh": "1",
    "qpoints_mesh": "1",
    "dfpt_reused": "1",
    "wall_time_s": "s",
}
#: the node inputs of row i are f"{kind}_{i}" (labels are free text; link labels are not)
ROW_NODES = ("convergence", "acoustic", "force_constants")


def table_units() -> dict[str, str]:
    """Unit of every array of the table node."""
    units = dict(SETTINGS_UNITS)
    registry = {q.name: q.unit for q in QUANTITIES if q.output == "convergence"}
    for name in TRACKED:
        units[name] = units[f"{name}_kmesh_uncertainty"] = registry[f"convergence_{name}"]
    units.update(
        temperature_k="K",
        response_mesh="1",
        gamma_frequencies_cm="cm^-1",
        near_gamma_lowest_frequency_cm="cm^-1",
        gamma_asr_violation_cm="cm^-1",
        sound_velocities_m_s="m/s",
        cell_lengths_angstrom="Angstrom",
    )
    return units


@calcfunction
def dfpt_convergence_table(rows: orm.Dict, **nodes) -> orm.ArrayData:
    """One row per DFPT setting, in the order of ``rows['rows']`` (attribute ``labels``).

    ``rows['rows'][i]``: label, workchain (UUID), ecutwfc_ry, ecutrho_ry, kpoints_mesh, qpoints_mesh, dfpt_reused,
    wall_time_s; ``nodes``: ``convergence_i``, ``acoustic_i``, ``force_constants_i`` (outputs of that row's
    PamWorkChain). Arrays (units in the ``units`` attribute): the settings; temperature_k (the reference
    temperature of the k-mesh table); gamma_nl_zz, chi_diagonal, chi_offdiagonal_interband,
    chi_offdiagonal_pair, gamma_m on the response's last k mesh (response_mesh) with ``<name>_kmesh_uncertainty``
    (|last change|); gamma_frequencies_cm (row, branch), ascending, TO at Gamma; near_gamma_lowest_frequency_cm;
    with ``dfpt_i`` (the row's retrieved dyn files) gamma_asr_violation_cm (row, 3): the raw acoustic frequencies at
    Gamma before any sum rule (NaN without it); sound_velocities_m_s (row, direction z/x/y, branch ascending) of
    the row's ``acoustic`` output; cell_lengths_angstrom (row, 3): |a1|, |a2|, |a3| of the cell ph.x ran on (each
    point's own vc-relax, where it ran one).
    """
    settings = rows.get_dict()["rows"]
    columns: dict[str, list] = {name: [] for name in table_units()}
    for i, row in enumerate(settings):
        convergence = read_output(nodes[f"convergence_{i}"])
        values = reference_values(convergence)
        values.update({name: row[name] for name in SETTINGS_UNITS})
        values["response_mesh"] = convergence["convergence_meshes"][-1]
        acoustic = read_output(nodes[f"acoustic_{i}"])
        values["near_gamma_lowest_frequency_cm"] = float(acoustic["near_gamma_lowest_frequency_thz"]) * THZ_TO_CM
        values["sound_velocities_m_s"] = acoustic["sound_velocities_m_s"]
        phonon = phonopy_from_node(nodes[f"force_constants_{i}"])
        values["cell_lengths_angstrom"] = np.linalg.norm(phonon.unitcell.cell, axis=1) * BOHR_ANGSTROM  # QE units: bohr
        values["gamma_frequencies_cm"] = gamma_frequencies_cm(phonon)
        values["gamma_asr_violation_cm"] = np.full(3, np.nan)
        if f"dfpt_{i}" in nodes:
            values["gamma_asr_violation_cm"] = raw_gamma_acoustic_cm(gamma_dyn_file(nodes[f"dfpt_{i}"]), phonon)
        for name in columns:
            columns[name].append(values[name])
    table = orm.ArrayData()
    for name, column in columns.items():
        table.set_array(name, np.asarray(column, dtype=float))
    table.base.attributes.set("units", table_units())
    table.base.attributes.set("labels", [row["label"] for row in settings])
    table.base.attributes.set("workchains", [row["workchain"] for row in settings])
    return table
