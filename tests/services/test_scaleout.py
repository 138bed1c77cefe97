"""Scale-out on AiiDA's own engine (issue 9), real QE on diamond Si through the daemon (PostgreSQL, RabbitMQ) and SLURM.

* A PamWorkChain submitted to the daemon runs its irreducible q points as separate SLURM jobs and finishes.
* Faults, each on its own per-q-point DFPT from one scf: a ph.x killed mid-run (SIGKILL) resumes from its recover
  files; the daemon stopped and restarted mid-run, and RabbitMQ restarted mid-run, lose nothing and run no q point
  twice. Each faulted DFPT must give the dynamical matrices of an undisturbed one from the same scf, i.e. the same
  force constants (q2r.x is a fixed linear map of them).
"""

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from aiida.common.links import LinkType

from aiida_llpam import daemon_profile as configure
from aiida_llpam.cli.runs import load_codes
from aiida_llpam.workflows.relaunch import lost_to_worker_shutdown
from deploy import rabbitmq, slurm
from tests.provenance import called, dyn_numbers

from .conftest import assert_ran_through_slurm, wait_until_terminated

pytestmark = [pytest.mark.services, pytest.mark.qe]

REPO = Path(__file__).resolve().parents[2]
#: one core per job, so that the one-node cluster (2 cores) runs two q points at a time
OPTIONS = {"resources": {"num_machines": 1, "num_mpiprocs_per_machine": 1}, "max_wallclock_seconds": 1800}
#: smoke settings with a q mesh of several irreducible points (as tests/aiida/conftest.py run_silicon) and a denser
#: k mesh, so that each q job runs long enough (10-20 s) to be followed and interrupted
SILICON = {"kpoints": [4, 4, 4], "ph_main": {"qpoints": [2, 2, 2]}}


def _builder(overrides, computer=configure.SLURM_COMPUTER):
    from aiida import orm
    from ase.io import read

    from aiida_llpam.workflows.pam import PamWorkChain

    structure = orm.StructureData(ase=read(REPO / "fixtures" / "structures" / "Si_diamond.cif"))
    return PamWorkChain.get_builder_from_protocol(
        *load_codes(computer), structure, protocol="smoke", overrides=overrides, options=OPTIONS
    )


def _ph_jobs(dfpt, lost=True):
    """{call label of the q job: its PhCalculations, oldest first}, over every PhBaseWorkChain of that label (a job
    lost by stopping daemon workers is launched again under the same label); ``lost=False`` leaves out the lost
    processes and the calculations of a lost workchain, whose results nothing uses."""
    from aiida import orm
    from aiida.common.links import LinkType

    jobs = {}
    for link in dfpt.base.links.get_outgoing(link_type=LinkType.CALL_WORK).all():
        if not lost and lost_to_worker_shutdown(link.node):
            continue
        jobs.setdefault(link.link_label, []).extend(
            n for n in link.node.called if isinstance(n, orm.CalcJobNode) and (lost or not lost_to_worker_shutdown(n))
        )
    return {label: sorted(calcs, key=lambda n: n.ctime) for label, calcs in jobs.items()}


def _assert_same_dynamical_matrices(node, reference):
    ours, theirs = dyn_numbers(node.outputs.retrieved), dyn_numbers(reference.outputs.retrieved)
    assert sorted(ours) == sorted(theirs) and len(ours) > 2
    for name in ours:
        # restarted representations converge again to tr2_ph from another starting point: differences stay far
        # below the matrix elements (0.01-0.5 Ry/bohr^2) and the smoke model's scale of interest
        np.testing.assert_allclose(ours[name], theirs[name], rtol=0, atol=1e-6, err_msg=name)


def _history(node) -> str:
    """Each q job's ph.x calculations with their exit status, SLURM job id and state: the failure message of a
    faulted run, as the failure of one of them is where its cause is."""
    lines = []
    for label, calcs in sorted(_ph_jobs(node).items()):
        for calc in calcs:
            records = [r for r in slurm.jobcomp_records(calc.get_job_id()) if r["WorkDir"] == calc.get_remote_workdir()]
            state = ",".join(r["JobState"] for r in records) or "no SLURM record"
            lines.append(
                f"{label}: {calc.process_label}<{calc.pk}> {calc.process_state.value} exit {calc.exit_status} "
                f"({calc.exit_message}) job {calc.get_job_id()} {state}"
            )
    return "\n".join(lines)


