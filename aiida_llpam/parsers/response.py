"""Parser of PamResponseCalculation: results.npz -> one ArrayData per registry output, and the settings."""

from __future__ import annotations

import json

import numpy as np
from aiida import orm
from aiida.parsers import Parser

from aiida_llpam.calculations.nodes import build_outputs
from aiida_llpam.calculations.response_job import REFUSED


def outputs_from_results(handle) -> dict:
    """The output nodes (unstored) of a results file written by aiida_llpam.calculations.response_job."""
    data = dict(np.load(handle, allow_pickle=False))
    settings = json.loads(str(data.pop("settings_json")))
    data["bz_temperature_k"] = float(data["bz_temperature_k"])
    data["mesh"] = tuple(int(n) for n in data["mesh"])
    outputs = build_outputs("response", data, {"temperatures_k": data["temperatures_k"], "radii_m": data["radii_m"]})
    outputs["settings"] = orm.Dict(settings)
    return outputs


class PamResponseParser(Parser):
    def parse(self, **kwargs):
        name = self.node.process_class._RESULTS_FILE  # noqa: SLF001
        repository = self.retrieved.base.repository
        names = repository.list_object_names()
        if name not in names:
            stdout = repository.get_object_content("aiida.out", mode="r") if "aiida.out" in names else ""
            refused = [line[len(REFUSED) :] for line in stdout.splitlines() if line.startswith(REFUSED)]
            if refused:
                return self.exit_codes.ERROR_INPUTS_REFUSED.format(message=refused[-1])
            return self.exit_codes.ERROR_NO_RESULTS
        try:
            with repository.open(name, "rb") as handle:
                outputs = outputs_from_results(handle)
        except (OSError, KeyError, ValueError) as exc:
            return self.exit_codes.ERROR_READING_RESULTS.format(message=str(exc))
        for label, node in outputs.items():
            self.out(label, node)
        return None
