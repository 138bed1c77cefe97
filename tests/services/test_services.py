"""The scale-out services really work: connections, a SLURM job, the AiiDA daemon, a CalcJob through SLURM.

The tests marked ``services`` need root and apt (see conftest.py); the pure checks of deploy/ and of the daemon
profile's set-up are in test_deploy.py.
"""

import socket
import subprocess
import time
import uuid

import pytest

from aiida_llpam import daemon_profile as configure
from deploy import postgresql, rabbitmq, slurm

from .conftest import finished_through_slurm, silicon_scf_builder

IDLE_STATUSES = {configure.EXISTS, configure.RUNNING}


# -------------------------------------------------------------------------------------- services (root, opt-in)


@pytest.mark.services
def test_second_calls_create_nothing(system_services):
    for name, (first, second) in system_services["steps"].items():
        assert first, name
        assert {step.status for step in second} <= IDLE_STATUSES, (name, second)


@pytest.mark.services
def test_postgresql_accepts_a_password_connection_on_loopback_only(system_services):
    import psycopg

    with psycopg.connect(
        host=configure.PG_HOST,
        port=configure.PG_PORT,
        user=configure.DB_USER,
        password=configure.password_file("postgres", configure.DB_USER).read_text().strip(),
        dbname=system_services["database"],
        connect_timeout=10,
    ) as connection:
        assert connection.execute("SHOW server_encoding").fetchone()[0] == "UTF8"
        assert connection.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
        assert connection.execute("SHOW server_version").fetchone()[0].startswith(postgresql.PG_VERSION)


@pytest.mark.services
def test_rabbitmq_answers_with_consumer_timeout_disabled(system_services):
    from aiida.brokers.rabbitmq.defaults import detect_rabbitmq_config

    password = configure.password_file("rabbitmq", configure.BROKER_USER).read_text().strip()
    # raises ConnectionError when no broker answers on 127.0.0.1:5672 with the dedicated user
    assert detect_rabbitmq_config(username=configure.BROKER_USER, password=password)["broker_host"] == "127.0.0.1"
    assert rabbitmq.consumer_timeout() == "{ok,undefined}"
    assert rabbitmq.users()[configure.BROKER_USER] == "[]"  # no administrator tag


@pytest.mark.services
def test_the_password_files_are_root_only(system_services):
    assert configure.STATE_DIR.stat().st_mode & 0o777 == 0o700
    for service in ("postgres", "rabbitmq"):
        assert configure.password_file(service, configure.DB_USER).stat().st_mode & 0o777 == 0o600


@pytest.mark.services
def test_guest_is_gone_and_the_profile_uses_its_own_broker_user(daemon_profile):
    from aiida.brokers.rabbitmq.defaults import detect_rabbitmq_config
    from aiida.manage.configuration import get_profile

    assert "guest" not in rabbitmq.users()
    with pytest.raises(ConnectionError):
        detect_rabbitmq_config(username="guest", password="guest")
    assert get_profile().process_control_config["broker_username"] == configure.BROKER_USER


@pytest.mark.services
def test_daemon_options_let_verdi_stop_and_start_keep_two_workers(daemon_profile):
    """`verdi daemon stop` waits long enough (no FAILED), `verdi daemon start` brings back 2 workers, and the set-up
    finds nothing to do afterwards."""
    name = daemon_profile[0]

    def verdi_daemon(command):
        return subprocess.run(
            ["verdi", "-p", name, "daemon", command], check=False, capture_output=True, text=True, timeout=300
        )

    stop = verdi_daemon("stop")
    assert stop.returncode == 0 and "FAILED" not in stop.stdout, stop.stdout + stop.stderr
    start = verdi_daemon("start")
    assert start.returncode == 0, start.stdout + start.stderr
    status = verdi_daemon("status")
    assert "Active workers [2]" in status.stdout, status.stdout
    assert configure.ensure_daemon(name, 2).status == configure.RUNNING


