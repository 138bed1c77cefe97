"""The daemon profile of the scale-out: AiiDA configured for PostgreSQL, RabbitMQ and SLURM on this host.

As `verdi presto`, this module detects PostgreSQL and RabbitMQ and never installs or starts them: the host's set-up,
DEPLOY_COMMAND (deploy/, outside this package), leaves a database role and a broker user, passwords in STATE_DIR.
`aiida-llpam setup --daemon-profile` runs :func:`ensure_daemon_profile`; the embedded profile is
:mod:`aiida_llpam.configure`'s.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .configure import (
    CHANGED,
    CREATED,
    DAEMON_PROFILE,
    EXISTS,
    MINIMUM_JOB_POLL_INTERVAL,
    NOT_RUNNING,
    PROFILE,
    PSEUDO_FAMILIES,
    RUNNING,
    SLURM_COMPUTER,
    STOPPED,
    SetupError,
    Step,
    ensure_codes,
    ensure_mpirun_command,
    ensure_pseudo_family,
    mpirun_command,
    new_local_computer,
)

#: the command that provisions the host (PostgreSQL, RabbitMQ, SLURM) and then runs ensure_daemon_profile
DEPLOY_COMMAND = "python deploy/services.py up"
#: root-only directory where the host set-up keeps the passwords it made
STATE_DIR = Path("/var/lib/aiida-llpam")
DB_USER = BROKER_USER = "aiida_llpam"
PG_HOST, PG_PORT = "127.0.0.1", 5432
BROKER_HOST, BROKER_PORT = "127.0.0.1", 5672
#: the stand-in remote cluster (deploy/sshd.py): an unprivileged account reached over SSH on loopback, jobs in SLURM
CLUSTER_COMPUTER = "cluster-ssh"
CLUSTER_USER = "llpam-cluster"
#: the ``Host`` of root's ~/.ssh/config that ``core.ssh_async`` connects to (it reads host, port, user, key there)
SSH_HOST_ALIAS = "llpam-cluster"
SSHD_HOST, SSHD_PORT = "127.0.0.1", 2222
#: the codes of the cluster computer: QE and the account's own Python for the response and phono3py jobs
CLUSTER_CODES = ("pw", "ph", "q2r", "llpam-response")
#: seconds for the daemon's calls, stopping included (``daemon.timeout``): with AiiDA's 2 s `verdi daemon stop`
#: prints FAILED while workers busy with jobs on a loaded 2-core machine are still shutting down
DAEMON_TIMEOUT_S = 180


def password_file(service: str, user: str) -> Path:
    """Where the host set-up keeps the password of ``user`` for ``service`` (``postgres`` or ``rabbitmq``)."""
    return STATE_DIR / f"{service}-{user}.password"


def database_name(profile: str = DAEMON_PROFILE) -> str:
    """The database of ``profile``; named with a hash of the AiiDA config directory, which holds the file repository:
    a user's ~/.aiida and a test's AIIDA_PATH with a profile of the same name must not share one database."""
    from aiida.manage.configuration.settings import AiiDAConfigDir

    digest = hashlib.sha1(str(AiiDAConfigDir.get()).encode()).hexdigest()[:8]
    return re.sub(r"[^a-z0-9_]", "_", f"aiida_{profile}_{digest}".lower())


@contextmanager
def setup_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for a set-up; fail at once if another set-up holds it."""
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise SetupError(f"another set-up is running (pid {holder}, lock {path}): wait for it to finish") from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield


