"""A stand-in cluster login: OpenSSH's sshd on 127.0.0.1 only, an unprivileged account, a key for root's AiiDA.

The computer ``cluster-ssh`` (``core.ssh_async`` + ``core.slurm``, made by ``aiida_llpam.daemon_profile``) reaches
this machine as a remote cluster would be reached: over SSH as the account CLUSTER_USER, whose SLURM jobs run as that
account. sshd is started directly (no systemd) with its own configuration and host key under /etc/llpam; Debian's
/etc/ssh/sshd_config is not used. AiiDA's ``core.ssh_async`` connects to a ``Host`` of the user's ``~/.ssh/config``,
so the set-up writes one block there (SSH_HOST_ALIAS), between markers, with a key and a known_hosts file that live
root-only under STATE_DIR.
"""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path

from aiida_llpam.configure import CHANGED, CREATED, EXISTS, NOT_RUNNING, RUNNING, Step
from aiida_llpam.daemon_profile import CLUSTER_USER, SSH_HOST_ALIAS, SSHD_HOST, SSHD_PORT, STATE_DIR

from .host import ServiceError, ensure_packages, pid_alive, require_root_and_apt, run, stop_pidfile, wait_until

SSHD = Path("/usr/sbin/sshd")
CONF_DIR = Path("/etc/llpam")
SSHD_CONFIG = CONF_DIR / "sshd_config"
HOST_KEY = CONF_DIR / "ssh_host_ed25519_key"
SSHD_PID = Path("/run/llpam-sshd.pid")
#: sshd's privilege-separation directory, made by systemd-tmpfiles at boot on a systemd host
PRIVSEP_DIR = Path("/run/sshd")
#: root's AiiDA logs in with this key; it and the known host key are root-only (STATE_DIR is 0700)
SSH_STATE_DIR = STATE_DIR / "ssh"
CLIENT_KEY = SSH_STATE_DIR / "id_ed25519"
KNOWN_HOSTS = SSH_STATE_DIR / "known_hosts"
BEGIN, END = "# BEGIN aiida-llpam (deploy/sshd.py)", "# END aiida-llpam"


def sshd_config() -> str:
    return f"""\
# written by deploy/sshd.py: login of the stand-in cluster account, loopback only, keys only
Port {SSHD_PORT}
ListenAddress {SSHD_HOST}
HostKey {HOST_KEY}
PidFile {SSHD_PID}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers {CLUSTER_USER}
AuthorizedKeysFile .ssh/authorized_keys
StrictModes yes
# no PAM session without systemd; the account's password field is '*' (no password, not locked)
UsePAM no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PermitTunnel no
# AiiDA's core.ssh_async opens several channels (up to its max_io_allowed) on one connection
MaxSessions 20
Subsystem sftp internal-sftp
"""


def ssh_client_block() -> str:
    """The ``Host`` entry of root's ~/.ssh/config that AiiDA's core.ssh_async connects to."""
    return f"""\
{BEGIN}: the stand-in cluster login for AiiDA's computer cluster-ssh
Host {SSH_HOST_ALIAS}
    HostName {SSHD_HOST}
    Port {SSHD_PORT}
    User {CLUSTER_USER}
    IdentityFile {CLIENT_KEY}
    IdentitiesOnly yes
    UserKnownHostsFile {KNOWN_HOSTS}
    StrictHostKeyChecking yes
    BatchMode yes
{END}
"""


def _ensure_account() -> Step:
    try:
        pwd.getpwnam(CLUSTER_USER)
        return Step(f"account {CLUSTER_USER}: exists", EXISTS)
    except KeyError:
        pass
    # '*': no password can match, yet the account is not locked ('!'), which sshd without PAM would refuse
    run(["useradd", "--create-home", "--shell", "/bin/bash", "--password", "*", CLUSTER_USER])
    return Step(f"account {CLUSTER_USER} (no password, key login only): created", CREATED)


