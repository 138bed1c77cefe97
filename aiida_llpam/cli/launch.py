"""How scripts and commands start a process: in this interpreter with progress lines, or on the daemon.

The launcher, not a builder, looks at the environment: whether the loaded profile has a broker and a daemon
(:func:`profile_has_broker`, the one such check) decides where a run goes and whether its q points run side by side.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from aiida import orm
from aiida.common.links import LinkType

from aiida_llpam.monitor import HEARTBEAT_S, ProgressReporter


class ProgressPrinter:
    """Prints the reporter's line every ``interval_s`` seconds from the runner's event loop.

    Scheduled with ``loop.call_later`` on the loop that runs the workchain, so the database is only
    touched from that thread. A line is printed when what is running changes (not when only its times
    do), or after ``HEARTBEAT_S`` without change.
    """

    def __init__(self, reporter: ProgressReporter, loop: asyncio.AbstractEventLoop, interval_s: float = 10.0):
        self.reporter, self.loop, self.interval_s = reporter, loop, interval_s
        self._handle: asyncio.TimerHandle | None = None
        self._last: str | None = None
        self._last_printed = 0.0

    def start(self) -> None:
        self._handle = self.loop.call_later(self.interval_s, self._tick)

    def stop(self) -> None:
        """Cancel the next tick (the loop may run again after the workchain, e.g. for another process)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        try:
            line = self.reporter.line()
            content = None if line is None else line.what
        except Exception as exc:  # noqa: BLE001 - progress is a courtesy: it must never stop the workchain
            line = content = f"progress unavailable: {exc.__class__.__name__}: {exc}"
        if line is not None:
            now = self.loop.time()
            if content != self._last or now - self._last_printed >= HEARTBEAT_S:
                print(line, flush=True)
                self._last, self._last_printed = content, now
        self._handle = self.loop.call_later(self.interval_s, self._tick)


def run_with_progress(
    builder, quiet: bool = False, pk_file: Path | None = None, interval_s: float = 10.0
) -> orm.ProcessNode:
    """Run ``builder`` to the end in this interpreter, printing its PK as soon as it exists and progress lines.

    What ``run_get_node(builder)`` does, split so that the node exists (PK known, written to ``pk_file``) before
    the process runs and the ``ProgressPrinter`` can be scheduled on the same event loop: no second thread
    touches the database. ``quiet``: no progress lines. Returns the process node (finished or not).
    """
    from aiida.engine import run_get_node
    from aiida.engine.utils import instantiate_process, loop_scope
    from aiida.manage import get_manager

    runner = get_manager().create_runner(communicator=None)
    with loop_scope(runner.loop):
        process = instantiate_process(runner, builder)
    print(f"{process.node.process_label}<{process.node.pk}> created", flush=True)
    if pk_file:
        Path(pk_file).write_text(f"{process.node.pk}\n")
    printer = None if quiet else ProgressPrinter(ProgressReporter(process.node), runner.loop, interval_s)
    if printer:
        printer.start()
    try:
        _, node = run_get_node(process)
    finally:
        if printer:
            printer.stop()
    return node


def daemon_unavailable_reason() -> str | None:
    """Why a process cannot be submitted to the daemon of the loaded profile (no broker, no daemon), or None."""
    from aiida.manage import get_manager

    from aiida_llpam.configure import DAEMON_PROFILE
    from aiida_llpam.daemon_profile import DEPLOY_COMMAND, daemon_client

    profile = get_manager().get_profile()
    fix = (
        f"bring up the services and their profile with `{DEPLOY_COMMAND}` (as root), "
        f"then use `verdi -p {DAEMON_PROFILE}`"
    )
    if not profile_has_broker(profile):
        return f"profile {profile.name} has no broker (an embedded profile runs in-process only): {fix}"
    if not daemon_client(profile.name).is_daemon_running:
        return f"no daemon runs for profile {profile.name}: {fix} (or `verdi -p {profile.name} daemon start`)"
    return None


def print_outcome(node: orm.ProcessNode) -> bool:
    """After ``run_with_progress``: state and exit status, the returned outputs and, for a finished
    PamWorkChain, its quality lines (sum rules, acoustic region, k-mesh convergence). True if finished ok."""
    from aiida_llpam.queries import PROCESS_TYPE, gather, sum_rules_record
    from aiida_llpam.report import quality_lines

    print(f"{node.process_label}<{node.pk}> {node.process_state.value}, exit status {node.exit_status}")
    if not node.is_finished_ok:
        return False
    for link in sorted(node.base.links.get_outgoing(link_type=LinkType.RETURN).all(), key=lambda lk: lk.link_label):
        print(f"  {link.link_label:26s} {link.node.__class__.__name__}<{link.node.pk}>")
    if node.process_type == PROCESS_TYPE:
        for line in quality_lines(sum_rules_record(node), gather(node)[0]):
            print(line)
    return True


def profile_has_broker(profile=None) -> bool:
    """True if ``profile`` (default: the loaded one) has a broker (RabbitMQ), so that a daemon can run submitted
    jobs side by side."""
    from aiida.manage import get_manager

    profile = profile or get_manager().get_profile()
    return profile is not None and profile.process_control_backend is not None


def launch(builder, submit: bool = False, quiet: bool = False, pk_file: Path | None = None) -> orm.ProcessNode:
    """Run ``builder`` here (progress lines unless ``quiet``) or ``submit`` it to the daemon; returns the node.

    Exits with the reason when a submission has no daemon to go to, or when a run here did not finish ok.
    """
    from aiida.engine import submit as submit_process
    from aiida.manage import get_manager

    if submit:
        if reason := daemon_unavailable_reason():
            sys.exit(f"cannot submit: {reason}")
        node = submit_process(builder)
        if pk_file:
            Path(pk_file).write_text(f"{node.pk}\n")
        profile = get_manager().get_profile().name
        print(f"{node.process_label}<{node.pk}> submitted to the daemon of profile {profile}; follow it with:")
        if node.process_label == "PamWorkChain":
            print(f"    aiida-llpam progress {node.pk} -p {profile} --watch 30")
        else:  # progress reads a PamWorkChain's DFPT; AiiDA's report has every other workchain's steps
            print(f"    verdi -p {profile} process report {node.pk}")
        return node
    node = run_with_progress(builder, quiet=quiet, pk_file=pk_file)
    if not print_outcome(node):
        sys.exit(f"the workchain failed: {node.exit_message}")
    return node
