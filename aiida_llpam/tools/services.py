"""Idempotent set-up of the services for scale-out on AiiDA's own engine.

The embedded profile (``aiida_llpam.configure``) runs everything in one process on SQLite with no broker. To let
AiiDA's daemon run many workflows at once and hand the calculations to a batch scheduler, this module brings up, on
this Debian machine and without systemd:

* PostgreSQL 15 (Debian's cluster ``15/main``), listening on 127.0.0.1 only, with a role and a database for AiiDA;
* RabbitMQ (Debian's 3.10), bound to localhost, with the consumer timeout disabled as AiiDA documents for long jobs;
* SLURM 22.05 (slurmctld + slurmd + munge) as a one-node cluster of this host, job history in a ``jobcomp/filetxt``
  file;
* an AiiDA profile on ``core.psql_dos`` + ``core.rabbitmq`` with a ``localhost-slurm`` computer, QE codes on it and a
  running daemon.

In the manner of ``verdi presto`` each step is small, idempotent and reports a :class:`Step`, a ``(description,
status)`` pair whose status is one of:

* ``created``: the thing did not exist and was made (a package installed, a cluster, a role, a profile ...);
* ``changed``: it existed but had to be changed: a configuration file rewritten, a stopped service started or
  restarted;
* ``exists`` / ``running``: nothing to do.

A second call of any ``ensure_*`` function therefore reports only ``exists`` and ``running``.

Everything that touches the system needs root (apt-get, service users, files under /etc); the functions raise
:class:`ServiceError` with the failing command and its output when something does not work.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from aiida_llpam import configure as setup
from aiida_llpam.configure import DAEMON_PROFILE, SLURM_COMPUTER

CREATED = "created"
CHANGED = "changed"
EXISTS = "exists"
RUNNING = "running"
STOPPED = "stopped"
NOT_RUNNING = "not running"

PG_VERSION = "15"
PG_CLUSTER = "main"
PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_CONF_DIR = Path("/etc/postgresql") / PG_VERSION / PG_CLUSTER
DB_USER = "aiida_llpam"
#: root-only directory for what the services need to remember between calls (the database password)
STATE_DIR = Path("/var/lib/aiida-llpam")
#: consulted by invoke-rc.d before a package's maintainer script starts its service
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")

RABBITMQ_ETC = Path("/etc/rabbitmq")
RABBITMQ_NODE = "rabbit@localhost"

SLURM_CONF = Path("/etc/slurm/slurm.conf")
SLURM_LOG_DIR = Path("/var/log/slurm")
#: the scheduler's own record of finished jobs (``JobCompType=jobcomp/filetxt``), one line per job
SLURM_JOBCOMP_FILE = SLURM_LOG_DIR / "jobcomp.log"
SLURMCTLD_PID = Path("/run/slurmctld.pid")
SLURMD_PID = Path("/run/slurmd.pid")
MUNGE_KEY = Path("/etc/munge/munge.key")

#: the embedded sqlite profile of aiida_llpam.configure: never reconfigured from here
EMBEDDED_PROFILE = "llpam"
#: seconds to wait for the daemon's workers to stop: AiiDA's 20 s default (``daemon.timeout``) is too short for
#: workers that are busy with jobs on a loaded 2-core machine
DAEMON_STOP_TIMEOUT_S = 180


class Step(NamedTuple):
    """What one idempotent step did: ``description`` for people, ``status`` for code (see module docstring)."""

    description: str
    status: str


class ServiceError(RuntimeError):
    """A service could not be installed, configured or started; the message names the command and its output."""


# --------------------------------------------------------------------------------------------------------- helpers


def _run(cmd: list[str], *, check: bool = True, timeout: float = 120, env: dict | None = None):
    """Run ``cmd`` and return the CompletedProcess; with ``check`` raise ServiceError showing its output on failure."""
    try:
        result = subprocess.run(
            cmd,
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
    except FileNotFoundError as exc:
        raise ServiceError(f"`{cmd[0]}` not found: is its package installed?") from exc
    except subprocess.TimeoutExpired as exc:
        raise ServiceError(f"`{' '.join(cmd)}` did not finish within {timeout} s") from exc
    if check and result.returncode != 0:
        output = (result.stderr.strip() or result.stdout.strip())[-2000:]
        raise ServiceError(f"`{' '.join(cmd)}` failed with exit code {result.returncode}: {output}")
    return result


def _as_user(user: str, cmd: list[str]) -> list[str]:
    """``cmd`` run as ``user`` (runuser needs no PAM session or password when called by root)."""
    return ["runuser", "-u", user, "--", *cmd]


def _wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 1.0) -> None:
    """Poll ``predicate`` until it is true; raise ServiceError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise ServiceError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _write_file(path: Path, text: str, mode: int = 0o644, owner: str | None = None) -> str:
    """Write ``text`` to ``path`` unless it already holds it; return CREATED, CHANGED or EXISTS."""
    if path.is_file() and path.read_text() == text:
        return EXISTS
    status = CHANGED if path.exists() else CREATED
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    if owner:
        shutil.chown(path, owner, owner)
    return status


