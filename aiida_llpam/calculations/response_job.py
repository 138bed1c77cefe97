"""The process a PamResponseCalculation runs: force constants + settings in, every response quantity out.

    python -m aiida_llpam.calculations.response_job force_constants.npz parameters.json results.npz [lifetimes.npz]

Plain numpy and the physics package: no AiiDA profile is needed where it runs (a cluster node).
``results.npz`` holds every response quantity of the registry by name, the T and r axes and the
settings (JSON, SI units) under ``settings_json``. With ``lifetimes.npz`` (the arrays of a lifetimes node) the
tau-linear sums are also made with the mode-resolved tau (output lifetimes_response).
"""

from __future__ import annotations

import json
import sys

import numpy as np

from aiida_llpam import quantities
from aiida_llpam.physics import ResponseSettings, response_from_settings
from aiida_llpam.physics.lifetimes import Lifetimes
from aiida_llpam.physics.phonon import phonopy_from_stored


def run(force_constants_path: str, parameters_path: str, results_path: str, lifetimes_path: str | None = None) -> None:
    data = np.load(force_constants_path)
    phonon = phonopy_from_stored(data, [str(s) for s in data["symbols"]])
    with open(parameters_path) as handle:
        settings = ResponseSettings.from_mapping(json.load(handle))
    lifetimes = Lifetimes.from_arrays(np.load(lifetimes_path)) if lifetimes_path else None
    result = response_from_settings(phonon, settings, report=lambda line: print(line, flush=True), lifetimes=lifetimes)
    settings = result.settings  # with the k mesh the result was summed on (the last of a convergence sequence)
    # read through the module: the registry is the one list of what a job writes
    arrays = {name: np.asarray(value) for name, value in quantities.response_values(result).items()}
    np.savez(
        results_path,
        temperatures_k=settings.temperatures_k,
        radii_m=settings.radii_m,
        bz_temperature_k=settings.bz_temperature_k,
        mesh=np.asarray(settings.mesh),
        settings_json=json.dumps(settings.as_dict()),
        **arrays,
    )


#: the line that tells the parser the physics refused its inputs (a mesh or temperatures the lifetimes lack, ...)
REFUSED = "REFUSED: "

if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    try:
        run(*sys.argv[1:])
    except ValueError as exc:  # the physics' own validation: its message names the problem
        print(f"{REFUSED}{exc}", flush=True)
        sys.exit(2)