def _assert_each_q_point_ran_once(node):
    """One finished PhCalculation per job, one SLURM job that completed: nothing lost, nothing run twice. The only
    others allowed are those a stopping daemon worker lost (aiida-core excepts them), which were launched again."""
    for label, calcs in _ph_jobs(node, lost=False).items():
        assert len(calcs) == 1, f"{label}: {len(calcs)} ph.x calculations\n{_history(node)}"
        assert calcs[0].is_finished_ok
        assert assert_ran_through_slurm(calcs[0])["JobState"] == "COMPLETED"


# ---------------------------------------------------------------------------------- the submitted PamWorkChain


def _progress_cli(node):
    """`aiida-llpam progress PK` in its own process, as a user follows a submitted run: (return code, stdout)."""
    from aiida.manage import get_manager

    profile = get_manager().get_profile().name
    result = subprocess.run(
        [sys.executable, "-c", "from aiida_llpam.cli import main; main()", "progress", str(node.pk), "-p", profile],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="module")
def submitted_run(daemon_profile):
    """The Si PamWorkChain submitted to the daemon, with `aiida-llpam progress` read while a q job runs."""
    from aiida import orm
    from aiida.engine import submit

    from aiida_llpam.cli.runs import daemon_qpoint_jobs

    builder = _builder(SILICON)
    # builders are pure: the launcher decides, and on a profile with a broker it runs the q points side by side
    builder.parallelize_qpoints = orm.Bool(daemon_qpoint_jobs())
    assert builder.parallelize_qpoints.value
    node = submit(builder)
    dfpt = _wait_for(lambda: _dfpt_with_q_job_starting(node), "a q job of the submitted run starting in SLURM")
    while_running = _progress_cli(node)
    return wait_until_terminated(node, timeout=900), dfpt, while_running


def _dfpt_with_q_job_starting(node):
    """The DFPT of ``node`` once one of its q jobs is at its first of three or more representations: seconds of
    ph.x are left then, so `aiida-llpam progress` (a new process) finds it running."""
    ph = [link.node for link in node.base.links.get_outgoing(link_label_filter="ph").all()]
    starting = ph and [
        out
        for _, _, out in _running_q_jobs(ph[0])
        if out.count("Representation #") == 1 and out.count("To be done") >= 3
    ]
    return ph[0] if starting else None


def test_submitted_pam_workchain_runs_each_q_point_as_a_slurm_job(submitted_run):
    from aiida import orm

    submitted_run, _, _ = submitted_run
    assert submitted_run.is_finished_ok, submitted_run.exit_message
    dfpt = called(submitted_run, "ph")
    assert dfpt.process_label == "PhQpointsWorkChain"
    n_qpoints = dfpt.outputs.output_parameters["number_of_qpoints"]
    jobs = _ph_jobs(dfpt)
    assert sorted(jobs) == sorted(["ph_init", *(f"ph_q{i}" for i in range(1, n_qpoints + 1))])
    # every QE job (pw.x, ph.x, q2r.x) and the response job went through sbatch and completed
    calcjobs = [n for n in submitted_run.called_descendants if isinstance(n, orm.CalcJobNode)]
    records = {n.pk: assert_ran_through_slurm(n) for n in calcjobs}
    assert all(r["JobState"] == "COMPLETED" for r in records.values())
    assert len({r["JobId"] for r in records.values()}) == len(calcjobs) >= n_qpoints + 5
    # the scheduler ran q points side by side: two q jobs' [start, end] intervals overlap in its own record
    spans = sorted(
        (records[calcs[0].pk]["StartTime"], records[calcs[0].pk]["EndTime"])
        for label, calcs in jobs.items()
        if label != "ph_init"
    )
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans)), spans
    _assert_each_q_point_ran_once(dfpt)


def test_progress_follows_the_submitted_run(submitted_run):
    """While a q job ran: the header names the per-q-point DFPT, each q point has a row, one of them running with
    its representations; once finished: every q point done with all of them."""
    node, dfpt, (returncode, text) = submitted_run
    assert returncode == 0, text
    header, *rows = text.splitlines()
    n_qpoints = dfpt.outputs.output_parameters["number_of_qpoints"]
    assert header.startswith(f"PamWorkChain<{node.pk}>") and f"PhQpointsWorkChain<{dfpt.pk}>" in header, header
    assert [row.split(":")[0] for row in rows[:n_qpoints]] == [
        row.split(":")[0] for row in _progress_cli(node)[1].splitlines()[1 : n_qpoints + 1]
    ]
    assert any(": running, irrep " in row and "left" in row for row in rows), text
    returncode, text = _progress_cli(node)
    assert returncode == 0 and "finished (exit status 0)" in text.splitlines()[0], text
    assert sum(": done, irrep " in row for row in text.splitlines()) == n_qpoints, text