def _pid_alive(pidfile: Path) -> bool:
    """Whether the process named in ``pidfile`` exists (a stale file after a crash or reboot reads as dead)."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return Path(f"/proc/{pid}").exists()


def _stop_pidfile(pidfile: Path, what: str, timeout: float = 30) -> Step:
    """SIGTERM the process of ``pidfile`` and wait for it to go."""
    if not _pid_alive(pidfile):
        return Step(f"{what}: not running", NOT_RUNNING)
    os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)
    _wait_until(lambda: not _pid_alive(pidfile), timeout, f"{what} to stop", interval=0.5)
    return Step(f"{what}: stopped", STOPPED)


def unavailable_reason() -> str | None:
    """Why the services cannot be set up on this machine (not root, no apt), None when they can."""
    if os.geteuid() != 0:
        return "the services set-up needs root (apt-get, runuser, files under /etc)"
    if shutil.which("apt-get") is None or shutil.which("dpkg-query") is None:
        return "the services set-up needs apt-get and dpkg-query (a Debian system)"
    return None


def require_root_and_apt() -> None:
    """Raise ServiceError unless running as root on a system with apt (see :func:`unavailable_reason`)."""
    reason = unavailable_reason()
    if reason:
        raise ServiceError(reason)


def _installed(package: str) -> bool:
    result = _run(["dpkg-query", "-W", "-f=${Status}", package], check=False)
    return result.returncode == 0 and result.stdout.strip() == "install ok installed"


def ensure_packages(packages: list[str]) -> Step:
    """Install the Debian ``packages`` that are missing (non-interactive, without recommends)."""
    missing = [p for p in packages if not _installed(p)]
    if not missing:
        return Step(f"packages {' '.join(packages)}: installed", EXISTS)
    require_root_and_apt()
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    # without systemd, the packages' maintainer scripts start the services through /etc/init.d with Debian's
    # defaults (rabbit@<hostname> on every interface, ...) before this module has configured them; a policy-rc.d
    # that exits 101 (as container images ship) forbids that for the time of the install
    temporary_policy = not POLICY_RC_D.exists()
    if temporary_policy:
        POLICY_RC_D.write_text(
            "#!/bin/sh\n# aiida_llpam.tools.services: no service starts during apt-get install\nexit 101\n"
        )
        POLICY_RC_D.chmod(0o755)
    try:
        result = _run(cmd, check=False, timeout=900, env=env)
        if result.returncode != 0 and "Unable to locate package" in result.stderr:
            # a fresh machine has empty package lists until the first `apt-get update`
            _run(["apt-get", "update"], timeout=600, env=env)
            result = _run(cmd, check=False, timeout=900, env=env)
    finally:
        if temporary_policy:
            POLICY_RC_D.unlink()
    if result.returncode != 0:
        raise ServiceError(f"`{' '.join(cmd)}` failed: {result.stderr.strip()[-2000:]}")
    return Step(f"packages {' '.join(missing)}: installed", CREATED)


# ------------------------------------------------------------------------------------------------------ PostgreSQL


def _pg_cluster_status() -> str | None:
    """``online``/``down`` for cluster 15/main, None when it does not exist (from ``pg_lsclusters``)."""
    result = _run(["pg_lsclusters", "--no-header"])
    for line in result.stdout.splitlines():
        fields = line.split()
        if fields[:2] == [PG_VERSION, PG_CLUSTER]:
            return fields[3]
    return None


def _psql(sql: str, database: str = "postgres") -> str:
    """Run ``sql`` as the postgres superuser over the unix socket; return the unaligned output."""
    cmd = ["psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-p", str(PG_PORT), "-d", database, "-c", sql]
    return _run(_as_user("postgres", cmd)).stdout.strip()


def database_name(profile: str = DAEMON_PROFILE) -> str:
    """The database of ``profile`` in the current AiiDA config directory.

    The name carries a hash of the config directory because the file repository lives there: two config
    directories (a user's ~/.aiida and a test's private AIIDA_PATH) with a profile of the same name must not share
    one database, or each would see nodes whose files are in the other's repository.
    """
    from aiida.manage.configuration.settings import AiiDAConfigDir

    digest = hashlib.sha1(str(AiiDAConfigDir.get()).encode()).hexdigest()[:8]
    return re.sub(r"[^a-z0-9_]", "_", f"aiida_{profile}_{digest}".lower())


def postgres_password(user: str = DB_USER) -> str | None:
    """The password this module gave the database ``user``, None if it has not made one yet."""
    path = STATE_DIR / f"postgres-{user}.password"
    return path.read_text().strip() if path.is_file() else None


def ensure_postgresql(user: str = DB_USER, database: str | None = None) -> list[Step]:
    """PostgreSQL 15 running on 127.0.0.1:5432 with role ``user`` owning ``database``.

    ``database`` defaults to :func:`database_name` of the daemon profile. The role's password is random and kept
    (root-only) under ``STATE_DIR``; a role whose password file was lost gets a new one.
    """
    require_root_and_apt()
    database = database or database_name()
    steps = [ensure_packages(["postgresql"])]

    status = _pg_cluster_status()
    if status is None:
        # C.UTF-8 exists on every Debian without generating locales; AiiDA needs a UTF8 database
        _run(["pg_createcluster", PG_VERSION, PG_CLUSTER, "--port", str(PG_PORT), "--locale", "C.UTF-8"])
        steps.append(Step(f"cluster {PG_VERSION}/{PG_CLUSTER}: created", CREATED))
        status = "down"
    else:
        steps.append(Step(f"cluster {PG_VERSION}/{PG_CLUSTER}: exists", EXISTS))

    conf = _write_file(
        PG_CONF_DIR / "conf.d" / "aiida-llpam.conf",
        "# written by aiida_llpam.tools.services: local connections only\n"
        f"listen_addresses = '{PG_HOST}'\nport = {PG_PORT}\n",
        owner="postgres",
    )
    steps.append(Step(f"{PG_CONF_DIR}/conf.d/aiida-llpam.conf (listen on {PG_HOST}:{PG_PORT})", conf))

    # pg_ctlcluster runs pg_ctl as the cluster owner; without systemd as PID 1 it does not redirect to systemctl
    if status == "online" and conf != EXISTS:
        _run(["pg_ctlcluster", PG_VERSION, PG_CLUSTER, "restart"])
        steps.append(Step("postgresql: restarted for the new configuration", CHANGED))
    elif status == "online":
        steps.append(Step(f"postgresql {PG_VERSION}/{PG_CLUSTER}: running", RUNNING))
    else:
        # /run/postgresql is made by systemd-tmpfiles at boot; without it the socket has nowhere to go
        Path("/run/postgresql").mkdir(exist_ok=True)
        shutil.chown("/run/postgresql", "postgres", "postgres")
        _run(["pg_ctlcluster", PG_VERSION, PG_CLUSTER, "start"])
        steps.append(Step(f"postgresql {PG_VERSION}/{PG_CLUSTER}: started", CHANGED))
    _wait_until(
        lambda: _run(["pg_isready", "-h", PG_HOST, "-p", str(PG_PORT)], check=False).returncode == 0,
        60,
        f"postgresql to accept connections on {PG_HOST}:{PG_PORT}",
    )

    password = postgres_password(user)
    role_exists = _psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{user}'") == "1"
    if role_exists and password:
        steps.append(Step(f"database role {user}: exists", EXISTS))
    else:
        password = secrets.token_hex(16)
        verb = "ALTER" if role_exists else "CREATE"
        _psql(f"{verb} ROLE {user} LOGIN PASSWORD '{password}'")
        # the directory is root-only before the file appears in it
        STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        STATE_DIR.chmod(0o700)
        _write_file(STATE_DIR / f"postgres-{user}.password", password + "\n", mode=0o600)
        steps.append(
            Step(
                f"database role {user}: {'new password' if role_exists else 'created'}",
                CHANGED if role_exists else CREATED,
            )
        )

    if _psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}'") == "1":
        steps.append(Step(f"database {database}: exists", EXISTS))
    else:
        _psql(f"CREATE DATABASE {database} OWNER {user} ENCODING 'UTF8' TEMPLATE template0")
        steps.append(Step(f"database {database} (owner {user}): created", CREATED))
    return steps


def drop_database(database: str) -> Step:
    """Drop ``database`` if it exists (clean-up of a database whose profile was never made or is gone).

    Sessions still connected to it (a daemon worker that has not exited yet) are terminated: it is going anyway.
    """
    if _psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}'") != "1":
        return Step(f"database {database}: absent", NOT_RUNNING)
    _psql(f"DROP DATABASE {database} WITH (FORCE)")
    return Step(f"database {database}: dropped", STOPPED)


def stop_postgresql() -> Step:
    """Stop cluster 15/main if it runs."""
    if _pg_cluster_status() != "online":
        return Step("postgresql: not running", NOT_RUNNING)
    _run(["pg_ctlcluster", PG_VERSION, PG_CLUSTER, "stop"])
    return Step("postgresql: stopped", STOPPED)


# -------------------------------------------------------------------------------------------------------- RabbitMQ

#: sourced by the rabbitmq scripts: node name and every listener on the loopback address
RABBITMQ_ENV = f"""\
# written by aiida_llpam.tools.services: a node for this machine only
NODENAME={RABBITMQ_NODE}
NODE_IP_ADDRESS=127.0.0.1
# epmd (started by the first Erlang VM) and the inter-node port listen on every interface unless told
export ERL_EPMD_ADDRESS=127.0.0.1
SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {{127,0,0,1}}"
"""

#: AiiDA's documented work-around for RabbitMQ >= 3.8.15: a process that waits longer than the 30 min default
#: consumer timeout to acknowledge its task would otherwise be cancelled and its task requeued (run twice)
RABBITMQ_ADVANCED = """\
%% written by aiida_llpam.tools.services
%% consumer_timeout undefined: AiiDA tasks stay unacknowledged for as long as a calculation runs
[
  {rabbit, [
    {consumer_timeout, undefined}
  ]}
].
"""


def _rabbitmq_up() -> bool:
    return _run(["rabbitmq-diagnostics", "-q", "ping"], check=False, timeout=60).returncode == 0


def rabbitmq_consumer_timeout() -> str:
    """The consumer timeout the running node uses, as Erlang prints it (``{ok,undefined}`` when disabled)."""
    return _run(["rabbitmqctl", "eval", "application:get_env(rabbit, consumer_timeout)."]).stdout.strip()


def _start_rabbitmq() -> None:
    # Debian's wrapper switches to the rabbitmq user; -detached returns once the VM is forked, not when it is ready
    _run(["rabbitmq-server", "-detached"], timeout=60)
    _wait_until(_rabbitmq_up, 120, f"RabbitMQ node {RABBITMQ_NODE} to answer ping", interval=2)
    _run(["rabbitmqctl", "await_startup", "--timeout", "120"], timeout=150)


def ensure_rabbitmq() -> list[Step]:
    """RabbitMQ running as ``rabbit@localhost`` on 127.0.0.1:5672 with the consumer timeout disabled."""
    require_root_and_apt()
    steps = [ensure_packages(["rabbitmq-server"])]
    changed = False
    for path, text in (
        (RABBITMQ_ETC / "rabbitmq-env.conf", RABBITMQ_ENV),
        (RABBITMQ_ETC / "advanced.config", RABBITMQ_ADVANCED),
    ):
        status = _write_file(path, text, owner="rabbitmq")
        changed |= status != EXISTS
        steps.append(Step(f"{path}", status))

    if _rabbitmq_up() and not changed:
        steps.append(Step(f"rabbitmq {RABBITMQ_NODE}: running", RUNNING))
    else:
        # AiiDA's daemon workers reconnect to a broker that comes back by themselves, and RabbitMQ then hands the
        # tasks they held to any worker, also to a second one while the first still runs them: the same process
        # runs twice (aiida-core #4595). Stopped before and started after, the workers take each task once.
        daemons = _running_daemons()
        steps.extend(stop_daemon(name) for name in daemons)
        if _rabbitmq_up():
            _run(["rabbitmqctl", "stop"], timeout=120)
        _start_rabbitmq()
        steps.append(Step(f"rabbitmq {RABBITMQ_NODE}: {'restarted for the new configuration' if changed else 'started'}",
                          CHANGED))  # fmt: skip
        steps.extend(_ensure_daemon(name, workers) for name, workers in daemons.items())

    timeout = rabbitmq_consumer_timeout()
    if timeout != "{ok,undefined}":
        raise ServiceError(f"RabbitMQ consumer_timeout is {timeout}, expected {{ok,undefined}} from advanced.config")
    return steps


def stop_rabbitmq() -> Step:
    """Stop the RabbitMQ node if it runs (epmd, a separate small daemon, stays)."""
    if not shutil.which("rabbitmqctl") or not _rabbitmq_up():
        return Step("rabbitmq: not running", NOT_RUNNING)
    _run(["rabbitmqctl", "stop"], timeout=120)
    return Step("rabbitmq: stopped", STOPPED)


# ----------------------------------------------------------------------------------------------------------- SLURM


def _real_memory_mb() -> int:
    """RealMemory for slurm.conf: 95 % of MemTotal, because slurmd drains a node that reports less than configured."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(int(line.split()[1]) / 1024 * 0.95)
    raise ServiceError("MemTotal missing from /proc/meminfo")


