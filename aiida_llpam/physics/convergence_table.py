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

from aiida_llpam.physics.acoustic import frequencies_thz
from aiida_llpam.physics.convergence import TRACKED, MeshConvergence
from aiida_llpam.physics.units import THZ_TO_CM

__all__ = ["TRACKED", "gamma_frequencies_cm", "reference_values"]


def reference_values(arrays: dict) -> dict[str, float]:
    """Every tracked sum on the result's (last) mesh at the reference temperature, and ``<name>_kmesh_uncertainty``.

    The uncertainty is |change| of the last mesh step (NaN when a single mesh was summed).
    """
    table = MeshConvergence.from_arrays(arrays)
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
    return frequencies_thz(phonon, np.zeros((1, 3)))[0] * THZ_TO_CM