def detect_services(profile: str, user: str = DB_USER) -> tuple[dict, dict]:
    """(storage_config, broker_config) of ``profile``: the stored passwords, checked by connecting to both."""
    import psycopg
    from aiida.brokers.rabbitmq.defaults import detect_rabbitmq_config

    fix = f"run `{DEPLOY_COMMAND}` as root first (docs/scaleout.md)"
    files = {service: password_file(service, user) for service in ("postgres", "rabbitmq")}
    if not all(os.access(path, os.R_OK) for path in files.values()):
        raise SetupError(f"cannot read {' and '.join(map(str, files.values()))} (not root, or no host set-up): {fix}")
    stored = {service: path.read_text().strip() for service, path in files.items()}
    storage = {
        "database_engine": "postgresql_psycopg",
        "database_hostname": PG_HOST,
        "database_port": PG_PORT,
        "database_username": user,
        "database_password": stored["postgres"],
        "database_name": database_name(profile),
    }
    try:
        psycopg.connect(
            host=PG_HOST,
            port=PG_PORT,
            user=user,
            password=stored["postgres"],
            dbname=storage["database_name"],
            connect_timeout=10,
        ).close()
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1]
        raise SetupError(f"database {storage['database_name']} on {PG_HOST}:{PG_PORT}: {reason}: {fix}") from None
    try:
        broker = detect_rabbitmq_config(username=user, password=stored["rabbitmq"], host=BROKER_HOST, port=BROKER_PORT)
    except ConnectionError:
        raise SetupError(f"RabbitMQ does not accept {user} on {BROKER_HOST}:{BROKER_PORT}: {fix}") from None
    return storage, broker


def _ensure_daemon_profile_entry(name: str, storage: dict, broker: dict) -> Step:
    """The profile on ``core.psql_dos`` + ``core.rabbitmq``; an existing one gets the current credentials."""
    from aiida.manage.configuration import create_profile, get_config

    config = get_config(create=True)
    what = f"profile {name} (core.psql_dos, core.rabbitmq as {broker['broker_username']})"
    if name not in config.profile_names:
        repository = (Path(config.dirpath) / "repository" / f"psql_dos_{name}").as_uri()
        create_profile(
            config,
            name=name,
            storage_backend="core.psql_dos",
            storage_config={**storage, "repository_uri": repository},
            broker_backend="core.rabbitmq",
            broker_config=broker,
            email="aiida-llpam@localhost",
            first_name="aiida-llpam",
            last_name="daemon",
            institution="aiida-llpam",
        )
        config.store()
        return Step(f"{what}: created", CREATED)
    profile = config.get_profile(name)
    if profile.storage_backend != "core.psql_dos":
        raise SetupError(f"profile {name} exists with storage {profile.storage_backend}: choose another daemon profile")
    old_storage, old_broker = profile.storage_config, profile.process_control_config or {}
    changed = [
        what
        for what, new, old in (("database", storage, old_storage), ("broker", broker, old_broker))
        if any(old.get(key) != value for key, value in new.items())
    ]
    if not changed:
        return Step(f"{what}: exists", EXISTS)
    profile.set_storage("core.psql_dos", {**old_storage, **storage})
    profile.set_process_controller("core.rabbitmq", {**old_broker, **broker})
    config.update_profile(profile)
    config.store()
    return Step(f"{what}: {' and '.join(changed)} credentials updated", CHANGED)


def ensure_daemon_options(name: str, workers: int) -> Step:
    """The RabbitMQ version warning off (deploy/ disables the consumer timeout it is about), ``daemon.timeout`` long
    enough to stop busy workers, ``workers`` as the number `verdi daemon start` starts."""
    from aiida.manage.configuration import get_config

    config = get_config()
    wanted = {"warnings.rabbitmq_version": False, "daemon.timeout": DAEMON_TIMEOUT_S, "daemon.default_workers": workers}
    different = {key: value for key, value in wanted.items() if config.get_option(key, scope=name) != value}
    for key, value in different.items():
        config.set_option(key, value, scope=name)
    if different:
        config.store()
    return Step(f"profile {name} options {different or wanted}", CHANGED if different else EXISTS)


