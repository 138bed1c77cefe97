"""The process a PamResponseCalculation runs: force constants + settings in, every response quantity out.

    python -m aiida_llpam.calculations.response_job force_constants.npz parameters.json results.npz

Plain numpy and the physics package: no AiiDA profile is needed where it runs (a cluster node).
``results.npz`` holds every response quantity of the registry by name, the T and r axes and the
settings (JSON, SI units) under ``settings_json``.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from aiida_llpam import quantities
from aiida_llpam.physics import ResponseSettings, response_from_settings
from aiida_llpam.physics.phonon import phonopy_from_stored


def run(force_constants_path: str, parameters_path: str, results_path: str) -> None:
    data = np.load(force_constants_path)
    phonon = phonopy_from_stored(data, [str(s) for s in data["symbols"]])
    with open(parameters_path) as handle:
        settings = ResponseSettings.from_mapping(json.load(handle))
    result = response_from_settings(phonon, settings, report=lambda line: print(line, flush=True))
    settings = result.settings  # with the k mesh the result was summed on (the last of a convergence sequence)
    # read through the module: the registry is the one list of what a job writes
    arrays = {
        q.name: np.asarray(getattr(result, q.name))
        for q in quantities.QUANTITIES
        if quantities.OUTPUTS[q.output].source == "response"
    }
    np.savez(
        results_path,
        temperatures_k=settings.temperatures_k,
        radii_m=settings.radii_m,
        bz_temperature_k=settings.bz_temperature_k,
        mesh=np.asarray(settings.mesh),
        settings_json=json.dumps(settings.as_dict()),
        **arrays,
    )


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    run(*sys.argv[1:])
