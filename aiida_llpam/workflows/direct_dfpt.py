"""DirectDfptWorkChain: ph.x run directly at q points off the DFPT mesh, compared with the stored model."""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, if_, while_
from aiida.plugins import WorkflowFactory

from aiida_llpam.calculations.functions.direct_dfpt_check import direct_dfpt_check
from aiida_llpam.physics.direct_dfpt import DEFAULT_VALIDATION_QPOINTS

from .ph_base import PhBaseWorkChain
from .relaunch import RelaunchesLostJobs
from .scf_step import ScfStep

PwBaseWorkChain = WorkflowFactory("quantumespresso.pw.base")

#: INPUTPH keys that belong to a q-mesh run or to the electric field; a single-q check sets none of them
MESH_ONLY_KEYS = ("ldisp", "nq1", "nq2", "nq3", "start_q", "last_q", "start_irr", "last_irr", "epsil", "trans")


def validate_qpoints(node: orm.List, _) -> str | None:
    points = node.get_list()
    if not points or not all(isinstance(q, (list, tuple)) and len(q) == 3 for q in points):
        return "validation_qpoints: a non-empty list of reduced q points [q1, q2, q3]"
    if any(max(abs(float(x)) for x in q) < 1e-8 for q in points):
        return "validation_qpoints: Gamma is a DFPT mesh point; give q points off the mesh"
    return None


def validate_inputs(inputs, _) -> str | None:
    if ("scf" in inputs) == ("parent_folder" in inputs):
        return "give exactly one of scf (the scf to run) and parent_folder (a finished scf's remote folder)"
    return None