def ensure_slurm_computer(label: str = SLURM_COMPUTER) -> Step:
    """The computer of the one-node SLURM cluster deploy/ sets up (``core.local``, ``core.slurm``)."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    try:
        computer = orm.load_computer(label)
    except NotExistent:
        computer = new_local_computer(label, "core.slurm", "this machine's one-node SLURM cluster", "llpam-slurm-work")
        computer.set_default_mpiprocs_per_machine(os.cpu_count() or 1)
        return Step(f"computer {label} (core.local, core.slurm, mpirun: {' '.join(mpirun_command())})", CREATED)
    changed = []
    if ensure_mpirun_command(computer, mpirun_command()):
        changed.append(f"mpirun command set to {' '.join(mpirun_command())}")
    if computer.get_minimum_job_poll_interval() != MINIMUM_JOB_POLL_INTERVAL:
        computer.set_minimum_job_poll_interval(MINIMUM_JOB_POLL_INTERVAL)
        changed.append(f"minimum job poll interval set to {MINIMUM_JOB_POLL_INTERVAL} s")
    if changed:
        return Step(f"computer {label}: {', '.join(changed)}", CHANGED)
    return Step(f"computer {label}: exists", EXISTS)


def cluster_home(user: str = CLUSTER_USER) -> str:
    """The account's home directory (``/home/<user>`` before the account exists)."""
    import pwd

    try:
        return pwd.getpwnam(user).pw_dir
    except KeyError:
        return f"/home/{user}"


def cluster_workdir(user: str = CLUSTER_USER) -> str:
    """The work directory of the cluster computer, in the account's home."""
    return f"{cluster_home(user)}/aiida-work"


def cluster_python(user: str = CLUSTER_USER) -> str:
    """The Python of the account's own venv with aiida-llpam (deploy/cluster_env.py), run by the response and
    phono3py jobs on the cluster computer."""
    return f"{cluster_home(user)}/llpam-venv/bin/python"


def ensure_cluster_computer(label: str = CLUSTER_COMPUTER, host: str = SSH_HOST_ALIAS, user: str = CLUSTER_USER):
    """A ``core.ssh_async`` + ``core.slurm`` computer that logs in to ``host`` (a ``Host`` of ~/.ssh/config) as
    ``user``; its jobs run as that account, not as root (no ``--allow-run-as-root``). Returns (computer, Step).

    Only configures AiiDA; whether the login works is :func:`check_computer`'s question.
    """
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    what = f"computer {label} (core.ssh_async to {host} as {user}, core.slurm)"
    command = mpirun_command(as_root=False)
    try:
        computer = orm.load_computer(label)
    except NotExistent:
        computer = orm.Computer(
            label=label,
            hostname=host,
            description=f"this machine's SLURM cluster reached over SSH as {user} (deploy/sshd.py)",
            transport_type="core.ssh_async",
            scheduler_type="core.slurm",
            workdir=cluster_workdir(user),
        ).store()
        computer.set_mpirun_command(command)
        computer.set_default_mpiprocs_per_machine(os.cpu_count() or 1)
        computer.set_minimum_job_poll_interval(MINIMUM_JOB_POLL_INTERVAL)
        computer.configure(host=host, backend="asyncssh", safe_interval=1.0)
        return computer, Step(f"{what}: created", CREATED)
    if (computer.transport_type, computer.scheduler_type) != ("core.ssh_async", "core.slurm"):
        raise SetupError(
            f"computer {label} exists with {computer.transport_type} + {computer.scheduler_type}, not core.ssh_async + "
            "core.slurm: remove it (verdi computer delete) or use another profile (-p)"
        )
    if ensure_mpirun_command(computer, command):
        return computer, Step(f"{what}: mpirun command set to {' '.join(command)}", CHANGED)
    return computer, Step(f"{what}: exists", EXISTS)


