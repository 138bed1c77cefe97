"""Progress of a running (or finished) PamWorkChain, read from provenance and from ph.x's output files.

``ProgressReporter`` gives the line printed while a workchain runs in this process; it reads the provenance graph
and the running ph.x's output file and must be called on the thread that runs the workchain (the runner's event
loop), like any other database access. ``dfpt_progress`` (``aiida-llpam progress``) reads the same for any
PamWorkChain, running elsewhere or over, and tells each q point of the DFPT apart, on both DFPT routes.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from aiida import orm
from aiida.common.links import LinkType
from aiida.schedulers.datastructures import JobState

from aiida_llpam.calculations.ph import PH_PROCESS_TYPES
from aiida_llpam.calculations.ph_gather import single_q_progress, split_job
from aiida_llpam.parsers.ph_progress import (
    DONE,
    PARTIAL,
    PENDING,
    PhProgress,
    QStatus,
    describe_ph,
    format_duration,
    format_q_point,
    format_remaining,
    parse_ph_output,
    remaining_seconds,
)

# Plain names of PamWorkChain's steps: by call link label for the sub-processes it submits, by process
# label for the calcfunctions it calls (those are linked as CALL, and block the event loop while they run).
STEP_NAMES = {
    "relax": "vc-relax",
    "scf": "scf",
    "ph": "ph.x",
    "q2r": "q2r",
    "q2r_nac": "q2r",
    "response": "response",
    "crystal_symmetry": "symmetry",
    "strip_dielectric_block_from_folder": "q2r",
    "phonopy_force_constants": "force constants",
    "pam_figure_data": "figures",
}
HEARTBEAT_S = 60.0  # an unchanged line is printed again after this long, so long steps still show their time


def _seconds_since(node: orm.ProcessNode) -> float:
    return (datetime.now(timezone.utc) - node.ctime).total_seconds()


def _call_label(node: orm.ProcessNode) -> str:
    return node.base.links.get_incoming(link_type=(LinkType.CALL_CALC, LinkType.CALL_WORK)).one().link_label


def _step_name(child: orm.ProcessNode) -> str:
    """The plain name of a process PamWorkChain called directly."""
    return STEP_NAMES.get(_call_label(child)) or STEP_NAMES.get(child.process_label, child.process_label)


def q_range(calc: orm.CalcJobNode) -> tuple[int, int | None]:
    """``start_q``, ``last_q`` of a ph.x calculation's INPUTPH (1 and None, the end of the mesh, by default)."""
    inputph = calc.inputs.parameters.get_dict().get("INPUTPH", {})
    return inputph.get("start_q", 1), inputph.get("last_q")


def read_calculation_output(calc: orm.CalcJobNode, through_transport: bool = False) -> str | None:
    """The standard output of a calculation so far, or None if it cannot be read (yet) from here.

    A terminated calculation's is read from its ``retrieved`` folder. A running one on a local computer is read
    directly, with pathlib; on another computer only with ``through_transport``: opening a transport from the
    loop that also runs the workchain would block it, so the in-process printer leaves it off.
    """
    filename = calc.get_option("output_filename")
    if calc.is_terminated:
        retrieved = calc.outputs.retrieved if "retrieved" in calc.outputs else None
        if retrieved is None or filename not in retrieved.base.repository.list_object_names():
            return None
        return retrieved.base.repository.get_object_content(filename, mode="r")
    if calc.computer is None or "remote_folder" not in calc.outputs:
        return None
    remote = calc.outputs.remote_folder
    if calc.computer.transport_type == "core.local":
        try:
            return (Path(remote.get_remote_path()) / filename).read_text(errors="replace")
        except FileNotFoundError:  # uploaded but not started yet
            return None
    if not through_transport:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            remote.getfile(filename, str(Path(tmp) / filename))
        except OSError:  # not started yet, or the computer cannot be reached now
            return None
        return (Path(tmp) / filename).read_text(errors="replace")


@dataclass(frozen=True)
class ProgressLine:
    """One progress line: ``clock`` (since the workchain started), ``what`` is running, its ``times``."""

    clock: str
    what: str
    times: str

    def __str__(self) -> str:
        return f"[{self.clock:>5s}] {self.what}, {self.times}"


