"""PostgreSQL 15 (Debian's cluster ``15/main``) on 127.0.0.1:5432 with a role and a database for each daemon profile.

SQL reaches ``psql`` on its standard input, never on its command line: the role's password is in some of it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from aiida_llpam.configure import CHANGED, CREATED, EXISTS, NOT_RUNNING, RUNNING, STOPPED, Step
from aiida_llpam.daemon_profile import DB_USER, PG_HOST, PG_PORT, database_name

from .host import (
    as_user,
    ensure_packages,
    new_password,
    require_root_and_apt,
    run,
    store_password,
    stored_password,
    wait_until,
    write_file,
)

PG_VERSION = "15"
PG_CLUSTER = "main"
PG_CONF_DIR = Path("/etc/postgresql") / PG_VERSION / PG_CLUSTER


def cluster_status() -> str | None:
    """``online``/``down`` for cluster 15/main, None when it does not exist (from ``pg_lsclusters``)."""
    for line in run(["pg_lsclusters", "--no-header"]).stdout.splitlines():
        fields = line.split()
        if fields[:2] == [PG_VERSION, PG_CLUSTER]:
            return fields[3]
    return None


def psql(sql: str, database: str = "postgres") -> str:
    """Run ``sql`` as the postgres superuser over the unix socket, the SQL piped on stdin; return the output."""
    cmd = ["psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-p", str(PG_PORT), "-d", database, "-f", "-"]
    return run(as_user("postgres", cmd), stdin=sql).stdout.strip()


def _start_or_restart(status: str, conf: str) -> Step:
    # pg_ctlcluster runs pg_ctl as the cluster owner; without systemd as PID 1 it does not redirect to systemctl
    if status == "online" and conf != EXISTS:
        run(["pg_ctlcluster", PG_VERSION, PG_CLUSTER, "restart"])
        return Step("postgresql: restarted for the new configuration", CHANGED)
    if status == "online":
        return Step(f"postgresql {PG_VERSION}/{PG_CLUSTER}: running", RUNNING)
    # /run/postgresql is made by systemd-tmpfiles at boot; without it the socket has nowhere to go
    Path("/run/postgresql").mkdir(exist_ok=True)
    shutil.chown("/run/postgresql", "postgres", "postgres")
    run(["pg_ctlcluster", PG_VERSION, PG_CLUSTER, "start"])
    return Step(f"postgresql {PG_VERSION}/{PG_CLUSTER}: started", CHANGED)


def ensure_role(user: str = DB_USER) -> Step:
    """Login role ``user`` with the random password kept in STATE_DIR (a new one when the file was lost)."""
    password = stored_password("postgres", user)
    role_exists = psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{user}'") == "1"
    if role_exists and password:
        return Step(f"database role {user}: exists", EXISTS)
    password = new_password()
    psql(f"{'ALTER' if role_exists else 'CREATE'} ROLE {user} LOGIN PASSWORD '{password}'")
    store_password("postgres", user, password)
    if role_exists:
        return Step(f"database role {user}: new password", CHANGED)
    return Step(f"database role {user}: created", CREATED)


def ensure_postgresql(user: str = DB_USER, database: str | None = None) -> list[Step]:
    """PostgreSQL 15 running on 127.0.0.1:5432 with role ``user`` owning ``database`` (default: the database of the
    daemon profile in the current AiiDA config directory, ``aiida_llpam.daemon_profile.database_name``)."""
    require_root_and_apt()
    database = database or database_name()
    steps = [ensure_packages(["postgresql"])]
    status = cluster_status()
    if status is None:
        # C.UTF-8 exists on every Debian without generating locales; AiiDA needs a UTF8 database
        run(["pg_createcluster", PG_VERSION, PG_CLUSTER, "--port", str(PG_PORT), "--locale", "C.UTF-8"])
        steps.append(Step(f"cluster {PG_VERSION}/{PG_CLUSTER}: created", CREATED))
        status = "down"
    else:
        steps.append(Step(f"cluster {PG_VERSION}/{PG_CLUSTER}: exists", EXISTS))
    conf_file = PG_CONF_DIR / "conf.d" / "aiida-llpam.conf"
    text = (
        f"# written by deploy/postgresql.py: local connections only\nlisten_addresses = '{PG_HOST}'\nport = {PG_PORT}\n"
    )
    conf = write_file(conf_file, text, owner="postgres")
    steps.append(Step(f"{conf_file} (listen on {PG_HOST}:{PG_PORT})", conf))
    steps.append(_start_or_restart(status, conf))
    wait_until(
        lambda: run(["pg_isready", "-h", PG_HOST, "-p", str(PG_PORT)], check=False).returncode == 0,
        60,
        f"postgresql to accept connections on {PG_HOST}:{PG_PORT}",
    )
    steps.append(ensure_role(user))
    if psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}'") == "1":
        steps.append(Step(f"database {database}: exists", EXISTS))
    else:
        psql(f"CREATE DATABASE {database} OWNER {user} ENCODING 'UTF8' TEMPLATE template0")
        steps.append(Step(f"database {database} (owner {user}): created", CREATED))
    return steps


def drop_database(database: str) -> Step:
    """Drop ``database`` if it exists (clean-up of a database whose profile was never made or is gone)."""
    if psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}'") != "1":
        return Step(f"database {database}: absent", NOT_RUNNING)
    psql(f"DROP DATABASE {database} WITH (FORCE)")  # sessions still connected (a stopping worker) go with it
    return Step(f"database {database}: dropped", STOPPED)


def stop_postgresql() -> Step:
    """Stop cluster 15/main if it runs."""
    if not shutil.which("pg_lsclusters") or cluster_status() != "online":
        return Step("postgresql: not running", NOT_RUNNING)
    run(["pg_ctlcluster", PG_VERSION, PG_CLUSTER, "stop"])
    return Step("postgresql: stopped", STOPPED)


def status() -> Step:
    """Whether the cluster runs (read only)."""
    state = cluster_status() if shutil.which("pg_lsclusters") else None
    return Step(
        f"postgresql {PG_VERSION}/{PG_CLUSTER}: {state or 'absent'}", RUNNING if state == "online" else NOT_RUNNING
    )
