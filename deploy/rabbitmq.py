"""RabbitMQ (Debian's 3.10) as ``rabbit@localhost`` on 127.0.0.1:5672, its own user for AiiDA, no ``guest``.

The consumer timeout is disabled as AiiDA documents for long jobs. AiiDA connects as ``aiida_llpam`` with a random
password (root-only in STATE_DIR, like the database's), with every permission on the default vhost ``/`` and no
administrator tag; ``guest`` (administrator, well-known password) is deleted once the daemon profile uses the new user
(:func:`remove_guest`, the last step of `deploy/services.py up`). Passwords reach ``rabbitmqctl`` on stdin.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from aiida_llpam.configure import CHANGED, CREATED, EXISTS, NOT_RUNNING, RUNNING, STOPPED, Step
from aiida_llpam.daemon_profile import BROKER_USER, broker_start_time, daemon_client, ensure_daemon, stop_daemon

from .host import (
    ServiceError,
    ensure_packages,
    new_password,
    processes,
    require_root_and_apt,
    run,
    store_password,
    stored_password,
    wait_until,
    write_file,
)

RABBITMQ_ETC = Path("/etc/rabbitmq")
RABBITMQ_NODE = "rabbit@localhost"
VHOST = "/"

#: sourced by the rabbitmq scripts: node name and every listener on the loopback address
RABBITMQ_ENV = f"""\
# written by deploy/rabbitmq.py: a node for this machine only
NODENAME={RABBITMQ_NODE}
NODE_IP_ADDRESS=127.0.0.1
# epmd (started by the first Erlang VM) and the inter-node port listen on every interface unless told
export ERL_EPMD_ADDRESS=127.0.0.1
SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {{127,0,0,1}}"
"""

#: AiiDA's documented work-around for RabbitMQ >= 3.8.15: a process that waits longer than the 30 min default
#: consumer timeout to acknowledge its task would otherwise be cancelled and its task requeued (run twice)
RABBITMQ_ADVANCED = """\
%% written by deploy/rabbitmq.py
%% consumer_timeout undefined: AiiDA tasks stay unacknowledged for as long as a calculation runs
[
  {rabbit, [
    {consumer_timeout, undefined}
  ]}
].
"""


def rabbitmq_up() -> bool:
    return run(["rabbitmq-diagnostics", "-q", "ping"], check=False, timeout=60).returncode == 0


def consumer_timeout() -> str:
    """The consumer timeout the running node uses, as Erlang prints it (``{ok,undefined}`` when disabled)."""
    return run(["rabbitmqctl", "eval", "application:get_env(rabbit, consumer_timeout)."]).stdout.strip()


def users() -> dict[str, str]:
    """{user: tags} of the broker's internal database."""
    lines = run(["rabbitmqctl", "-q", "list_users", "--no-table-headers"]).stdout.splitlines()
    return dict((line.split("\t") + [""])[:2] for line in lines if line.strip())


def _start() -> None:
    # Debian's wrapper switches to the rabbitmq user; -detached returns once the VM is forked, not when it is ready
    run(["rabbitmq-server", "-detached"], timeout=60)
    wait_until(rabbitmq_up, 120, f"RabbitMQ node {RABBITMQ_NODE} to answer ping", interval=2)
    run(["rabbitmqctl", "await_startup", "--timeout", "120"], timeout=150)


def running_daemons() -> dict[str, int]:
    """{profile: number of workers} of the running daemons in the current AiiDA config directory."""
    from aiida.manage.configuration import get_config

    clients = [daemon_client(p.name) for p in get_config(create=True).profiles if p.process_control_backend]
    return {c.profile.name: c.get_number_of_workers() for c in clients if c.is_daemon_running}


def ensure_user(user: str = BROKER_USER) -> Step:
    """``user`` with the password kept in STATE_DIR (a new one when the file is lost or does not match) and every
    permission on the default vhost, which is all AiiDA's daemon and clients need."""
    password = stored_password("rabbitmq", user)
    exists = user in users()
    if exists and password:
        ok = run(["rabbitmqctl", "-q", "authenticate_user", user], check=False, stdin=password + "\n").returncode == 0
        status = EXISTS if ok else CHANGED
    else:
        status = CHANGED if exists else CREATED
    if status != EXISTS:
        password = new_password()
        run(["rabbitmqctl", "-q", "change_password" if exists else "add_user", user], stdin=password + "\n")
        store_password("rabbitmq", user, password)
    run(["rabbitmqctl", "-q", "set_permissions", "-p", VHOST, user, ".*", ".*", ".*"])
    what = {EXISTS: "exists", CHANGED: "new password", CREATED: "created"}[status]
    return Step(f"rabbitmq user {user} (vhost {VHOST}, no administrator tag): {what}", status)