def _ensure_keys() -> list[Step]:
    steps = []
    CONF_DIR.mkdir(mode=0o755, exist_ok=True)
    SSH_STATE_DIR.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    SSH_STATE_DIR.parent.chmod(0o700)
    SSH_STATE_DIR.mkdir(mode=0o700, exist_ok=True)
    for key, comment in ((HOST_KEY, "aiida-llpam sshd host key"), (CLIENT_KEY, "aiida-llpam root's AiiDA")):
        if key.is_file():
            steps.append(Step(f"{key}: exists", EXISTS))
            continue
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)])
        key.chmod(0o600)
        steps.append(Step(f"{key}: created", CREATED))
    account = pwd.getpwnam(CLUSTER_USER)
    ssh_dir = Path(account.pw_dir) / ".ssh"
    # 'restrict': no forwarding, no pty; commands and sftp, all AiiDA uses, still work
    authorized = f"restrict {(CLIENT_KEY.with_suffix('.pub')).read_text().strip()}\n"
    host_key = HOST_KEY.with_suffix(".pub").read_text().split()[:2]
    known = f"[{SSHD_HOST}]:{SSHD_PORT},[{SSH_HOST_ALIAS}]:{SSHD_PORT} {' '.join(host_key)}\n"
    for path, text, owner, mode in (
        (ssh_dir / "authorized_keys", authorized, account, 0o600),
        (KNOWN_HOSTS, known, None, 0o600),
    ):
        if path.is_file() and path.read_text() == text:
            steps.append(Step(f"{path}: exists", EXISTS))
            continue
        status = CHANGED if path.exists() else CREATED
        path.parent.mkdir(mode=0o700, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
        if owner is not None:
            os.chown(path.parent, owner.pw_uid, owner.pw_gid)
            os.chown(path, owner.pw_uid, owner.pw_gid)
        steps.append(Step(f"{path}: {status}", status))
    return steps


def _ensure_client_config(config: Path | None = None) -> Step:
    """The SSH_HOST_ALIAS block at the top of root's ~/.ssh/config (first match wins there), other entries kept."""
    config = config or Path.home() / ".ssh" / "config"
    old = config.read_text() if config.is_file() else ""
    block = ssh_client_block()
    rest = old
    if BEGIN in old and END in old:
        start, end = old.index(BEGIN), old.index(END) + len(END)
        rest = (old[:start] + old[end:]).lstrip("\n")
    new = block + ("\n" + rest if rest else "")
    if new == old:
        return Step(f"{config} (Host {SSH_HOST_ALIAS}): exists", EXISTS)
    config.parent.mkdir(mode=0o700, exist_ok=True)
    config.write_text(new)
    config.chmod(0o600)
    return Step(f"{config} (Host {SSH_HOST_ALIAS}): {'changed' if old else 'created'}", CHANGED if old else CREATED)


def _write_config() -> str:
    text = sshd_config()
    old = SSHD_CONFIG.read_text() if SSHD_CONFIG.is_file() else None
    if old == text:
        return EXISTS
    SSHD_CONFIG.write_text(text)
    SSHD_CONFIG.chmod(0o644)
    return CREATED if old is None else CHANGED


def listening() -> bool:
    """Whether something accepts TCP connections on SSHD_HOST:SSHD_PORT."""
    import socket

    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex((SSHD_HOST, SSHD_PORT)) == 0


def ensure_sshd() -> list[Step]:
    """openssh-server installed; the account, keys and ~/.ssh/config block; sshd on SSHD_HOST:SSHD_PORT running."""
    require_root_and_apt()
    steps = [ensure_packages(["openssh-server"]), _ensure_account(), *_ensure_keys(), _ensure_client_config()]
    conf = _write_config()
    steps.append(Step(f"{SSHD_CONFIG} (listen on {SSHD_HOST}:{SSHD_PORT}, keys only, no root)", conf))
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)  # `sshd -t` checks it too
    shutil.chown(PRIVSEP_DIR, "root", "root")
    test = run([str(SSHD), "-t", "-f", str(SSHD_CONFIG)], check=False)
    if test.returncode != 0:
        raise ServiceError(f"sshd refuses {SSHD_CONFIG}: {test.stderr.strip()}")
    if pid_alive(SSHD_PID) and conf == EXISTS:
        return [*steps, Step(f"sshd on {SSHD_HOST}:{SSHD_PORT}: running", RUNNING)]
    if pid_alive(SSHD_PID):
        stop_pidfile(SSHD_PID, "sshd")
    elif listening():
        raise ServiceError(f"{SSHD_HOST}:{SSHD_PORT} is taken by another program than {SSHD} -f {SSHD_CONFIG}")
    run([str(SSHD), "-f", str(SSHD_CONFIG)])  # daemonises; writes SSHD_PID
    wait_until(lambda: pid_alive(SSHD_PID) and listening(), 30, f"sshd to listen on {SSHD_HOST}:{SSHD_PORT}")
    return [*steps, Step(f"sshd on {SSHD_HOST}:{SSHD_PORT}: started", CHANGED)]


def stop_sshd() -> Step:
    """Stop this set-up's sshd (its pid file; another sshd of the machine is not touched)."""
    return stop_pidfile(SSHD_PID, f"sshd on {SSHD_HOST}:{SSHD_PORT}")


def status() -> Step:
    on = pid_alive(SSHD_PID)
    return Step(
        f"sshd on {SSHD_HOST}:{SSHD_PORT}: {'running' if on else 'not running'}", RUNNING if on else NOT_RUNNING
    )