def slurm_conf(host: str | None = None, cpus: int | None = None, memory_mb: int | None = None) -> str:
    """A one-node slurm.conf for this host: root daemons, no cgroups, job history in a jobcomp text file."""
    host = host or socket.gethostname()
    cpus = cpus or os.cpu_count() or 1
    memory_mb = memory_mb or _real_memory_mb()
    return f"""\
# written by aiida_llpam.tools.services: one-node cluster of this host
ClusterName=llpam
SlurmctldHost={host}(127.0.0.1)
# root daemons: jobs submitted by root (the AiiDA daemon here) run as root
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile={SLURMCTLD_PID}
SlurmdPidFile={SLURMD_PID}
SlurmctldLogFile={SLURM_LOG_DIR}/slurmctld.log
SlurmdLogFile={SLURM_LOG_DIR}/slurmd.log
# no cgroups on this machine: track processes by parent pid, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# no slurmdbd: finished jobs are appended to a text file, the scheduler's own record
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={SLURM_JOBCOMP_FILE}
# a node that was down (daemon restart) comes back by itself when its slurmd registers
ReturnToService=2
MailProg=/bin/true
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=main Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def _slurmctld_up() -> bool:
    result = _run(["scontrol", "ping"], check=False, timeout=30)
    return result.returncode == 0 and "is UP" in result.stdout


def _munge_works() -> bool:
    munge = subprocess.run(["munge", "-n"], check=False, capture_output=True, timeout=10)
    if munge.returncode != 0:
        return False
    return subprocess.run(["unmunge"], check=False, input=munge.stdout, capture_output=True, timeout=10).returncode == 0


def node_state(host: str | None = None) -> str:
    """The SLURM state of this host's node (``idle``, ``mixed``, ``down*`` ...), as ``sinfo`` prints it."""
    host = host or socket.gethostname()
    return _run(["sinfo", "-h", "-N", "-n", host, "-o", "%T"]).stdout.strip()


