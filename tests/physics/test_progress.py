"""ph.x progress parsing, the remaining-time estimate and the progress printer, on the real ph.x outputs.

Prefixes of the complete outputs stand for a run still going: ``prefix(path, n)`` is the text of lines 1..n.
"""

import asyncio

import pytest

from aiida_llpam.cli.launch import ProgressPrinter
from aiida_llpam.monitor import ProgressLine
from aiida_llpam.parsers.ph_progress import (
    DONE,
    PARTIAL,
    PENDING,
    QStatus,
    describe_ph,
    format_duration,
    format_remaining,
    parse_ph_output,
    remaining_seconds,
)

from .conftest import QUARTZ, SILICON

SI_OUT = SILICON / "ph.out"
QUARTZ_OUT = QUARTZ / "ph.out"  # the middle is trimmed by generate.py: header, q list, first q, the end


def prefix(path, n_lines):
    return "\n".join(path.read_text().splitlines()[:n_lines]) + "\n"


def test_silicon_complete():
    progress = parse_ph_output(SI_OUT.read_text())
    assert progress.finished
    assert progress.n_qpoints == 3
    assert progress.q_index == 3
    assert progress.current.q_point == pytest.approx((0.0, -1.0, 0.0))
    assert progress.current.n_irreps == 3
    assert progress.current.irreps_done == {1, 2, 3}
    assert progress.fraction_done() == 1.0
    assert describe_ph(progress) == "ph.x done"


@pytest.mark.parametrize(
    ("n_lines", "q_index", "n_irreps", "irrep", "done", "efield", "fraction", "text"),
    [
        (40, None, None, None, set(), None, None, "ph.x starting (scf of the unperturbed system, symmetry)"),
        (46, None, None, None, set(), None, 0.0, "ph.x starting (scf of the unperturbed system, symmetry)"),
        (47, 1, None, None, set(), None, 0.0, "q 1/3 (0, 0, 0), setting up"),
        (120, 1, 2, None, set(), None, 0.0, "q 1/3 (0, 0, 0), 2 irreps to do"),
        (130, 1, 2, None, set(), "running", 0.0, "q 1/3 (0, 0, 0), electric field (eps, Z*)"),
        (150, 1, 2, None, set(), "done", 0.0, "q 1/3 (0, 0, 0), electric field done, 2 irreps to do"),
        (166, 1, 2, 1, set(), "done", 0.0, "q 1/3 (0, 0, 0), irrep 1/2"),
        (192, 1, 2, 1, {1}, "done", 1 / 6, "q 1/3 (0, 0, 0), irrep 1/2"),
        (270, 2, None, None, set(), None, 1 / 3, "q 2/3 (0.5, -0.5, 0.5), setting up"),
        # q 2 lists representations of 1, 1, 2 and 2 modes: two of six modes done
        (800, 2, 4, 3, {1, 2}, None, (1 + 2 / 6) / 3, "q 2/3 (0.5, -0.5, 0.5), irrep 3/4"),
        (1448, 3, 3, 3, {1, 2, 3}, None, 1.0, "q 3/3 (0, -1, 0), irrep 3/3"),
    ],
)
def test_silicon_unfinished(n_lines, q_index, n_irreps, irrep, done, efield, fraction, text):
    progress = parse_ph_output(prefix(SI_OUT, n_lines))
    assert not progress.finished
    assert progress.n_qpoints == (None if n_lines < 41 else 3)
    q = progress.current
    assert progress.q_index == q_index and (q is None) == (q_index is None)
    if q is not None:
        assert (q.n_irreps, q.irrep, q.irreps_done, q.electric_field) == (n_irreps, irrep, done, efield)
    assert progress.fraction_done() == (None if fraction is None else pytest.approx(fraction))
    assert describe_ph(progress) == text


@pytest.mark.parametrize("path", [SI_OUT, QUARTZ_OUT])
def test_every_prefix_parses_and_fraction_never_goes_back(path):
    text = path.read_text()
    fractions = [parse_ph_output(text[:end]).fraction_done() or 0.0 for end in range(0, len(text), 97)]
    assert all(b >= a for a, b in zip(fractions, fractions[1:]))
    # a line cut in the middle (here the q coordinates) must not break the parse
    cut = text.index("Calculation of q") + len("Calculation of q =    0.00")
    assert parse_ph_output(text[:cut]).q_index is None


def test_quartz_trimmed_output():
    """quartz q 2x2x2: 4 irreducible q points; the trimmed file keeps the list and the first q (Gamma)."""
    start = parse_ph_output(prefix(QUARTZ_OUT, 49))
    assert start.n_qpoints == 4
    assert (start.q_index, start.current.q_point) == (1, (0.0, 0.0, 0.0))
    assert start.current.n_irreps is None and not start.finished
    assert parse_ph_output(QUARTZ_OUT.read_text()).finished


def test_recovered_run_takes_q_index_from_the_mesh_list():
    """A run recovered after q 1 starts at q 2 of the list; counting 'Calculation of q' lines would say 1."""
    lines = QUARTZ_OUT.read_text().splitlines()
    text = "\n".join(lines[:47] + ["     Calculation of q =    0.0000000   0.0000000  -0.4492228"])
    progress = parse_ph_output(text)
    assert progress.q_index == 2
    assert describe_ph(progress) == "q 2/4 (0, 0, -0.4492), setting up"


def test_recovered_representations_count_as_done():
    text = prefix(SI_OUT, 725).replace(
        "Representation     1      1 modes -  To be done", "Representation     1      1 modes -  Done"
    )
    progress = parse_ph_output(text)
    assert (progress.q_index, progress.current.n_irreps, progress.current.irreps_done) == (2, 4, {1})
    assert progress.fraction_done() == pytest.approx((1 + 1 / 4) / 3)


