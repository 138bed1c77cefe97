"""One HDF5 file with every array and setting of a PamWorkChain (layout: docs/hdf5_layout.md)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

#: units of the arrays as gathered by aiida_llpam.tools.results.gather
UNITS = {
    "path": {"qpoints": "reduced", "distance": "1/m", "frequencies_thz": "THz", "l_z_hbar": "hbar", "l_z_species_hbar": "hbar"},
    "gamma_a": {"kz_c_star": "c*", "frequencies_thz": "THz", "l_z_hbar": "hbar", "l_z_species_hbar": "hbar"},
    "trajectory": {"positions_m": "m", "equilibrium_m": "m", "l_z_atom_hbar": "hbar", "q_reduced": "reduced"},
    "response": {
        "temperatures_k": "K", "radii_m": "m", "gamma_nl": "J s K^-1 m^-2",
        "chi_diagonal": "kg/m", "chi_offdiagonal_interband": "kg/m", "chi_offdiagonal_pair": "kg/m",
        "chi_zero_point": "kg/m", "chi_total": "kg/m", "gamma_ll": "1", "gamma_ll_diagonal": "1",
        "gamma_ll_offdiagonal": "1", "eta": "1 (NaN where gamma_ll >= 1)", "critical_radius_m": "m",
        "pam_density_bare": "J s m^-3", "pam_density_total": "J s m^-3 (NaN where gamma_ll >= 1)",
    },
    "bz": {"chi_diagonal": "kg/m per k point", "chi_offdiagonal": "kg/m per k point", "kz_reduced": "b3"},
}  # fmt: skip


def write_results_h5(path, data: dict, sources: dict) -> Path:
    """Groups /path /gamma_a /trajectory /response /bz (datasets with ``units``), /settings as attributes."""
    path = Path(path)
    with h5py.File(path, "w") as h5:
        h5.attrs["format"] = "aiida-llpam results 1"
        h5.attrs["workchain_uuid"] = sources["workchain"]
        for group_name, units in UNITS.items():
            group = h5.create_group(group_name)
            group.attrs["source_uuids"] = json.dumps(sources.get(group_name, {}))
            for name, value in data[group_name].items():
                array = np.asarray(value)
                if array.dtype.kind in "fciub":
                    dataset = group.create_dataset(name, data=array)
                    dataset.attrs["units"] = units.get(name, "1")
                else:
                    group.attrs[name] = json.dumps(value if not isinstance(value, np.ndarray) else value.tolist())
        settings = h5.create_group("settings")
        settings.attrs["source_uuids"] = json.dumps(sources.get("settings", {}))
        for key, value in data["settings"].items():
            settings.attrs[key] = json.dumps(value)
    return path


def read_results_h5(path) -> dict:
    """{group: {name: array}} plus {group: {"_attrs": {...}}} as written by :func:`write_results_h5`."""
    out = {}
    with h5py.File(path, "r") as h5:
        for group_name, group in h5.items():
            entries = {name: dataset[()] for name, dataset in group.items()}
            entries["_units"] = {name: dataset.attrs["units"] for name, dataset in group.items()}
            entries["_attrs"] = {key: json.loads(value) for key, value in group.attrs.items()}
            out[group_name] = entries
        out["_attrs"] = dict(h5.attrs)
    return out
