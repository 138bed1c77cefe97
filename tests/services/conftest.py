"""Fixtures that bring up the scale-out services (PostgreSQL, RabbitMQ, SLURM) and a throw-away daemon profile.

The services come from the host set-up ``deploy/`` (the functions `python deploy/services.py up` runs, each twice),
the profile from the AiiDA step ``aiida_llpam.daemon_profile.ensure_daemon_profile`` (what ``up`` ends with and
`aiida-llpam setup --daemon-profile` runs). Tests marked ``services`` install Debian packages and start system
daemons. They are part of the default run where that is possible (root, apt-get); elsewhere they are skipped with
the reason. ``LLPAM_SERVICES_TESTS=0`` or ``-m "not services"`` leaves them out. Unmarked tests in this folder
(test_deploy.py, test_daemon_profile_setup.py, the pure checks in test_screen.py) need neither and always run.

The daemon profile lives in the private AIIDA_PATH of the test run (tests/conftest.py) and is deleted, with its
database and daemon, at the end of the session; the system services are left running, as a second run reuses them.
"""

import os
import shutil
import time
from pathlib import Path

import pytest

from aiida_llpam import daemon_profile as configure
from deploy import cluster_env, postgresql, rabbitmq, slurm, sshd
from deploy.host import host_lock, unavailable_reason

TEST_PROFILE = "llpam-daemon-test"
#: (step name, call number) -> (seconds, [Step, ...]); printed in the terminal summary
TIMINGS: dict[tuple[str, int], tuple[float, list]] = {}


def pytest_configure(config):
    config.addinivalue_line("markers", "services: starts PostgreSQL, RabbitMQ, SLURM and an AiiDA daemon (root, apt)")
    config.addinivalue_line("markers", "broker_restart: restarts RabbitMQ (run last: every client reconnects)")


def pytest_collection_modifyitems(items):
    """The RabbitMQ restart goes last, so that no other test meets a broker that is coming back."""
    items.sort(key=lambda item: item.get_closest_marker("broker_restart") is not None)


def _services_skip_reason(config) -> str | None:
    """Why the services tests cannot or should not run here, None when they can."""
    if os.environ.get("LLPAM_SERVICES_TESTS") == "0":
        return "LLPAM_SERVICES_TESTS=0: the services tests are switched off"
    return unavailable_reason()


def _timed(name: str, call: int, function, *args, **kwargs) -> list:
    start = time.monotonic()
    steps = function(*args, **kwargs)
    TIMINGS[(name, call)] = (time.monotonic() - start, steps)
    return steps


@pytest.fixture(scope="session")
def system_services(request):
    """PostgreSQL, RabbitMQ, SLURM and the stand-in cluster's sshd, each ensured twice (under deploy/'s lock, as
    `deploy/services.py up`).

    Yields {"database": the test profile's database, "steps": {name: (first call's steps, second call's steps)}}.
    """
    # checked here, not in a function-scoped fixture: session fixtures are set up before those
    reason = _services_skip_reason(request.config)
    if reason:
        pytest.skip(reason)
    database = configure.database_name(TEST_PROFILE)
    steps = {}
    with host_lock():
        for name, function, kwargs in (
            ("ensure_postgresql", postgresql.ensure_postgresql, {"database": database}),
            ("ensure_rabbitmq", rabbitmq.ensure_rabbitmq, {}),
            ("ensure_slurm", slurm.ensure_slurm, {}),
            ("ensure_sshd", sshd.ensure_sshd, {}),
        ):
            steps[name] = (_timed(name, 1, function, **kwargs), _timed(name, 2, function, **kwargs))
    yield {"database": database, "steps": steps}
    # normally gone with the profile (daemon_profile); left behind when the session stopped before that
    postgresql.drop_database(database)


@pytest.fixture(scope="session")
def cluster_venv(system_services):
    """The stand-in cluster account's own venv with aiida-llpam (deploy/cluster_env.py, as `up` runs it), ensured
    twice: (first call's steps, second call's steps). Its own fixture: pip needs the package index, which only the
    tests of the response job on the cluster computer need."""
    with host_lock():
        return _timed("ensure_cluster_venv", 1, cluster_env.ensure_cluster_venv), _timed(
            "ensure_cluster_venv", 2, cluster_env.ensure_cluster_venv
        )