class ProgressReporter:
    """Progress lines of one running PamWorkChain, e.g.

    ``[ 6:12] ph.x (PhBaseWorkChain<123>): q 2/4 (0, 0, -0.4514), irrep 7/18, elapsed 3:40, ~8 min left``

    where ``[ 6:12]`` is the time since the workchain started and elapsed/left are those of the running
    calculation, counted from the creation of its node (upload and scheduler queue included: seconds on
    the local direct scheduler). ph.x detail is read for calculations on a local computer only. Where several
    ph.x jobs run side by side (q points or representations as jobs), the line names each, with the elapsed
    time of the oldest and the time left of the slowest, e.g.

    ``[ 9:02] ph.x (DirectDfptWorkChain<52>): 2 ph.x jobs: <57> q 1/1 (0.1667, 0, 0), irrep 12/27; <60> q 1/1
    (0.1667, 0.1667, 0), irrep 21/26, elapsed 8:40, ~11 min left``
    """

    def __init__(self, workchain: orm.WorkChainNode):
        self.workchain = workchain

    def line(self) -> ProgressLine | None:
        """The most recently started active step; None between steps."""
        active = [n for n in self.workchain.called_descendants if not n.is_terminated]
        if not active:
            return None
        newest = max(active, key=lambda n: n.ctime)
        child = newest
        while child.caller.pk != self.workchain.pk:
            child = child.caller
        clock = format_duration(_seconds_since(self.workchain))
        where = f"{_step_name(child)} ({child.process_label}<{child.pk}>)"
        ph_jobs = sorted((n for n in active if n.process_type in PH_PROCESS_TYPES), key=lambda n: n.pk)
        if len(ph_jobs) > 1:
            return _side_by_side(clock, where, ph_jobs)
        elapsed = _seconds_since(newest)
        text = read_calculation_output(newest) if newest.process_type in PH_PROCESS_TYPES else None
        if text is None:
            what = where if newest.pk == child.pk else f"{where}: {newest.process_label}<{newest.pk}>"
            return ProgressLine(clock, what, f"elapsed {format_duration(elapsed)}")
        progress = parse_ph_output(text)
        times = f"elapsed {format_duration(elapsed)}"
        if not progress.finished:
            times += f", {format_remaining(remaining_seconds(progress.fraction_done(*q_range(newest)), elapsed))}"
        return ProgressLine(clock, f"{where}: {describe_ph(progress)}", times)


def _side_by_side(clock: str, where: str, jobs: list[orm.CalcJobNode]) -> ProgressLine:
    """One line for ph.x ``jobs`` running at once: where each is, the oldest's elapsed time, the slowest's left."""
    parts, left = [], []
    for job in jobs:
        text = read_calculation_output(job)
        if text is None:
            parts.append(f"<{job.pk}> not started")
            left.append(None)
            continue
        progress = parse_ph_output(text)
        parts.append(f"<{job.pk}> {describe_ph(progress)}")
        if not progress.finished:
            left.append(remaining_seconds(progress.fraction_done(*q_range(job)), _seconds_since(job)))
    times = f"elapsed {format_duration(max(_seconds_since(job) for job in jobs))}"
    if left:  # one job whose pace is unknown leaves the whole unknown
        times += f", {format_remaining(None if None in left else max(left))}"
    return ProgressLine(clock, f"{where}: {len(jobs)} ph.x jobs: " + "; ".join(parts), times)


RUNNING, FAILED, QUEUED = "running", "failed", "queued"
#: scheduler states of a job that has not started: its q point is queued, not running
_NOT_STARTED = (JobState.QUEUED, JobState.QUEUED_HELD)
PH_INIT_LABEL = "ph_init"  # PhQpointsWorkChain's ph.x that only lists the q points
_PH_Q_LABEL = re.compile(r"^ph_q(\d+)$")  # its ph.x runs of one q point each, by ph.x's q index


class DfptNotStarted(ValueError):
    """The PamWorkChain has no DFPT to show (not started yet, or taken from a stored one); the message says why."""


@dataclass(frozen=True)
class QpointRow:
    """One q point of the DFPT: ``state`` is done, running, queued (its job waits for the scheduler), pending (no job
    yet) or failed; times in seconds, None if unknown."""

    index: int
    q_point: tuple[float, float, float] | None
    state: str
    irreps_done: int | None
    n_irreps: int | None
    elapsed_s: float | None
    remaining_s: float | None
    pieces: tuple[PieceRow, ...] = ()  # the q point's jobs when it is split by representation


