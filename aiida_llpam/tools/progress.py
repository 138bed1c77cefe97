"""Readable progress of a running PamWorkChain: the active step and, for ph.x, q point and representation.

The parser and the formatting are pure functions of ph.x's standard output (QE 6.7) and of times in
seconds; ``ProgressReporter`` reads the provenance graph and the running ph.x's output file and must be
called on the thread that runs the workchain (the runner's event loop), like any other database access.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from aiida import orm
from aiida.common.links import LinkType

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
PH_PROCESS_TYPE = "aiida.calculations:quantumespresso.ph"
HEARTBEAT_S = 60.0  # an unchanged line is printed again after this long, so long steps still show their time

_FLOAT = r"[-+]?\d*\.\d+(?:[eE][-+]?\d+)?"
_MESH_SIZE = re.compile(r"^\s*\(\s*(\d+) q-points\):")
_MESH_ROW = re.compile(rf"^\s*(\d+)\s+({_FLOAT})\s+({_FLOAT})\s+({_FLOAT})\s*$")
_CALCULATION_OF_Q = re.compile(rf"Calculation of q =\s*({_FLOAT})\s+({_FLOAT})\s+({_FLOAT})")
_N_IRREPS = re.compile(r"There are\s+(\d+) irreducible representations")
_IRREP_LISTED = re.compile(r"^\s*Representation\s+(\d+)\s+(\d+) modes? -\s+(Done)?")
_IRREP_START = re.compile(r"Representation #\s*(\d+) modes? #")


@dataclass
class PhProgress:
    """How far a ph.x run (``ldisp``) has got, from its standard output; None where the text does not say yet.

    q points are Cartesian in units of 2 pi/alat, as ph.x prints them.
    """

    n_qpoints: int | None = None  # irreducible q points ph.x computes on the mesh
    q_index: int | None = None  # 1-based index of the q point being computed, in ph.x's list
    q_point: tuple[float, float, float] | None = None
    n_irreps: int | None = None  # irreducible representations of the current q
    irrep: int | None = None  # representation being computed (1-based)
    irreps_done: set[int] = field(default_factory=set)  # converged (or, on recover, already done) ones
    irrep_modes: dict[int, int] = field(default_factory=dict)  # modes of each representation, as ph.x lists them
    electric_field: str | None = None  # None, "running" or "done": the epsil part at Gamma
    finished: bool = False  # "JOB DONE" seen

    def fraction_done(self) -> float | None:
        """Fraction (0..1) of the work done: q points count equally, within one q the modes done.

        A representation is weighted by its number of modes (one with two modes takes about twice as long
        as one with one: quartz at Gamma has 9 of each). None while it cannot be told (mesh size not printed
        yet). The electric-field part is not counted: early estimates from this fraction run high.
        """
        if self.finished:
            return 1.0
        if not self.n_qpoints:
            return None
        completed_q = (self.q_index or 1) - 1
        if self.n_irreps and len(self.irrep_modes) == self.n_irreps:  # the whole listing has been printed
            current = sum(self.irrep_modes.get(i, 1) for i in self.irreps_done) / sum(self.irrep_modes.values())
        else:
            current = len(self.irreps_done) / self.n_irreps if self.n_irreps else 0.0
        return min((completed_q + current) / self.n_qpoints, 1.0)


def parse_ph_output(text: str) -> PhProgress:
    """Progress of ph.x from its (possibly partial or truncated) standard output text.

    The q index is the position of the current q in the mesh list ph.x prints at the start, so a
    recovered run that skips finished q points still gets the right index; without that list (a
    truncated text) it is the count of "Calculation of q" lines.
    """
    progress = PhProgress()
    mesh: list[tuple[float, float, float]] = []
    in_mesh_list = False
    seen_q = 0
    for line in text.splitlines():
        if match := _MESH_SIZE.match(line):
            progress.n_qpoints = int(match.group(1))
            in_mesh_list = True
        elif in_mesh_list and (match := _MESH_ROW.match(line)):
            mesh.append(tuple(float(x) for x in match.group(2, 3, 4)))
        elif in_mesh_list and "xq(1)" not in line:
            in_mesh_list = False
        if match := _CALCULATION_OF_Q.search(line):
            seen_q += 1
            q = tuple(float(x) for x in match.group(1, 2, 3))
            # ph.x prints the list with 9 decimals and "Calculation of q" with 7
            index = next((i for i, p in enumerate(mesh) if max(abs(a - b) for a, b in zip(p, q)) < 1e-6), None)
            progress.q_index = index + 1 if index is not None else seen_q
            progress.q_point = q
            progress.n_irreps, progress.irrep, progress.electric_field = None, None, None
            progress.irreps_done, progress.irrep_modes = set(), {}
        elif match := _N_IRREPS.search(line):
            progress.n_irreps = int(match.group(1))
        elif match := _IRREP_LISTED.match(line):
            progress.irrep_modes[int(match.group(1))] = int(match.group(2))
            if match.group(3):
                progress.irreps_done.add(int(match.group(1)))
        elif match := _IRREP_START.search(line):
            progress.irrep = int(match.group(1))
        elif "Convergence has been achieved" in line and progress.irrep is not None:
            progress.irreps_done.add(progress.irrep)
        elif "Electric Fields Calculation" in line:
            progress.electric_field = "running"
        elif "End of electric fields calculation" in line:
            progress.electric_field = "done"
        elif "JOB DONE" in line:
            progress.finished = True
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


def _coordinate(x: float) -> str:
    return f"{round(x, 4) + 0.0:g}"  # + 0.0 turns -0 into 0


def describe_ph(progress: PhProgress) -> str:
    """Where ph.x is, e.g. ``q 2/4 (0, 0, -0.4514), irrep 7/18``; no times."""
    if progress.finished:
        return "ph.x done"
    if progress.q_index is None:
        return "ph.x starting (scf of the unperturbed system, symmetry)"
    n_q = progress.n_qpoints if progress.n_qpoints is not None else "?"
    text = f"q {progress.q_index}/{n_q} ({', '.join(_coordinate(x) for x in progress.q_point)})"
    if progress.electric_field == "running":
        return f"{text}, electric field (eps, Z*)"
    if progress.irrep is None:
        if progress.n_irreps is None:
            return f"{text}, setting up"
        field_done = "electric field done, " if progress.electric_field == "done" else ""
        return f"{text}, {field_done}{progress.n_irreps} irreps to do"
    return f"{text}, irrep {progress.irrep}/{progress.n_irreps if progress.n_irreps is not None else '?'}"


def _seconds_since(node: orm.ProcessNode) -> float:
    return (datetime.now(timezone.utc) - node.ctime).total_seconds()


def _step_name(child: orm.ProcessNode) -> str:
    """The plain name of a process PamWorkChain called directly."""
    label = child.base.links.get_incoming(link_type=(LinkType.CALL_CALC, LinkType.CALL_WORK)).one().link_label
    return STEP_NAMES.get(label) or STEP_NAMES.get(child.process_label, child.process_label)


def read_calculation_output(calc: orm.CalcJobNode) -> str | None:
    """The standard output of a running calculation so far, or None if it cannot be read from here.

    Only a calculation on a local computer is read (directly, with pathlib): opening a transport to a
    remote one from the loop that also runs the workchain would block it.
    """
    if calc.computer is None or calc.computer.transport_type != "core.local" or "remote_folder" not in calc.outputs:
        return None
    path = Path(calc.outputs.remote_folder.get_remote_path()) / calc.get_option("output_filename")
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:  # uploaded but not started yet
        return None


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
        text = read_calculation_output(newest) if newest.process_type == PH_PROCESS_TYPE else None
        if text is None:
            what = where if newest.pk == child.pk else f"{where}: {newest.process_label}<{newest.pk}>"
            return ProgressLine(clock, what, f"elapsed {format_duration(elapsed)}")
        progress = parse_ph_output(text)
        times = f"elapsed {format_duration(elapsed)}"
        if not progress.finished:
            times += f", {format_remaining(remaining_seconds(progress.fraction_done(), elapsed))}"
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
