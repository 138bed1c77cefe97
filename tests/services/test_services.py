"""The scale-out services really work: connections, a SLURM job, the AiiDA daemon, a CalcJob through SLURM.

The tests marked ``services`` need root and apt and run only when asked for (see conftest.py); the others check the
helpers that need neither.
"""

import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from aiida_llpam.tools import services

from .conftest import finished_through_slurm

IDLE_STATUSES = {services.EXISTS, services.RUNNING}


# ------------------------------------------------------------------------------------------- helpers (always run)


def test_slurm_conf_describes_this_host():
    conf = services.slurm_conf(host="node1", cpus=2, memory_mb=1000)
    assert "NodeName=node1 NodeAddr=127.0.0.1 CPUs=2 RealMemory=1000" in conf
    assert "SlurmctldHost=node1(127.0.0.1)" in conf
    # no cgroups here, and the job history must come from the scheduler's own file
    assert "ProctrackType=proctrack/linuxproc" in conf and "TaskPlugin=task/none" in conf
    assert f"JobCompType=jobcomp/filetxt\nJobCompLoc={services.SLURM_JOBCOMP_FILE}" in conf


def test_real_memory_is_below_the_machine_memory():
    mem_total_kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
    assert 0.9 * mem_total_kb / 1024 < services._real_memory_mb() < mem_total_kb / 1024


def test_database_name_depends_on_config_dir(monkeypatch, tmp_path):
    from aiida.manage.configuration.settings import AiiDAConfigDir

    monkeypatch.setattr(AiiDAConfigDir, "get", classmethod(lambda cls: tmp_path / "a"))
    first = services.database_name("llpam-daemon")
    monkeypatch.setattr(AiiDAConfigDir, "get", classmethod(lambda cls: tmp_path / "b"))
    second = services.database_name("llpam-daemon")
    assert first != second
    assert first.startswith("aiida_llpam_daemon_") and first.replace("_", "").isalnum()


def test_write_file_reports_created_exists_changed(tmp_path):
    path = tmp_path / "x.conf"
    assert services._write_file(path, "a\n") == services.CREATED
    assert services._write_file(path, "a\n") == services.EXISTS
    assert services._write_file(path, "b\n") == services.CHANGED
    assert path.read_text() == "b\n"


def test_jobcomp_records_parses_key_value_lines(tmp_path, monkeypatch):
    record = tmp_path / "jobcomp.log"
    record.write_text("JobId=7 Name=aiida-12 JobState=COMPLETED ExitCode=0:0\nJobId=8 Name=wrap JobState=FAILED\n")
    monkeypatch.setattr(services, "SLURM_JOBCOMP_FILE", record)
    assert services.jobcomp_records(7) == [
        {"JobId": "7", "Name": "aiida-12", "JobState": "COMPLETED", "ExitCode": "0:0"}
    ]
    assert len(services.jobcomp_records()) == 2


def test_unavailable_reason_names_root_and_apt(monkeypatch):
    monkeypatch.setattr(services.os, "geteuid", lambda: 1000)
    assert "needs root" in services.unavailable_reason()
    with pytest.raises(services.ServiceError, match="needs root"):
        services.ensure_rabbitmq()
    monkeypatch.setattr(services.os, "geteuid", lambda: 0)
    monkeypatch.setattr(services.shutil, "which", lambda name: None)
    assert "apt-get" in services.unavailable_reason()


def test_embedded_profile_is_refused():
    with pytest.raises(services.ServiceError, match="embedded sqlite profile"):
        services.ensure_daemon_profile(services.EMBEDDED_PROFILE)


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
        host=services.PG_HOST,
        port=services.PG_PORT,
        user=services.DB_USER,
        password=services.postgres_password(),
        dbname=system_services["database"],
        connect_timeout=10,
    ) as connection:
        assert connection.execute("SHOW server_encoding").fetchone()[0] == "UTF8"
        assert connection.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
        assert connection.execute("SHOW server_version").fetchone()[0].startswith(services.PG_VERSION)


@pytest.mark.services
def test_rabbitmq_answers_with_consumer_timeout_disabled(system_services):
    from aiida.brokers.rabbitmq.defaults import detect_rabbitmq_config

    # raises ConnectionError when no broker answers on 127.0.0.1:5672 with the guest account
    assert detect_rabbitmq_config()["broker_host"] == "127.0.0.1"
    assert services.rabbitmq_consumer_timeout() == "{ok,undefined}"


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
    while not (records := [r for r in services.jobcomp_records(job_id) if r["Name"] == name]):
        assert time.monotonic() < deadline, f"job {job_id} ({name}) not in {services.SLURM_JOBCOMP_FILE}"
        time.sleep(1)
    assert records[-1]["JobState"] == "COMPLETED" and records[-1]["ExitCode"] == "0:0"


@pytest.mark.services
def test_daemon_profile_without_its_database_is_refused(system_services):
    with pytest.raises(services.ServiceError, match=r"does not exist: run ensure_postgresql\(database="):
        services.ensure_daemon_profile("llpam-daemon-no-database")


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

    computer = orm.load_computer(services.SLURM_COMPUTER)
    assert computer.scheduler_type == "core.slurm" and computer.transport_type == "core.local"
    assert computer.get_minimum_job_poll_interval() == services.setup.MINIMUM_JOB_POLL_INTERVAL
    for name in ("pw", "ph", "q2r"):
        assert orm.load_code(f"{name}@{services.SLURM_COMPUTER}").filepath_executable.name == f"{name}.x"


@pytest.mark.services
def test_arithmetic_add_calcjob_runs_through_the_daemon_on_slurm(daemon_profile):
    from aiida import orm
    from aiida.engine import submit
    from aiida.plugins import CalculationFactory

    computer = orm.load_computer(services.SLURM_COMPUTER)
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
    from aiida import orm
    from aiida.engine import submit
    from aiida.plugins import CalculationFactory, DataFactory
    from ase.build import bulk

    with open("/usr/share/espresso/pseudo/Si.pz-vbc.UPF", "rb") as handle:
        pseudo = DataFactory("pseudo.upf")(handle, filename="Si.pz-vbc.UPF")
    kpoints = orm.KpointsData()
    kpoints.set_kpoints_mesh([2, 2, 2])
    builder = CalculationFactory("quantumespresso.pw").get_builder()
    builder.code = orm.load_code(f"pw@{services.SLURM_COMPUTER}")
    builder.structure = orm.StructureData(ase=bulk("Si", "diamond", a=5.43))
    builder.parameters = orm.Dict({"CONTROL": {"calculation": "scf"}, "SYSTEM": {"ecutwfc": 12}})
    builder.kpoints = kpoints
    builder.pseudos = {"Si": pseudo}
    builder.metadata.options.resources = {"num_machines": 1, "num_mpiprocs_per_machine": 1}
    builder.metadata.options.max_wallclock_seconds = 300
    node = finished_through_slurm(submit(builder), timeout=240)
    assert node.outputs.output_parameters["energy"] == pytest.approx(-212.48, abs=0.05)  # eV, Si pz-vbc at 12 Ry