def check_computer(label: str) -> list[str]:
    """What `verdi computer test` checks, through AiiDA's API: open the transport, no spurious output from the login
    shell, the scheduler's job list, the remote user name, a file written and deleted in the work directory.

    Returns the checks' messages; raises SetupError naming the computer, its host and the cause when one fails. The
    checks are aiida-core's own (the ``_computer_*`` functions of ``aiida.cmdline.commands.cmd_computer``, private
    in 2.9): `verdi computer test` only prints its verdict.
    """
    from aiida import orm
    from aiida.cmdline.commands import cmd_computer

    computer = orm.load_computer(label)
    authinfo = computer.get_authinfo(orm.User.collection.get_default())
    host = authinfo.get_auth_params().get("host", computer.hostname)
    checks = {
        "spurious output": cmd_computer._computer_test_no_unexpected_output,
        "scheduler's job list": cmd_computer._computer_test_get_jobs,
        "remote user name": cmd_computer._computer_get_remote_username,
        "temporary file in the work directory": cmd_computer._computer_create_temp_file,
    }
    scheduler, transport = computer.get_scheduler(), authinfo.get_transport()
    messages = []
    try:
        with transport:
            scheduler.set_transport(transport)
            for what, check in checks.items():
                success, message = check(transport=transport, scheduler=scheduler, authinfo=authinfo, computer=computer)
                if not success:
                    raise SetupError(f"computer {label} ({host}): {what} failed: {message}")
                messages.append(f"{what}: {message or 'ok'}")
    except OSError as exc:
        cause = str(exc).removeprefix("Error while opening the transport: ")
        raise SetupError(f"computer {label} cannot reach {host} ({computer.transport_type}): {cause}") from None
    return messages


def broker_start_time() -> float | None:
    """When the local RabbitMQ node started (epoch seconds, from its ``beam.smp ... -s rabbit boot``), or None."""
    import psutil

    for process in psutil.process_iter(["name", "cmdline", "create_time"]):
        args = process.info["cmdline"] or []
        if process.info["name"] == "beam.smp" and "-s rabbit boot" in " ".join(args):
            return process.info["create_time"]
    return None


def broker_restarted_under(worker_start_times: list[float], broker_started: float | None) -> bool:
    """Whether the broker started after a running worker: the worker reconnected by itself, and RabbitMQ may hand
    the tasks it holds to another worker too, so that a process runs twice (aiida-core #4595)."""
    return broker_started is not None and any(started < broker_started for started in worker_start_times)


def repair_process_tasks() -> tuple[list[int], list[int]]:
    """What `verdi process repair` does, for the loaded profile with its daemon stopped: drop (acknowledge) the
    broker's tasks of processes that are no longer active and every second task of one process, and send a task
    again for each active process whose task the broker lost. Returns (the pks sent again, the pks dropped)."""
    from aiida.engine.processes.control import get_active_processes, iterate_process_tasks
    from aiida.manage import get_manager

    manager = get_manager()
    # a connection this process opened before the broker restarted is dead (aio_pika: "Connection was not opened")
    manager.reset_runner()
    manager.reset_broker()
    active = set(get_active_processes(project="id"))
    kept, dropped = set(), []
    for task in iterate_process_tasks(manager.get_broker()):
        pid = task.body.get("args", {}).get("pid")
        if pid in active and pid not in kept:
            kept.add(pid)  # left in the queue for the workers that start next
            continue
        with task.processing() as outcome:
            outcome.set_result(False)
        dropped.append(pid)
    revived = sorted(active - kept)
    controller = manager.get_process_controller()
    for pid in revived:
        controller.continue_process(pid, nowait=True, no_reply=True)
    return revived, dropped


def daemon_client(name: str):
    """AiiDA's daemon client of profile ``name``, with a stale PID file removed first: a daemon that died with its
    machine or session leaves one behind, and every call to it then waits out circus' timeout and raises."""
    from aiida.engine.daemon.client import get_daemon_client

    client = get_daemon_client(name)
    client._clean_potentially_stale_pid_file()  # what `verdi daemon start` does first; AiiDA has no public name
    return client