# ------------------------------------------------------------------------------ the same run over SSH, split


@pytest.fixture(scope="module")
def ssh_run(daemon_profile, cluster_venv, submitted_run):
    """submitted_run's inputs on the computer cluster-ssh (core.ssh_async as the account, its SLURM jobs, its own
    venv for the response job), each q point split into groups of two representations. While a group writes its
    output, the progress report is made in this process with a read that records what it fetched over the
    transport, and `aiida-llpam progress` runs in its own process."""
    from aiida import orm
    from aiida.engine import submit

    from aiida_llpam.monitor import dfpt_progress, read_calculation_output

    builder = _builder(SILICON, computer=configure.CLUSTER_COMPUTER)
    builder.parallelize_qpoints = orm.Bool(True)
    builder.representations_per_job = orm.Int(2)
    node = submit(builder)
    _wait_for(lambda: _piece_writing_output(node), "a group of representations of the SSH run running", 900)
    fetched = []

    def read(calc):
        text = read_calculation_output(calc, through_transport=True)
        if text is not None and not calc.is_terminated:
            fetched.append((calc.computer.label, text))
        return text

    report = dfpt_progress(node, read=read)
    while_running = _progress_cli(node)
    return wait_until_terminated(node, timeout=1800), report, fetched, while_running


def _piece_writing_output(node):
    """A ph.x job of a group of representations of ``node`` whose output exists and is not finished (read on this
    machine's disk, where the stand-in cluster's work directories are), or None."""
    from aiida import orm

    from aiida_llpam.calculations.ph_gather import split_job

    dfpt = [link.node for link in node.base.links.get_outgoing(link_label_filter="ph").all()]
    for link in dfpt[0].base.links.get_outgoing(link_type=LinkType.CALL_WORK).all() if dfpt else []:
        job = split_job(link.link_label)
        if job is None or job[1] != "irr" or link.node.is_terminated:
            continue
        for calc in link.node.called:
            if isinstance(calc, orm.CalcJobNode) and not calc.is_terminated and "remote_folder" in calc.outputs:
                output = Path(calc.get_remote_workdir()) / "aiida.out"
                if output.exists() and "JOB DONE" not in output.read_text(errors="replace"):
                    return calc
    return None


def test_pam_workchain_over_ssh_matches_the_local_run(ssh_run, submitted_run):
    """Every job over core.ssh_async in SLURM as the account, scf to response; the split route's force constants
    and every response sum equal the local per-q-point run's (same inputs, one MPI process per job in both)."""
    from aiida import orm

    from aiida_llpam.quantities import OUTPUTS

    node = ssh_run[0]
    local = submitted_run[0]
    assert node.is_finished_ok, node.exit_message
    calcjobs = [n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)]
    assert {n.computer.label for n in calcjobs} == {configure.CLUSTER_COMPUTER}
    kinds = {n.process_type.rsplit(".", 1)[-1] for n in calcjobs}
    assert {"pw", "ph", "ph_gather", "q2r", "response"} <= kinds, kinds
    for calc in calcjobs:
        record = assert_ran_through_slurm(calc)
        assert record["JobState"] == "COMPLETED" and record["UserId"].startswith(f"{configure.CLUSTER_USER}(")
    response = next(n for n in calcjobs if n.process_type.endswith("response"))
    assert response.inputs.code.filepath_executable.as_posix() == configure.cluster_python()
    dfpt = called(node, "ph")
    assert any(link.link_label.endswith("_gather") for link in dfpt.base.links.get_outgoing().all())

    fc, fc_local = (run.outputs.force_constants.force_constants for run in (node, local))
    # the same DFPT problems in the same MPI layout; only the representations' grouping into jobs differs
    np.testing.assert_allclose(fc, fc_local, rtol=0, atol=1e-6 * np.abs(fc_local).max())
    # Si is centrosymmetric: gamma^NL and gamma^M vanish by symmetry and their arrays hold only rounding noise,
    # which no tolerance relative to themselves can compare
    symmetry = local.outputs.symmetry.get_dict()
    assert not symmetry["gamma_nl_allowed"] and not symmetry["gamma_m_allowed"]
    noise = {"gamma_nl", "pam_density", "magnetization"}
    compared = 0
    for name in OUTPUTS:
        if name in noise or name not in local.outputs or not isinstance(local.outputs[name], orm.ArrayData):
            continue
        for array in local.outputs[name].get_arraynames():
            theirs, ours = local.outputs[name].get_array(array), node.outputs[name].get_array(array)
            scale = np.abs(theirs).max() if theirs.size else 0.0
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6 * scale, err_msg=f"{name}/{array}")
            compared += 1
    assert compared > 10
    assert any(out.source == "figures" and name in node.outputs for name, out in OUTPUTS.items())


