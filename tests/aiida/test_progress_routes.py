"""`aiida_llpam.monitor.dfpt_progress` on the DFPT routes, on provenance graphs built by hand.

The graphs are what PamWorkChain leaves behind: ``ph`` a PhQpointsWorkChain that lists the q points (``ph_init``)
and runs one PhBaseWorkChain per q point (``ph_q<i>``), each with its PhCalculations (restarts). Their ph.x outputs
are cut from the real silicon run (3 q points): a finished one is read from its ``retrieved`` folder, the running one
from its remote folder on the local computer, as for a live run.
"""

import re
from pathlib import Path

import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import ProcessState

from aiida_llpam.calculations.ph import PH_PROCESS_TYPES
from aiida_llpam.monitor import ProgressReporter, dfpt_progress, format_dfpt_progress
from aiida_llpam.parsers.ph_progress import format_remaining

SI_OUT = Path(__file__).resolve().parents[2] / "fixtures" / "dfpt" / "si_q222" / "ph.out"
#: the estimate of a running q point, whatever the clock says (the nodes' ctime to now: seconds, or minutes on a
#: loaded machine); its value is checked against the row, not against the wall time of the test
TIME_LEFT = r"(<1 min|~\d+ min) left"
LINES = SI_OUT.read_text().splitlines()
HEADER = LINES[:46]  # up to the mesh list: every ph.x of the mesh prints it
JOB_DONE = ["", "   JOB DONE."]
Q1, Q2 = LINES[46:268], LINES[268:872]  # the blocks of q 1 (2 irreps) and q 2 (4 irreps)


def _workchain(caller, link_label, state, process_label, process_type, exit_status=0):
    node = orm.WorkChainNode()
    node.set_process_state(ProcessState(state))
    if state == "finished":
        node.set_exit_status(exit_status)
    node.base.attributes.set("process_label", process_label)
    node.process_type = process_type
    if caller is not None:
        node.base.links.add_incoming(caller, LinkType.CALL_WORK, link_label)
    return node.store()


def _ph_calculation(caller, state, text, tmp_path, start_q=None):
    """A PhCalculation whose output is ``text``: in ``retrieved`` when it is over, in its remote folder if running."""
    parameters = orm.Dict({"INPUTPH": {"start_q": start_q, "last_q": start_q} if start_q else {}}).store()
    calc = orm.CalcJobNode(computer=orm.load_computer("localhost"), process_type=PH_PROCESS_TYPES[0])
    calc.set_process_state(ProcessState(state))
    calc.set_option("output_filename", "aiida.out")
    calc.base.attributes.set("process_label", "PhCalculation")
    calc.base.links.add_incoming(parameters, LinkType.INPUT_CALC, "parameters")
    calc.base.links.add_incoming(caller, LinkType.CALL_CALC, "iteration_01")
    if state == "finished":
        calc.set_exit_status(0)
    calc.store()
    workdir = tmp_path / f"calc{calc.pk}"
    workdir.mkdir()
    if state == "running":  # a finished calculation must be read from what was retrieved (the remote may be gone)
        (workdir / "aiida.out").write_text(text)
    remote = orm.RemoteData(computer=calc.computer, remote_path=str(workdir))
    remote.base.links.add_incoming(calc, LinkType.CREATE, "remote_folder")
    remote.store()
    if state != "running":
        retrieved = orm.FolderData()
        retrieved.base.repository.put_object_from_bytes(text.encode(), "aiida.out")
        retrieved.base.links.add_incoming(calc, LinkType.CREATE, "retrieved")
        retrieved.store()
    return calc


@pytest.fixture
def pam(bare_profile, aiida_localhost):
    """The PamWorkChain of the graphs, in aiida-core's test profile with a ``localhost`` computer (no code)."""
    node = _workchain(None, None, "waiting", "PamWorkChain", "aiida.workflows:llpam.pam")
    node.label = "silicon"
    return node


def _text(*blocks):
    return "\n".join(line for block in blocks for line in block) + "\n"


def _rows(pam):
    return format_dfpt_progress(dfpt_progress(pam))[1:]