def remove_guest() -> Step:
    """Delete ``guest`` (administrator, password ``guest``): AiiDA uses :func:`ensure_user`'s user."""
    if "guest" not in users():
        return Step("rabbitmq user guest: absent", EXISTS)
    run(["rabbitmqctl", "-q", "delete_user", "guest"])
    return Step("rabbitmq user guest: deleted", CHANGED)


def ensure_rabbitmq(user: str = BROKER_USER) -> list[Step]:
    """RabbitMQ running as ``rabbit@localhost`` on 127.0.0.1:5672, consumer timeout disabled, ``user`` for AiiDA."""
    require_root_and_apt()
    steps = [ensure_packages(["rabbitmq-server"])]
    changed = False
    files = {RABBITMQ_ETC / "rabbitmq-env.conf": RABBITMQ_ENV, RABBITMQ_ETC / "advanced.config": RABBITMQ_ADVANCED}
    for path, text in files.items():
        status = write_file(path, text, owner="rabbitmq")
        changed |= status != EXISTS
        steps.append(Step(f"{path}", status))

    if rabbitmq_up() and not changed:
        steps.append(Step(f"rabbitmq {RABBITMQ_NODE}: running", RUNNING))
    else:
        # AiiDA's daemon workers reconnect to a broker that comes back by themselves, and RabbitMQ then hands the
        # tasks they held to any worker, also to a second one while the first still runs them: the same process
        # runs twice (aiida-core #4595). Stopped before and started after, the workers take each task once.
        daemons = running_daemons()
        steps.extend(stop_daemon(name) for name in daemons)
        if rabbitmq_up():
            run(["rabbitmqctl", "stop"], timeout=120)
        _start()
        again = "restarted for the new configuration" if changed else "started"
        steps.append(Step(f"rabbitmq {RABBITMQ_NODE}: {again}", CHANGED))
        steps.extend(ensure_daemon(name, workers) for name, workers in daemons.items())

    timeout = consumer_timeout()
    if timeout != "{ok,undefined}":
        raise ServiceError(f"RabbitMQ consumer_timeout is {timeout}, expected {{ok,undefined}} from advanced.config")
    steps.append(ensure_user(user))
    return steps


def stop_epmd() -> Step:
    """Stop epmd, Erlang's port mapper, which the first Erlang VM started and which outlives the node."""
    if not processes("epmd"):
        return Step("epmd: not running", NOT_RUNNING)
    result = run(["epmd", "-kill"], check=False, env={"ERL_EPMD_ADDRESS": "127.0.0.1"}, timeout=30)
    try:
        wait_until(lambda: not processes("epmd"), 10, "epmd to exit", interval=0.5)
    except ServiceError:
        # epmd refuses while a node is still registered: then it is not ours to stop
        said = (result.stdout + result.stderr).strip()
        raise ServiceError(f"epmd did not stop (`epmd -kill`: {said}); `epmd -names` lists its nodes") from None
    return Step("epmd: stopped", STOPPED)


def stop_rabbitmq() -> list[Step]:
    """Stop the RabbitMQ node if it runs, then epmd."""
    if shutil.which("rabbitmqctl") and rabbitmq_up():
        run(["rabbitmqctl", "stop"], timeout=120)
        # `rabbitmqctl stop` (no pid file) can return before the VM has exited and left epmd's list, and epmd refuses
        # to stop while a node is listed
        wait_until(lambda: broker_start_time() is None, 60, f"RabbitMQ node {RABBITMQ_NODE} to exit", interval=0.5)
        steps = [Step("rabbitmq: stopped", STOPPED)]
    else:
        steps = [Step("rabbitmq: not running", NOT_RUNNING)]
    return [*steps, stop_epmd()]


def status() -> Step:
    """Whether the node answers (read only: rabbitmqctl, an Erlang node itself, would start an epmd that outlives it,
    so it is asked only when a RabbitMQ node runs)."""
    up = broker_start_time() is not None and bool(shutil.which("rabbitmqctl")) and rabbitmq_up()
    return Step(f"rabbitmq {RABBITMQ_NODE}: {'running' if up else 'not running'}", RUNNING if up else NOT_RUNNING)