def test_progress_reads_the_pieces_over_ssh(ssh_run):
    """While a group of representations ran on the SSH computer, the progress report read its output through the
    transport and listed it as running under its q point; `aiida-llpam progress` in another process listed the
    pieces; at the end every q point is done with all its representations, its setup, groups and gathering run."""
    node, report, fetched, (returncode, text) = ssh_run
    assert fetched and {label for label, _ in fetched} == {configure.CLUSTER_COMPUTER}
    assert any("Representation #" in output for _, output in fetched)
    running = [piece for row in report.rows for piece in row.pieces if piece.state == "running"]
    assert any(piece.name.startswith("irr ") for piece in running), report.rows
    assert returncode == 0, text
    assert text.splitlines()[0].startswith(f"PamWorkChain<{node.pk}>") and "PhQpointsWorkChain<" in text, text
    assert any(line.startswith("      irr ") for line in text.splitlines()), text

    returncode, text = _progress_cli(node)
    assert returncode == 0, text
    rows = [line for line in text.splitlines() if line.startswith("  q ")]
    assert rows and all(": done, irrep " in row for row in rows), text
    for row in rows:
        done, total = row.split("irrep ")[1].split(",")[0].split("/")
        assert done == total
    pieces = [line.strip() for line in text.splitlines() if line.startswith("      ")]
    assert sum(line.startswith("setup: done") for line in pieces) == len(rows), text
    assert sum(line.startswith("gather: done") for line in pieces) == len(rows), text


def test_run_quartz_submit_returns_at_once(daemon_profile, tmp_path):
    """`verdi run workflows/run_quartz.py --submit` hands the workchain to the daemon and returns (then it is killed:
    the quartz DFPT itself is not what this test is for)."""
    from aiida import orm
    from aiida.engine.processes.control import kill_processes

    pk_file = tmp_path / "pk"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "aiida",
            "-p",
            daemon_profile[0],
            "run",
            str(REPO / "workflows" / "run_quartz.py"),
            "--submit",
            "--protocol",
            "smoke",
            "--pk-file",
            str(pk_file),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    node = orm.load_node(int(pk_file.read_text()))
    assert f"PamWorkChain<{node.pk}> submitted to the daemon" in result.stdout
    assert f"aiida-llpam progress {node.pk} -p {daemon_profile[0]}" in result.stdout
    # it returned while the workchain was still at its first steps (the smoke quartz DFPT alone takes minutes)
    assert not node.is_terminated
    assert node.inputs.parallelize_qpoints.value
    kill_processes([node], timeout=60)
    wait_until_terminated(node, timeout=300)
    assert node.is_killed


# ----------------------------------------------------------------------------------------------------- faults


@pytest.fixture(scope="module")
def fault_inputs(daemon_profile):
    """The per-q-point DFPT inputs (as PamWorkChain.run_ph makes them) on a finished scf with a 4x4x4 k mesh."""
    from aiida.engine import submit
    from aiida.plugins import WorkflowFactory

    from aiida_llpam.workflows.pam_inputs import dfpt_inputs

    builder = _builder(SILICON)
    scf = {**builder.scf, "pw": {**builder.scf.pw, "structure": builder.structure}}
    node = wait_until_terminated(submit(WorkflowFactory("quantumespresso.pw.base"), **scf), timeout=600)
    assert node.is_finished_ok, node.exit_message
    return dfpt_inputs(builder.ph_main, node.outputs.remote_folder, parallelize_qpoints=True)[1]


def _submit_dfpt(inputs):
    from aiida.engine import submit

    from aiida_llpam.workflows.ph_qpoints import PhQpointsWorkChain

    return submit(PhQpointsWorkChain, **inputs)


@pytest.fixture(scope="module")
def reference(fault_inputs):
    node = wait_until_terminated(_submit_dfpt(fault_inputs), timeout=900)
    assert node.is_finished_ok, node.exit_message
    _assert_each_q_point_ran_once(node)
    return node


