"""The one mechanism for jobs lost by a daemon worker that was shutting down (aiida-core 2.9).

A worker that stops (``verdi daemon stop``/``restart``) hands its processes back to RabbitMQ, which may deliver
them to another worker that is stopping too; that worker cannot subscribe them any more
(``kiwipy.CommunicatorClosed``), and the launcher then marks the process excepted for good
(``ProcessLauncher._continue``, "failed to recreate the process instance"). The process itself was sound, so
running it again is the right answer. Seen in CI (docs/scaleout.md).

Every workchain of this package that submits jobs mixes in :class:`RelaunchesLostJobs`, submits through
:meth:`~RelaunchesLostJobs.launch_job` and waits with ``while_(cls.jobs_lost)(cls.relaunch_lost)`` after each step
that submits. ``PhBaseWorkChain`` (a restart workchain) relaunches its own lost calculations with the same predicate.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext

#: how often one workchain launches lost jobs again before the loss counts as a failure
MAX_RELAUNCHES = 3


def lost_to_worker_shutdown(node: orm.ProcessNode) -> bool:
    """True if ``node`` was excepted by a stopping daemon worker, or is a workchain that failed because the last
    process it called was (aiida-core's restart workchains, e.g. PwBaseWorkChain, stop when a job is excepted)."""
    if node.is_excepted and "CommunicatorClosed" in (node.exception or ""):
        return True
    if isinstance(node, orm.WorkflowNode) and node.is_finished and not node.is_finished_ok and node.called:
        return lost_to_worker_shutdown(max(node.called, key=lambda called: called.ctime))
    return False


class RelaunchesLostJobs:
    """Mixin for a WorkChain: jobs submitted through :meth:`launch_job` are launched again when lost.

    ``launch_job(key, submitter, *args)`` calls ``self.<submitter>(*args)`` (a method that submits and returns the
    node) and remembers the call, so :meth:`relaunch_lost` can repeat it; the node goes into ``self.ctx[key]``
    through the ``ToContext`` the step returns. The arguments are stored in the context: plain values only.
    """

    def launch_job(self, key: str, submitter: str, *args) -> orm.ProcessNode:
        self.ctx.setdefault("launches", {})[key] = [submitter, list(args)]
        return getattr(self, submitter)(*args)

    def _lost(self) -> list[str]:
        launches = self.ctx.get("launches", {})
        return [key for key in launches if key in self.ctx and lost_to_worker_shutdown(self.ctx[key])]

    def jobs_lost(self) -> bool:
        return bool(self._lost()) and self.ctx.get("relaunches", 0) < MAX_RELAUNCHES

    def relaunch_lost(self):
        self.ctx.relaunches = self.ctx.get("relaunches", 0) + 1
        relaunched = {}
        for key in self._lost():
            lost = self.ctx[key]
            submitter, args = self.ctx.launches[key]
            relaunched[key] = node = getattr(self, submitter)(*args)
            self.report(
                f"{lost.process_label}<{lost.pk}> was lost by a daemon worker that was shutting down: "
                f"launched again as {node.process_label}<{node.pk}>"
            )
        return ToContext(**relaunched)
