"""PamWorkChain: crystal structure -> QE DFPT -> force constants -> PAM response, with full provenance."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, if_, while_
from aiida.plugins import WorkflowFactory
from aiida_phonopy.data import ForceConstantsData
from aiida_quantumespresso.workflows.protocols.utils import ProtocolMixin

from aiida_llpam.calculations.functions import (
    crystal_symmetry,
    pam_figure_data,
    phonopy_force_constants,
    strip_dielectric_block_from_folder,
)
from aiida_llpam.calculations.nodes import read_output
from aiida_llpam.calculations.response import PamResponseCalculation
from aiida_llpam.physics.equilibrium import DEFAULT_THRESHOLDS
from aiida_llpam.physics.symmetry import response_symmetry_text
from aiida_llpam.physics.units import THZ_TO_CM
from aiida_llpam.quantities import OUTPUTS
from aiida_llpam.report import imaginary_mode_warnings, kmesh_convergence_line, sound_velocities_line, sum_rules_line

from . import pam_inputs
from .direct_dfpt import DirectDfptWorkChain, validate_qpoints
from .pam_checks import PamChecks
from .ph_base import PhBaseWorkChain
from .protocols import UNPHYSICAL_PROTOCOLS
from .relaunch import RelaunchesLostJobs
from .scf_step import ScfStep

PwBaseWorkChain = WorkflowFactory("quantumespresso.pw.base")
PwRelaxWorkChain = WorkflowFactory("quantumespresso.pw.relax")
Q2rBaseWorkChain = WorkflowFactory("quantumespresso.q2r.base")


class PamWorkChain(PamChecks, ScfStep, RelaunchesLostJobs, ProtocolMixin, WorkChain):
    """A crystal (alpha-quartz or any insulator) from QE DFPT to phonon angular-momentum response nodes.

    Outline: optional vc-relax (PwRelaxWorkChain) -> symmetry (spglib, a
    calcfunction) -> scf (PwBaseWorkChain) -> DFPT on a q mesh with eps/Z*
    (PhBaseWorkChain, restarts kept within QE 6.7, or PhQpointsWorkChain: one job
    per irreducible q point, with ``parallelize_qpoints``) -> q2r.x twice
    (Q2rBaseWorkChain: on ph.x's dyn files, which carry eps/Z* and give
    dipole-subtracted IFCs, and on a copy without the dielectric block, which
    gives the full IFCs phonopy needs) -> force constants for phonopy ->
    response sums -> figure data. The response outputs are attached as soon as
    they exist, so a failure of the figure data cannot lose them. A job lost by a
    daemon worker that was shutting down is launched again (:mod:`.relaunch`).
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("structure", valid_type=orm.StructureData, help="The crystal (c along z for the paper's path).")
        spec.input(
            "protocol",
            valid_type=orm.Str,
            required=False,
            help="Name of the protocol the builder was made from (informational; shown by `aiida-llpam show`).",
        )
        spec.input(
            "symprec",
            valid_type=orm.Float,
            default=lambda: orm.Float(1.0e-3),
            help="spglib symmetry tolerance (Angstrom) for the symmetry output.",
        )
        spec.input(
            "clean_workdir",
            valid_type=orm.Bool,
            default=lambda: orm.Bool(False),
            help="Clean the remote work directories of all calculations at the end.",
        )
        spec.expose_inputs(
            PwRelaxWorkChain,
            namespace="relax",
            exclude=("structure", "clean_workdir", "base_init_relax"),
            namespace_options={"required": False, "populate_defaults": False, "help": "vc-relax first, if given."},
        )
        spec.expose_inputs(
            PwBaseWorkChain,
            namespace="scf",
            exclude=("clean_workdir", "pw.structure", "pw.parent_folder"),
            namespace_options={
                "required": False,
                "populate_defaults": False,
                "help": "The scf before DFPT (insulator: fixed occupations).",
            },
        )
        spec.expose_inputs(
            PhBaseWorkChain,
            namespace="ph_main",
            exclude=("clean_workdir", "ph.parent_folder"),
            namespace_options={
                "required": False,
                "populate_defaults": False,
                "help": "DFPT on a q mesh with epsil (eps and Born charges).",
            },
        )
        spec.input(
            "parallelize_qpoints",
            valid_type=orm.Bool,
            default=lambda: orm.Bool(False),
            help="Run each irreducible q point of ph_main as its own ph.x job, all at once (PhQpointsWorkChain): "
            "worth it where a daemon runs the jobs side by side; the launcher decides (aiida_llpam.cli.launch).",
        )
        spec.input(
            "representations_per_job",
            valid_type=orm.Int,
            required=False,
            help="With parallelize_qpoints: split each q point into ph.x jobs of this many irreducible "
            "representations, after a setup job and before a gathering one (PhQpointsWorkChain's "
            "split_representations; docs/scaleout.md).",
        )
        spec.input(
            "dfpt",
            valid_type=orm.FolderData,
            required=False,
            help="The retrieved files of a finished ph.x run on `structure` (dyn files with eps/Z*): relax, scf "
            "and ph.x are skipped and the force constants, response and figures are made from them.",
        )
        spec.input(
            "sum_rules",
            valid_type=orm.Dict,
            default=lambda: orm.Dict({"rotational_invariance": True, "unfolding_factor": [2, 2, 2]}),
            validator=pam_inputs.validate_sum_rules_input,
            help="Sum rules on the force constants (phonopy_force_constants.SUM_RULE_KEYS; THEORY.md section 8).",
        )
        spec.input_namespace(
            "fit_direct",
            valid_type=orm.FolderData,
            dynamic=True,
            required=False,
            help="Retrieved folders of single-q ph.x runs at this DFPT's settings (labels q1, q2, ...), e.g. of a "
            "DirectDfptWorkChain: the sum rules also fit their matrices (needs sum_rules.acoustic onsite; THEORY.md "
            "section 8, docs/theory.md).",
        )
        spec.input(
            "equilibrium",
            valid_type=orm.Dict,
            default=lambda: orm.Dict(DEFAULT_THRESHOLDS),
            validator=pam_inputs.validate_equilibrium,
            help="Largest residual stress (GPa) and force (eV/A) of the scf the DFPT perturbed; refuse (exit 410) "
            "or, with refuse false, warn above them (aiida_llpam.physics.equilibrium).",
        )
        spec.expose_inputs(
            Q2rBaseWorkChain,
            namespace="q2r",
            exclude=("q2r.parent_folder",),
            namespace_options={"help": "q2r.x, used twice (with and without the dielectric block)."},
        )
        spec.expose_inputs(
            PamResponseCalculation,
            namespace="response",
            exclude=("force_constants",),
            namespace_options={
                "help": "The response sums, a job of their own (no daemon worker waits for them): "
                "code (aiida-llpam's Python) and parameters (aiida_llpam.physics.settings)."
            },
        )
        spec.input(
            "figures",
            valid_type=orm.Dict,
            validator=pam_inputs.validate_figures,
            help="Figure data: path_points_per_segment, trajectory_q (reduced), trajectory_branch.",
        )
        spec.input(
            "validation_qpoints",
            valid_type=orm.List,
            required=False,
            validator=validate_qpoints,
            help="Reduced q points off the DFPT mesh: ph.x runs at each from this run's scf, and the model is checked "
            "against it (DirectDfptWorkChain; the default points are aiida_llpam.physics.direct_dfpt's).",
        )
        spec.inputs.validator = pam_inputs.validate_inputs

        spec.outline(
            cls.setup,
            if_(cls.should_relax)(cls.run_relax, while_(cls.jobs_lost)(cls.relaunch_lost), cls.inspect_relax),
            cls.run_symmetry,
            if_(cls.should_run_dfpt)(
                cls.run_scf,
                while_(cls.jobs_lost)(cls.relaunch_lost),
                cls.inspect_scf,
                cls.run_ph,
                while_(cls.jobs_lost)(cls.relaunch_lost),
                cls.inspect_ph,
            ),
            cls.check_equilibrium,
            cls.run_q2r,
            while_(cls.jobs_lost)(cls.relaunch_lost),
            cls.inspect_q2r,
            cls.run_force_constants,
            cls.run_response,
            while_(cls.jobs_lost)(cls.relaunch_lost),
            cls.inspect_response,
            cls.run_figure_data,
            if_(cls.should_validate)(
                cls.run_validation, while_(cls.jobs_lost)(cls.relaunch_lost), cls.inspect_validation
            ),
        )

        spec.output("structure", valid_type=orm.StructureData, help="The structure the DFPT ran on.")
        spec.output(
            "symmetry", valid_type=orm.Dict, help="Space group, point group, chirality of `structure` (spglib)."
        )
        spec.output("q2r_force_constants", valid_type=orm.SinglefileData, help="q2r.x IFCs, no dipole subtraction.")
        spec.output("q2r_force_constants_nac", valid_type=orm.SinglefileData, help="q2r.x file with eps/Z*.")
        spec.output(
            "force_constants",
            valid_type=ForceConstantsData,
            help="aiida-phonopy ForceConstantsData: structure, IFCs (sum rules applied), Born charges, eps.",
        )
        spec.expose_outputs(PamResponseCalculation, exclude=("remote_folder", "remote_stash", "retrieved"))
        spec.expose_outputs(DirectDfptWorkChain, namespace="direct_dfpt", namespace_options={"required": False})
        for name, out in OUTPUTS.items():
            if out.source == "figures":
                spec.output(
                    name,
                    valid_type=orm.ArrayData,
                    required=False,
                    help=f"{out.description} Arrays and units: aiida_llpam.quantities (docs/hdf5_layout.md).",
                )

        spec.exit_code(401, "ERROR_SUB_PROCESS_FAILED_RELAX", message="The vc-relax PwRelaxWorkChain failed.")
        spec.exit_code(402, "ERROR_SUB_PROCESS_FAILED_SCF", message="The scf PwBaseWorkChain failed.")
        spec.exit_code(
            403, "ERROR_SUB_PROCESS_FAILED_PH", message="The DFPT (PhBaseWorkChain or PhQpointsWorkChain) failed."
        )
        spec.exit_code(404, "ERROR_SUB_PROCESS_FAILED_Q2R", message="A Q2rBaseWorkChain failed.")
        spec.exit_code(405, "ERROR_NO_DIELECTRIC_DATA", message="ph.x wrote no dielectric tensor / Born charges.")
        spec.exit_code(406, "ERROR_SYMMETRY", message="spglib could not analyse the structure: {message}")
        spec.exit_code(407, "ERROR_RESPONSE_FAILED", message="The PamResponseCalculation failed: {message}")
        spec.exit_code(
            408, "ERROR_FIGURE_DATA_FAILED", message="The figure data failed (the response outputs are kept): {message}"
        )
        spec.exit_code(
            409,
            "ERROR_DFPT_STRUCTURE_MISMATCH",
            message="The force constants describe another cell than `structure`: {message}",
        )
        spec.exit_code(
            410, "ERROR_NOT_IN_EQUILIBRIUM", message="The cell the DFPT perturbed is not in equilibrium: {message}"
        )
        spec.exit_code(
            411, "ERROR_VALIDATION_FAILED", message="The direct-DFPT check failed (the results are kept): {message}"
        )

    @classmethod
    def get_protocol_filepath(cls):
        from importlib.resources import files

        from . import protocols

        return files(protocols) / "pam.yaml"

    @classmethod
    def get_builder_from_protocol(
        cls,
        pw_code,
        ph_code,
        q2r_code,
        structure,
        protocol=None,
        overrides=None,
        options=None,
        response_code=None,
        dfpt=None,
        parallelize_qpoints=False,
    ):
        """A ready builder: ``protocol`` is smoke, fast or production; ``overrides`` merge into the protocol.

        ``dfpt``: the retrieved ``FolderData`` of a finished ph.x run on ``structure``; the builder then
        has no relax, scf or ph_main and the workchain starts at q2r.x (e.g. to redo the force constants
        and the response of an imported archive with provenance links to its DFPT).

        The sections relax, scf, ph_main and q2r are forwarded as overrides to the
        sub-workchains' own protocols (``qe_protocol``); unknown override keys warn.
        A family that records cut-offs sets them (:func:`pam_inputs.family_cutoffs`). ``response_code`` defaults to
        ``llpam-response@<computer of pw_code>`` (made by ``aiida-llpam setup``). Raises ValueError for an
        unknown protocol, a missing response code or a structure with species missing from the pseudo family.
        ``parallelize_qpoints`` (one ph.x job per q point): the caller's choice, not the environment's: the same
        arguments give the same builder in any profile (``aiida_llpam.cli.launch`` decides it for the scripts).
        """
        if protocol is not None and protocol not in cls.get_available_protocols():
            raise ValueError(f"unknown protocol {protocol!r}: choose from {', '.join(cls.get_available_protocols())}")
        inputs = cls.get_protocol_inputs(protocol, overrides)
        if dfpt is None:
            inputs.update(pam_inputs.family_cutoffs(inputs, structure, overrides or {}))
        return pam_inputs.fill_builder(
            cls.get_builder(),
            inputs,
            (pw_code, ph_code, q2r_code),
            structure,
            protocol or cls.get_default_protocol(),
            options,
            response_code,
            dfpt,
            parallelize_qpoints,
        )

    # ---- outline steps -------------------------------------------------------------------------

    def setup(self):
        self.ctx.structure = self.inputs.structure
        if "protocol" in self.inputs and self.inputs.protocol.value in UNPHYSICAL_PROTOCOLS:
            self.report(f"NOTE: {UNPHYSICAL_PROTOCOLS[self.inputs.protocol.value]}")
        if "dfpt" in self.inputs:
            self.ctx.dfpt_retrieved = self.inputs.dfpt
            dfpt = self.inputs.dfpt
            self.report(f"DFPT given ({dfpt.__class__.__name__}<{dfpt.pk}>): relax, scf and ph.x skipped")

    def should_run_dfpt(self):
        return "dfpt" not in self.inputs

    def should_relax(self):
        return "relax" in self.inputs

    def submit_relax(self):
        inputs = AttributeDict(self.exposed_inputs(PwRelaxWorkChain, namespace="relax"))
        inputs.structure = self.ctx.structure
        inputs.metadata.call_link_label = "relax"
        return self.submit(PwRelaxWorkChain, **inputs)

    def run_relax(self):
        node = self.launch_job("workchain_relax", "submit_relax")
        self.report(f"launching PwRelaxWorkChain<{node.pk}> (vc-relax)")
        return ToContext(workchain_relax=node)

    def inspect_relax(self):
        node = self.ctx.workchain_relax
        if not node.is_finished_ok:
            self.report(f"PwRelaxWorkChain<{node.pk}> failed with exit status {node.exit_status}")
            return self.exit_codes.ERROR_SUB_PROCESS_FAILED_RELAX
        self.ctx.structure = node.outputs.output_structure
        cell = self.ctx.structure.cell
        self.report(f"relaxed: a = {np.linalg.norm(cell[0]):.4f} A, c = {np.linalg.norm(cell[2]):.4f} A")
        return None

    def run_symmetry(self):
        try:
            self.ctx.symmetry = crystal_symmetry(self.ctx.structure, self.inputs.symprec)
        except Exception as exc:  # noqa: BLE001 - spglib's failure, named
            return self.exit_codes.ERROR_SYMMETRY.format(message=str(exc))
        self.out("symmetry", self.ctx.symmetry)
        sym = self.ctx.symmetry
        verdict = response_symmetry_text(sym.get_dict())
        self.report(f"{sym['formula']}: space group {sym['space_group']} ({sym['space_group_number']}), {verdict}")
        return None

    def submit_ph(self):
        parallel = self.inputs.parallelize_qpoints.value
        per_job = self.inputs.representations_per_job.value if "representations_per_job" in self.inputs else None
        process, inputs = pam_inputs.dfpt_inputs(
            self.exposed_inputs(PhBaseWorkChain, namespace="ph_main"),
            self.ctx.workchain_scf.outputs.remote_folder,
            parallel,
            per_job,
        )
        inputs.metadata.call_link_label = "ph"
        return self.submit(process, **inputs)

    def run_ph(self):
        node = self.launch_job("workchain_ph", "submit_ph")
        mesh = self.inputs.ph_main.qpoints.get_kpoints_mesh()[0]
        self.report(f"launching {node.process_label}<{node.pk}> (DFPT, q mesh {mesh}, epsil)")
        return ToContext(workchain_ph=node)

    def inspect_ph(self):
        node = self.ctx.workchain_ph
        if not node.is_finished_ok:
            self.report(f"{node.process_label}<{node.pk}> failed with exit status {node.exit_status}")
            return self.exit_codes.ERROR_SUB_PROCESS_FAILED_PH
        self.ctx.dfpt_retrieved = node.outputs.retrieved
        return None

    def run_q2r(self):
        retrieved = self.ctx.dfpt_retrieved
        try:
            stripped = strip_dielectric_block_from_folder(retrieved)
        except ValueError as exc:
            self.report(str(exc))
            return self.exit_codes.ERROR_NO_DIELECTRIC_DATA
        futures = {
            "workchain_q2r_nac": self.launch_job("workchain_q2r_nac", "submit_q2r", retrieved.uuid, "q2r_nac"),
            "workchain_q2r": self.launch_job("workchain_q2r", "submit_q2r", stripped.uuid, "q2r"),
        }
        self.report(
            f"launching Q2rBaseWorkChain<{futures['workchain_q2r_nac'].pk}> (dyn files with eps/Z*) and "
            f"Q2rBaseWorkChain<{futures['workchain_q2r'].pk}> (dielectric block removed)"
        )
        return ToContext(**futures)

    def inspect_q2r(self):
        for key in ("workchain_q2r_nac", "workchain_q2r"):
            node = self.ctx[key]
            if not node.is_finished_ok:
                self.report(f"Q2rBaseWorkChain<{node.pk}> failed with exit status {node.exit_status}")
                return self.exit_codes.ERROR_SUB_PROCESS_FAILED_Q2R
        return None

    def submit_q2r(self, parent_uuid: str, label: str):
        inputs = AttributeDict(self.exposed_inputs(Q2rBaseWorkChain, namespace="q2r"))
        inputs.q2r.parent_folder = orm.load_node(parent_uuid)
        inputs.metadata.call_link_label = label
        return self.submit(Q2rBaseWorkChain, **inputs)

    def run_force_constants(self):
        fc_file = self.ctx.workchain_q2r.outputs.force_constants
        nac_file = self.ctx.workchain_q2r_nac.outputs.force_constants
        extra = pam_inputs.sum_rule_data(self.inputs, self.ctx.dfpt_retrieved)
        self.ctx.force_constants = node = phonopy_force_constants(fc_file, nac_file, self.inputs.sum_rules, **extra)
        lattice_angstrom = np.asarray(node.cell)
        if not np.allclose(lattice_angstrom, self.ctx.structure.cell, atol=1e-3):
            return self.exit_codes.ERROR_DFPT_STRUCTURE_MISMATCH.format(
                message=(
                    f"q2r.x cell {lattice_angstrom.round(4).tolist()} A, "
                    f"structure {np.round(self.ctx.structure.cell, 4).tolist()} A"
                )
            )
        self.report(sum_rules_line(node.base.attributes.get("sum_rules")))
        self.out("structure", self.ctx.structure)
        self.out("q2r_force_constants", fc_file)
        self.out("q2r_force_constants_nac", nac_file)
        self.out("force_constants", node)
        return None

    def submit_response(self):
        inputs = AttributeDict(self.exposed_inputs(PamResponseCalculation, namespace="response"))
        inputs.force_constants = self.ctx.force_constants
        inputs.metadata.call_link_label = "response"
        return self.submit(PamResponseCalculation, **inputs)

    def run_response(self):
        node = self.launch_job("calculation_response", "submit_response")
        mesh = self.inputs.response.parameters["mesh"]
        self.report(f"launching PamResponseCalculation<{node.pk}> ({mesh[0]}x{mesh[1]}x{mesh[2]} k mesh)")
        return ToContext(calculation_response=node)

    def inspect_response(self):
        node = self.ctx.calculation_response
        if not node.is_finished_ok:
            self.report(f"PamResponseCalculation<{node.pk}> failed: {node.exit_message}")
            return self.exit_codes.ERROR_RESPONSE_FAILED.format(
                message=node.exit_message or f"exit status {node.exit_status}"
            )
        self.out_many(self.exposed_outputs(node, PamResponseCalculation))
        for warning in imaginary_mode_warnings(read_output(node.outputs.diagnostics), {}):
            self.report(f"WARNING: {warning}")
        table = read_output(node.outputs.convergence)
        self.report(kmesh_convergence_line(table))
        if len(table["convergence_meshes"]) > 1 and not table["convergence_converged"]:
            self.report(
                "WARNING: the k sums did not converge within the tolerance; the table is the output `convergence`"
            )
        chi = node.outputs.chi
        self.report(
            f"response done: chi_total({chi.get_array('temperatures_k')[-1]:.0f} K) = "
            f"{chi.get_array('chi_total')[-1]:.3e} kg/m"
        )
        return None

    def run_figure_data(self):
        try:
            outputs = pam_figure_data(self.ctx.force_constants, self.inputs.figures)
        except Exception as exc:  # noqa: BLE001 - the response is already attached; say what failed
            self.report(f"pam_figure_data failed: {exc}")
            return self.exit_codes.ERROR_FIGURE_DATA_FAILED.format(message=str(exc))
        for name, node in outputs.items():
            self.out(name, node)
        acoustic = read_output(outputs["acoustic"])
        for warning in imaginary_mode_warnings({}, read_output(outputs["dispersion"]), acoustic):
            self.report(f"WARNING: {warning}")
        self.report(
            f"{sound_velocities_line(acoustic)}; lowest frequency next to Gamma "
            f"{acoustic['near_gamma_lowest_frequency_thz'] * THZ_TO_CM:.2f} cm^-1"
        )
        return None

    def on_terminated(self):
        super().on_terminated()
        if not self.inputs.clean_workdir.value:
            return
        cleaned = [called.pk for called in self.node.called_descendants if _cleaned(called)]
        if cleaned:
            self.report(f"cleaned remote folders of calculations: {' '.join(map(str, cleaned))}")


def _cleaned(node: orm.ProcessNode) -> bool:
    """Empty the remote work directory of a calculation; False where there is none (or it is gone)."""
    if not isinstance(node, orm.CalcJobNode):
        return False
    try:
        node.outputs.remote_folder._clean()
    except (OSError, KeyError):
        return False
    return True