@pytest.fixture(scope="session")
def daemon_profile(system_services):
    """The daemon profile TEST_PROFILE, ensured twice, then RabbitMQ's guest removed (the end of `up`); deleted with
    its database and daemon afterwards."""
    from aiida.manage.configuration import get_profile

    previous = get_profile()
    first = _timed("ensure_daemon_profile", 1, configure.ensure_daemon_profile, TEST_PROFILE, workers=2)
    second = _timed("ensure_daemon_profile", 2, configure.ensure_daemon_profile, TEST_PROFILE, workers=2)
    rabbitmq.remove_guest()
    yield TEST_PROFILE, first, second
    delete_daemon_profile(TEST_PROFILE)
    if previous is not None and previous.name != TEST_PROFILE:
        from aiida import load_profile

        load_profile(previous.name, allow_switch=True)


def delete_daemon_profile(name: str):
    """Stop the daemon and delete profile ``name`` with its database (dropped by its owner role) and repository."""
    import psycopg
    from aiida.manage import get_manager
    from aiida.manage.configuration import get_config

    config = get_config(create=True)
    if name not in config.profile_names:
        return
    storage = config.get_profile(name).storage_config
    configure.stop_daemon(name)
    if get_manager().get_profile() is not None and get_manager().get_profile().name == name:
        get_manager().unload_profile()  # closes this process's connection before the database is dropped
    config.delete_profile(name, delete_storage=False)  # AiiDA drops through pgsu (sudo or a postgres password)
    config.store()
    with psycopg.connect(
        host=storage["database_hostname"],
        port=storage["database_port"],
        dbname="postgres",
        user=storage["database_username"],
        password=storage["database_password"],
        autocommit=True,
    ) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{storage["database_name"]}" WITH (FORCE)')
    shutil.rmtree(Path(storage["repository_uri"].removeprefix("file://")), ignore_errors=True)


def wait_until_terminated(node, timeout: float):
    """Wait for a submitted process; fail naming its state if it has not terminated within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not node.is_terminated:
        assert time.monotonic() < deadline, (
            f"{node.process_label}<{node.pk}> still {node.process_state} after {timeout} s"
        )
        time.sleep(2)
    return node


def assert_ran_through_slurm(node) -> dict:
    """A finished CalcJob's job id is in the scheduler's own record, once, for its work directory; returns the
    record."""
    job_id = node.get_job_id()
    assert job_id, f"{node.process_label}<{node.pk}> has no job_id: it did not go through the scheduler"
    # the remote work directory is unique (a UUID path) where job id and pk repeat across reinstalls and test runs
    records = [r for r in slurm.jobcomp_records(job_id) if r["WorkDir"] == node.get_remote_workdir()]
    assert len(records) == 1, f"job {job_id} in {node.get_remote_workdir()} not in {slurm.SLURM_JOBCOMP_FILE}"
    assert records[0]["Name"] == f"aiida-{node.pk}"
    return records[0]


def silicon_scf_builder(code_label: str):
    """A tiny Si scf (pz-vbc, 12 Ry, k 2x2x2, one MPI process) with the code ``code_label``: -212.48 eV."""
    from aiida import orm
    from aiida.plugins import CalculationFactory, DataFactory
    from ase.build import bulk

    with open("/usr/share/espresso/pseudo/Si.pz-vbc.UPF", "rb") as handle:
        pseudo = DataFactory("pseudo.upf")(handle, filename="Si.pz-vbc.UPF")
    kpoints = orm.KpointsData()
    kpoints.set_kpoints_mesh([2, 2, 2])
    builder = CalculationFactory("quantumespresso.pw").get_builder()
    builder.code = orm.load_code(code_label)
    builder.structure = orm.StructureData(ase=bulk("Si", "diamond", a=5.43))
    builder.parameters = orm.Dict({"CONTROL": {"calculation": "scf"}, "SYSTEM": {"ecutwfc": 12}})
    builder.kpoints = kpoints
    builder.pseudos = {"Si": pseudo}
    builder.metadata.options.resources = {"num_machines": 1, "num_mpiprocs_per_machine": 1}
    builder.metadata.options.max_wallclock_seconds = 300
    return builder


def finished_through_slurm(node, timeout: float):
    """Wait for a submitted CalcJob; check it finished ok and completed in SLURM."""
    wait_until_terminated(node, timeout)
    assert node.is_finished_ok, (node.process_state, node.exit_status, node.exit_message)
    assert assert_ran_through_slurm(node)["JobState"] == "COMPLETED"
    return node


def pytest_terminal_summary(terminalreporter):
    if not TIMINGS:
        return
    terminalreporter.section("aiida-llpam services (deploy/, daemon_profile.ensure_daemon_profile): timings")
    for (name, call), (seconds, steps) in sorted(TIMINGS.items()):
        statuses = sorted({step.status for step in steps})
        terminalreporter.write_line(f"{name} call {call}: {seconds:6.1f} s  {', '.join(statuses)}")