def ensure_daemon(name: str, workers: int, restart_because: str | None = None) -> Step:
    """The daemon of ``name`` running with ``workers`` workers; running workers are restarted (AiiDA's own
    ``restart_daemon``) when ``restart_because`` says so. When the broker restarted under them the daemon is stopped,
    the broker's tasks are repaired (:func:`repair_process_tasks`) and the daemon started again."""
    client = daemon_client(name)
    if not client.is_daemon_running:
        client.start_daemon(number_workers=workers)
        return Step(f"daemon of {name}: started with {workers} workers", CHANGED)
    started = [info["create_time"] for info in client.get_worker_info().get("info", {}).values()]
    if restart_because is None and broker_restarted_under(started, broker_start_time()):
        # the workers reconnected by themselves: a task can have been handed out twice (aiida-core #4595) or lost
        # with a worker's channel, so the queue is put right while no worker holds a task
        client.stop_daemon(wait=True)
        revived, dropped = repair_process_tasks()
        client.start_daemon(number_workers=workers)
        return Step(
            f"daemon of {name}: workers restarted (RabbitMQ restarted under them: aiida-core #4595), "
            f"{workers} workers; tasks sent again for {revived or 'none'}, dropped for {dropped or 'none'}",
            CHANGED,
        )
    if restart_because:
        client.restart_daemon(wait=True)
    current = client.get_number_of_workers()
    if current < workers:
        client.increase_workers(workers - current, wait=True)
    elif current > workers:
        client.decrease_workers(current - workers, wait=True)
    if restart_because or current != workers:
        restarted = f"workers restarted ({restart_because}), " if restart_because else f"{current} -> "
        return Step(f"daemon of {name}: {restarted}{workers} workers", CHANGED)
    return Step(f"daemon of {name}: running with {workers} workers", RUNNING)


def ensure_daemon_profile(name: str = DAEMON_PROFILE, workers: int = 2) -> list[Step]:
    """Profile ``name`` on the running PostgreSQL + RabbitMQ (:func:`detect_services`) with computer
    ``localhost-slurm``, the QE codes, the pseudo families and a running daemon of ``workers`` workers.

    Loads the profile; the daemon's workers inherit this process's environment, AIIDA_PATH included. Of two calls at
    once for one config directory the second fails at once (:func:`setup_lock`).
    """
    if name == PROFILE:
        raise SetupError(f"{PROFILE} is the embedded sqlite profile: the daemon profile needs another name")
    from aiida import load_profile, orm
    from aiida.manage.configuration import get_config

    with setup_lock(Path(get_config(create=True).dirpath) / "llpam-setup.lock"):
        storage, broker = detect_services(name)
        steps = [_ensure_daemon_profile_entry(name, storage, broker), ensure_daemon_options(name, workers)]
        load_profile(name, allow_switch=True)
        steps.append(ensure_slurm_computer(SLURM_COMPUTER))
        codes = list(ensure_codes(orm.load_computer(SLURM_COMPUTER)).values())
        cluster, step = ensure_cluster_computer()
        steps.append(step)
        codes += ensure_codes(cluster, CLUSTER_CODES, remote={"llpam-response": cluster_python()}).values()
        steps.extend(Step(f"code {code.full_label} -> {code.filepath_executable}", status) for code, status in codes)
        for label in PSEUDO_FAMILIES:
            family, status = ensure_pseudo_family(label)
            steps.append(Step(f"pseudo family {family.label}", status))
        steps.append(ensure_daemon(name, workers, "new credentials" if steps[0].status == CHANGED else None))
    return steps


def stop_daemon(name: str = DAEMON_PROFILE) -> Step:
    """Stop the daemon of profile ``name`` in the current AiiDA config directory, if it has one running."""
    from aiida.manage.configuration import get_config

    if name not in get_config(create=True).profile_names:
        return Step(f"daemon of {name}: no such profile", NOT_RUNNING)
    client = daemon_client(name)
    if not client.is_daemon_running:
        return Step(f"daemon of {name}: not running", NOT_RUNNING)
    client.stop_daemon(wait=True, timeout=DAEMON_TIMEOUT_S)
    return Step(f"daemon of {name}: stopped", STOPPED)
