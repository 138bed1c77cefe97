"""SLURM 22.05 (slurmctld + slurmd + munge) as a one-node cluster of this host, job history in a jobcomp text file."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from contextlib import suppress
from pathlib import Path

from aiida_llpam.configure import CHANGED, CREATED, EXISTS, NOT_RUNNING, RUNNING, STOPPED, Step

from .host import (
    ServiceError,
    as_user,
    ensure_packages,
    pid_alive,
    processes,
    require_root_and_apt,
    run,
    stop_pidfile,
    wait_until,
    write_file,
)

SLURM_CONF = Path("/etc/slurm/slurm.conf")
SLURM_LOG_DIR = Path("/var/log/slurm")
#: the scheduler's own record of finished jobs (``JobCompType=jobcomp/filetxt``), one line per job
SLURM_JOBCOMP_FILE = SLURM_LOG_DIR / "jobcomp.log"
SLURMCTLD_PID = Path("/run/slurmctld.pid")
SLURMD_PID = Path("/run/slurmd.pid")
MUNGED_PID = Path("/run/munge/munged.pid")
MUNGE_KEY = Path("/etc/munge/munge.key")
#: seconds for the jobs' slurmstepd to end after scancel before they are killed with their processes
JOB_STOP_TIMEOUT_S = 60


def real_memory_mb() -> int:
    """RealMemory for slurm.conf: 95 % of MemTotal, because slurmd drains a node that reports less than configured."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(int(line.split()[1]) / 1024 * 0.95)
    raise ServiceError("MemTotal missing from /proc/meminfo")


def slurm_conf(host: str | None = None, cpus: int | None = None, memory_mb: int | None = None) -> str:
    """A one-node slurm.conf for this host: root daemons, no cgroups, job history in a jobcomp text file."""
    host = host or socket.gethostname()
    cpus = cpus or os.cpu_count() or 1
    memory_mb = memory_mb or real_memory_mb()
    return f"""\
# written by deploy/slurm.py: one-node cluster of this host
ClusterName=llpam
SlurmctldHost={host}(127.0.0.1)
# slurmctld, slurmd, slurmstepd and the clients bind the address the host name resolves to, not every address
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
# root daemons: a job runs as the user who submitted it (root's AiiDA daemon, or the account of deploy/sshd.py)
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


def slurmctld_up() -> bool:
    result = run(["scontrol", "ping"], check=False, timeout=30)
    return result.returncode == 0 and "is UP" in result.stdout


def munge_works() -> bool:
    munge = subprocess.run(["munge", "-n"], check=False, capture_output=True, timeout=10)
    if munge.returncode != 0:
        return False
    return subprocess.run(["unmunge"], check=False, input=munge.stdout, capture_output=True, timeout=10).returncode == 0


def node_state(host: str | None = None) -> str:
    """The SLURM state of this host's node (``idle``, ``mixed``, ``down*`` ...), as ``sinfo`` prints it."""
    return run(["sinfo", "-h", "-N", "-n", host or socket.gethostname(), "-o", "%T"]).stdout.strip()


def _ensure_munge() -> list[Step]:
    if MUNGE_KEY.is_file():
        steps = [Step(f"{MUNGE_KEY}: exists", EXISTS)]
    else:
        run(["mungekey", "--create", "--keyfile", str(MUNGE_KEY)])
        shutil.chown(MUNGE_KEY, "munge", "munge")
        MUNGE_KEY.chmod(0o600)
        steps = [Step(f"{MUNGE_KEY}: created", CREATED)]
    if munge_works():
        return [*steps, Step("munged: running", RUNNING)]
    # /run/munge (socket and pid file) is made by systemd-tmpfiles at boot
    Path("/run/munge").mkdir(exist_ok=True)
    shutil.chown("/run/munge", "munge", "munge")
    run(as_user("munge", ["/usr/sbin/munged"]))
    wait_until(munge_works, 30, "munged to encode and decode a credential")
    return [*steps, Step("munged: started", CHANGED)]