def _running_q_jobs(node):
    """The ph.x q jobs of ``node`` whose job runs in SLURM now, with their output so far."""
    running = []
    for label, calcs in _ph_jobs(node).items():
        calc = calcs[-1] if calcs else None
        if label == "ph_init" or calc is None or calc.is_terminated or "remote_folder" not in calc.outputs:
            continue
        output = Path(calc.get_remote_workdir()) / "aiida.out"
        if output.exists():
            running.append((label, calc, output.read_text(errors="replace")))
    return running


def _kill_ph(calc):
    """SIGKILL the ph.x processes of ``calc``'s job (found by their working directory), as a node failure would."""
    workdir = calc.get_remote_workdir()
    ph_processes = [
        p for p in psutil.process_iter(["name", "cwd"]) if p.info["name"] == "ph.x" and p.info["cwd"] == workdir
    ]
    assert ph_processes, f"no ph.x process in {workdir}: the job ended before it could be killed"
    for process in ph_processes:
        os.kill(process.pid, signal.SIGKILL)


def _wait_for(predicate, what, timeout=600, interval=0.2):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)
    return result


def test_killed_ph_resumes_from_its_recover_files(fault_inputs, reference):
    node = _submit_dfpt(fault_inputs)

    def second_representation_started():
        # representation 1 is converged and saved to the recover files, and more are left to do
        return [
            (label, calc)
            for label, calc, out in _running_q_jobs(node)
            if out.count("Representation #") >= 2 and out.count("To be done") >= 3
        ]

    label, calc = _wait_for(second_representation_started, "a q job past its first representation")[0]
    _kill_ph(calc)

    wait_until_terminated(node, timeout=900)
    assert node.is_finished_ok, node.exit_message
    killed, resumed = _ph_jobs(node)[label]  # exactly one restart
    assert killed.exit_status == killed.process_class.exit_codes.ERROR_OUTPUT_STDOUT_INCOMPLETE.status
    assert assert_ran_through_slurm(killed)["JobState"] != "COMPLETED"  # the scheduler saw the job fail
    assert resumed.inputs.parameters["INPUTPH"]["recover"] is True
    assert resumed.inputs.parent_folder.uuid == killed.outputs.remote_folder.uuid
    # ph.x read its recover files: the representation finished before the kill is not computed again
    log = resumed.outputs.retrieved.base.repository.get_object_content("aiida.out", mode="r")
    assert "Representation     1" in log and any(
        line.split()[:2] == ["Representation", "1"] and line.rstrip().endswith("Done") for line in log.splitlines()
    ), "the restarted ph.x recomputed representation 1"
    assert assert_ran_through_slurm(resumed)["JobState"] == "COMPLETED"
    _assert_same_dynamical_matrices(node, reference)


