"""Nothing the project starts listens on every address, except the documented allow-list (docs/scaleout.md,
"Listening sockets"): the services after `python deploy/services.py up`, and ph.x's MPI processes during a run."""

import re
import subprocess
import time
from typing import NamedTuple

import pytest

from aiida_llpam.configure import mpirun_command

from .conftest import TEST_PROFILE

#: the system daemons `deploy/services.py up` starts (``/proc/<pid>/comm`` names)
DAEMONS = {"postgres", "beam.smp", "epmd", "slurmctld", "slurmd", "sshd", "munged"}
#: what each must listen on (loopback), so that a daemon this test cannot see fails it instead of passing it
EXPECTED = {
    "postgres": ("127.0.0.1", 5432),
    "beam.smp": ("127.0.0.1", 5672),
    "epmd": ("127.0.0.1", 4369),
    "slurmctld": ("127.0.0.1", 6817),
    "slurmd": ("127.0.0.1", 6818),
    "sshd": ("127.0.0.1", 2222),
}
#: (process, protocol, port or None for any) -> why its listener on every address is accepted
ALLOWED = {
    ("mpirun", "tcp", None): "Open MPI 4.1's out-of-band listener (ORTE oob/tcp) binds 0.0.0.0 and [::] on a random "
    "port whatever oob_tcp_if_include says; it lives as long as the job; no MCA parameter moves it",
    ("verdi", "udp", 12027): "the AiiDA daemon's circus arbiter: multicast auto-discovery on udp 0.0.0.0:12027, "
    "circus's default, which aiida-core does not switch off; it answers with the ipc:// path of its controller only",
}
WILDCARD = {"0.0.0.0", "*", "[::]"}


class Listener(NamedTuple):
    protocol: str
    address: str
    port: int
    process: str
    pid: int


def listeners() -> list[Listener]:
    """Every listening TCP socket and bound UDP socket with its processes, from iproute2's ``ss``."""
    found = []
    for protocol, flags in (("tcp", "-ltnpH"), ("udp", "-lunpH")):
        for line in subprocess.run(["ss", flags], check=True, capture_output=True, text=True).stdout.splitlines():
            address, port = line.split()[3].rsplit(":", 1)
            for name, pid in re.findall(r'\("([^"]+)",pid=(\d+)', line):
                found.append(Listener(protocol, address.split("%")[0], int(port), name, int(pid)))
    return found


def not_allowed(found: list[Listener]) -> list[Listener]:
    """The listeners on every address that the allow-list does not name."""
    return [
        listener
        for listener in found
        if listener.address in WILDCARD
        and (listener.process, listener.protocol, None) not in ALLOWED
        and (listener.process, listener.protocol, listener.port) not in ALLOWED
    ]


def daemon_pids(profile: str) -> set[int]:
    """The circus arbiter of ``profile``'s AiiDA daemon and its workers."""
    import psutil

    arbiters = [
        p
        for p in psutil.process_iter(["cmdline"])
        if f"-p {profile} daemon start-circus" in " ".join(p.info["cmdline"] or [])
    ]
    return {p.pid for arbiter in arbiters for p in [arbiter, *arbiter.children(recursive=True)]}


@pytest.mark.services
def test_no_service_listens_on_every_address(daemon_profile):
    ours = daemon_pids(TEST_PROFILE)
    assert ours, f"no daemon of {TEST_PROFILE} found"
    found = [listener for listener in listeners() if listener.process in DAEMONS or listener.pid in ours]
    for name, (address, port) in EXPECTED.items():
        assert any((lis.process, lis.address, lis.port) == (name, address, port) for lis in found), (name, found)
    assert not_allowed(found) == []


def _si_scf(folder):
    (folder / "scf.in").write_text(
        "&CONTROL\n calculation='scf', prefix='si', outdir='./out', pseudo_dir='/usr/share/espresso/pseudo'\n/\n"
        "&SYSTEM\n ibrav=2, celldm(1)=10.26, nat=2, ntyp=1, ecutwfc=12\n/\n&ELECTRONS\n/\n"
        "ATOMIC_SPECIES\nSi 28.086 Si.pz-vbc.UPF\nATOMIC_POSITIONS alat\nSi 0.00 0.00 0.00\nSi 0.25 0.25 0.25\n"
        "K_POINTS automatic\n2 2 2 0 0 0\n"
    )
    (folder / "ph.in").write_text("Si at Gamma\n&INPUTPH\n prefix='si', outdir='./out', tr2_ph=1.0d-14\n/\n0 0 0\n")
    subprocess.run(["pw.x", "-inp", "scf.in"], cwd=folder, check=True, capture_output=True, timeout=120)


def _ph_listeners(folder, command: list[str]) -> tuple[dict[int, list[Listener]], list[Listener]]:
    """Run ph.x with ``command`` (an mpirun command line) and sample the sockets of its processes while it runs:
    ({pid of a ph.x rank: its listeners}, the listeners of mpirun)."""
    import psutil

    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    job = subprocess.Popen(
        [*command, "ph.x", "-inp", "ph.in"], cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    ranks, launcher = {}, set()
    while job.poll() is None:
        try:
            pids = {p.pid for p in psutil.Process(job.pid).children(recursive=True) if p.name() == "ph.x"}
        except psutil.NoSuchProcess:
            break
        sample = listeners()
        for pid in pids:
            ranks.setdefault(pid, [])
            ranks[pid] = sorted({*ranks[pid], *(lis for lis in sample if lis.pid == pid)})
        launcher |= {lis for lis in sample if lis.pid == job.pid}
        time.sleep(0.05)
    assert job.wait(timeout=300) == 0, job.stderr.read().decode()[-2000:]
    return ranks, sorted(launcher)


@pytest.mark.services
@pytest.mark.qe
def test_ph_x_ranks_listen_nowhere_with_the_codes_mpirun(system_services, tmp_path):
    """The codes' mpirun (btl self,vader): the ph.x ranks have no listening socket; only mpirun's out-of-band one,
    allowed, is on every address. Open MPI's defaults, run alongside, show what the MCA parameters remove."""
    _si_scf(tmp_path)
    ranks, launcher = _ph_listeners(tmp_path, mpirun_command("2"))
    assert len(ranks) == 2, f"sampled {len(ranks)} ph.x ranks: the run ended before the sampling saw both"
    assert {pid: found for pid, found in ranks.items() if found} == {}
    assert launcher and not_allowed(launcher) == []
    assert {lis.address for lis in launcher if lis.address not in WILDCARD} <= {"127.0.0.1", "[::1]"}

    default = ["mpirun", "--allow-run-as-root", "-np", "2"]
    ranks, _ = _ph_listeners(tmp_path, default)
    wildcard = [lis for found in ranks.values() for lis in found if lis.address in WILDCARD]
    assert wildcard, "with Open MPI's defaults the ranks' tcp BTL listens on every address; this test saw none"
