"""What every service's set-up needs: running commands, files, pid files, Debian packages, the set-up lock.

Each step reports a :class:`aiida_llpam.configure.Step` (``created``, ``changed``, ``exists``, ``running``,
``stopped``, ``not running``), the plugin's one vocabulary; failures raise :class:`ServiceError` with the failing
command and its output.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from aiida_llpam.configure import CHANGED, CREATED, EXISTS, NOT_RUNNING, STOPPED, Step
from aiida_llpam.daemon_profile import password_file, setup_lock

#: held by `deploy/services.py up|down` (and the tests' set-up): a second set-up at once fails at once
LOCK_FILE = Path("/run/lock/aiida-llpam-deploy.lock")
#: consulted by invoke-rc.d before a package's maintainer script starts its service
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


def host_lock():
    """The set-up lock of this machine, held by `up`, `down` and the tests' set-up: a second one fails at once."""
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    return setup_lock(LOCK_FILE)


class ServiceError(RuntimeError):
    """A service could not be installed, configured, started or stopped; the message names the command."""


def run(
    cmd: list[str],
    *,
    check: bool = True,
    timeout: float = 120,
    env: dict | None = None,
    stdin: str | None = None,
    cwd: str | None = None,
):
    """Run ``cmd`` (``stdin`` piped to it, in ``cwd``) and return the CompletedProcess; with ``check`` raise
    ServiceError on failure.

    Secrets go through ``stdin``, never ``cmd``: a command line is readable by every user in /proc/<pid>/cmdline.
    """
    try:
        result = subprocess.run(
            cmd,
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
            cwd=cwd,
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


def as_user(user: str, cmd: list[str]) -> list[str]:
    """``cmd`` run as ``user`` (runuser needs no PAM session or password when called by root)."""
    return ["runuser", "-u", user, "--", *cmd]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 1.0) -> None:
    """Poll ``predicate`` until it is true; raise ServiceError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise ServiceError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _settings(text: str) -> list[str]:
    """The lines of a configuration file that are not comments (``#``, Erlang's ``%``) or blank."""
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith(("#", "%"))]


def write_file(path: Path, text: str, mode: int = 0o644, owner: str | None = None) -> str:
    """Write ``text`` to ``path`` unless it already holds it; return CREATED, CHANGED or EXISTS.

    A file whose settings are the same and only its comments differ is rewritten but reported EXISTS: the service
    reading it need not restart.
    """
    old = path.read_text() if path.is_file() else None
    if old == text:
        return EXISTS
    status = CREATED if old is None and not path.exists() else CHANGED
    if old is not None and _settings(old) == _settings(text):
        status = EXISTS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    if owner:
        shutil.chown(path, owner, owner)
    return status


def new_password() -> str:
    return secrets.token_hex(16)


def store_password(service: str, user: str, password: str) -> None:
    """Keep ``password`` of ``user`` for ``service`` root-only in STATE_DIR, where the AiiDA step reads it."""
    path = password_file(service, user)  # in STATE_DIR
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)  # root-only before the file appears in it
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(password + "\n")


def stored_password(service: str, user: str) -> str | None:
    path = password_file(service, user)
    return path.read_text().strip() if path.is_file() else None


def pid_alive(pidfile: Path) -> bool:
    """Whether the process named in ``pidfile`` exists (a stale file after a crash or reboot reads as dead)."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return Path(f"/proc/{pid}").exists()


def stop_pidfile(pidfile: Path, what: str, timeout: float = 30) -> Step:
    """SIGTERM the process of ``pidfile`` and wait for it to go."""
    if not pid_alive(pidfile):
        return Step(f"{what}: not running", NOT_RUNNING)
    os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)
    wait_until(lambda: not pid_alive(pidfile), timeout, f"{what} to stop", interval=0.5)
    return Step(f"{what}: stopped", STOPPED)


def processes(name: str) -> list:
    """The running processes whose name (``/proc/<pid>/comm``) is ``name``."""
    import psutil

    return [p for p in psutil.process_iter(["name"]) if p.info["name"] == name]


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


def installed(package: str) -> bool:
    result = run(["dpkg-query", "-W", "-f=${Status}", package], check=False)
    return result.returncode == 0 and result.stdout.strip() == "install ok installed"


def ensure_packages(packages: list[str]) -> Step:
    """Install the Debian ``packages`` that are missing (non-interactive, without recommends)."""
    missing = [p for p in packages if not installed(p)]
    if not missing:
        return Step(f"packages {' '.join(packages)}: installed", EXISTS)
    require_root_and_apt()
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    # without systemd, the packages' maintainer scripts start the services through /etc/init.d with Debian's
    # defaults (rabbit@<hostname> on every interface, ...) before they are configured here; a policy-rc.d that
    # exits 101 (as container images ship) forbids that for the time of the install
    temporary_policy = not POLICY_RC_D.exists()
    if temporary_policy:
        POLICY_RC_D.write_text("#!/bin/sh\n# deploy/host.py: no service starts during apt-get install\nexit 101\n")
        POLICY_RC_D.chmod(0o755)
    try:
        result = run(cmd, check=False, timeout=900, env=env)
        if result.returncode != 0 and "Unable to locate package" in result.stderr:
            # a fresh machine has empty package lists until the first `apt-get update`
            run(["apt-get", "update"], timeout=600, env=env)
            result = run(cmd, check=False, timeout=900, env=env)
    finally:
        if temporary_policy:
            POLICY_RC_D.unlink()
    if result.returncode != 0:
        raise ServiceError(f"`{' '.join(cmd)}` failed: {result.stderr.strip()[-2000:]}")
    return Step(f"packages {' '.join(missing)}: installed", CREATED)