@pytest.mark.services
def test_sbatch_hostname_runs_and_is_in_the_jobcomp_record(system_services, tmp_path):
    out = tmp_path / "hostname.out"
    # job ids restart at 1 when slurmctld's state is reset, so a unique name tells this job's record apart
    name = f"llpam-test-{uuid.uuid4().hex[:8]}"
    result = subprocess.run(
        ["sbatch", "--parsable", "--wait", "--time=1", f"--job-name={name}", f"--output={out}", "--wrap", "hostname"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip().split(";")[0]
    assert out.read_text().strip() == socket.gethostname()
    # slurmctld appends the record when it processes the job's end, right after sbatch --wait returns
    deadline = time.monotonic() + 30
    while not (records := [r for r in slurm.jobcomp_records(job_id) if r["Name"] == name]):
        assert time.monotonic() < deadline, f"job {job_id} ({name}) not in {slurm.SLURM_JOBCOMP_FILE}"
        time.sleep(1)
    assert records[-1]["JobState"] == "COMPLETED" and records[-1]["ExitCode"] == "0:0"


@pytest.mark.services
def test_daemon_profile_without_its_database_is_refused(system_services):
    with pytest.raises(
        configure.SetupError,
        match=r"database aiida_llpam_daemon_no_database_\w+ on 127.0.0.1:5432: .*"
        r"run `python deploy/services.py up` as root",
    ):
        configure.ensure_daemon_profile("llpam-daemon-no-database")


@pytest.mark.services
def test_daemon_profile_loads_and_daemon_has_workers(daemon_profile):
    from aiida.manage.configuration import get_profile

    name, _, second = daemon_profile
    assert {step.status for step in second} <= IDLE_STATUSES, second
    profile = get_profile()
    assert profile.name == name
    assert profile.storage_backend == "core.psql_dos" and profile.process_control_backend == "core.rabbitmq"
    status = subprocess.run(
        ["verdi", "-p", name, "daemon", "status"], check=False, capture_output=True, text=True, timeout=60
    )
    assert status.returncode == 0, status.stdout + status.stderr
    assert "Active workers [2]" in status.stdout


@pytest.mark.services
def test_slurm_computer_and_codes(daemon_profile):
    from aiida import orm

    computer = orm.load_computer(configure.SLURM_COMPUTER)
    assert computer.scheduler_type == "core.slurm" and computer.transport_type == "core.local"
    assert computer.get_minimum_job_poll_interval() == configure.MINIMUM_JOB_POLL_INTERVAL
    for name in ("pw", "ph", "q2r"):
        assert orm.load_code(f"{name}@{configure.SLURM_COMPUTER}").filepath_executable.name == f"{name}.x"


@pytest.mark.services
def test_the_computers_run_mpi_on_one_node_and_an_old_command_is_replaced(daemon_profile):
    """Shared memory between ranks and mpirun's out-of-band channel on loopback (docs/scaleout.md, "MPI on one node");
    a computer made by an older set-up, whose command lacks them, gets them from the next set-up."""
    from aiida import orm

    # the MCA parameters, then no binding (two one-process jobs on one node must not share core 0), then -np
    tail = ["--mca", "btl", "self,vader", "--mca", "oob_tcp_if_include", "lo", "--bind-to", "none"]
    tail += ["-np", "{tot_num_mpiprocs}"]
    for label in (configure.SLURM_COMPUTER, configure.CLUSTER_COMPUTER):
        command = orm.load_computer(label).get_mpirun_command()
        assert command[-len(tail) :] == tail, (label, command)
    computer = orm.load_computer(configure.SLURM_COMPUTER)
    computer.set_mpirun_command(["mpirun", "--allow-run-as-root", "-np", "{tot_num_mpiprocs}"])
    step = configure.ensure_slurm_computer(configure.SLURM_COMPUTER)
    assert step.status == configure.CHANGED and "--mca btl self,vader" in step.description
    assert computer.get_mpirun_command()[-len(tail) :] == tail
    assert configure.ensure_slurm_computer(configure.SLURM_COMPUTER).status == configure.EXISTS


@pytest.mark.services
def test_arithmetic_add_calcjob_runs_through_the_daemon_on_slurm(daemon_profile):
    from aiida import orm
    from aiida.engine import submit
    from aiida.plugins import CalculationFactory

    computer = orm.load_computer(configure.SLURM_COMPUTER)
    code = orm.InstalledCode(
        label="bash", computer=computer, filepath_executable="/bin/bash", default_calc_job_plugin="core.arithmetic.add"
    ).store()
    builder = CalculationFactory("core.arithmetic.add").get_builder()
    builder.code, builder.x, builder.y = code, orm.Int(1), orm.Int(2)
    builder.metadata.options.resources = {"num_machines": 1, "num_mpiprocs_per_machine": 1}
    builder.metadata.options.max_wallclock_seconds = 120
    node = finished_through_slurm(submit(builder), timeout=180)
    assert node.outputs.sum.value == 3


@pytest.mark.services
@pytest.mark.qe
def test_pw_scf_runs_through_the_daemon_on_slurm_with_mpirun(daemon_profile):
    """A tiny Si SCF (0.05 s of pw.x) exercises the QE code and mpirun inside a SLURM allocation."""
    from aiida.engine import submit

    builder = silicon_scf_builder(f"pw@{configure.SLURM_COMPUTER}")
    node = finished_through_slurm(submit(builder), timeout=240)
    assert node.outputs.output_parameters["energy"] == pytest.approx(-212.48, abs=0.05)  # eV, Si pz-vbc at 12 Ry


@pytest.mark.services
@pytest.mark.broker_restart
def test_a_broker_restarted_under_the_daemon_gets_its_workers_restarted(daemon_profile):
    """RabbitMQ restarted by other means than deploy/ (its own crash, an operator): the workers reconnect by
    themselves, which can run a process twice (aiida-core #4595); the AiiDA set-up notices and restarts them."""
    from aiida.engine.daemon.client import get_daemon_client

    name = daemon_profile[0]
    client = get_daemon_client(name)

    # A worker is its PID with its start time: circus can start two workers within the 0.01 s that
    # psutil's create_time resolves, so start times alone are not distinct.
    def workers():
        return {(pid, info["create_time"]) for pid, info in client.get_worker_info()["info"].items()}

    before = workers()
    subprocess.run(["rabbitmqctl", "stop"], check=True, capture_output=True, timeout=120)
    rabbitmq._start()  # the broker alone, the daemon left running
    assert configure.broker_restarted_under([started for _, started in before], configure.broker_start_time())
    steps = configure.ensure_daemon_profile(name, workers=2)
    assert steps[-1].status == configure.CHANGED
    assert "workers restarted (RabbitMQ restarted under them" in steps[-1].description
    after = workers()
    for _ in range(30):  # circus reports a worker once it has forked it; give the second a moment
        if len(after) == 2:
            break
        time.sleep(1)
        after = workers()
    assert len(after) == 2 and not after & before
    assert configure.ensure_daemon_profile(name, workers=2)[-1].status == configure.RUNNING