class DirectDfptWorkChain(ScfStep, RelaunchesLostJobs, WorkChain):
    """The force-constant model of a run against ph.x computed directly at ``validation_qpoints``.

    1. scf (PwBaseWorkChain with the inputs of the DFPT's scf), unless ``parent_folder`` gives a finished one;
    2. one PhBaseWorkChain per q point (ph.x with ``ldisp = .false.``), all submitted at once;
    3. ``direct_dfpt_check``: frequencies, l^z and mu^z of the model against the direct dynamical matrices with
       the on-site ASR correction from the DFPT's raw Gamma matrix (:mod:`aiida_llpam.physics.direct_dfpt`).
    """

    SCF_FAILED = "ERROR_SCF_FAILED"

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("structure", valid_type=orm.StructureData, help="The structure the DFPT ran on.")
        spec.input("force_constants", valid_type=orm.Data, help="The model: PamWorkChain's force_constants output.")
        spec.input(
            "dfpt", valid_type=orm.FolderData, help="The DFPT's retrieved dyn files (raw Gamma matrix: the ASR)."
        )
        spec.input(
            "validation_qpoints",
            valid_type=orm.List,
            default=lambda: orm.List([list(q) for q in DEFAULT_VALIDATION_QPOINTS]),
            validator=validate_qpoints,
            help="Reduced q points off the DFPT mesh, each its own ph.x job.",
        )
        spec.expose_inputs(
            PwBaseWorkChain,
            namespace="scf",
            exclude=("clean_workdir", "pw.structure", "pw.parent_folder"),
            namespace_options={
                "required": False,
                "populate_defaults": False,
                "help": "The scf to run: that of the DFPT, so the ground state is the one it perturbed.",
            },
        )
        spec.input("parent_folder", valid_type=orm.RemoteData, required=False, help="A finished scf's remote folder.")
        spec.expose_inputs(
            PhBaseWorkChain,
            namespace="ph",
            exclude=(
                "clean_workdir",
                "ph.parent_folder",
                "qpoints",
                "qpoints_distance",
                "qpoints_force_parity",
                "only_initialization",
            ),
            namespace_options={"help": "ph.x: code, parameters (those of the DFPT; mesh and field keys are dropped)."},
        )
        spec.inputs.validator = validate_inputs
        spec.outline(
            if_(cls.should_run_scf)(cls.run_scf, while_(cls.jobs_lost)(cls.relaunch_lost), cls.inspect_scf),
            cls.run_ph,
            while_(cls.jobs_lost)(cls.relaunch_lost),
            cls.inspect_ph,
            cls.compare,
        )
        spec.output("table", valid_type=orm.ArrayData, help="Model and direct DFPT per q point and branch.")
        spec.output("summary", valid_type=orm.Dict, help="Largest deviations, per q point and over all.")
        spec.exit_code(401, "ERROR_SCF_FAILED", message="The scf PwBaseWorkChain failed.")
        spec.exit_code(402, "ERROR_PH_FAILED", message="ph.x failed at q point(s) {qpoints}.")
        spec.exit_code(403, "ERROR_COMPARISON", message="The comparison failed: {message}")

    @classmethod
    def get_builder_from_run(
        cls, run: orm.WorkChainNode, pw_code, ph_code, qpoints=None, options=None, ph_mpiprocs: int | None = None
    ):
        """A builder for the model of PamWorkChain ``run``, with the scf and ph.x settings of the DFPT it used.

        The scf runs again (its remote folder may be gone, or on another machine): the same inputs give the same
        ground state. ``qpoints``: reduced q points (default :data:`DEFAULT_VALIDATION_QPOINTS`). ``ph_mpiprocs``:
        MPI processes of each ph.x job on one machine (default: as ``options``, else as the DFPT's ph.x). The q
        points run side by side, so on one node give each its share of the cores: more ranks than cores share
        them badly, since an Open MPI rank that waits for a message keeps its core busy.
        """
        from aiida_llpam.queries import dfpt_ph_calculation, dfpt_retrieved, dfpt_scf_calculation

        retrieved = dfpt_retrieved(run)
        scf, ph = dfpt_scf_calculation(retrieved), dfpt_ph_calculation(retrieved)
        builder = cls.get_builder()
        builder.structure = scf.inputs.structure
        builder.force_constants = run.outputs.force_constants
        builder.dfpt = retrieved
        if qpoints is not None:
            builder.validation_qpoints = orm.List([list(map(float, q)) for q in qpoints])
        builder.scf.pw.code = pw_code
        builder.scf.pw.parameters = scf.inputs.parameters
        builder.scf.pw.pseudos = dict(scf.inputs.pseudos)
        builder.scf.kpoints = scf.inputs.kpoints
        builder.scf.pw.metadata.options = options or _options_like(scf)
        builder.ph.ph.code = ph_code
        builder.ph.ph.parameters = ph.inputs.parameters
        builder.ph.ph.metadata.options = options or _options_like(ph)
        if ph_mpiprocs is not None:
            builder.ph.ph.metadata.options.resources = {"num_machines": 1, "num_mpiprocs_per_machine": ph_mpiprocs}
        return builder

    def should_run_scf(self):
        return "scf" in self.inputs

    def submit_ph(self, index: int, q: list):
        inputs = AttributeDict(self.exposed_inputs(PhBaseWorkChain, namespace="ph"))
        inputs.ph = AttributeDict(inputs.ph)
        parameters = inputs.ph.parameters.get_dict()
        inputph = parameters.setdefault("INPUTPH", {})
        for key in MESH_ONLY_KEYS:
            inputph.pop(key, None)
        inputs.ph.parameters = orm.Dict(parameters)
        inputs.ph.parent_folder = (
            self.ctx.workchain_scf.outputs.remote_folder if "scf" in self.inputs else self.inputs.parent_folder
        )
        qpoints = orm.KpointsData()
        qpoints.set_cell_from_structure(self.inputs.structure)
        qpoints.set_kpoints([q])  # one point: ph.x runs at it alone (ldisp = .false.)
        inputs.qpoints = qpoints
        inputs.metadata.call_link_label = f"ph_q{index}"
        return self.submit(PhBaseWorkChain, **inputs)

    def run_ph(self):
        futures = {}
        for index, q in enumerate(self.inputs.validation_qpoints.get_list(), start=1):
            futures[f"q{index}"] = self.launch_job(f"q{index}", "submit_ph", index, q)
        listing = ", ".join(
            f"{node.pk} at q = {q}" for node, q in zip(futures.values(), self.inputs.validation_qpoints.get_list())
        )
        self.report(f"launching {len(futures)} PhBaseWorkChain, one per q point: {listing}")
        return ToContext(**futures)

    def _keys(self) -> list[str]:
        return [f"q{index}" for index in range(1, len(self.inputs.validation_qpoints.get_list()) + 1)]

    def inspect_ph(self):
        failed = [key for key in self._keys() if not self.ctx[key].is_finished_ok]
        for key in failed:
            node = self.ctx[key]
            self.report(f"q point {key[1:]}: PhBaseWorkChain<{node.pk}> failed with exit status {node.exit_status}")
        if failed:
            return self.exit_codes.ERROR_PH_FAILED.format(qpoints=", ".join(key[1:] for key in failed))
        return None

    def compare(self):
        direct = {key: self.ctx[key].outputs.retrieved for key in self._keys()}
        try:
            outputs = direct_dfpt_check(
                self.inputs.force_constants, self.inputs.dfpt, **direct, metadata={"call_link_label": "check"}
            )
        except ValueError as exc:
            return self.exit_codes.ERROR_COMPARISON.format(message=str(exc))
        self.out_many(outputs)
        summary = outputs["summary"]
        self.report(
            f"model vs direct DFPT: modes above {summary['optical_threshold_cm']:.0f} cm^-1 within "
            f"{summary['max_deviation_above_threshold_cm']:.2f} cm^-1, acoustic within "
            f"{summary['max_acoustic_deviation_cm']:.2f} cm^-1, TA splitting within "
            f"{max(summary['ta_splitting_relative_deviation']):.0%}"
        )
        return None


def _options_like(calculation: orm.CalcJobNode) -> dict:
    """Resources and wall time of ``calculation``, to rerun its kind of job on the computer of the new code."""
    options = calculation.get_options()
    return {
        key: options[key] for key in ("resources", "max_wallclock_seconds", "withmpi") if options.get(key) is not None
    }