def ensure_slurm() -> list[Step]:
    """munged, slurmctld and slurmd running for a one-node cluster of this host, its node idle."""
    require_root_and_apt()
    host = socket.gethostname()
    steps = [ensure_packages(["slurm-wlm", "munge"])]

    if MUNGE_KEY.is_file():
        steps.append(Step(f"{MUNGE_KEY}: exists", EXISTS))
    else:
        _run(["mungekey", "--create", "--keyfile", str(MUNGE_KEY)])
        shutil.chown(MUNGE_KEY, "munge", "munge")
        MUNGE_KEY.chmod(0o600)
        steps.append(Step(f"{MUNGE_KEY}: created", CREATED))
    if _munge_works():
        steps.append(Step("munged: running", RUNNING))
    else:
        # /run/munge (socket and pid file) is made by systemd-tmpfiles at boot
        Path("/run/munge").mkdir(exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        _run(_as_user("munge", ["/usr/sbin/munged"]))
        _wait_until(_munge_works, 30, "munged to encode and decode a credential")
        steps.append(Step("munged: started", CHANGED))

    conf = _write_file(SLURM_CONF, slurm_conf(host))
    steps.append(Step(f"{SLURM_CONF} (node {host})", conf))
    for directory in (Path("/var/lib/slurm/slurmctld"), Path("/var/lib/slurm/slurmd"), SLURM_LOG_DIR):
        directory.mkdir(parents=True, exist_ok=True)

    ctld_up, slurmd_up = _slurmctld_up(), _pid_alive(SLURMD_PID)
    if conf != EXISTS and (ctld_up or slurmd_up):
        # several parameters (node definition, plugins) are read only at start: restart instead of reconfigure
        _stop_pidfile(SLURMD_PID, "slurmd")
        _stop_pidfile(SLURMCTLD_PID, "slurmctld")
        ctld_up = slurmd_up = False
        steps.append(Step("slurm: stopped for the new configuration", CHANGED))
    if ctld_up:
        steps.append(Step("slurmctld: running", RUNNING))
    else:
        _run(["slurmctld"])  # daemonises; -i would throw away saved state, which a restart should keep
        _wait_until(_slurmctld_up, 60, "slurmctld to answer `scontrol ping`")
        steps.append(Step("slurmctld: started", CHANGED))
    if slurmd_up:
        steps.append(Step("slurmd: running", RUNNING))
    else:
        _run(["slurmd"])
        _wait_until(lambda: _pid_alive(SLURMD_PID), 30, f"slurmd to write {SLURMD_PID}")
        steps.append(Step("slurmd: started", CHANGED))

    def idle() -> bool:
        state = node_state(host)
        if "drain" in state or state.startswith("down"):
            # a node drained by an earlier misconfiguration or left down by a crash: the config is right now
            _run(["scontrol", "update", f"NodeName={host}", "State=RESUME"], check=False)
        return state in ("idle", "mixed", "allocated")

    if idle():
        steps.append(Step(f"node {host}: {node_state(host)}", RUNNING))
    else:
        _wait_until(idle, 90, f"node {host} to become idle in sinfo (log: {SLURM_LOG_DIR}/slurmd.log)", interval=2)
        steps.append(Step(f"node {host}: now {node_state(host)}", CHANGED))
    return steps


def stop_slurm() -> list[Step]:
    """Stop slurmd, slurmctld and munged (in that order: the daemons authenticate through munge)."""
    steps = [_stop_pidfile(SLURMD_PID, "slurmd"), _stop_pidfile(SLURMCTLD_PID, "slurmctld")]
    steps.append(_stop_pidfile(Path("/run/munge/munged.pid"), "munged"))
    return steps


def jobcomp_records(job_id: int | str | None = None) -> list[dict[str, str]]:
    """Finished jobs from the scheduler's jobcomp file, each line's ``Key=Value`` fields as a dict.

    With ``job_id`` only that job's records, oldest first: none while it has not finished, and more than one when
    slurmctld's state directory was reset (a reinstall), as job ids then start again at 1 while this file stays.
    """
    if not SLURM_JOBCOMP_FILE.is_file():
        return []
    records = []
    for line in SLURM_JOBCOMP_FILE.read_text().splitlines():
        record = dict(field.split("=", 1) for field in line.split() if "=" in field)
        if job_id is None or record.get("JobId") == str(job_id):
            records.append(record)
    return records


# -------------------------------------------------------------------------------------------------- daemon profile


def _ensure_profile(name: str, user: str) -> Step:
    from aiida.manage.configuration import create_profile, get_config

    config = get_config(create=True)
    if name in config.profile_names:
        backend = config.get_profile(name).storage_backend
        if backend != "core.psql_dos":
            raise ServiceError(
                f"profile {name} exists with storage {backend}: choose another name for the daemon profile"
            )
        return Step(f"profile {name} (core.psql_dos, core.rabbitmq): exists", EXISTS)
    password = postgres_password(user)
    if password is None:
        raise ServiceError(f"no password for database role {user} in {STATE_DIR}: run ensure_postgresql() first")
    from aiida.brokers.rabbitmq.defaults import detect_rabbitmq_config

    try:
        # as `verdi presto` does: connects with the defaults (guest@127.0.0.1:5672) and returns the broker_* config
        broker_config = detect_rabbitmq_config()
    except ConnectionError as exc:
        raise ServiceError(f"RabbitMQ does not answer on 127.0.0.1:5672: run ensure_rabbitmq() first ({exc})") from exc
    database = database_name(name)
    if _psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}'") != "1":
        raise ServiceError(f"database {database} does not exist: run ensure_postgresql(database={database!r}) first")
    create_profile(
        config,
        name=name,
        storage_backend="core.psql_dos",
        storage_config={
            "database_engine": "postgresql_psycopg",
            "database_hostname": PG_HOST,
            "database_port": PG_PORT,
            "database_username": user,
            "database_password": password,
            "database_name": database,
            "repository_uri": (Path(config.dirpath) / "repository" / f"psql_dos_{name}").as_uri(),
        },
        broker_backend="core.rabbitmq",
        # guest/guest is accepted by RabbitMQ from loopback connections only, which is all this node listens on
        broker_config=broker_config,
        email="aiida-llpam@localhost",
        first_name="aiida-llpam",
        last_name="daemon",
        institution="aiida-llpam",
    )
    config.store()
    return Step(f"profile {name} (core.psql_dos {database}, core.rabbitmq): created", CREATED)