SI_MESH = [(0.0, 0.0, 0.0), (0.5, -0.5, 0.5), (0.0, -1.0, 0.0)]


def test_statuses_of_a_complete_run_list_every_q_with_its_irreps():
    assert parse_ph_output(SI_OUT.read_text()).statuses() == [
        QStatus(1, SI_MESH[0], DONE, 2, 2),
        QStatus(2, SI_MESH[1], DONE, 4, 4),
        QStatus(3, SI_MESH[2], DONE, 3, 3),
    ]


@pytest.mark.parametrize(
    ("n_lines", "expected"),
    [
        (40, []),  # the mesh is not listed yet
        (47, [(PARTIAL, None, None), (PENDING, None, None), (PENDING, None, None)]),
        (192, [(PARTIAL, 1, 2), (PENDING, None, None), (PENDING, None, None)]),
        # the q before the current one is done with all its representations, the one after pending
        (800, [(DONE, 2, 2), (PARTIAL, 2, 4), (PENDING, None, None)]),
        (1448, [(DONE, 2, 2), (DONE, 4, 4), (PARTIAL, 3, 3)]),  # converged, but no JOB DONE yet
    ],
)
def test_statuses_of_a_single_run_go_through_the_mesh_in_order(n_lines, expected):
    statuses = parse_ph_output(prefix(SI_OUT, n_lines)).statuses()
    assert [(s.state, s.irreps_done, s.n_irreps) for s in statuses] == expected
    assert [s.index for s in statuses] == list(range(1, len(expected) + 1))


def one_q_output(last_line):
    """What ph.x with start_q = last_q = 2 prints: the whole mesh list, then q 2 only (lines 269.. of the full run)."""
    lines = SI_OUT.read_text().splitlines()
    return "\n".join(lines[:46] + lines[268:last_line] + ["", "   JOB DONE."] * (last_line == 872)) + "\n"


def test_run_of_one_q_point():
    """The per-q route: the mesh has 3 points, this run computes the 2nd; the others are not its business."""
    partial = parse_ph_output(one_q_output(800))
    assert (partial.n_qpoints, partial.q_index, sorted(partial.qpoints)) == (3, 2, [2])
    assert partial.statuses(2, 2) == [QStatus(2, SI_MESH[1], PARTIAL, 2, 4)]
    # representations of 1, 1, 2 and 2 modes, the first two done: 2 of its 6 modes
    assert partial.fraction_done(2, 2) == pytest.approx(2 / 6)
    # read as a run over the whole mesh it would be a third further on, and q 1 would count as done
    assert partial.fraction_done() == pytest.approx((1 + 2 / 6) / 3)
    assert describe_ph(partial) == "q 2/3 (0.5, -0.5, 0.5), irrep 3/4"
    done = parse_ph_output(one_q_output(872))
    assert done.finished and done.statuses(2, 2) == [QStatus(2, SI_MESH[1], DONE, 4, 4)]
    assert done.fraction_done(2, 2) == 1.0


def test_remaining_time():
    assert remaining_seconds(None, 100.0) is None
    assert remaining_seconds(0.0, 100.0) is None  # nothing done yet: no pace to extrapolate
    assert remaining_seconds(0.25, 100.0) == pytest.approx(300.0)
    assert remaining_seconds(1.0, 100.0) == 0.0
    assert format_remaining(None) == "time left unknown"
    assert format_remaining(30.0) == "<1 min left"
    assert format_remaining(480.0) == "~8 min left"


def test_format_duration():
    assert format_duration(0) == "0:00"
    assert format_duration(372.9) == "6:12"
    assert format_duration(3700) == "1:01:40"


class ScriptedReporter:
    """Stands in for ProgressReporter (which needs a profile): returns the given lines in turn."""

    def __init__(self, lines):
        self.lines = list(lines)

    def line(self):
        return self.lines.pop(0) if self.lines else None


def test_printer_prints_changes_only_and_stops(capsys):
    loop = asyncio.new_event_loop()
    reporter = ScriptedReporter(
        [
            ProgressLine("0:01", "scf (PwBaseWorkChain<5>)", "elapsed 0:01"),
            ProgressLine("0:02", "scf (PwBaseWorkChain<5>)", "elapsed 0:02"),  # only the times changed
            None,  # between steps
            ProgressLine("0:03", "ph.x (PhBaseWorkChain<9>): q 1/1 (0, 0, 0), irrep 1/18", "elapsed 0:00"),
        ]
    )
    printer = ProgressPrinter(reporter, loop, interval_s=0.001)
    printer.start()
    loop.run_until_complete(asyncio.sleep(0.05))
    printer.stop()
    loop.close()
    assert capsys.readouterr().out.splitlines() == [
        "[ 0:01] scf (PwBaseWorkChain<5>), elapsed 0:01",
        "[ 0:03] ph.x (PhBaseWorkChain<9>): q 1/1 (0, 0, 0), irrep 1/18, elapsed 0:00",
    ]


def test_printer_survives_a_failing_reporter(capsys):
    class Failing:
        def line(self):
            raise KeyError("remote_folder")

    loop = asyncio.new_event_loop()
    printer = ProgressPrinter(Failing(), loop, interval_s=0.001)
    printer.start()
    loop.run_until_complete(asyncio.sleep(0.02))
    printer.stop()
    loop.close()
    assert capsys.readouterr().out.splitlines() == ["progress unavailable: KeyError: 'remote_folder'"]