@dataclass(frozen=True)
class PieceRow:
    """One job of a q point split by representation: ``name`` is "setup", "irr 4-6" or "gather"; for a group of
    representations how many of its ``n_irreps`` are converged (from its output while it runs), else None."""

    name: str
    state: str
    elapsed_s: float
    irreps_done: int | None = None
    n_irreps: int | None = None


@dataclass(frozen=True)
class DfptProgress:
    """``aiida-llpam progress``: the workchain's state and step, and one row per irreducible q point."""

    workchain: orm.WorkChainNode
    step: str  # the newest process the workchain called, e.g. "ph.x (PhBaseWorkChain<33>)"
    rows: list[QpointRow]
    note: str | None  # what the rows cannot say (e.g. elapsed and left are those of one run for all q points)


def _elapsed_s(node: orm.ProcessNode) -> float:
    """Wall time from the node's creation to its end (its last change) or, while it runs, to now."""
    end = node.mtime if node.is_terminated else datetime.now(timezone.utc)
    return (end - node.ctime).total_seconds()


def current_step(workchain: orm.WorkChainNode) -> str:
    """The step PamWorkChain is at (or ended in): the newest process it called, by its plain name."""
    child = max(workchain.called, key=lambda n: n.ctime, default=None)
    if child is None:
        return "setup"
    return f"{_step_name(child)} ({child.process_label}<{child.pk}>)"


def _ph_run_statuses(
    base: orm.WorkChainNode, read, only_q: int | None = None
) -> tuple[dict[int, QStatus], PhProgress | None, tuple]:
    """The q points one PhBaseWorkChain computes (``only_q``: that one), from its PhCalculations' outputs.

    The newest readable output says where the run is; an older one (before a restart) fills in the
    representations of q points that a recovered run skipped. Returns the statuses by q index, the newest
    progress and the q range of its run.
    """
    statuses: dict[int, QStatus] = {}
    newest, newest_range = None, (1, None)
    calcs = sorted((n for n in base.called_descendants if n.process_type in PH_PROCESS_TYPES), key=lambda n: n.ctime)
    for calc in calcs:
        text = read(calc)
        if text is None:
            continue
        newest, newest_range = parse_ph_output(text), (only_q, only_q) if only_q else q_range(calc)
        for status in newest.statuses(*newest_range):
            old = statuses.get(status.index)
            if status.n_irreps is None and old is not None and old.n_irreps is not None:
                done = old.n_irreps if status.state == DONE else old.irreps_done
                status = QStatus(status.index, status.q_point, status.state, done, old.n_irreps)
            statuses[status.index] = status
    return statuses, newest, newest_range


def _row(
    status: QStatus, base: orm.WorkChainNode, progress: PhProgress | None, range_q: tuple, per_q: bool
) -> QpointRow:
    """``status`` of a q point of the run ``base``, its state told from the run's and its times from the run's."""
    state = RUNNING if status.state == PARTIAL else status.state
    if state != DONE and base.is_finished_ok:
        state = DONE
    elif state in (RUNNING, QUEUED) and base.is_terminated:
        state = FAILED
    elapsed = _elapsed_s(base) if state in (RUNNING, QUEUED, FAILED) or (per_q and state == DONE) else None
    remaining = remaining_seconds(progress.fraction_done(*range_q), elapsed) if state == RUNNING and progress else None
    irreps_done = status.n_irreps if state == DONE and status.n_irreps is not None else status.irreps_done
    return QpointRow(status.index, status.q_point, state, irreps_done, status.n_irreps, elapsed, remaining)


def _newest_ph_job(base: orm.ProcessNode) -> orm.CalcJobNode | None:
    """The newest ph.x job of ``base`` (a workchain, or the job itself), None if it has made none yet."""
    calcs = [base] if isinstance(base, orm.CalcJobNode) else base.called_descendants
    return max((n for n in calcs if n.process_type in PH_PROCESS_TYPES), key=lambda n: n.ctime, default=None)


def _waits_for_scheduler(base: orm.ProcessNode) -> bool:
    """Whether the newest ph.x job of ``base`` (a workchain, or the job itself) has not started: none made yet, not
    yet with the scheduler, or with it but queued (the scheduler state the daemon last polled)."""
    newest = _newest_ph_job(base)
    if newest is None:
        return True
    if newest.is_terminated:
        return False
    return newest.get_scheduler_state() in (None, *_NOT_STARTED)