def _ensure_profile_options(name: str) -> Step:
    from aiida.manage.configuration import get_config

    config = get_config()
    # the RabbitMQ version warning is about the consumer timeout, which ensure_rabbitmq disables
    wanted = {"warnings.rabbitmq_version": False}
    different = {k: v for k, v in wanted.items() if config.get_option(k, scope=name) != v}
    for key, value in different.items():
        config.set_option(key, value, scope=name)
    if different:
        config.store()
    return Step(f"profile {name} options {wanted}", CHANGED if different else EXISTS)


def _ensure_slurm_computer(label: str) -> Step:
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    try:
        computer = orm.load_computer(label)
    except NotExistent:
        computer = setup.new_local_computer(
            label, "core.slurm", "this machine through its one-node SLURM cluster (aiida-llpam services)", "llpam-slurm-work"
        )
        computer.set_default_mpiprocs_per_machine(os.cpu_count() or 1)
        return Step(f"computer {label} (core.local, core.slurm, mpirun: {' '.join(setup.mpirun_command())})", CREATED)
    if computer.get_minimum_job_poll_interval() != setup.MINIMUM_JOB_POLL_INTERVAL:
        computer.set_minimum_job_poll_interval(setup.MINIMUM_JOB_POLL_INTERVAL)
        return Step(f"computer {label}: minimum job poll interval set to {setup.MINIMUM_JOB_POLL_INTERVAL} s", CHANGED)
    return Step(f"computer {label}: exists", EXISTS)


