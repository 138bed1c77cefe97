"""The scf a DFPT perturbs, as a step of a workchain that exposes PwBaseWorkChain as its ``scf`` namespace."""

from __future__ import annotations

from aiida.common import AttributeDict
from aiida.engine import ToContext
from aiida.plugins import WorkflowFactory

PwBaseWorkChain = WorkflowFactory("quantumespresso.pw.base")


class ScfStep:
    """``run_scf`` and ``inspect_scf`` for a workchain that mixes in :class:`.relaunch.RelaunchesLostJobs`.

    The structure is ``ctx.structure`` where the workchain keeps one (e.g. after a vc-relax), else the input
    ``structure``; the node goes to ``ctx.workchain_scf``. ``SCF_FAILED`` names the workchain's exit code.
    """

    SCF_FAILED = "ERROR_SUB_PROCESS_FAILED_SCF"

    def submit_scf(self):
        inputs = AttributeDict(self.exposed_inputs(PwBaseWorkChain, namespace="scf"))
        inputs.pw.structure = self.ctx.structure if "structure" in self.ctx else self.inputs.structure
        inputs.metadata.call_link_label = "scf"
        return self.submit(PwBaseWorkChain, **inputs)

    def run_scf(self):
        node = self.launch_job("workchain_scf", "submit_scf")
        self.report(f"launching PwBaseWorkChain<{node.pk}> (scf)")
        return ToContext(workchain_scf=node)

    def inspect_scf(self):
        node = self.ctx.workchain_scf
        if not node.is_finished_ok:
            self.report(f"PwBaseWorkChain<{node.pk}> failed with exit status {node.exit_status}")
            return getattr(self.exit_codes, self.SCF_FAILED)
        return None
