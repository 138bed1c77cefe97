"""The computer ``cluster-ssh``: AiiDA reaches this machine's SLURM as a remote cluster, over ``core.ssh_async`` as the
unprivileged account of deploy/sshd.py, whose jobs run as that account."""

import pwd
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from aiida_llpam import daemon_profile as configure
from deploy import sshd

from .conftest import finished_through_slurm, silicon_scf_builder


@pytest.mark.services
def test_sshd_is_loopback_only_and_the_keys_are_private(system_services):
    assert sshd.status().status == configure.RUNNING
    assert sshd.listening()
    account = pwd.getpwnam(configure.CLUSTER_USER)
    assert account.pw_uid != 0
    for path in (sshd.CLIENT_KEY, sshd.KNOWN_HOSTS, sshd.HOST_KEY):
        mode = path.stat()
        assert mode.st_uid == 0 and stat.S_IMODE(mode.st_mode) == 0o600, path
    authorized = Path(account.pw_dir) / ".ssh" / "authorized_keys"
    assert authorized.stat().st_uid == account.pw_uid and stat.S_IMODE(authorized.stat().st_mode) == 0o600
    assert authorized.read_text().startswith("restrict ssh-ed25519 ")


@pytest.mark.services
def test_sshd_refuses_root_and_passwords(system_services):
    """Only the account's key opens a session: root with the same key and any password attempt are refused."""
    import subprocess

    def ssh(*options, user):
        cmd = ["ssh", "-F", "/dev/null", "-p", str(configure.SSHD_PORT), "-o", f"UserKnownHostsFile={sshd.KNOWN_HOSTS}"]
        cmd += ["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", *options]
        return subprocess.run([*cmd, f"{user}@{configure.SSHD_HOST}", "id -un"], capture_output=True, text=True)

    key = ("-o", "IdentitiesOnly=yes", "-i", str(sshd.CLIENT_KEY))
    ok = ssh(*key, user=configure.CLUSTER_USER)
    assert ok.returncode == 0 and ok.stdout.strip() == configure.CLUSTER_USER, ok.stderr
    root = ssh(*key, user="root")
    assert root.returncode == 255 and "Permission denied" in root.stderr
    password = ssh("-o", "PreferredAuthentications=password,keyboard-interactive", user=configure.CLUSTER_USER)
    assert password.returncode == 255 and "Permission denied (publickey)" in password.stderr


@pytest.mark.services
def test_the_cluster_computer_passes_the_computer_test(daemon_profile):
    from aiida import orm

    computer = orm.load_computer(configure.CLUSTER_COMPUTER)
    assert (computer.transport_type, computer.scheduler_type) == ("core.ssh_async", "core.slurm")
    assert "--allow-run-as-root" not in computer.get_mpirun_command()
    assert computer.get_workdir().startswith(pwd.getpwnam(configure.CLUSTER_USER).pw_dir + "/")
    messages = configure.check_computer(configure.CLUSTER_COMPUTER)
    assert f"remote user name: {configure.CLUSTER_USER}" in messages
    assert "temporary file in the work directory: ok" in messages
    for name in configure.CLUSTER_CODES:
        executable = orm.load_code(f"{name}@{configure.CLUSTER_COMPUTER}").filepath_executable
        assert (
            str(executable) == configure.cluster_python()
            if name == "llpam-response"
            else executable.name == f"{name}.x"
        )


@pytest.mark.services
def test_the_response_jobs_python_is_the_accounts_own_venv(cluster_venv):
    """deploy/cluster_env.py: a venv in the account's home, made and owned by it, that imports the response job with
    its own numpy and phonopy; a second set-up finds it as it is."""
    _, second = cluster_venv
    assert [step.status for step in second] == [configure.EXISTS], second
    python = Path(configure.cluster_python())
    venv = python.parents[1]
    assert venv.owner() == configure.CLUSTER_USER and venv.parent == Path(configure.cluster_home())
    probe = "import aiida_llpam.calculations.response_job, numpy, phonopy; print(numpy.__file__, phonopy.__file__)"
    result = subprocess.run(
        ["runuser", "-u", configure.CLUSTER_USER, "--", str(python), "-c", probe],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert all(path.startswith(f"{venv}/") for path in result.stdout.split()), result.stdout


@pytest.mark.services
@pytest.mark.qe
def test_pw_scf_over_ssh_runs_in_slurm_as_the_account(daemon_profile):
    """Upload over SFTP, sbatch through SSH, the job in SLURM as the account, retrieval over SFTP, parsing."""
    from aiida.engine import submit

    builder = silicon_scf_builder(f"pw@{configure.CLUSTER_COMPUTER}")
    node = finished_through_slurm(submit(builder), timeout=300)
    assert node.outputs.output_parameters["energy"] == pytest.approx(-212.48, abs=0.05)  # eV, Si pz-vbc at 12 Ry
    from deploy import slurm

    record = [r for r in slurm.jobcomp_records(node.get_job_id()) if r["WorkDir"] == node.get_remote_workdir()][0]
    assert record["UserId"].startswith(f"{configure.CLUSTER_USER}("), record
    workdir = Path(node.get_remote_workdir())
    assert workdir.is_relative_to(configure.cluster_workdir()) and workdir.owner() == configure.CLUSTER_USER


@pytest.mark.services
def test_an_unreachable_host_is_named_with_the_cause(daemon_profile):
    """A computer whose SSH host has nothing listening: the check names the computer, the host and the refusal."""
    from aiida import orm

    with socket.socket() as probe:
        probe.settimeout(2)
        if probe.connect_ex(("127.0.0.1", 22)) == 0:
            pytest.fail("127.0.0.1:22 listens here: this test needs a port with nothing behind it")
    label = "cluster-ssh-unreachable"
    computer = orm.Computer(
        label=label, hostname="127.0.0.1", transport_type="core.ssh_async", scheduler_type="core.slurm", workdir="/tmp"
    ).store()
    computer.configure(host="127.0.0.1", backend="asyncssh", safe_interval=0.0)
    try:
        with pytest.raises(configure.SetupError) as error:
            configure.check_computer(label)
    finally:
        orm.Computer.collection.delete(computer.pk)
    # asyncssh's own words for a refused connection, with the address and port it tried
    assert str(error.value) == (
        f"computer {label} cannot reach 127.0.0.1 (core.ssh_async): [Errno 111] Connect call failed ('127.0.0.1', 22)"
    )