def _ensure_codes_and_pseudos(computer_label: str) -> list[Step]:
    """The same QE codes and pseudopotential family as the embedded profile (aiida_llpam.configure)."""
    from aiida import orm

    steps = [
        Step(f"code {code.full_label} -> {code.filepath_executable}", status)
        for code, status in setup.ensure_codes(orm.load_computer(computer_label)).values()
    ]
    for label in setup.PSEUDO_FAMILIES:
        family, status = setup.ensure_pseudo_family(label)
        steps.append(Step(f"pseudo family {family.label}", status))
    return steps


def _ensure_daemon(name: str, workers: int) -> Step:
    from aiida.engine.daemon.client import get_daemon_client

    client = get_daemon_client(name)
    if not client.is_daemon_running:
        client.start_daemon(number_workers=workers)
        return Step(f"daemon of {name}: started with {workers} workers", CHANGED)
    current = client.get_number_of_workers()
    if current < workers:
        client.increase_workers(workers - current, wait=True)
    elif current > workers:
        client.decrease_workers(current - workers, wait=True)
    else:
        return Step(f"daemon of {name}: running with {workers} workers", RUNNING)
    return Step(f"daemon of {name}: {current} -> {workers} workers", CHANGED)


def _refuse_embedded(name: str) -> None:
    if name == EMBEDDED_PROFILE:
        raise ServiceError(f"{EMBEDDED_PROFILE} is the embedded sqlite profile: the daemon profile needs another name")


