"""PhBaseWorkChain whose restarts respect Quantum ESPRESSO 6.7 (``nmix_ph <= 5``) and resume killed ph.x runs."""

from aiida.engine import ProcessHandlerReport, process_handler
from aiida.plugins import WorkflowFactory

from aiida_llpam.calculations.ph import PhCalculation

from .relaunch import lost_to_worker_shutdown

QePhBaseWorkChain = WorkflowFactory("quantumespresso.ph.base")

#: phq_readin of QE 6.7 stops with "Wrong nmix_ph" above this
MAX_NMIX_PH = 5


class PhBaseWorkChain(QePhBaseWorkChain):
    """aiida-quantumespresso's PhBaseWorkChain with five changes.

    * Its calculations are ``llpam.ph`` (:class:`aiida_llpam.calculations.ph.PhCalculation`), whose restarts from
      another ph.x run start at all with aiida-quantumespresso 5.1.
    * On non-convergence it raises ``nmix_ph`` to 5, not to 8: aiida-quantumespresso's handler first sets
      ``nmix_ph = 8`` (QE's recommended range), which QE 6.7 rejects, so every restart would fail. After that
      step the parent's alpha_mix strategy runs unchanged.
    * A ph.x that stopped without finishing its output (killed: node failure, OOM killer, ``scancel``, SIGKILL)
      is restarted with ``recover``: it continues from the last representation it completed.
    * Only finished calculations are merged, so a q point that an interrupted run had started and its
      restart finished is counted once (aiida-quantumespresso issue #1216).
    * A calculation excepted by a daemon worker that was shutting down (:func:`.relaunch.lost_to_worker_shutdown`)
      is launched again with the same inputs instead of aborting the workchain: the restart loop's own way of
      doing what :class:`.relaunch.RelaunchesLostJobs` does for the other workchains.
    """

    _process_class = PhCalculation

    @classmethod
    def define(cls, spec):
        super().define(spec)
        # exposed outputs are looked up by process class: those of the class this workchain runs
        spec.expose_outputs(PhCalculation, exclude=("retrieved_folder",))

    @process_handler(priority=410, exit_codes=PhCalculation.exit_codes.ERROR_CONVERGENCE_NOT_REACHED)
    def handle_convergence_not_reached(self, node):
        inputph = self.ctx.inputs.parameters.setdefault("INPUTPH", {})
        nmix_ph = inputph.get("nmix_ph", self.defaults.nmix_ph)
        if nmix_ph < MAX_NMIX_PH:
            self.ctx.restart_calc = node
            inputph["nmix_ph"] = MAX_NMIX_PH
            self.report_error_handled(
                node, f"increased nmix_ph from {nmix_ph} to {MAX_NMIX_PH} (QE 6.7's maximum) and restarting"
            )
            return ProcessHandlerReport(True)
        # the parent's first step would set 8: present it as done, let it reduce alpha_mix, then restore the
        # QE 6.7 value
        inputph["nmix_ph"] = 8
        report = super().handle_convergence_not_reached(node)
        inputph["nmix_ph"] = MAX_NMIX_PH
        return report

    @process_handler(priority=300, exit_codes=PhCalculation.exit_codes.ERROR_OUTPUT_STDOUT_INCOMPLETE)
    def handle_interrupted(self, node):
        """ph.x stopped mid-run: restart from its work directory with ``recover`` (ph.x's own restart files)."""
        if "remote_folder" not in node.outputs:
            return None  # nothing to recover from: the parent's single unhandled-failure restart applies
        self.ctx.restart_calc = node  # prepare_process sets recover and the parent folder from it
        self.report_error_handled(node, "ph.x was interrupted: restarting from its recover files")
        return ProcessHandlerReport(True)

    def inspect_process(self):
        node = self.ctx.children[self.ctx.iteration - 1]
        if lost_to_worker_shutdown(node):
            self.report(
                f"{node.process_label}<{node.pk}> was lost by a daemon worker that was shutting down: "
                "launching it again"
            )
            return None
        return super().inspect_process()

    def create_merged_output(self):
        children = self.ctx.children
        self.ctx.children = [child for child in children if child.is_finished_ok]
        try:
            if len(self.ctx.children) > 1:
                return super().create_merged_output()
            return None
        finally:
            self.ctx.children = children