def test_per_q_route(pam, tmp_path):
    """q 1 done, q 2 running after a restart (recover), q 3 not submitted yet."""
    ph = _workchain(pam, "ph", "waiting", "PhQpointsWorkChain", "aiida.workflows:llpam.ph_qpoints")
    ph_init = _workchain(ph, "ph_init", "finished", "PhBaseWorkChain", "aiida.workflows:quantumespresso.ph.base")
    _ph_calculation(ph_init, "finished", _text(HEADER, JOB_DONE), tmp_path)
    ph_q1 = _workchain(ph, "ph_q1", "finished", "PhBaseWorkChain", "aiida.workflows:quantumespresso.ph.base")
    _ph_calculation(ph_q1, "finished", _text(HEADER, Q1, JOB_DONE), tmp_path, start_q=1)
    ph_q2 = _workchain(ph, "ph_q2", "waiting", "PhBaseWorkChain", "aiida.workflows:quantumespresso.ph.base")
    _ph_calculation(ph_q2, "excepted", _text(HEADER, Q2[:460]), tmp_path, start_q=2)  # killed before irrep 1 converged
    _ph_calculation(ph_q2, "running", _text(HEADER, Q2[:532]), tmp_path, start_q=2)  # irreps 1 and 2 converged

    report = dfpt_progress(pam)
    assert report.step == f"ph.x (PhQpointsWorkChain<{ph.pk}>)"
    assert [(r.index, r.state, r.irreps_done, r.n_irreps) for r in report.rows] == [
        (1, "done", 2, 2),
        (2, "running", 2, 4),
        (3, "pending", None, None),
    ]
    header, q1, q2, q3 = format_dfpt_progress(report)
    assert header.startswith(f"PamWorkChain<{pam.pk}> silicon: waiting, started ")
    assert re.fullmatch(r"  q 1/3 \(0, 0, 0\): done, irrep 2/2, elapsed \d+:\d\d", q1), q1
    # q 2 goes on from the restart: its 2 of 6 modes done in the time of both calculations leave twice that
    assert re.fullmatch(rf"  q 2/3 \(0\.5, -0\.5, 0\.5\): running, irrep 2/4, elapsed \d+:\d\d, {TIME_LEFT}", q2), q2
    assert q2.endswith(", " + format_remaining(report.rows[1].remaining_s))
    assert q3 == "  q 3/3 (0, -1, 0): pending"
    remaining = report.rows[1].remaining_s
    assert remaining == pytest.approx(2 * report.rows[1].elapsed_s, rel=0.05)

    # the line printed by a run in this process names the newest ph.x, its q point of the mesh and its irrep
    line = ProgressReporter(pam).line()
    assert line.what == f"ph.x (PhQpointsWorkChain<{ph.pk}>): q 2/3 (0.5, -0.5, 0.5), irrep 3/4"
    assert re.fullmatch(rf"elapsed \d+:\d\d, {TIME_LEFT}", line.times), line.times


def test_jobs_side_by_side_each_get_their_part_of_the_line(pam, tmp_path):
    """q 2 and q 3 run at once: the launch line names both, with the slowest's time left; one whose output cannot
    be read yet makes the time left unknown."""
    ph = _workchain(pam, "ph", "waiting", "PhQpointsWorkChain", "aiida.workflows:llpam.ph_qpoints")
    ph_init = _workchain(ph, "ph_init", "finished", "PhBaseWorkChain", "aiida.workflows:quantumespresso.ph.base")
    _ph_calculation(ph_init, "finished", _text(HEADER, JOB_DONE), tmp_path)
    ph_q2 = _workchain(ph, "ph_q2", "waiting", "PhBaseWorkChain", "aiida.workflows:quantumespresso.ph.base")
    q2 = _ph_calculation(ph_q2, "running", _text(HEADER, Q2[:532]), tmp_path, start_q=2)  # irreps 1, 2 of 4 done
    ph_q1 = _workchain(ph, "ph_q1", "waiting", "PhBaseWorkChain", "aiida.workflows:quantumespresso.ph.base")
    q1 = _ph_calculation(ph_q1, "running", _text(HEADER, Q1[:120]), tmp_path, start_q=1)
    line = ProgressReporter(pam).line()
    first, second = line.what.split("; ")
    assert first == f"ph.x (PhQpointsWorkChain<{ph.pk}>): 2 ph.x jobs: <{q2.pk}> q 2/3 (0.5, -0.5, 0.5), irrep 3/4"
    assert second == f"<{q1.pk}> q 1/3 (0, 0, 0), irrep 1/2"
    # q 1 has converged nothing yet: no pace, so no time left for the pair, though q 2 has one
    assert re.fullmatch(r"elapsed \d+:\d\d, time left unknown", line.times), line.times
    (Path(q1.outputs.remote_folder.get_remote_path()) / "aiida.out").write_text(_text(HEADER, Q1[:200]))
    line = ProgressReporter(pam).line()
    assert line.what.endswith(f"<{q1.pk}> q 1/3 (0, 0, 0), irrep 2/2")
    assert re.fullmatch(rf"elapsed \d+:\d\d, {TIME_LEFT}", line.times), line.times

    ph_q3 = _workchain(ph, "ph_q3", "waiting", "PhBaseWorkChain", "aiida.workflows:quantumespresso.ph.base")
    q3 = _ph_calculation(ph_q3, "running", "", tmp_path, start_q=3)
    (Path(q3.outputs.remote_folder.get_remote_path()) / "aiida.out").unlink()  # uploaded, not started
    line = ProgressReporter(pam).line()
    assert line.what.startswith(f"ph.x (PhQpointsWorkChain<{ph.pk}>): 3 ph.x jobs: ")
    assert line.what.endswith(f"; <{q3.pk}> not started")
    assert line.times.endswith(", time left unknown")