def ensure_daemon_profile(name: str = DAEMON_PROFILE, workers: int = 2, user: str = DB_USER) -> list[Step]:
    """Profile ``name`` on PostgreSQL + RabbitMQ with computer ``localhost-slurm``, QE codes and a running daemon.

    Needs :func:`ensure_postgresql` (with ``database=database_name(name)``), :func:`ensure_rabbitmq` and
    :func:`ensure_slurm` to have run. The profile lives in the current AiiDA config directory (``AIIDA_PATH``) and is
    loaded on return. The daemon's workers inherit this process's environment, AIIDA_PATH included.
    """
    _refuse_embedded(name)
    from aiida import load_profile

    steps = [_ensure_profile(name, user), _ensure_profile_options(name)]
    load_profile(name, allow_switch=True)
    steps.append(_ensure_slurm_computer(SLURM_COMPUTER))
    steps.extend(_ensure_codes_and_pseudos(SLURM_COMPUTER))
    steps.append(_ensure_daemon(name, workers))
    return steps


def _running_daemons() -> dict[str, int]:
    """{profile: number of workers} of the running daemons of the broker profiles in the current config directory."""
    from aiida.engine.daemon.client import get_daemon_client
    from aiida.manage.configuration import get_config

    running = {}
    for profile in get_config(create=True).profiles:
        if profile.process_control_backend != "core.rabbitmq":
            continue
        client = get_daemon_client(profile.name)
        if client.is_daemon_running:
            running[profile.name] = client.get_number_of_workers()
    return running


