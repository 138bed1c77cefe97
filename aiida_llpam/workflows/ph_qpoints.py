"""DFPT on a q mesh with one ph.x job per irreducible q point, or per group of its representations, all at once."""

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, if_, while_

from aiida_llpam.calculations.functions.collect_dynamical_matrices import collect_dynamical_matrices
from aiida_llpam.calculations.ph_gather import PhGatherCalculation

from .ph_base import PhBaseWorkChain
from .ph_pieces import GATHER_LABEL, PIECE_LABEL, SETUP_LABEL, piece_range, representation_groups, single_q_progress
from .relaunch import RelaunchesLostJobs

#: INPUTPH keys this workchain sets per job; given by the user they would break the split
SET_PER_JOB = ("start_q", "last_q", "start_irr", "last_irr")
SET_PER_PIECE = ("only_init", "lqdir")


class PhQpointsWorkChain(RelaunchesLostJobs, WorkChain):
    """ph.x on a q mesh (``ldisp``), each irreducible q point its own job, with the inputs of a PhBaseWorkChain.

    1. ``ph_init``: ph.x with ``start_irr = last_irr = 0`` lists the irreducible q points (seconds; QE's own
       symmetry analysis, so the list is exactly the one a single job would compute).
    2. ``ph_q<i>``: for every q point i a PhBaseWorkChain with ``start_q = last_q = i``, all submitted at once,
       each from the scf's work directory, each with its own restarts (``recover`` after an interruption).
       QE drops ``epsil`` away from Gamma, so the Gamma job alone computes eps and the Born charges.
    3. ``collect_dynamical_matrices``: one ``DYN_MAT`` folder, as a single ph.x job on the mesh writes it.

    With ``split_representations`` step 2 goes one level finer (ph.x's GRID scheme; what QE 6.7 does at each
    step is in :mod:`.ph_pieces`), every job of a step submitted at once:

    2a. ``q<i>_setup``: per q point, from ``ph_init``'s work directory, ph.x with ``only_init``: the bands of q
        and, at Gamma, eps and Z*; its output gives the number of irreducible representations.
    2b. ``q<i>_irr<a>_<b>``: a PhBaseWorkChain per group of ``representations_per_job`` representations, from the
        setup's work directory (so no piece computes bands or the electric field again), each with its restarts.
    2c. ``q<i>_gather``: ph.x with ``recover`` on the setup's folder, the pieces' results copied in on the computer
        (``llpam.ph_gather``, :class:`aiida_llpam.calculations.ph_gather.PhGatherCalculation`): it computes
        nothing and writes q point i's dyn file, which step 3 collects as it does a ``ph_q<i>`` job's.

    A job lost by a daemon worker that was shutting down is launched again (:mod:`.relaunch`).

    The output ``retrieved`` takes the place of a single job's retrieved folder for q2r.x; the force constants
    agree with the single-job route to the DFPT convergence threshold (tests/aiida/test_ph_qpoints.py).
    The critical path is the slowest q point (usually Gamma, which also solves for the electric field), or with
    the split the slowest setup plus the slowest group of representations.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(PhBaseWorkChain, exclude=("only_initialization", "qpoints_distance", "qpoints_force_parity"))
        spec.inputs["qpoints"].required = True
        spec.input(
            "split_representations",
            valid_type=orm.Bool,
            default=lambda: orm.Bool(False),
            help="Split each q point further: one ph.x job per group of irreducible representations, a setup job "
            "before them (bands, eps/Z* at Gamma) and a gathering job after them.",
        )
        spec.input(
            "representations_per_job",
            valid_type=orm.Int,
            default=lambda: orm.Int(1),
            help="With split_representations: how many irreducible representations one ph.x job computes (>= 1).",
        )
        spec.inputs.validator = cls.validate_inputs
        spec.outline(
            cls.run_init,
            while_(cls.jobs_lost)(cls.relaunch_lost),
            cls.inspect_init,
            if_(cls.split)(
                cls.run_setups,
                while_(cls.jobs_lost)(cls.relaunch_lost),
                cls.inspect_setups,
                cls.run_pieces,
                while_(cls.jobs_lost)(cls.relaunch_lost),
                cls.inspect_pieces,
                cls.run_gathers,
                while_(cls.jobs_lost)(cls.relaunch_lost),
                cls.inspect_gathers,
            ).else_(
                cls.run_qpoints,
                while_(cls.jobs_lost)(cls.relaunch_lost),
                cls.inspect_qpoints,
            ),
            cls.collect,
        )
        spec.output("retrieved", valid_type=orm.FolderData, help="DYN_MAT with every q point's dynamical matrix.")
        spec.output("output_parameters", valid_type=orm.Dict, help="Number and list of the irreducible q points.")
        spec.exit_code(401, "ERROR_INITIALIZATION_FAILED", message="The ph.x run listing the q points failed.")
        spec.exit_code(402, "ERROR_QPOINTS_FAILED", message="ph.x failed at q point(s) {qpoints}.")
        spec.exit_code(403, "ERROR_COLLECTING", message="The dynamical matrices do not make a whole mesh: {message}")
        spec.exit_code(
            404, "ERROR_SETUP_FAILED", message="The ph.x setup (bands, eps/Z* at Gamma) failed at q point(s) {qpoints}."
        )
        spec.exit_code(405, "ERROR_PIECES_FAILED", message="ph.x failed for the representations {pieces}.")
        spec.exit_code(
            406, "ERROR_GATHERING_FAILED", message="ph.x gathering the representations failed at q point(s) {qpoints}."
        )

    @classmethod
    def validate_inputs(cls, inputs, _):
        try:
            inputs["qpoints"].get_kpoints_mesh()
        except AttributeError:
            return "qpoints: must be a mesh (ph.x ldisp): a list of q points has no per-q-point split"
        split = "split_representations" in inputs and inputs["split_representations"].value
        if "representations_per_job" in inputs and inputs["representations_per_job"].value < 1:
            return f"representations_per_job: must be at least 1, not {inputs['representations_per_job'].value}"
        inputph = inputs["ph"]["parameters"].get_dict().get("INPUTPH", {})
        given = sorted(key for key in SET_PER_JOB + (SET_PER_PIECE if split else ()) if key in inputph)
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

    def submit_ph(self, label: str, inputph: dict, parent: str | None = None):
        """A PhBaseWorkChain; ``parent``: the context key of the process whose work directory it starts from
        (default: the scf's)."""
        inputs = self._ph_inputs(label, **inputph)
        if parent is not None:
            inputs.ph.parent_folder = self.ctx[parent].outputs.remote_folder
        return self.submit(PhBaseWorkChain, **inputs)

    def split(self) -> bool:
        return self.inputs.split_representations.value

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
        return self._failed(self._qpoint_keys(), self.exit_codes.ERROR_QPOINTS_FAILED, "qpoints")

    def run_setups(self):
        futures = {}
        for index in range(1, self.ctx.n_qpoints + 1):
            # only_init needs lqdir in QE 6.7; the bands of q then stay in its own folder for the pieces to reuse
            inputph = {"start_q": index, "last_q": index, "only_init": True, "lqdir": True}
            key = SETUP_LABEL.format(iq=index)
            futures[key] = self.launch_job(key, "submit_ph", key, inputph, "workchain_init")
        self.report(f"launching {len(futures)} PhBaseWorkChain, the setup of each irreducible q point")
        return ToContext(**futures)

    def inspect_setups(self):
        keys = [SETUP_LABEL.format(iq=index) for index in range(1, self.ctx.n_qpoints + 1)]
        if exit_code := self._failed(keys, self.exit_codes.ERROR_SETUP_FAILED, "qpoints"):
            return exit_code
        self.ctx.pieces = {}  # q index (str: context keys are serialised) -> labels of its pieces
        per_job = self.inputs.representations_per_job.value
        for index in range(1, self.ctx.n_qpoints + 1):
            node = self.ctx[SETUP_LABEL.format(iq=index)]
            progress = single_q_progress(node.outputs.retrieved.base.repository.get_object_content("aiida.out", "r"))
            if progress is None or not progress.n_irreps:
                self.report(f"{node.process_label}<{node.pk}>: no number of irreducible representations in its output")
                return self.exit_codes.ERROR_SETUP_FAILED.format(qpoints=str(index))
            groups = representation_groups(progress.n_irreps, per_job)
            self.ctx.pieces[str(index)] = [PIECE_LABEL.format(iq=index, first=a, last=b) for a, b in groups]
        return None

    def run_pieces(self):
        futures = {}
        for label in self._piece_keys():
            index, first, last = piece_range(label)
            inputph = {"start_q": index, "last_q": index, "start_irr": first, "last_irr": last, "lqdir": True}
            futures[label] = self.launch_job(label, "submit_ph", label, inputph, SETUP_LABEL.format(iq=index))
        self.report(f"launching {len(futures)} PhBaseWorkChain, one per group of irreducible representations")
        return ToContext(**futures)

    def inspect_pieces(self):
        # a piece's own PhBaseWorkChain has restarted it already: one that still failed ends the DFPT
        failed = [key for key in self._piece_keys() if not self.ctx[key].is_finished_ok]
        for key in failed:
            node = self.ctx[key]
            self.report(f"{key}: {node.process_label}<{node.pk}> failed with exit status {node.exit_status}")
        if failed:
            names = ", ".join("q{} irr {}-{}".format(*piece_range(key)) for key in failed)
            return self.exit_codes.ERROR_PIECES_FAILED.format(pieces=names)
        return None

    def submit_gather(self, label: str, index: int):
        """The ph.x job writing q point ``index``'s dyn file from its setup and its pieces."""
        ph = self.exposed_inputs(PhBaseWorkChain).ph
        parameters = ph.parameters.get_dict()
        # recover (PhBaseWorkChain sets it for the other jobs) makes ph.x read the representations done
        parameters.setdefault("INPUTPH", {}).update(start_q=index, last_q=index, lqdir=True, recover=True)
        inputs = AttributeDict({key: value for key, value in ph.items() if key not in ("parameters", "metadata")})
        inputs.parameters = orm.Dict(parameters)
        inputs.qpoints = self.inputs.qpoints
        inputs.parent_folder = self.ctx[SETUP_LABEL.format(iq=index)].outputs.remote_folder
        inputs.pieces = {key: self.ctx[key].outputs.remote_folder for key in self.ctx.pieces[str(index)]}
        inputs.metadata = AttributeDict({"options": dict(ph.metadata.get("options", {})), "call_link_label": label})
        return self.submit(PhGatherCalculation, **inputs)

    def run_gathers(self):
        futures = {}
        for index in range(1, self.ctx.n_qpoints + 1):
            label = GATHER_LABEL.format(iq=index)
            futures[label] = self.launch_job(label, "submit_gather", label, index)
        self.report(f"launching {len(futures)} PhGatherCalculation, one per irreducible q point")
        return ToContext(**futures)

    def inspect_gathers(self):
        keys = [GATHER_LABEL.format(iq=index) for index in range(1, self.ctx.n_qpoints + 1)]
        if exit_code := self._failed(keys, self.exit_codes.ERROR_GATHERING_FAILED, "qpoints"):
            return exit_code
        for index, key in enumerate(keys, start=1):
            node = self.ctx[key]
            text = node.outputs.retrieved.base.repository.get_object_content("aiida.out", "r")
            if not PhGatherCalculation.computed_nothing(text):
                # a piece's result did not arrive: ph.x computed it again, unasked and unaccounted for
                self.report(f"{key}: {node.process_label}<{node.pk}> found representations not done")
                return self.exit_codes.ERROR_GATHERING_FAILED.format(qpoints=str(index))
        return None

    def collect(self):
        # a split q point's dynamical matrix is its gathering run's; the link labels stay q1, q2, ... either way
        source = GATHER_LABEL if self.split() else "q{iq}"
        indices = range(1, self.ctx.n_qpoints + 1)
        retrieved = {f"q{iq}": self.ctx[source.format(iq=iq)].outputs.retrieved for iq in indices}
        try:
            folder = collect_dynamical_matrices(**retrieved, metadata={"call_link_label": "collect"})
        except ValueError as exc:
            return self.exit_codes.ERROR_COLLECTING.format(message=str(exc))
        self.out("retrieved", folder)
        self.out("output_parameters", self.ctx.workchain_init.outputs.output_parameters)
        return None

    def _failed(self, keys: list[str], exit_code, field: str):
        """``exit_code`` naming the q indices (the number after ``q`` in each key) of the failed ``keys``."""
        failed = [key for key in keys if not self.ctx[key].is_finished_ok]
        for key in failed:
            node = self.ctx[key]
            self.report(f"{key}: {node.process_label}<{node.pk}> failed with exit status {node.exit_status}")
        if failed:
            return exit_code.format(**{field: ", ".join(key[1:].split("_")[0] for key in failed)})
        return None

    def _qpoint_keys(self) -> list[str]:
        return [f"q{index}" for index in range(1, self.ctx.n_qpoints + 1)]

    def _piece_keys(self) -> list[str]:
        return [label for labels in self.ctx.pieces.values() for label in labels]
