"""Readable progress of a PamWorkChain: the active step and, for ph.x, q point and representation.

The parser and the formatting are pure functions of ph.x's standard output (QE 6.7) and of times in
seconds. ``ProgressReporter`` (the lines printed while a workchain runs in this process) reads the provenance
graph and the running ph.x's output file and must be called on the thread that runs the workchain (the runner's
event loop), like any other database access. ``dfpt_progress`` (``aiida-llpam progress``) reads the same for any
PamWorkChain, running elsewhere or over, and tells each q point of the DFPT apart, on both DFPT routes.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from aiida import orm
from aiida.common.links import LinkType

from aiida_llpam.calculations.ph import PH_PROCESS_TYPES

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

_FLOAT = r"[-+]?\d*\.\d+(?:[eE][-+]?\d+)?"
_MESH_SIZE = re.compile(r"^\s*\(\s*(\d+) q-points\):")
_MESH_ROW = re.compile(rf"^\s*(\d+)\s+({_FLOAT})\s+({_FLOAT})\s+({_FLOAT})\s*$")
_CALCULATION_OF_Q = re.compile(rf"Calculation of q =\s*({_FLOAT})\s+({_FLOAT})\s+({_FLOAT})")
_N_IRREPS = re.compile(r"There are\s+(\d+) irreducible representations")
_IRREP_LISTED = re.compile(r"^\s*Representation\s+(\d+)\s+(\d+) modes? -\s+(Done)?")
_IRREP_START = re.compile(r"Representation #\s*(\d+) modes? #")


@dataclass
class QProgress:
    """One q point as far as a ph.x output has got with it; None where the text does not say yet."""

    q_point: tuple[float, float, float]
    n_irreps: int | None = None  # irreducible representations of this q
    irrep: int | None = None  # representation being computed (1-based)
    irreps_done: set[int] = field(default_factory=set)  # converged (or, on recover, already done) ones
    irrep_modes: dict[int, int] = field(default_factory=dict)  # modes of each representation, as ph.x lists them
    electric_field: str | None = None  # None, "running" or "done": the epsil part at Gamma
    finished: bool = False  # ph.x went on to the next q point or ended

    def fraction_done(self) -> float:
        """Fraction (0..1) of this q done, a representation weighted by its number of modes.

        One with two modes takes about twice as long as one with one (quartz at Gamma has 9 of each). The
        electric-field part is not counted: early estimates from this fraction run high.
        """
        if self.finished:
            return 1.0
        if self.n_irreps and len(self.irrep_modes) == self.n_irreps:  # the whole listing has been printed
            return sum(self.irrep_modes.get(i, 1) for i in self.irreps_done) / sum(self.irrep_modes.values())
        return len(self.irreps_done) / self.n_irreps if self.n_irreps else 0.0


DONE, PARTIAL, PENDING = "done", "partial", "pending"


@dataclass(frozen=True)
class QStatus:
    """What one ph.x output says of one q point of the mesh: ``state`` is DONE, PARTIAL or PENDING."""

    index: int  # 1-based, in ph.x's list
    q_point: tuple[float, float, float] | None  # None for a q point not yet listed (truncated text)
    state: str
    irreps_done: int | None  # how many of ``n_irreps``; None when this output does not say
    n_irreps: int | None


@dataclass
class PhProgress:
    """How far a ph.x run (``ldisp``) has got, from its standard output.

    q points are Cartesian in units of 2 pi/alat, as ph.x prints them.
    """

    n_qpoints: int | None = None  # irreducible q points on the mesh
    mesh: list[tuple[float, float, float]] = field(default_factory=list)  # as ph.x lists them
    qpoints: dict[int, QProgress] = field(default_factory=dict)  # those this output computes, by 1-based index
    q_index: int | None = None  # the one being computed (the last started)
    finished: bool = False  # "JOB DONE" seen

    @property
    def current(self) -> QProgress | None:
        return self.qpoints.get(self.q_index)

    def fraction_done(self, start_q: int = 1, last_q: int | None = None) -> float | None:
        """Fraction (0..1) of this run's work done: its q points (``start_q`` .. ``last_q`` of INPUTPH, default
        the whole mesh) count equally, within one q the modes done (:meth:`QProgress.fraction_done`).

        None while it cannot be told (mesh size not printed yet).
        """
        if self.finished:
            return 1.0
        if not self.n_qpoints:
            return None
        last_q = last_q or self.n_qpoints
        completed_q = max((self.q_index or start_q) - start_q, 0)
        current = self.current.fraction_done() if self.current else 0.0
        return min((completed_q + current) / (last_q - start_q + 1), 1.0)

    def statuses(self, start_q: int = 1, last_q: int | None = None) -> list[QStatus]:
        """The state of each q point ``start_q`` .. ``last_q`` this run computes (empty before the mesh is listed).

        ph.x goes through its q points in order, so those before the current one are done (a recovered run
        skips them: their representations are then unknown here), the current one partial and the rest pending.
        """
        last_q = last_q or self.n_qpoints or 0
        rows = []
        for index in range(start_q, last_q + 1):
            q = self.qpoints.get(index)
            if self.finished or (self.q_index is not None and index < self.q_index):
                state = DONE
            elif index == self.q_index:
                state = PARTIAL
            else:
                state = PENDING
            n_irreps = q.n_irreps if q else None
            irreps_done = n_irreps if state == DONE else (len(q.irreps_done) if q and q.n_irreps else None)
            q_point = self.mesh[index - 1] if index <= len(self.mesh) else (q.q_point if q else None)
            rows.append(QStatus(index, q_point, state, irreps_done, n_irreps))
        return rows


def parse_ph_output(text: str) -> PhProgress:
    """Progress of ph.x from its (possibly partial or truncated) standard output text.

    The q index is the position of the current q in the mesh list ph.x prints at the start, so a
    recovered run that skips finished q points, or a run of one q point (``start_q``), still gets the right
    index; without that list (a truncated text) it is the count of "Calculation of q" lines.
    """
    progress = PhProgress()
    in_mesh_list = False
    seen_q = 0
    q = None
    for line in text.splitlines():
        if match := _MESH_SIZE.match(line):
            progress.n_qpoints = int(match.group(1))
            in_mesh_list = True
        elif in_mesh_list and (match := _MESH_ROW.match(line)):
            progress.mesh.append(tuple(float(x) for x in match.group(2, 3, 4)))
        elif in_mesh_list and "xq(1)" not in line:
            in_mesh_list = False
        if match := _CALCULATION_OF_Q.search(line):
            seen_q += 1
            point = tuple(float(x) for x in match.group(1, 2, 3))
            # ph.x prints the list with 9 decimals and "Calculation of q" with 7
            index = next(
                (i for i, p in enumerate(progress.mesh) if max(abs(a - b) for a, b in zip(p, point)) < 1e-6), None
            )
            if q is not None:
                q.finished = True
            progress.q_index = index + 1 if index is not None else seen_q
            q = progress.qpoints[progress.q_index] = QProgress(point)
        elif "JOB DONE" in line:
            progress.finished = True
            if q is not None:
                q.finished = True
        elif q is None:
            continue
        elif match := _N_IRREPS.search(line):
            q.n_irreps = int(match.group(1))
        elif match := _IRREP_LISTED.match(line):
            q.irrep_modes[int(match.group(1))] = int(match.group(2))
            if match.group(3):
                q.irreps_done.add(int(match.group(1)))
        elif match := _IRREP_START.search(line):
            q.irrep = int(match.group(1))
        elif "Convergence has been achieved" in line and q.irrep is not None:
            q.irreps_done.add(q.irrep)
        elif "Electric Fields Calculation" in line:
            q.electric_field = "running"
        elif "End of electric fields calculation" in line:
            q.electric_field = "done"
    return progress


def remaining_seconds(fraction: float | None, elapsed_s: float) -> float | None:
    """Remaining wall time (s) if the rest goes at the pace so far; None before anything is done."""
    if not fraction:
        return None
    return elapsed_s * (1.0 - fraction) / fraction


def format_duration(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from one hour on."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_remaining(seconds: float | None) -> str:
    """A rough remaining time for people: minutes are as precise as a pace-based estimate gets."""
    if seconds is None:
        return "time left unknown"
    if seconds < 60:
        return "<1 min left"
    return f"~{round(seconds / 60)} min left"


def format_q_point(q_point: tuple[float, float, float]) -> str:
    """``0, 0, -0.4514``: four decimals are enough to tell the q points of a mesh apart."""
    return ", ".join(f"{round(x, 4) + 0.0:g}" for x in q_point)  # + 0.0 turns -0 into 0


def describe_ph(progress: PhProgress) -> str:
    """Where ph.x is, e.g. ``q 2/4 (0, 0, -0.4514), irrep 7/18``; no times."""
    if progress.finished:
        return "ph.x done"
    q = progress.current
    if q is None:
        return "ph.x starting (scf of the unperturbed system, symmetry)"
    n_q = progress.n_qpoints if progress.n_qpoints is not None else "?"
    text = f"q {progress.q_index}/{n_q} ({format_q_point(q.q_point)})"
    if q.electric_field == "running":
        return f"{text}, electric field (eps, Z*)"
    if q.irrep is None:
        if q.n_irreps is None:
            return f"{text}, setting up"
        field_done = "electric field done, " if q.electric_field == "done" else ""
        return f"{text}, {field_done}{q.n_irreps} irreps to do"
    return f"{text}, irrep {q.irrep}/{q.n_irreps if q.n_irreps is not None else '?'}"


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
    the local direct scheduler). ph.x detail is read for calculations on a local computer only.
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


# ---- the per-q-point table of ``aiida-llpam progress`` --------------------------------------------------------

RUNNING, FAILED = "running", "failed"
PH_INIT_LABEL = "ph_init"  # PhQpointsWorkChain's ph.x that only lists the q points
_PH_Q_LABEL = re.compile(r"^ph_q(\d+)$")  # its ph.x runs of one q point each, by ph.x's q index


class DfptNotStarted(ValueError):
    """The PamWorkChain has no DFPT to show (not started yet, or taken from a stored one); the message says why."""


@dataclass(frozen=True)
class QpointRow:
    """One q point of the DFPT: ``state`` is done, running, pending or failed; times in seconds, None if unknown."""

    index: int
    q_point: tuple[float, float, float] | None
    state: str
    irreps_done: int | None
    n_irreps: int | None
    elapsed_s: float | None
    remaining_s: float | None


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
    elif state == RUNNING and base.is_terminated:
        state = FAILED
    elapsed = _elapsed_s(base) if state in (RUNNING, FAILED) or (per_q and state == DONE) else None
    remaining = remaining_seconds(progress.fraction_done(*range_q), elapsed) if state == RUNNING and progress else None
    irreps_done = status.n_irreps if state == DONE and status.n_irreps is not None else status.irreps_done
    return QpointRow(status.index, status.q_point, state, irreps_done, status.n_irreps, elapsed, remaining)


def dfpt_progress(workchain: orm.WorkChainNode, read=read_calculation_output) -> DfptProgress:
    """Per q point of ``workchain``'s DFPT, what is done; ``read(calc)`` gives a ph.x calculation's output text.

    Two routes: ``ph`` is one PhBaseWorkChain whose ph.x goes through all q points in turn, or a
    PhQpointsWorkChain that lists them (``ph_init``) and runs one PhBaseWorkChain per q point (``ph_q<i>``).
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

    children = {_call_label(n): n for n in ph.called}
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
    for only_q, base in runs.items() if per_q else [(None, ph)]:
        statuses, progress, range_q = _ph_run_statuses(base, read, only_q)
        if only_q and not statuses:  # submitted, its ph.x not started yet (e.g. queued by the scheduler)
            q_point = mesh[only_q - 1] if only_q <= len(mesh) else None
            statuses = {only_q: QStatus(only_q, q_point, PARTIAL, 0 if n_irreps.get(only_q) else None, None)}
        for index, status in statuses.items():
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
        if row.state == RUNNING:
            parts.append(format_remaining(row.remaining_s))
        lines.append(", ".join(parts))
    if report.note:
        lines.append(f"  ({report.note})")
    return lines


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
    from aiida.engine.daemon.client import get_daemon_client
    from aiida.manage import get_manager

    from .services import DAEMON_PROFILE

    profile = get_manager().get_profile()
    fix = f"bring up the services and their profile with `aiida-llpam setup --services`, then use `verdi -p {DAEMON_PROFILE}`"
    if profile.process_control_backend is None:
        return f"profile {profile.name} has no broker (an embedded profile runs in-process only): {fix}"
    if not get_daemon_client(profile.name).is_daemon_running:
        return f"no daemon runs for profile {profile.name}: {fix} (or `verdi -p {profile.name} daemon start`)"
    return None


def print_outcome(node: orm.ProcessNode) -> bool:
    """After ``run_with_progress``: state and exit status, the returned outputs and, for a finished
    PamWorkChain, its quality lines (sum rules, acoustic region, k-mesh convergence). True if finished ok."""
    from aiida_llpam.tools.results import PROCESS_TYPE, gather, quality_lines

    print(f"{node.process_label}<{node.pk}> {node.process_state.value}, exit status {node.exit_status}")
    if not node.is_finished_ok:
        return False
    for link in sorted(node.base.links.get_outgoing(link_type=LinkType.RETURN).all(), key=lambda lk: lk.link_label):
        print(f"  {link.link_label:26s} {link.node.__class__.__name__}<{link.node.pk}>")
    if node.process_type == PROCESS_TYPE:
        for line in quality_lines(node, gather(node)[0]):
            print(line)
    return True