def _job_state(node: orm.ProcessNode) -> str:
    """done, failed, queued (its job not started in the scheduler) or running, for one job of the split route."""
    if node.is_finished_ok:
        return DONE
    if node.is_terminated:
        return FAILED
    return QUEUED if _waits_for_scheduler(node) else RUNNING


#: what ph.x prints when one representation (or the electric field, which a group never computes) has converged
_CONVERGED = "Convergence has been achieved"


def _piece_row(kind: str, first: int | None, last: int | None, node: orm.ProcessNode, read) -> PieceRow:
    """The row of one job; a running group's converged representations are counted in its newest ph.x output."""
    state = _job_state(node)
    if kind != "irr":
        return PieceRow(kind, state, _elapsed_s(node))
    size = last - first + 1
    done = size if state == DONE else 0
    if state in (RUNNING, QUEUED):
        newest = _newest_ph_job(node)
        text = read(newest) if newest is not None else None
        if text:  # it writes its output, so it runs, whatever the scheduler said at the daemon's last poll
            state, done = RUNNING, min(text.count(_CONVERGED), size)
    return PieceRow(f"irr {first}-{last}", state, _elapsed_s(node), done, size)


def _split_rows(children: dict, mesh: list, n_irreps: dict[int, int], read) -> dict[int, QpointRow]:
    """Rows of the q points split by representation that have jobs, from those jobs (``children``: call label ->
    process): done when gathered, failed, running or queued as its jobs are; the representations counted are those
    converged in its groups (finished ones, and in the output of running ones, read with ``read``); their number
    from the listing or else the setup's output; elapsed from its first job's creation."""
    jobs: dict[int, list] = {}
    for label, node in children.items():
        if (job := split_job(label)) is not None:
            index, kind, first, last = job
            order = {"setup": -1, "gather": 10**6}.get(kind, first)  # setup, the groups in order, gather
            jobs.setdefault(index, []).append((order, kind, first, last, node))
    rows = {}
    for index, parts in jobs.items():
        parts.sort(key=lambda item: item[0])
        pieces = tuple(_piece_row(kind, first, last, node, read) for _, kind, first, last, node in parts)
        states = {piece.state for piece in pieces}
        gathered = parts[-1][1] == "gather" and pieces[-1].state == DONE
        state = DONE if gathered else next(s for s in (FAILED, RUNNING, QUEUED, DONE) if s in states)
        if state == DONE and not gathered:
            state = RUNNING  # between jobs: the next ones are being submitted
        start = min(node.ctime for *_, node in parts)
        end = max(node.mtime for *_, node in parts) if gathered else datetime.now(timezone.utc)
        total = n_irreps.get(index)
        if total is None and parts[0][1] == "setup":
            outputs = [read(calc) for calc in parts[0][-1].called_descendants if calc.process_type in PH_PROCESS_TYPES]
            setups = [single_q_progress(text) for text in outputs if text]
            total = next((q.n_irreps for q in setups if q is not None and q.n_irreps), None)
        done = total if gathered else sum(piece.irreps_done or 0 for piece in pieces)
        q_point = mesh[index - 1] if index <= len(mesh) else None
        rows[index] = QpointRow(index, q_point, state, done, total, (end - start).total_seconds(), None, pieces)
    return rows