def test_per_q_route_with_a_job_still_queued(pam, tmp_path):
    """ph_q2's job waits in the scheduler's queue, ph_q3's is not made yet: both queued, nothing known; a job the
    scheduler runs but whose output cannot be read yet is running."""
    from aiida.schedulers.datastructures import JobState

    ph = _workchain(pam, "ph", "waiting", "PhQpointsWorkChain", "aiida.workflows:llpam.ph_qpoints")
    ph_init = _workchain(ph, "ph_init", "finished", "PhBaseWorkChain", "aiida.workflows:quantumespresso.ph.base")
    _ph_calculation(ph_init, "finished", _text(HEADER, JOB_DONE), tmp_path)
    ph_q2 = _workchain(ph, "ph_q2", "waiting", "PhBaseWorkChain", "aiida.workflows:quantumespresso.ph.base")
    calc = _ph_calculation(ph_q2, "waiting", "", tmp_path, start_q=2)
    calc.set_scheduler_state(JobState.QUEUED)
    _workchain(ph, "ph_q3", "waiting", "PhBaseWorkChain", "aiida.workflows:quantumespresso.ph.base")
    assert [(r.state, r.irreps_done) for r in dfpt_progress(pam).rows] == [
        ("pending", None),
        ("queued", None),
        ("queued", None),
    ]
    assert re.fullmatch(r"  q 3/3 \(0, -1, 0\): queued, elapsed \d+:\d\d", _rows(pam)[2]), _rows(pam)[2]
    calc.set_scheduler_state(JobState.RUNNING)
    assert dfpt_progress(pam).rows[1].state == "running"


def _gather(ph, label, state):
    calc = orm.CalcJobNode(computer=orm.load_computer("localhost"), process_type="aiida.calculations:llpam.ph_gather")
    calc.set_process_state(ProcessState(state))
    calc.base.attributes.set("process_label", "PhGatherCalculation")
    calc.base.links.add_incoming(ph, LinkType.CALL_CALC, label)
    if state == "finished":
        calc.set_exit_status(0)
    return calc.store()


def test_split_route_lists_each_q_points_jobs(pam, tmp_path):
    """Split by representation (two to a job): q 1 set up, its one group done and gathered; q 2 set up, group 1-2
    done, group 3-4 running, not gathered; q 3's setup waits in the queue."""
    from aiida.schedulers.datastructures import JobState

    base = ("PhBaseWorkChain", "aiida.workflows:quantumespresso.ph.base")
    ph = _workchain(pam, "ph", "waiting", "PhQpointsWorkChain", "aiida.workflows:llpam.ph_qpoints")
    ph_init = _workchain(ph, "ph_init", "finished", *base)
    _ph_calculation(ph_init, "finished", _text(HEADER, JOB_DONE), tmp_path)
    # a setup's output: the q point and its number of representations (the listing here does not say it)
    setups = {"q1_setup": _text(HEADER, Q1[:70], JOB_DONE), "q2_setup": _text(HEADER, Q2[:455], JOB_DONE)}
    for label in ("q1_setup", "q1_irr1_2", "q2_setup"):
        text = setups.get(label, _text(HEADER, JOB_DONE))
        _ph_calculation(_workchain(ph, label, "finished", *base), "finished", text, tmp_path)
    _gather(ph, "q1_gather", "finished")
    _ph_calculation(_workchain(ph, "q2_irr1_2", "finished", *base), "finished", _text(HEADER, JOB_DONE), tmp_path)
    # the running group has converged its first representation (its output read from its remote folder)
    converged = [
        "     Representation #   3 mode #   4",
        "     Convergence has been achieved ",
        "     Representation #   4",
    ]
    running = _workchain(ph, "q2_irr3_4", "waiting", *base)
    running = _ph_calculation(running, "running", _text(HEADER, converged), tmp_path)
    running.set_scheduler_state(JobState.RUNNING)
    queued = _ph_calculation(_workchain(ph, "q3_setup", "waiting", *base), "waiting", "", tmp_path)
    queued.set_scheduler_state(JobState.QUEUED)

    report = dfpt_progress(pam)
    assert [(r.index, r.state, r.irreps_done, r.n_irreps) for r in report.rows] == [
        (1, "done", 2, 2),
        (2, "running", 3, 4),
        (3, "queued", 0, None),
    ]
    assert [[(piece.name, piece.state, piece.irreps_done) for piece in row.pieces] for row in report.rows] == [
        [("setup", "done", None), ("irr 1-2", "done", 2), ("gather", "done", None)],
        [("setup", "done", None), ("irr 1-2", "done", 2), ("irr 3-4", "running", 1)],
        [("setup", "queued", None)],
    ]
    lines = _rows(pam)
    assert re.fullmatch(r"  q 2/3 \(0\.5, -0\.5, 0\.5\): running, irrep 3/4, elapsed \d+:\d\d", lines[4]), lines
    assert re.fullmatch(r"      irr 3-4: running, 1/2, elapsed \d+:\d\d", lines[7]), lines
    assert lines[8].startswith("  q 3/3 (0, -1, 0): queued") and lines[9].startswith("      setup: queued"), lines


