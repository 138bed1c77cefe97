"""Rows of a DFPT convergence study: the headline sums with their k-mesh uncertainty, and the Gamma frequencies.

One row per DFPT setting (cut-off, k mesh of the scf, q mesh of ph.x). The sums
are read from the k-mesh convergence table of that setting's response
(:class:`~aiida_llpam.physics.convergence.MeshConvergence`): its last row is the
result at the reference temperature, and the change of its last step is the
k-mesh uncertainty, so a DFPT change is significant only when it exceeds that.
Units: the registry's (J s K^-1 m^-2, kg/m, A/K); frequencies cm^-1.
"""

from __future__ import annotations

import numpy as np

from aiida_llpam.physics.convergence import TRACKED, MeshConvergence
from aiida_llpam.physics.units import THZ_TO_CM

__all__ = ["TRACKED", "gamma_frequencies_cm", "mesh_convergence", "reference_values"]


def mesh_convergence(arrays: dict) -> MeshConvergence:
    """The :class:`MeshConvergence` of the registry's stored ``convergence_*`` arrays (one ``convergence`` node)."""
    return MeshConvergence(
        meshes=np.asarray(arrays["convergence_meshes"]),
        temperature_k=float(arrays["convergence_temperature_k"]),
        tolerance=float(arrays["convergence_tolerance"]),
        values={name: np.asarray(arrays[f"convergence_{name}"], dtype=float) for name in TRACKED},
    )


def reference_values(arrays: dict) -> dict[str, float]:
    """Every tracked sum on the result's (last) mesh at the reference temperature, and ``<name>_kmesh_uncertainty``.

    The uncertainty is |change| of the last mesh step (NaN when a single mesh was summed).
    """
    table = mesh_convergence(arrays)
    row = {"temperature_k": table.temperature_k}
    for name in TRACKED:
        row[name] = float(table.values[name][-1])
        row[f"{name}_kmesh_uncertainty"] = table.uncertainty(name)
    return row


def gamma_frequencies_cm(phonon) -> np.ndarray:
    """(3 N_atoms,) frequencies at Gamma in cm^-1, ascending (negative: imaginary), of a phonopy object in THz.

    Exactly at q = 0 phonopy applies no non-analytic term (it needs a direction), so the polar
    modes are the TO ones: the values do not depend on the direction of approach.
    """
    phonon.run_qpoints([[0.0, 0.0, 0.0]])
    return np.sort(phonon.get_qpoints_dict()["frequencies"][0]) * THZ_TO_CM