def dfpt_progress(workchain: orm.WorkChainNode, read=read_calculation_output) -> DfptProgress:
    """Per q point of ``workchain``'s DFPT, what is done; ``read(calc)`` gives a ph.x calculation's output text.

    Three routes: ``ph`` is one PhBaseWorkChain whose ph.x goes through all q points in turn, or a
    PhQpointsWorkChain that lists them (``ph_init``) and runs one PhBaseWorkChain per q point (``ph_q<i>``) or,
    split by representation, per q point a setup, groups of representations and a gathering run (each a row of
    its q point's ``pieces``).
    Raises DfptNotStarted when there is no DFPT to show.
    """
    step = current_step(workchain)
    ph = next((n for n in workchain.called if _call_label(n) == "ph"), None)
    if ph is None:
        if "dfpt" in workchain.inputs:
            raise DfptNotStarted(
                f"PamWorkChain<{workchain.pk}> runs no DFPT: it was given a stored one (input dfpt, "
                f"{workchain.inputs.dfpt.__class__.__name__}<{workchain.inputs.dfpt.pk}>)"
            )
        raise DfptNotStarted(f"the DFPT of PamWorkChain<{workchain.pk}> has not started yet: current step {step}")

    # by creation, so that a job launched again under its label (lost by a stopping daemon worker) is the one shown
    children = {_call_label(n): n for n in sorted(ph.called, key=lambda n: n.ctime)}
    per_q = ph.process_label == "PhQpointsWorkChain"
    runs = {int(m.group(1)): n for label, n in children.items() if (m := _PH_Q_LABEL.match(label))}
    ph_init = children.get(PH_INIT_LABEL)
    listing = _ph_run_statuses(ph_init, read)[1] if ph_init is not None else None
    mesh = listing.mesh if listing else []
    if not mesh and ph_init is not None and "output_parameters" in ph_init.outputs:
        # its output text cannot be read from here (a remote computer, not retrieved): the count, without coordinates
        mesh = [None] * ph_init.outputs.output_parameters["number_of_qpoints"]
    # the listing run computes no phonon, but its output already names each q point's representations
    n_irreps = {i: q.n_irreps for i, q in listing.qpoints.items()} if listing else {}
    rows = {
        i: QpointRow(i, q_point, PENDING, 0 if n_irreps.get(i) else None, n_irreps.get(i), None, None)
        for i, q_point in enumerate(mesh, start=1)
    }
    rows.update(_split_rows(children, mesh, n_irreps, read))
    for only_q, base in runs.items() if per_q else [(None, ph)]:
        statuses, progress, range_q = _ph_run_statuses(base, read, only_q)
        if only_q and not statuses:  # submitted, no ph.x output yet: queued, or started where it cannot be read
            q_point = mesh[only_q - 1] if only_q <= len(mesh) else None
            state = QUEUED if _waits_for_scheduler(base) else PARTIAL
            statuses = {only_q: QStatus(only_q, q_point, state, 0 if n_irreps.get(only_q) else None, None)}
        for index, status in statuses.items():
            if only_q and status.state == PENDING and not base.is_terminated:  # its job exists: where is it?
                state = QUEUED if _waits_for_scheduler(base) else PARTIAL
                status = QStatus(index, status.q_point, state, status.irreps_done, status.n_irreps)
            if status.q_point is None and index <= len(mesh) and mesh[index - 1] is not None:
                # a recovered ph.x does not print the coordinates of the q point it resumes: the listing has them
                status = QStatus(index, mesh[index - 1], status.state, status.irreps_done, status.n_irreps)
            if status.n_irreps is None and n_irreps.get(index):
                status = QStatus(index, status.q_point, status.state, status.irreps_done, n_irreps[index])
            rows[index] = _row(status, base, progress, range_q, per_q)

    note = None
    if not rows:
        note = "ph.x has not listed the q points yet"
    elif not per_q and any(row.elapsed_s is not None for row in rows.values()):
        note = "one ph.x run computes the q points in turn: elapsed and time left are that run's"
    return DfptProgress(workchain, step, [rows[i] for i in sorted(rows)], note)


def format_dfpt_progress(report: DfptProgress) -> list[str]:
    """The lines of ``aiida-llpam progress``: a header, then one line per q point."""
    node = report.workchain
    if node.is_terminated:
        state = f"{node.process_state.value} (exit status {node.exit_status}), ran {format_duration(_elapsed_s(node))}"
    else:
        state = f"{node.process_state.value}, started {format_duration(_elapsed_s(node))} ago"
    lines = [f"PamWorkChain<{node.pk}>{f' {node.label}' if node.label else ''}: {state}, step {report.step}"]
    n_q = len(report.rows)
    for row in report.rows:
        where = f"({format_q_point(row.q_point)})" if row.q_point is not None else "(?)"
        parts = [f"  q {row.index}/{n_q} {where}: {row.state}"]
        if row.n_irreps is not None:
            parts.append(f"irrep {row.irreps_done if row.irreps_done is not None else '?'}/{row.n_irreps}")
        if row.elapsed_s is not None:
            parts.append(f"elapsed {format_duration(row.elapsed_s)}")
        if row.state == RUNNING and not row.pieces:
            parts.append(format_remaining(row.remaining_s))
        lines.append(", ".join(parts))
        for piece in row.pieces:
            done = f", {piece.irreps_done}/{piece.n_irreps}" if piece.n_irreps is not None else ""
            lines.append(f"      {piece.name}: {piece.state}{done}, elapsed {format_duration(piece.elapsed_s)}")
    if report.note:
        lines.append(f"  ({report.note})")
    return lines
