"""PhBaseWorkChain whose restarts respect Quantum ESPRESSO 6.7 (``nmix_ph <= 5``)."""

from aiida.engine import ProcessHandlerReport, process_handler
from aiida.plugins import CalculationFactory, WorkflowFactory

PhCalculation = CalculationFactory("quantumespresso.ph")
QePhBaseWorkChain = WorkflowFactory("quantumespresso.ph.base")

#: phq_readin of QE 6.7 stops with "Wrong nmix_ph" above this
MAX_NMIX_PH = 5


class PhBaseWorkChain(QePhBaseWorkChain):
    """aiida-quantumespresso's PhBaseWorkChain; on non-convergence it raises ``nmix_ph`` to 5, not to 8.

    aiida-quantumespresso's handler first sets ``nmix_ph = 8`` (QE's recommended
    range), which QE 6.7 rejects, so every restart would fail. Here the first step
    is ``nmix_ph = 5``; after that the parent's alpha_mix strategy runs unchanged.
    """

    @process_handler(priority=410, exit_codes=PhCalculation.exit_codes.ERROR_CONVERGENCE_NOT_REACHED)
    def handle_convergence_not_reached(self, node):
        inputph = self.ctx.inputs.parameters.setdefault("INPUTPH", {})
        nmix_ph = inputph.get("nmix_ph", self.defaults.nmix_ph)
        if nmix_ph < MAX_NMIX_PH:
            self.ctx.restart_calc = node
            inputph["nmix_ph"] = MAX_NMIX_PH
            self.report_error_handled(node, f"increased nmix_ph from {nmix_ph} to {MAX_NMIX_PH} (QE 6.7's maximum) and restarting")
            return ProcessHandlerReport(True)
        # the parent's first step would set 8: present it as done, let it reduce alpha_mix, then restore the QE 6.7 value
        inputph["nmix_ph"] = 8
        report = super().handle_convergence_not_reached(node)
        inputph["nmix_ph"] = MAX_NMIX_PH
        return report