def ensure_slurm() -> list[Step]:
    """munged, slurmctld and slurmd running for a one-node cluster of this host, its node idle."""
    require_root_and_apt()
    host = socket.gethostname()
    steps = [ensure_packages(["slurm-wlm", "munge"]), *_ensure_munge()]
    conf = write_file(SLURM_CONF, slurm_conf(host))
    steps.append(Step(f"{SLURM_CONF} (node {host})", conf))
    for directory in (Path("/var/lib/slurm/slurmctld"), Path("/var/lib/slurm/slurmd"), SLURM_LOG_DIR):
        directory.mkdir(parents=True, exist_ok=True)

    ctld_up, slurmd_up = slurmctld_up(), pid_alive(SLURMD_PID)
    if conf != EXISTS and (ctld_up or slurmd_up):
        # several parameters (node definition, plugins) are read only at start: restart instead of reconfigure
        stop_pidfile(SLURMD_PID, "slurmd")
        stop_pidfile(SLURMCTLD_PID, "slurmctld")
        ctld_up = slurmd_up = False
        steps.append(Step("slurm: stopped for the new configuration", CHANGED))
    if ctld_up:
        steps.append(Step("slurmctld: running", RUNNING))
    else:
        run(["slurmctld"])  # daemonises; -i would throw away saved state, which a restart should keep
        wait_until(slurmctld_up, 60, "slurmctld to answer `scontrol ping`")
        steps.append(Step("slurmctld: started", CHANGED))
    if slurmd_up:
        steps.append(Step("slurmd: running", RUNNING))
    else:
        run(["slurmd"])
        wait_until(lambda: pid_alive(SLURMD_PID), 30, f"slurmd to write {SLURMD_PID}")
        steps.append(Step("slurmd: started", CHANGED))

    def idle() -> bool:
        state = node_state(host)
        if "drain" in state or state.startswith("down"):
            # a node drained by an earlier misconfiguration or left down by a crash: the config is right now
            run(["scontrol", "update", f"NodeName={host}", "State=RESUME"], check=False)
        return state in ("idle", "mixed", "allocated")

    if idle():
        steps.append(Step(f"node {host}: {node_state(host)}", RUNNING))
    else:
        wait_until(idle, 90, f"node {host} to become idle in sinfo (log: {SLURM_LOG_DIR}/slurmd.log)", interval=2)
        steps.append(Step(f"node {host}: now {node_state(host)}", CHANGED))
    return steps


def cancel_jobs() -> Step:
    """Cancel every job in the queue through slurmctld (their record says CANCELLED), if it answers."""
    if not shutil.which("squeue") or not slurmctld_up():
        return Step("slurm jobs: slurmctld not running", NOT_RUNNING)
    jobs = run(["squeue", "-h", "-o", "%A"]).stdout.split()
    if not jobs:
        return Step("slurm jobs: none", NOT_RUNNING)
    run(["scancel", *jobs])
    return Step(f"slurm jobs {' '.join(jobs)}: cancelled", STOPPED)


def stop_job_steps(timeout: float = JOB_STOP_TIMEOUT_S) -> Step:
    """Wait for the jobs' slurmstepd to end; kill those left (a job of a slurmd that is gone) with their processes.

    A slurmstepd runs on when slurmd stops, and with it the job's processes (ph.x, mpirun), orphaned.
    """
    import psutil

    if not processes("slurmstepd"):
        return Step("slurmstepd: none running", NOT_RUNNING)
    try:
        wait_until(lambda: not processes("slurmstepd"), timeout, "slurmstepd to end", interval=1)
        return Step("slurmstepd: ended with their jobs", STOPPED)
    except ServiceError:
        pass
    left = processes("slurmstepd")
    tree = [child for step in left for child in step.children(recursive=True)] + left
    for process in tree:
        with suppress(psutil.NoSuchProcess):
            process.terminate()
    _, alive = psutil.wait_procs(tree, timeout=10)
    for process in alive:
        with suppress(psutil.NoSuchProcess):
            process.kill()
    pids = " ".join(str(p.pid) for p in left)
    return Step(f"slurmstepd {pids}: killed with {len(tree) - len(left)} job processes", STOPPED)


def stop_slurm() -> list[Step]:
    """Cancel the jobs, end their slurmstepd, stop slurmd, slurmctld and munged (in that order: the daemons
    authenticate through munge)."""
    steps = [cancel_jobs(), stop_job_steps()]
    steps += [stop_pidfile(SLURMD_PID, "slurmd"), stop_pidfile(SLURMCTLD_PID, "slurmctld")]
    return [*steps, stop_pidfile(MUNGED_PID, "munged")]


def status() -> list[Step]:
    """Whether munged, slurmctld and slurmd run (read only)."""
    up = {"munged": pid_alive(MUNGED_PID), "slurmctld": pid_alive(SLURMCTLD_PID), "slurmd": pid_alive(SLURMD_PID)}
    return [
        Step(f"{name}: {'running' if on else 'not running'}", RUNNING if on else NOT_RUNNING) for name, on in up.items()
    ]


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
