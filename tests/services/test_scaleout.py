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

from aiida_llpam import daemon_profile as configure
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


def _builder(overrides):
    from aiida import orm
    from ase.io import read

    from aiida_llpam.workflows.pam import PamWorkChain

    structure = orm.StructureData(ase=read(REPO / "fixtures" / "structures" / "Si_diamond.cif"))
    codes = [orm.load_code(f"{name}@{configure.SLURM_COMPUTER}") for name in ("pw", "ph", "q2r")]
    return PamWorkChain.get_builder_from_protocol(
        *codes, structure, protocol="smoke", overrides=overrides, options=OPTIONS
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
    workdir = calc.get_remote_workdir()
    ph_processes = [
        p for p in psutil.process_iter(["name", "cwd"]) if p.info["name"] == "ph.x" and p.info["cwd"] == workdir
    ]
    assert ph_processes, f"no ph.x process in {workdir}"
    for process in ph_processes:
        os.kill(process.pid, signal.SIGKILL)

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
