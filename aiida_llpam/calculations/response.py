"""PamResponseCalculation: the response sums as a job of their own, so no daemon worker waits for them."""

from __future__ import annotations

import json

import numpy as np
from aiida import orm
from aiida.common import CalcInfo, CodeInfo
from aiida.engine import CalcJob

from .functions.phonopy_force_constants import write_force_constants


def validate_parameters(node: orm.Dict, _) -> str | None:
    """The physics' own validation of the response settings (before anything runs)."""
    from aiida_llpam.physics.settings import ResponseSettings

    try:
        ResponseSettings.from_mapping(node.get_dict())
    except ValueError as exc:
        return f"response.{exc}"
    return None


def validate_lifetimes(node: orm.ArrayData | None, _) -> str | None:
    """A lifetimes node must hold what :class:`aiida_llpam.physics.lifetimes.Lifetimes` reads, consistently."""
    from aiida_llpam.physics.lifetimes import Lifetimes

    if node is None:
        return None
    try:
        Lifetimes.from_arrays({name: node.get_array(name) for name in node.get_arraynames()})
    except (KeyError, ValueError, TypeError) as exc:
        return f"lifetimes: not a lifetimes node ({exc}); make it with lifetimes_from_kappa"
    return None


class PamResponseCalculation(CalcJob):
    """gamma^NL_ij, chi pieces, gamma^LL, eta, <L_z>, gamma^M, <M_z>, chi_ML, BZ maps and mesh modes of one
    force-constants node.

    Runs ``python -m aiida_llpam.calculations.response_job`` with the code's Python (which must have aiida-llpam
    installed); the parser ``llpam.response`` stores one node per registry output (aiida_llpam.quantities).
    """

    _FC_FILE = "force_constants.npz"
    _PARAMETERS_FILE = "parameters.json"
    _RESULTS_FILE = "results.npz"
    _LIFETIMES_FILE = "lifetimes.npz"

    @classmethod
    def define(cls, spec):
        super().define(spec)
        from aiida_llpam.quantities import OUTPUTS

        spec.input(
            "force_constants", valid_type=orm.ArrayData, help="Force constants + eps/Z* (phonopy_force_constants)."
        )
        spec.input(
            "parameters",
            valid_type=orm.Dict,
            validator=validate_parameters,
            help="Response settings (aiida_llpam.physics.settings).",
        )
        spec.input(
            "lifetimes",
            valid_type=orm.ArrayData,
            required=False,
            validator=validate_lifetimes,
            help="Mode-resolved linewidths (lifetimes_from_kappa): the tau-linear sums also with tau_ks(T).",
        )
        spec.inputs["metadata"]["options"]["resources"].default = {"num_machines": 1, "num_mpiprocs_per_machine": 1}
        spec.inputs["metadata"]["options"]["parser_name"].default = "llpam.response"
        spec.inputs["metadata"]["options"]["withmpi"].default = False
        spec.output("settings", valid_type=orm.Dict, help="The response settings in SI units (radii in m).")
        for name, out in OUTPUTS.items():
            if out.source == "response":
                spec.output(name, valid_type=orm.ArrayData, required=not out.optional, help=out.description)
        spec.exit_code(300, "ERROR_NO_RESULTS", message="The job wrote no results file (see its stderr).")
        spec.exit_code(301, "ERROR_READING_RESULTS", message="The results file could not be read: {message}")
        spec.exit_code(302, "ERROR_INPUTS_REFUSED", message="The response refused its inputs: {message}")

    def prepare_for_submission(self, folder):
        with folder.open(self._FC_FILE, "wb") as handle:
            write_force_constants(self.inputs.force_constants, handle)
        with folder.open(self._PARAMETERS_FILE, "w") as handle:
            json.dump(self.inputs.parameters.get_dict(), handle)

        codeinfo = CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = [
            "-m",
            "aiida_llpam.calculations.response_job",
            self._FC_FILE,
            self._PARAMETERS_FILE,
            self._RESULTS_FILE,
        ]
        if "lifetimes" in self.inputs:
            lifetimes = self.inputs.lifetimes
            with folder.open(self._LIFETIMES_FILE, "wb") as handle:
                np.savez(handle, **{name: lifetimes.get_array(name) for name in lifetimes.get_arraynames()})
            codeinfo.cmdline_params.append(self._LIFETIMES_FILE)
        codeinfo.stdout_name = "aiida.out"
        calcinfo = CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.retrieve_list = [self._RESULTS_FILE, "aiida.out"]
        # the force constants and lifetimes are the input nodes written out: kept in the node's repository too they
        # doubled a run's size (4.9 MB of force constants on quartz unfolded to 12x12x6)
        calcinfo.provenance_exclude_list = [self._FC_FILE, self._LIFETIMES_FILE]
        return calcinfo
