"""One HDF5 file with every array and setting of a PamWorkChain (layout: docs/hdf5_layout.md, from the registry)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from aiida_llpam.quantities import OUTPUTS, axis_arrays, quantities_of

#: figure outputs as gathered by aiida_llpam.queries.gather
_FIGURE_GROUPS = {"dispersion": "path", "acoustic": "acoustic", "gamma_a": "gamma_a", "trajectory": "trajectory"}


def write_results_h5(path, data: dict, sources: dict, warning: str | None = None) -> Path:
    """One group per registry output (datasets with a ``units`` attribute), /settings as JSON attributes.

    ``data`` and ``sources`` as aiida_llpam.queries.gather returns them. Optional outputs a run did not make
    (lifetimes_response) are left out. ``warning`` (e.g. the smoke protocol's "NOT physical") becomes the root
    attribute ``warning``.
    """
    path = Path(path)
    with h5py.File(path, "w") as h5:
        h5.attrs["format"] = "aiida-llpam results 2"
        h5.attrs["workchain_uuid"] = sources["workchain"]
        if warning:
            h5.attrs["warning"] = warning
        for name, out in OUTPUTS.items():
            values = data["response"] if out.source == "response" else data[_FIGURE_GROUPS[name]]
            if out.optional and not any(q.name in values for q in quantities_of(name)):
                continue
            group = h5.create_group(name)
            group.attrs["description"] = out.description
            source = "response" if out.source == "response" else _FIGURE_GROUPS[name]
            group.attrs["source_uuids"] = json.dumps(sources.get(source, {}))
            entries = [(array, unit) for _, array, unit in axis_arrays(name)]
            entries += [(q.name, q.unit) for q in quantities_of(name)]
            for array, unit in entries:
                if array in values:
                    dataset = group.create_dataset(array, data=np.asarray(values[array]))
                    dataset.attrs["units"] = unit
            for key in out.attributes:
                if key in values:
                    value = values[key]
                    group.attrs[key] = json.dumps(value.tolist() if isinstance(value, np.ndarray) else value)
        settings = h5.create_group("settings")
        settings.attrs["source_uuids"] = json.dumps(sources.get("settings", {}))
        for key, value in data["settings"].items():
            settings.attrs[key] = json.dumps(value)
    return path
