"""Pure checks of the host set-up, deploy/ (`python deploy/services.py up|down|status`); the AiiDA step is in
test_daemon_profile_setup.py.

Nothing here needs root, starts a service or touches the machine's: commands and processes are replaced by fakes
that record what would have run. The real thing is test_services.py (marker ``services``).
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aiida_llpam import daemon_profile as configure
from aiida_llpam.configure import CHANGED, CREATED, EXISTS, NOT_RUNNING, RUNNING, STOPPED, SetupError, Step
from deploy import cluster_env, host, postgresql, rabbitmq, services, slurm, sshd

REPO = Path(__file__).resolve().parents[2]


class Commands:
    """A fake ``run``: records (argv, stdin), answers from ``replies`` (text in argv or stdin -> stdout or exit
    code)."""

    def __init__(self, replies=None):
        self.calls, self.replies = [], replies or {}

    def __call__(self, cmd, *, check=True, timeout=120, env=None, stdin=None):
        self.calls.append((cmd, stdin))
        reply = next((r for key, r in self.replies.items() if key in " ".join(cmd) + (stdin or "")), "")
        code, out = (reply, "") if isinstance(reply, int) else (0, reply)
        if check and code:
            raise host.ServiceError(f"`{' '.join(cmd)}` failed")
        return subprocess.CompletedProcess(cmd, code, out, "")

    def argv(self):
        return [" ".join(cmd) for cmd, _ in self.calls]


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    """STATE_DIR in a temporary folder, as it is looked up (configure.password_file)."""
    monkeypatch.setattr(configure, "STATE_DIR", tmp_path / "state")
    return tmp_path / "state"


# ------------------------------------------------------------------------------------------------------ layout


def test_the_plugin_never_imports_deploy_and_tools_is_gone():
    importing = []
    for path in (REPO / "aiida_llpam").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            importing += [f"{path.relative_to(REPO)}: {name}" for name in names if name.split(".")[0] == "deploy"]
    assert importing == []
    assert not (REPO / "aiida_llpam" / "tools").exists()


def test_every_deploy_module_and_configure_stay_under_500_lines():
    for path in [*(REPO / "deploy").glob("*.py"), REPO / "aiida_llpam" / "configure.py"]:
        assert len(path.read_text().splitlines()) < 500, path


# ----------------------------------------------------------------------------------------------------- helpers


def test_slurm_conf_describes_this_host():
    conf = slurm.slurm_conf(host="node1", cpus=2, memory_mb=1000)
    assert "NodeName=node1 NodeAddr=127.0.0.1 CPUs=2 RealMemory=1000" in conf
    assert "SlurmctldHost=node1(127.0.0.1)" in conf
    # no cgroups here, and the job history must come from the scheduler's own file
    assert "ProctrackType=proctrack/linuxproc" in conf and "TaskPlugin=task/none" in conf
    assert f"JobCompType=jobcomp/filetxt\nJobCompLoc={slurm.SLURM_JOBCOMP_FILE}" in conf
    # slurmctld and slurmd bind the host's address (127.0.0.1 here), not every address
    assert "CommunicationParameters=NoCtldInAddrAny,NoInAddrAny" in conf


def test_status_does_not_start_epmd_when_rabbitmq_is_down(monkeypatch):
    """`deploy/services.py status` after `down`: rabbitmqctl would start an epmd that stays; it is not run."""
    monkeypatch.setattr(rabbitmq, "broker_start_time", lambda: None)
    monkeypatch.setattr(rabbitmq, "rabbitmq_up", lambda: pytest.fail("rabbitmqctl ran with no RabbitMQ node"))
    assert rabbitmq.status().status == NOT_RUNNING


def test_sshd_config_listens_on_loopback_only_and_takes_keys_only():
    conf = dict(line.split(None, 1) for line in sshd.sshd_config().splitlines() if line and line[0] != "#")
    assert conf["ListenAddress"] == "127.0.0.1" and conf["Port"] == str(configure.SSHD_PORT)
    assert conf["PasswordAuthentication"] == "no" and conf["KbdInteractiveAuthentication"] == "no"
    assert conf["PubkeyAuthentication"] == "yes" and conf["PermitRootLogin"] == "no"
    assert conf["AllowUsers"] == configure.CLUSTER_USER and conf["HostKey"] == str(sshd.HOST_KEY)


def test_the_ssh_client_block_replaces_itself_and_keeps_other_hosts(tmp_path):
    config = tmp_path / "config"
    config.write_text("Host other\n    User me\n")
    assert sshd._ensure_client_config(config).status == CHANGED
    assert sshd._ensure_client_config(config).status == EXISTS
    text = config.read_text()
    assert text.startswith(sshd.BEGIN) and text.count(f"Host {configure.SSH_HOST_ALIAS}\n") == 1
    assert text.endswith("Host other\n    User me\n")
    assert f"IdentityFile {sshd.CLIENT_KEY}" in text and f"UserKnownHostsFile {sshd.KNOWN_HOSTS}" in text


def test_real_memory_is_below_the_machine_memory():
    mem_total_kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
    assert 0.9 * mem_total_kb / 1024 < slurm.real_memory_mb() < mem_total_kb / 1024


def test_database_name_depends_on_config_dir(monkeypatch, tmp_path):
    from aiida.manage.configuration.settings import AiiDAConfigDir

    monkeypatch.setattr(AiiDAConfigDir, "get", classmethod(lambda cls: tmp_path / "a"))
    first = configure.database_name("llpam-daemon")
    monkeypatch.setattr(AiiDAConfigDir, "get", classmethod(lambda cls: tmp_path / "b"))
    second = configure.database_name("llpam-daemon")
    assert first != second
    assert first.startswith("aiida_llpam_daemon_") and first.replace("_", "").isalnum()


def test_write_file_reports_created_exists_changed(tmp_path):
    path = tmp_path / "x.conf"
    assert host.write_file(path, "a\n") == CREATED
    assert host.write_file(path, "a\n") == EXISTS
    assert host.write_file(path, "b\n") == CHANGED
    assert path.read_text() == "b\n"


def test_a_file_whose_comments_alone_changed_is_rewritten_without_a_restart(tmp_path):
    """The files written by the former aiida_llpam/tools/services.py name it in a comment: moving the code must not
    restart PostgreSQL, RabbitMQ or SLURM."""
    path = tmp_path / "advanced.config"
    path.write_text("%% written by aiida_llpam.tools.services\n[{rabbit, []}].\n# old\n")
    assert host.write_file(path, "%% written by deploy/rabbitmq.py\n[{rabbit, []}].\n") == EXISTS
    assert path.read_text() == "%% written by deploy/rabbitmq.py\n[{rabbit, []}].\n"


def test_jobcomp_records_parses_key_value_lines(tmp_path, monkeypatch):
    record = tmp_path / "jobcomp.log"
    record.write_text("JobId=7 Name=aiida-12 JobState=COMPLETED ExitCode=0:0\nJobId=8 Name=wrap JobState=FAILED\n")
    monkeypatch.setattr(slurm, "SLURM_JOBCOMP_FILE", record)
    assert slurm.jobcomp_records(7) == [{"JobId": "7", "Name": "aiida-12", "JobState": "COMPLETED", "ExitCode": "0:0"}]
    assert len(slurm.jobcomp_records()) == 2


def test_unavailable_reason_names_root_and_apt(monkeypatch):
    monkeypatch.setattr(host.os, "geteuid", lambda: 1000)
    assert "needs root" in host.unavailable_reason()
    with pytest.raises(host.ServiceError, match="needs root"):
        rabbitmq.ensure_rabbitmq()
    monkeypatch.setattr(host.os, "geteuid", lambda: 0)
    monkeypatch.setattr(host.shutil, "which", lambda name: None)
    assert "apt-get" in host.unavailable_reason()


def test_embedded_profile_is_refused_before_any_service(monkeypatch):
    monkeypatch.setattr(postgresql, "ensure_postgresql", lambda **kwargs: pytest.fail("PostgreSQL was set up"))
    with pytest.raises(SetupError, match="embedded sqlite profile"):
        configure.ensure_daemon_profile(configure.PROFILE)
    with pytest.raises(SetupError, match="embedded sqlite profile"):
        next(services.up(configure.PROFILE))


# ------------------------------------------------------------------------------ fault 2: no password in argv


def test_the_database_password_reaches_psql_on_stdin_only(monkeypatch, state_dir):
    commands = Commands()  # every SELECT answers "": no role yet
    monkeypatch.setattr(postgresql, "run", commands)
    step = postgresql.ensure_role("aiida_llpam")
    assert step == Step("database role aiida_llpam: created", CREATED)
    password = (state_dir / "postgres-aiida_llpam.password").read_text().strip()
    assert len(password) == 32
    assert all(password not in word for cmd, _ in commands.calls for word in cmd)
    assert any(stdin and f"CREATE ROLE aiida_llpam LOGIN PASSWORD '{password}'" in stdin for _, stdin in commands.calls)
    assert all(cmd[-2:] == ["-f", "-"] for cmd, _ in commands.calls)  # psql reads its SQL from stdin
    assert state_dir.stat().st_mode & 0o777 == 0o700
    assert (state_dir / "postgres-aiida_llpam.password").stat().st_mode & 0o777 == 0o600


def test_a_role_whose_password_file_was_lost_gets_a_new_password(monkeypatch, state_dir):
    commands = Commands({"pg_roles": "1"})
    monkeypatch.setattr(postgresql, "run", commands)
    assert postgresql.ensure_role("aiida_llpam").status == CHANGED
    assert "ALTER ROLE aiida_llpam LOGIN PASSWORD" in commands.calls[-1][1]
    assert postgresql.ensure_role("aiida_llpam") == Step("database role aiida_llpam: exists", EXISTS)


# ------------------------------------------------------------------- fault 1: a broker user of its own, no guest


def test_the_broker_user_is_made_with_a_stored_password_on_stdin_and_vhost_rights(monkeypatch, state_dir):
    commands = Commands({"list_users": "guest\t[administrator]\n"})
    monkeypatch.setattr(rabbitmq, "run", commands)
    step = rabbitmq.ensure_user("aiida_llpam")
    assert step.status == CREATED and "no administrator tag" in step.description
    password = (state_dir / "rabbitmq-aiida_llpam.password").read_text().strip()
    assert ("rabbitmqctl -q add_user aiida_llpam", f"{password}\n") in [(" ".join(c), s) for c, s in commands.calls]
    assert all(password not in word for cmd, _ in commands.calls for word in cmd)
    assert "rabbitmqctl -q set_permissions -p / aiida_llpam .* .* .*" in commands.argv()
    assert not any("set_user_tags" in cmd for cmd in commands.argv())


def test_an_existing_broker_user_keeps_a_password_that_works_and_gets_a_new_one_otherwise(monkeypatch, state_dir):
    host.store_password("rabbitmq", "aiida_llpam", "known")
    commands = Commands({"list_users": "aiida_llpam\t[]\n", "authenticate_user": 0})
    monkeypatch.setattr(rabbitmq, "run", commands)
    assert rabbitmq.ensure_user("aiida_llpam").status == EXISTS
    assert ("rabbitmqctl -q authenticate_user aiida_llpam", "known\n") in [(" ".join(c), s) for c, s in commands.calls]
    commands.replies["authenticate_user"] = 1
    assert rabbitmq.ensure_user("aiida_llpam").status == CHANGED
    assert "rabbitmqctl -q change_password aiida_llpam" in commands.argv()
    assert host.stored_password("rabbitmq", "aiida_llpam") != "known"


def test_guest_is_deleted_once(monkeypatch):
    commands = Commands({"list_users": "guest\t[administrator]\naiida_llpam\t[]\n"})
    monkeypatch.setattr(rabbitmq, "run", commands)
    assert rabbitmq.remove_guest() == Step("rabbitmq user guest: deleted", CHANGED)
    assert "rabbitmqctl -q delete_user guest" in commands.argv()
    commands.replies["list_users"] = "aiida_llpam\t[]\n"
    assert rabbitmq.remove_guest().status == EXISTS


def test_up_removes_guest_only_after_the_profile_names_the_new_user(monkeypatch, tmp_path):
    order = []
    monkeypatch.setattr(host, "LOCK_FILE", tmp_path / "lock")
    monkeypatch.setattr(services, "database_name", lambda profile: "db")
    for module, name in (
        (postgresql, "ensure_postgresql"),
        (rabbitmq, "ensure_rabbitmq"),
        (slurm, "ensure_slurm"),
        (sshd, "ensure_sshd"),
        (cluster_env, "ensure_cluster_venv"),
    ):
        monkeypatch.setattr(module, name, lambda name=name, **kwargs: order.append(name) or [Step(name, EXISTS)])
    monkeypatch.setattr(services, "ensure_daemon_profile", lambda p, workers: order.append(p) or [Step(p, EXISTS)])
    monkeypatch.setattr(rabbitmq, "remove_guest", lambda: order.append("remove_guest") or Step("guest", EXISTS))
    assert len(list(services.up("llpam-x", 3))) == 7
    # sshd and the account's venv before the profile: its computer cluster-ssh logs in through one and runs the other
    hosts = ["ensure_postgresql", "ensure_rabbitmq", "ensure_slurm", "ensure_sshd", "ensure_cluster_venv"]
    assert order == [*hosts, "llpam-x", "remove_guest"]
    order.clear()
    list(services.up(None))
    assert order == hosts


# --------------------------------------------------------------------------- fault 3: epmd and slurmstepd stop


def test_stop_rabbitmq_stops_epmd_too(monkeypatch):
    commands = Commands()
    running = {"epmd": [object()]}
    monkeypatch.setattr(rabbitmq, "run", commands)
    monkeypatch.setattr(rabbitmq.shutil, "which", lambda name: "/usr/sbin/" + name)
    monkeypatch.setattr(rabbitmq, "processes", lambda name: running.get(name, []))
    # the node's VM outlives `rabbitmqctl stop` for a moment: epmd is asked only once it has gone
    vm_polls = iter([1.0e9, 1.0e9, None])
    monkeypatch.setattr(rabbitmq, "broker_start_time", lambda: next(vm_polls))

    def epmd_kill(cmd, **kwargs):
        if cmd[0] == "epmd":
            assert next(vm_polls, "gone") == "gone", "epmd asked to stop while the RabbitMQ VM still ran"
            running["epmd"] = []
        return commands(cmd, **kwargs)

    monkeypatch.setattr(rabbitmq, "run", epmd_kill)
    monkeypatch.setattr(rabbitmq, "wait_until", host.wait_until)
    assert rabbitmq.stop_rabbitmq() == [Step("rabbitmq: stopped", STOPPED), Step("epmd: stopped", STOPPED)]
    assert commands.argv()[-2:] == ["rabbitmqctl stop", "epmd -kill"]
    assert rabbitmq.stop_epmd() == Step("epmd: not running", NOT_RUNNING)


def test_an_epmd_that_stays_is_an_error_naming_its_answer(monkeypatch):
    monkeypatch.setattr(rabbitmq, "processes", lambda name: [object()])
    monkeypatch.setattr(rabbitmq, "run", Commands({"epmd -kill": "Killing not allowed - living nodes in database."}))
    monkeypatch.setattr(rabbitmq, "wait_until", lambda *a, **k: (_ for _ in ()).throw(host.ServiceError("timed out")))
    with pytest.raises(host.ServiceError, match="epmd did not stop .*living nodes"):
        rabbitmq.stop_epmd()


def test_stop_slurm_cancels_the_jobs_and_ends_their_steps_before_the_daemons(monkeypatch):
    order = []
    monkeypatch.setattr(slurm, "cancel_jobs", lambda: order.append("scancel") or Step("jobs", STOPPED))
    monkeypatch.setattr(slurm, "stop_job_steps", lambda: order.append("slurmstepd") or Step("steps", STOPPED))
    monkeypatch.setattr(slurm, "stop_pidfile", lambda pidfile, what: order.append(what) or Step(what, STOPPED))
    assert len(slurm.stop_slurm()) == 5
    assert order == ["scancel", "slurmstepd", "slurmd", "slurmctld", "munged"]


def test_cancel_jobs_asks_slurmctld_for_every_queued_job(monkeypatch):
    commands = Commands({"squeue": "12\n13\n"})
    monkeypatch.setattr(slurm, "run", commands)
    monkeypatch.setattr(slurm, "slurmctld_up", lambda: True)
    assert slurm.cancel_jobs() == Step("slurm jobs 12 13: cancelled", STOPPED)
    assert commands.argv()[-1] == "scancel 12 13"


def test_a_slurmstepd_left_behind_is_killed_with_its_job_processes(tmp_path, monkeypatch):
    """A stand-in named slurmstepd (a script: its process name is the file's) with a child, the job's process.
    ``processes`` is faked to see only it: the machine's real slurmstepd are never looked at."""
    import psutil

    fake = tmp_path / "slurmstepd"
    fake.write_text("#!/bin/bash\nsleep 300 &\nwait\n")
    fake.chmod(0o755)
    stepd = subprocess.Popen([str(fake)])
    try:
        process = psutil.Process(stepd.pid)
        host.wait_until(lambda: process.children(), 10, "the fake job to start", interval=0.1)
        (job,) = process.children()
        monkeypatch.setattr(
            slurm,
            "processes",
            lambda name: (
                [process]
                if name == "slurmstepd" and process.is_running() and process.status() != psutil.STATUS_ZOMBIE
                else []
            ),
        )
        step = slurm.stop_job_steps(timeout=1)
        assert step == Step(f"slurmstepd {stepd.pid}: killed with 1 job processes", STOPPED)
        stepd.wait(timeout=10)
        assert not job.is_running() or job.status() == psutil.STATUS_ZOMBIE
    finally:
        stepd.kill()


# ---------------------------------------------------------------------------------- fault 4: one set-up at a time


def test_a_second_set_up_fails_at_once(tmp_path):
    lock = tmp_path / "setup.lock"
    busy = rf"another set-up is running \(pid {os.getpid()}, lock {lock}\)"
    with configure.setup_lock(lock), pytest.raises(SetupError, match=busy), configure.setup_lock(lock):
        pass
    with configure.setup_lock(lock):  # free again
        pass


def test_up_and_down_take_the_host_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(host, "LOCK_FILE", tmp_path / "deploy.lock")
    monkeypatch.setattr(postgresql, "ensure_postgresql", lambda **kwargs: pytest.fail("ran under another set-up"))
    monkeypatch.setattr(services, "database_name", lambda profile: "db")
    with configure.setup_lock(tmp_path / "deploy.lock"):
        for steps in (services.up(), services.down()):
            with pytest.raises(SetupError, match="another set-up is running"):
                next(steps)


# -------------------------------------------------------------------------------- the command `deploy/services.py`


def _main(monkeypatch, capsys, *argv, reason=None):
    monkeypatch.setattr(services, "unavailable_reason", lambda: reason)
    code = services.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_up_prints_each_step_and_the_submit_command(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(services, "up", lambda p, w: calls.append((p, w)) or iter([Step("rabbitmq: started", CHANGED)]))
    code, out, _ = _main(monkeypatch, capsys, "up", "--workers", "3", "--daemon-profile", "llpam-big")
    assert code == 0 and calls == [("llpam-big", 3)]
    assert out.splitlines() == [
        "changed  rabbitmq: started",
        "Submit with `verdi -p llpam-big run workflows/run_quartz.py --submit`.",
    ]


def test_up_without_profile_prints_the_aiida_command_to_run_next(monkeypatch, capsys):
    monkeypatch.setattr(services, "up", lambda p, w: iter([Step("slurmd: running", RUNNING)]))
    code, out, _ = _main(monkeypatch, capsys, "up", "--no-profile")
    assert code == 0 and out.splitlines() == [
        "running  slurmd: running",
        "Nothing to do: every service was already set up and running.",
        "Next, for AiiDA: aiida-llpam setup --daemon-profile llpam-daemon --workers 2",
    ]


def test_a_failing_step_ends_with_one_clean_line(monkeypatch, capsys):
    def failing(profile, workers):
        yield Step("cluster 15/main: exists", EXISTS)
        raise host.ServiceError("`apt-get install -y rabbitmq-server` failed: E: Unable to fetch some archives")

    monkeypatch.setattr(services, "up", failing)
    code, out, err = _main(monkeypatch, capsys, "up")
    assert code == 1 and out == "exists   cluster 15/main: exists\n"
    assert err == "Error: `apt-get install -y rabbitmq-server` failed: E: Unable to fetch some archives\n"


def test_not_root_is_refused_before_anything_runs_but_status_reads(monkeypatch, capsys):
    monkeypatch.setattr(services, "up", lambda p, w: pytest.fail("ran"))
    monkeypatch.setattr(services, "status", lambda: iter([Step("postgresql 15/main: online", RUNNING)]))
    assert _main(monkeypatch, capsys, "up", reason="the services set-up needs root")[::2] == (
        1,
        "Error: the services set-up needs root\n",
    )
    assert _main(monkeypatch, capsys, "status", reason="needs root")[:2] == (0, "running  postgresql 15/main: online\n")


def test_down_stops_the_profile_daemon_first(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(host, "LOCK_FILE", tmp_path / "lock")
    order = []
    monkeypatch.setattr(services, "stop_daemon", lambda p: order.append(p) or Step(f"daemon of {p}: stopped", STOPPED))
    monkeypatch.setattr(sshd, "stop_sshd", lambda: order.append("sshd") or Step("sshd", STOPPED))
    monkeypatch.setattr(slurm, "stop_slurm", lambda: order.append("slurm") or [])
    monkeypatch.setattr(rabbitmq, "stop_rabbitmq", lambda: order.append("rabbitmq") or [])
    monkeypatch.setattr(postgresql, "stop_postgresql", lambda: order.append("postgresql") or Step("pg", STOPPED))
    code, out, _ = _main(monkeypatch, capsys, "down", "--daemon-profile", "llpam-big")
    assert out.splitlines() == ["stopped  daemon of llpam-big: stopped", "stopped  sshd", "stopped  pg"]
    assert code == 0 and order == ["llpam-big", "sshd", "slurm", "rabbitmq", "postgresql"]


def test_the_command_runs_as_a_script_from_anywhere(tmp_path):
    """`python deploy/services.py --help` imports deploy/ as a package without the repository on sys.path."""
    env = {**os.environ, "PYTHONPATH": "", "AIIDA_PATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "services.py"), "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "up,down,status" in result.stdout


def test_the_cluster_venvs_source_digest_changes_exactly_with_the_package_source(tmp_path):
    """The digest that decides whether the account's venv gets this checkout again: a changed module or pyproject
    changes it; compiled caches and files outside the package do not."""
    (tmp_path / "aiida_llpam" / "physics").mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'aiida-llpam'\n")
    module = tmp_path / "aiida_llpam" / "physics" / "response.py"
    module.write_text("X = 1\n")
    digest = cluster_env.source_digest(tmp_path)
    (tmp_path / "aiida_llpam" / "physics" / "__pycache__").mkdir()
    (tmp_path / "aiida_llpam" / "physics" / "__pycache__" / "response.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "README.md").write_text("docs\n")
    assert cluster_env.source_digest(tmp_path) == digest
    module.write_text("X = 2\n")
    changed = cluster_env.source_digest(tmp_path)
    assert changed != digest
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'aiida-llpam'\nversion = '2'\n")
    assert cluster_env.source_digest(tmp_path) not in (digest, changed)