def test_show_and_figures_follow_a_killed_and_recovered_gamma_job(daemon_profile, fault_inputs, reference, tmp_path):
    """The Gamma job (electric field and phonons) killed while it runs: its restart's parent folder is the killed
    ph.x, not the scf. A PamWorkChain on that DFPT (q2r.x and the response from its retrieved folder) finds the scf
    through the chain of restarts, and `aiida-llpam show` and `figures` on it work (they raised KeyError 'SYSTEM'
    before)."""
    from aiida.engine import submit

    from aiida_llpam.queries import dfpt_scf_calculation, dfpt_structure
    from aiida_llpam.workflows.pam import PamWorkChain

    node = _submit_dfpt(fault_inputs)

    def gamma_running():
        # ph.x itself has started (the shell creates the output file before it), the phonons are still to do
        started = "Electric Fields Calculation"
        running = _running_q_jobs(node)
        return [calc for label, calc, out in running if label == "ph_q1" and started in out and "JOB DONE" not in out]

    (calc,) = _wait_for(gamma_running, "the Gamma job running")
    _kill_ph(calc)
    wait_until_terminated(node, timeout=900)
    assert node.is_finished_ok, f"{node.exit_message}\n{_history(node)}"
    killed, resumed = _ph_jobs(node)["ph_q1"]
    assert resumed.inputs.parent_folder.creator.uuid == killed.uuid
    _assert_same_dynamical_matrices(node, reference)
    assert dfpt_scf_calculation(node.outputs.retrieved).process_type.endswith("quantumespresso.pw")

    retrieved = node.outputs.retrieved
    builder = PamWorkChain.get_builder_from_protocol(
        *load_codes(configure.SLURM_COMPUTER),
        dfpt_structure(retrieved),
        protocol="smoke",
        dfpt=retrieved,
        options=OPTIONS,
    )
    pam = wait_until_terminated(submit(builder), timeout=600)
    assert pam.is_finished_ok, pam.exit_message
    for command in (["show", str(pam.pk)], ["figures", str(pam.pk), "-o", str(tmp_path)]):
        result = subprocess.run(
            [sys.executable, "-c", "from aiida_llpam.cli import main; main()", *command, "-p", daemon_profile[0]],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
    assert any(tmp_path.iterdir())


def test_daemon_stopped_and_restarted_mid_run_loses_nothing(daemon_profile, fault_inputs, reference):
    from aiida.engine.daemon.client import get_daemon_client

    node = _submit_dfpt(fault_inputs)
    _wait_for(lambda: _running_q_jobs(node), "a q job running in SLURM")
    client = get_daemon_client(daemon_profile[0])
    client.stop_daemon(wait=True, timeout=configure.DAEMON_TIMEOUT_S)
    stopped_at = time.monotonic()
    time.sleep(15)  # the jobs go on in SLURM without anyone watching
    assert not node.is_terminated
    client.start_daemon(number_workers=2)
    wait_until_terminated(node, timeout=900)
    assert time.monotonic() - stopped_at > 15
    assert node.is_finished_ok, f"{node.exit_message}\n{_history(node)}"
    _assert_each_q_point_ran_once(node)
    _assert_same_dynamical_matrices(node, reference)


@pytest.mark.broker_restart
def test_rabbitmq_restarted_mid_run_loses_nothing(daemon_profile, fault_inputs, reference):
    """RabbitMQ stops under a running workchain and comes back through the host set-up (``deploy.rabbitmq.
    ensure_rabbitmq``, what `python deploy/services.py up` runs), which stops the daemon before it starts the broker
    and starts it after: workers that reconnect by themselves can run a requeued process twice (aiida-core #4595)."""
    node = _submit_dfpt(fault_inputs)
    _wait_for(lambda: _running_q_jobs(node), "a q job running in SLURM")
    assert [step.status for step in rabbitmq.stop_rabbitmq()] == [configure.STOPPED, configure.STOPPED]  # node, epmd
    time.sleep(10)  # the workers lose the broker; the jobs go on in SLURM
    steps = rabbitmq.ensure_rabbitmq()
    descriptions = [step.description for step in steps]
    assert f"daemon of {daemon_profile[0]}: stopped" in descriptions, descriptions
    assert any(d.startswith(f"daemon of {daemon_profile[0]}: started") for d in descriptions), descriptions
    wait_until_terminated(node, timeout=900)
    assert node.is_finished_ok, f"{node.exit_message}\n{_history(node)}"
    _assert_each_q_point_ran_once(node)
    _assert_same_dynamical_matrices(node, reference)


@pytest.mark.broker_restart
def test_a_run_survives_rabbitmq_restarted_outside_the_set_up(daemon_profile, fault_inputs, reference):
    """RabbitMQ stopped under a running workchain and started again by hand (`rabbitmq-server -detached`, the
    daemon left running, as an operator or a reboot script would), then the AiiDA set-up run as the docs say: it
    finds the workers older than the broker and restarts them, and the run ends with an undisturbed run's dynamical
    matrices. Workers that reconnect by themselves can hand a task out twice before the set-up runs (aiida-core
    #4595): a q point run twice is wasted time, and the test only requires it to change nothing."""
    name = daemon_profile[0]
    node = _submit_dfpt(fault_inputs)
    _wait_for(lambda: _running_q_jobs(node), "a q job running in SLURM")
    subprocess.run(["rabbitmqctl", "stop"], check=True, capture_output=True, timeout=120)
    time.sleep(10)  # the workers lose the broker; the jobs go on in SLURM
    subprocess.run(["rabbitmq-server", "-detached"], check=True, capture_output=True, timeout=60)
    _wait_for(rabbitmq.rabbitmq_up, "RabbitMQ to answer ping", timeout=120, interval=2)  # -detached returns at once
    subprocess.run(["rabbitmqctl", "await_startup", "--timeout", "120"], check=True, capture_output=True, timeout=150)
    steps = configure.ensure_daemon_profile(name, workers=2)
    assert "workers restarted (RabbitMQ restarted under them" in steps[-1].description, steps[-1]
    wait_until_terminated(node, timeout=900)
    assert node.is_finished_ok, f"{node.exit_message}\n{_history(node)}"
    _assert_same_dynamical_matrices(node, reference)
