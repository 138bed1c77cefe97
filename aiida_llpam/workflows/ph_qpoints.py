"""DFPT on a q mesh with one ph.x job per irreducible q point, all running at once."""

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, while_

from aiida_llpam.calculations.functions.collect_dynamical_matrices import collect_dynamical_matrices

from .ph_base import PhBaseWorkChain
from .relaunch import RelaunchesLostJobs


class PhQpointsWorkChain(RelaunchesLostJobs, WorkChain):
    """ph.x on a q mesh (``ldisp``), each irreducible q point its own job, with the inputs of a PhBaseWorkChain.

    1. ``ph_init``: ph.x with ``start_irr = last_irr = 0`` lists the irreducible q points (seconds; QE's own
       symmetry analysis, so the list is exactly the one a single job would compute).
    2. ``ph_q<i>``: for every q point i a PhBaseWorkChain with ``start_q = last_q = i``, all submitted at once,
       each from the scf's work directory, each with its own restarts (``recover`` after an interruption).
       QE drops ``epsil`` away from Gamma, so the Gamma job alone computes eps and the Born charges.
    3. ``collect_dynamical_matrices``: one ``DYN_MAT`` folder, as a single ph.x job on the mesh writes it.

    A job lost by a daemon worker that was shutting down is launched again (:mod:`.relaunch`).

    The output ``retrieved`` takes the place of a single job's retrieved folder for q2r.x; the force constants
    agree with the single-job route to the DFPT convergence threshold (tests/aiida/test_ph_qpoints.py).
    The critical path is the slowest q point (usually Gamma, which also solves for the electric field).
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(PhBaseWorkChain, exclude=("only_initialization", "qpoints_distance", "qpoints_force_parity"))
        spec.inputs["qpoints"].required = True
        spec.inputs.validator = cls.validate_inputs
        spec.outline(
            cls.run_init,
            while_(cls.jobs_lost)(cls.relaunch_lost),
            cls.inspect_init,
            cls.run_qpoints,
            while_(cls.jobs_lost)(cls.relaunch_lost),
            cls.inspect_qpoints,
            cls.collect,
        )
        spec.output("retrieved", valid_type=orm.FolderData, help="DYN_MAT with every q point's dynamical matrix.")
        spec.output("output_parameters", valid_type=orm.Dict, help="Number and list of the irreducible q points.")
        spec.exit_code(401, "ERROR_INITIALIZATION_FAILED", message="The ph.x run listing the q points failed.")
        spec.exit_code(402, "ERROR_QPOINTS_FAILED", message="ph.x failed at q point(s) {qpoints}.")
        spec.exit_code(403, "ERROR_COLLECTING", message="The dynamical matrices do not make a whole mesh: {message}")

    @classmethod
    def validate_inputs(cls, inputs, _):
        try:
            inputs["qpoints"].get_kpoints_mesh()
        except AttributeError:
            return "qpoints: must be a mesh (ph.x ldisp): a list of q points has no per-q-point split"
        inputph = inputs["ph"]["parameters"].get_dict().get("INPUTPH", {})
        given = sorted(key for key in ("start_q", "last_q", "start_irr", "last_irr") if key in inputph)
        if given:
            return f"ph.parameters: {', '.join(given)} are set by PhQpointsWorkChain per job; remove them"
        return None

    def _ph_inputs(self, label: str, **inputph) -> AttributeDict:
        inputs = AttributeDict(self.exposed_inputs(PhBaseWorkChain))
        parameters = inputs.ph.parameters.get_dict()
        parameters.setdefault("INPUTPH", {}).update(inputph)
        inputs.ph.parameters = orm.Dict(parameters)
        inputs.metadata.call_link_label = label
        return inputs

    def submit_ph(self, label: str, inputph: dict):
        return self.submit(PhBaseWorkChain, **self._ph_inputs(label, **inputph))

    def run_init(self):
        node = self.launch_job("workchain_init", "submit_ph", "ph_init", {"start_irr": 0, "last_irr": 0})
        self.report(f"launching PhBaseWorkChain<{node.pk}> (list of irreducible q points)")
        return ToContext(workchain_init=node)

    def inspect_init(self):
        node = self.ctx.workchain_init
        if not node.is_finished_ok:
            self.report(f"PhBaseWorkChain<{node.pk}> failed with exit status {node.exit_status}")
            return self.exit_codes.ERROR_INITIALIZATION_FAILED
        self.ctx.n_qpoints = node.outputs.output_parameters["number_of_qpoints"]
        return None

    def run_qpoints(self):
        futures = {}
        for index in range(1, self.ctx.n_qpoints + 1):
            futures[f"q{index}"] = self.launch_job(
                f"q{index}", "submit_ph", f"ph_q{index}", {"start_q": index, "last_q": index}
            )
        pks = ", ".join(str(node.pk) for node in futures.values())
        self.report(f"launching {len(futures)} PhBaseWorkChain, one per irreducible q point: {pks}")
        return ToContext(**futures)

    def inspect_qpoints(self):
        failed = [key for key in self._qpoint_keys() if not self.ctx[key].is_finished_ok]
        if failed:
            for key in failed:
                node = self.ctx[key]
                self.report(f"q point {key[1:]}: PhBaseWorkChain<{node.pk}> failed with exit status {node.exit_status}")
            return self.exit_codes.ERROR_QPOINTS_FAILED.format(qpoints=", ".join(key[1:] for key in failed))
        return None

    def collect(self):
        retrieved = {key: self.ctx[key].outputs.retrieved for key in self._qpoint_keys()}
        try:
            folder = collect_dynamical_matrices(**retrieved, metadata={"call_link_label": "collect"})
        except ValueError as exc:
            return self.exit_codes.ERROR_COLLECTING.format(message=str(exc))
        self.out("retrieved", folder)
        self.out("output_parameters", self.ctx.workchain_init.outputs.output_parameters)
        return None

    def _qpoint_keys(self) -> list[str]:
        return [f"q{index}" for index in range(1, self.ctx.n_qpoints + 1)]
