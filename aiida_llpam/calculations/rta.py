"""Phono3pyRtaCalculation: fc3 from the supercell forces and phono3py's RTA as a job that no daemon worker waits for."""

from __future__ import annotations

import json

import numpy as np
from aiida import orm
from aiida.common import CalcInfo, CodeInfo
from aiida.engine import CalcJob

from .functions.phonopy_force_constants import write_force_constants
from .rta_job import FC3_FILE, SUMMARY_FILE, kappa_filename, rta_settings


def validate_parameters(node: orm.Dict, _) -> str | None:
    """The job's own check of the RTA settings (before anything runs)."""
    try:
        rta_settings(node.get_dict())
    except ValueError as exc:
        return f"parameters.{exc}"
    return None


def openmp_threads(resources: dict) -> int:
    """The threads of a serial job holding ``resources`` on one machine: its processes times their cores."""
    processes = resources.get("num_mpiprocs_per_machine") or resources.get("tot_num_mpiprocs") or 1
    return int(processes) * int(resources.get("num_cores_per_mpiproc") or 1)


def validate_forces(forces: dict, _) -> str | None:
    """Every force node must hold an array ``forces`` (steps, atoms, 3), as pw.x's ``output_trajectory`` does."""
    for label, node in (forces or {}).items():
        if "forces" not in node.get_arraynames():
            return f"forces.{label}: no array 'forces' (pw.x's output_trajectory has one)"
        if len(node.get_shape("forces")) != 3:
            return f"forces.{label}: 'forces' of shape {node.get_shape('forces')}, not (steps, atoms, 3)"
    return None


class Phono3pyRtaCalculation(CalcJob):
    """phono3py's fc3 (``fc3.hdf5``) from the displaced supercells' forces and its RTA (``kappa-m*.hdf5``) on the
    DFPT fc2 with eps/Z* of ``force_constants`` (the response's own harmonic model).

    Runs ``python -m aiida_llpam.calculations.rta_job`` with the code's Python (which must have aiida-llpam
    installed: ``llpam-response@<computer>`` of ``aiida-llpam setup`` is one); the parser ``llpam.rta`` stores
    both files as SinglefileData and what was run as a Dict.
    """

    _FC_FILE = "force_constants.npz"
    _DATASET_FILE = "dataset.json"
    _FORCES_FILE = "forces.npz"
    _PARAMETERS_FILE = "parameters.json"
    _STDOUT_FILE = "aiida.out"
    _STDERR_FILE = "aiida.err"

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input(
            "force_constants",
            valid_type=orm.ArrayData,
            help="The DFPT force constants and eps/Z* (phonopy_force_constants): phono3py's fc2.",
        )
        spec.input(
            "dataset",
            valid_type=orm.Dict,
            help="phono3py's displacement dataset (Angstrom): phono3py_supercells' output dataset.",
        )
        spec.input(
            "parameters",
            valid_type=orm.Dict,
            validator=validate_parameters,
            help="supercell_matrix (fc3; 3 integers or 3x3), mesh (Gamma-centred), temperatures_k; optionally "
            "fc3_method, cutoff_pair_distance_angstrom, fitted_snapshots, isotope, triplets_within_angstrom, "
            "symmetrize_fc3 (rta_job.rta_settings).",
        )
        spec.input_namespace(
            "forces",
            valid_type=orm.ArrayData,
            dynamic=True,
            validator=validate_forces,
            help="supercell_0001, ...: forces (eV/Angstrom, the last step of an array 'forces') "
            "of every supercell of the dataset that phono3py computes, e.g. pw.x's "
            "output_trajectory.",
        )
        spec.inputs["metadata"]["options"]["resources"].default = {"num_machines": 1, "num_mpiprocs_per_machine": 1}
        spec.inputs["metadata"]["options"]["parser_name"].default = "llpam.rta"
        spec.inputs["metadata"]["options"]["withmpi"].default = False
        spec.output("fc3", valid_type=orm.SinglefileData, help="phono3py's fc3.hdf5 (eV/Angstrom^3, compact).")
        spec.output(
            "kappa",
            valid_type=orm.SinglefileData,
            help="phono3py's kappa-m*.hdf5 of the RTA (Gamma in THz on the irreducible points).",
        )
        spec.output(
            "summary",
            valid_type=orm.Dict,
            help="What was run: settings, supercell counts, fc3 shape, seconds, phono3py version.",
        )
        spec.exit_code(300, "ERROR_MISSING_OUTPUT", message="The job wrote no {files}; its stderr ends: {stderr}")
        spec.exit_code(301, "ERROR_READING_OUTPUT", message="The job's output could not be read: {message}")
        spec.exit_code(302, "ERROR_INPUTS_REFUSED", message="The RTA refused its inputs: {message}")
        spec.exit_code(303, "ERROR_PHONO3PY", message="phono3py failed: {message}")
        spec.exit_code(
            304,
            "ERROR_NO_TEMPORARY_FOLDER",
            message="fc3 and kappa are retrieved temporarily, and the parser was given no retrieved_temporary_folder",
        )

    @classmethod
    def output_files(cls, parameters: dict) -> list[str]:
        """The files the job writes for these parameters: fc3, kappa, summary."""
        return [FC3_FILE, kappa_filename(parameters["mesh"]), SUMMARY_FILE]

    def prepare_for_submission(self, folder):
        with folder.open(self._FC_FILE, "wb") as handle:
            write_force_constants(self.inputs.force_constants, handle)
        with folder.open(self._FORCES_FILE, "wb") as handle:
            np.savez(handle, **{label: node.get_array("forces")[-1] for label, node in self.inputs.forces.items()})
        with folder.open(self._DATASET_FILE, "w") as handle:
            json.dump(self.inputs.dataset.get_dict(), handle)
        with folder.open(self._PARAMETERS_FILE, "w") as handle:
            json.dump(self.inputs.parameters.get_dict(), handle)

        codeinfo = CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = [
            "-m",
            "aiida_llpam.calculations.rta_job",
            self._FC_FILE,
            self._DATASET_FILE,
            self._FORCES_FILE,
            self._PARAMETERS_FILE,
        ]
        codeinfo.stdout_name = self._STDOUT_FILE
        codeinfo.stderr_name = self._STDERR_FILE
        calcinfo = CalcInfo()
        calcinfo.codes_info = [codeinfo]
        # phono3py's loops are OpenMP: the cores the job holds are its threads. This comes after the code's own
        # prepend text, which pins a serial job to one thread (the response job's numpy, two jobs side by side)
        calcinfo.prepend_text = f"export OMP_NUM_THREADS={openmp_threads(self.node.get_option('resources'))}"
        fc3_file, kappa_file, summary_file = self.output_files(self.inputs.parameters.get_dict())
        calcinfo.retrieve_list = [summary_file, self._STDOUT_FILE, self._STDERR_FILE]
        # fc3 and kappa become SinglefileData outputs: kept in the retrieved folder too, they would be stored twice
        # (a 16x16x12 quartz kappa file is 8 MB)
        calcinfo.retrieve_temporary_list = [fc3_file, kappa_file]
        # fc2 and the forces are input nodes written out: not stored a second time in the node's repository
        calcinfo.provenance_exclude_list = [self._FC_FILE, self._FORCES_FILE]
        return calcinfo