def test_a_recovered_q_point_is_named_from_the_listing(pam, tmp_path):
    """A recovered ph.x prints no coordinates of the q point it resumes; the row takes them from ph_init's list."""
    ph = _workchain(pam, "ph", "waiting", "PhQpointsWorkChain", "aiida.workflows:llpam.ph_qpoints")
    ph_init = _workchain(ph, "ph_init", "finished", "PhBaseWorkChain", "aiida.workflows:quantumespresso.ph.base")
    _ph_calculation(ph_init, "finished", _text(HEADER, JOB_DONE), tmp_path)
    ph_q2 = _workchain(ph, "ph_q2", "waiting", "PhBaseWorkChain", "aiida.workflows:quantumespresso.ph.base")
    # the restarted job has just begun: its output stops before the mesh list that would name the q point
    from aiida.schedulers.datastructures import JobState

    calc = _ph_calculation(ph_q2, "running", _text(HEADER[:20]), tmp_path, start_q=2)
    calc.set_scheduler_state(JobState.RUNNING)
    row = _rows(pam)[1]
    assert re.fullmatch(r"  q 2/3 \(0\.5, -0\.5, 0\.5\): running, elapsed \d+:\d\d, time left unknown", row), row


def test_single_run_that_failed(pam, tmp_path):
    """The single ph.x of the existing route stopped in q 2: q 1 done, q 2 failed, q 3 never started."""
    ph = _workchain(pam, "ph", "finished", "PhBaseWorkChain", "aiida.workflows:quantumespresso.ph.base", 401)
    _ph_calculation(ph, "finished", _text(HEADER, Q1, Q2[:532]), tmp_path)
    report = dfpt_progress(pam)
    assert [(r.state, r.irreps_done, r.n_irreps) for r in report.rows] == [
        ("done", 2, 2),
        ("failed", 2, 4),
        ("pending", None, None),
    ]
    assert report.rows[1].remaining_s is None and report.rows[0].elapsed_s is None
    assert "elapsed and time left are that run's" in format_dfpt_progress(report)[-1]


def test_dfpt_not_started_names_the_step(pam):
    from aiida_llpam.monitor import DfptNotStarted

    scf = _workchain(pam, "scf", "waiting", "PwBaseWorkChain", "aiida.workflows:quantumespresso.pw.base")
    with pytest.raises(DfptNotStarted, match=rf"has not started yet: current step scf \(PwBaseWorkChain<{scf.pk}>\)"):
        dfpt_progress(pam)


def test_watch_refreshes_until_the_workchain_terminates(pam, tmp_path, monkeypatch):
    """`aiida-llpam progress PK --watch`: shown again after each wait, with what was stored meanwhile (here the
    workchain finishing during the first wait), and no more once it has terminated."""
    from aiida.manage import get_manager
    from click.testing import CliRunner

    from aiida_llpam.cli import main

    ph = _workchain(pam, "ph", "waiting", "PhBaseWorkChain", "aiida.workflows:quantumespresso.ph.base")
    _ph_calculation(ph, "running", _text(HEADER, Q1, Q2[:532]), tmp_path)
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        pam.set_process_state(ProcessState.FINISHED)
        pam.set_exit_status(0)

    monkeypatch.setattr("aiida_llpam.cli.progress.time.sleep", sleep)
    args = ["progress", str(pam.pk), "--watch", "5", "-p", get_manager().get_profile().name]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert waits == [5]
    headers = [line for line in result.output.splitlines() if line.startswith(f"PamWorkChain<{pam.pk}>")]
    assert len(headers) == 2
    assert ": waiting, started" in headers[0] and ": finished (exit status 0), ran" in headers[1]
    assert result.output.count("  q 2/3 (0.5, -0.5, 0.5): running, irrep 2/4") == 2