def stop_daemon(name: str = DAEMON_PROFILE) -> Step:
    """Stop the daemon of profile ``name`` in the current AiiDA config directory, if it has one running."""
    from aiida.engine.daemon.client import get_daemon_client
    from aiida.manage.configuration import get_config

    if name not in get_config(create=True).profile_names:
        return Step(f"daemon of {name}: no such profile", NOT_RUNNING)
    client = get_daemon_client(name)
    if not client.is_daemon_running:
        return Step(f"daemon of {name}: not running", NOT_RUNNING)
    client.stop_daemon(wait=True, timeout=DAEMON_STOP_TIMEOUT_S)
    return Step(f"daemon of {name}: stopped", STOPPED)


def remove_daemon_profile(name: str = DAEMON_PROFILE) -> Step:
    """Stop the daemon, delete profile ``name`` with its database and file repository (for test clean-up)."""
    from aiida.manage.configuration import get_config

    config = get_config(create=True)
    if name not in config.profile_names:
        return Step(f"profile {name}: absent", NOT_RUNNING)
    from aiida.manage import get_manager

    profile = config.get_profile(name)
    stop_daemon(name)
    manager = get_manager()
    if manager.get_profile() is not None and manager.get_profile().name == name:
        # closes this process's connection to the database before it is dropped
        manager.unload_profile()
    # not delete_storage=True: AiiDA then drops the database through pgsu, which wants sudo or a postgres password;
    # root reaches the postgres superuser with runuser instead
    config.delete_profile(name, delete_storage=False)
    config.store()
    drop_database(profile.storage_config["database_name"])
    repository = Path(profile.storage_config["repository_uri"].removeprefix("file://"))
    shutil.rmtree(repository, ignore_errors=True)
    return Step(f"profile {name}: deleted with its database and repository", STOPPED)


# ------------------------------------------------------------------------------------------------------ everything


def ensure_all_services(profile: str | None = DAEMON_PROFILE, workers: int = 2) -> Iterator[Step]:
    """PostgreSQL, RabbitMQ, SLURM and (unless ``profile`` is None) the daemon profile; yield every step's report.

    A generator, so that a caller can show each service's steps when that service is up (the first call installs
    packages and takes minutes).
    """
    if profile is not None:
        _refuse_embedded(profile)  # before a database is made for it
    yield from ensure_postgresql(database=database_name(profile or DAEMON_PROFILE))
    yield from ensure_rabbitmq()
    yield from ensure_slurm()
    if profile is not None:
        yield from ensure_daemon_profile(profile, workers=workers)


def stop_services(profile: str | None = DAEMON_PROFILE) -> Iterator[Step]:
    """Stop the daemon of ``profile`` (the current config directory), then SLURM, RabbitMQ and PostgreSQL."""
    if profile is not None:
        yield stop_daemon(profile)
    yield from stop_slurm()
    yield stop_rabbitmq()
    yield stop_postgresql()
