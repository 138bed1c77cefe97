"""ph.x's standard output (QE 6.7) read for progress: q points, representations, what is done.

Pure functions of the text and of times in seconds (no AiiDA): :mod:`aiida_llpam.monitor` applies them to running
calculations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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
