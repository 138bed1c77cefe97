"""Pure checks of the AiiDA step of the scale-out, ``aiida_llpam.daemon_profile.ensure_daemon_profile`` (`aiida-llpam
setup --daemon-profile`): it detects the services with the stored passwords, moves a profile on ``guest`` to the
broker user, sets the daemon options (``daemon.timeout``, ``daemon.default_workers``), restarts workers that a
broker restart left behind, and runs once at a time. AiiDA's config and daemon client are fakes here; the real thing
is test_services.py (marker ``services``)."""

from types import SimpleNamespace

import pytest

from aiida_llpam import daemon_profile as configure
from aiida_llpam.configure import CHANGED, EXISTS, RUNNING, SetupError, Step
from deploy import host


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    """STATE_DIR in a temporary folder, as it is looked up (configure.password_file)."""
    monkeypatch.setattr(configure, "STATE_DIR", tmp_path / "state")
    return tmp_path / "state"


class FakeConfig:
    def __init__(self, profiles=(), options=None):
        self.profiles_by_name = {p.name: p for p in profiles}
        self.options, self.stored = dict(options or {}), 0

    profile_names = property(lambda self: list(self.profiles_by_name))

    def get_profile(self, name):
        return self.profiles_by_name[name]

    def update_profile(self, profile):
        self.profiles_by_name[profile.name] = profile

    def get_option(self, key, scope=None):
        return self.options.get(key, {"daemon.timeout": 2, "daemon.default_workers": 1}.get(key))

    def set_option(self, key, value, scope=None):
        self.options[key] = value

    def store(self):
        self.stored += 1


def _profile(broker_user):
    from aiida.manage.configuration.profile import Profile

    storage = {"database_hostname": "127.0.0.1", "database_password": "pg", "repository_uri": "file:///r"}
    broker = {"broker_username": broker_user, "broker_password": broker_user, "broker_host": "127.0.0.1"}
    return Profile(
        "llpam-daemon",
        {
            "storage": {"backend": "core.psql_dos", "config": storage},
            "process_control": {"backend": "core.rabbitmq", "config": broker},
        },
    )


def test_a_profile_on_guest_is_moved_to_the_broker_user(monkeypatch):
    from aiida.manage import configuration

    config = FakeConfig([_profile("guest")])
    monkeypatch.setattr(configuration, "get_config", lambda create=False: config)
    storage = {"database_hostname": "127.0.0.1", "database_password": "pg"}
    broker = {"broker_username": "aiida_llpam", "broker_password": "secret", "broker_host": "127.0.0.1"}
    step = configure._ensure_daemon_profile_entry("llpam-daemon", storage, broker)
    assert step.status == CHANGED and "broker credentials updated" in step.description
    assert config.get_profile("llpam-daemon").process_control_config["broker_username"] == "aiida_llpam"
    assert config.get_profile("llpam-daemon").storage_config["repository_uri"] == "file:///r"  # kept
    assert configure._ensure_daemon_profile_entry("llpam-daemon", storage, broker).status == EXISTS


def test_daemon_options_give_time_to_stop_and_the_asked_workers(monkeypatch):
    from aiida.manage import configuration

    config = FakeConfig()
    monkeypatch.setattr(configuration, "get_config", lambda create=False: config)
    assert configure.ensure_daemon_options("llpam-daemon", 2).status == CHANGED
    assert config.options == {"warnings.rabbitmq_version": False, "daemon.timeout": 180, "daemon.default_workers": 2}
    assert configure.ensure_daemon_options("llpam-daemon", 2).status == EXISTS
    assert configure.ensure_daemon_options("llpam-daemon", 3).status == CHANGED


@pytest.mark.parametrize(
    ("workers", "broker", "restarted"),
    [
        ([100.0, 101.0], 50.0, False),
        ([100.0, 101.0], 100.5, True),
        ([100.0], 200.0, True),
        ([100.0], None, False),
        ([], 200.0, False),
    ],
)
def test_broker_restarted_under_the_workers(workers, broker, restarted):
    assert configure.broker_restarted_under(workers, broker) is restarted


class FakeDaemon:
    def __init__(self, running=True, started=(100.0, 101.0), stale=False):
        self.is_daemon_running, self.started, self.calls, self.stale = running, list(started), [], stale

    def _clean_potentially_stale_pid_file(self):
        if self.stale:  # the PID file of a daemon that died with its machine: AiiDA deletes it
            self.is_daemon_running, self.stale = False, False
            self.calls.append("stale PID file removed")

    def get_worker_info(self):
        return {"info": {str(i): {"create_time": t} for i, t in enumerate(self.started)}}

    def get_number_of_workers(self):
        return len(self.started)

    def restart_daemon(self, wait):
        self.calls.append("restart")
        self.started = [1000.0] * len(self.started)

    def start_daemon(self, number_workers):
        self.calls.append(f"start {number_workers}")
        self.started = [1000.0] * number_workers

    def stop_daemon(self, wait):
        self.calls.append("stop")

    def increase_workers(self, n, wait):
        self.calls.append(f"+{n}")


@pytest.fixture
def daemon(monkeypatch):
    from aiida.engine.daemon import client

    fake = FakeDaemon()
    monkeypatch.setattr(client, "get_daemon_client", lambda name: fake)
    return fake


def test_a_daemon_that_died_with_its_machine_is_started_again(daemon, monkeypatch):
    """Its PID file is still there; asking the dead daemon for its workers would wait out circus' timeout and raise
    DaemonStalePidException (seen on the first set-up of a new session)."""
    monkeypatch.setattr(configure, "broker_start_time", lambda: 50.0)
    daemon.stale = True
    assert configure.ensure_daemon("p", 2) == Step("daemon of p: started with 2 workers", CHANGED)
    assert daemon.calls == ["stale PID file removed", "start 2"]


def test_a_daemon_older_than_the_broker_is_left_alone(daemon, monkeypatch):
    monkeypatch.setattr(configure, "broker_start_time", lambda: 50.0)
    assert configure.ensure_daemon("p", 2) == Step("daemon of p: running with 2 workers", RUNNING)
    assert daemon.calls == []


def test_workers_older_than_the_broker_are_restarted_and_it_is_said(daemon, monkeypatch):
    """The daemon is stopped, the broker's tasks put right while no worker holds one, the daemon started again."""
    monkeypatch.setattr(configure, "broker_start_time", lambda: 100.5)
    monkeypatch.setattr(configure, "repair_process_tasks", lambda: daemon.calls.append("repair") or ([7, 9], [3]))
    step = configure.ensure_daemon("p", 2)
    assert step.status == CHANGED and "workers restarted (RabbitMQ restarted under them" in step.description
    assert "tasks sent again for [7, 9], dropped for [3]" in step.description
    assert daemon.calls == ["stop", "repair", "start 2"]
    assert configure.ensure_daemon("p", 2).status == RUNNING  # the new workers are younger than the broker


class FakeTask:
    def __init__(self, pid, acknowledged):
        self.body, self.acknowledged = {"args": {"pid": pid}}, acknowledged

    def processing(self):
        import contextlib

        @contextlib.contextmanager
        def outcome():
            yield SimpleNamespace(set_result=lambda value: self.acknowledged.append(self.body["args"]["pid"]))

        return outcome()


def test_repair_drops_stale_and_duplicate_tasks_and_sends_lost_ones_again(monkeypatch):
    """Active 4, 5, 6; the queue holds 4 twice, 5 and the finished 2: one task of 4 and 2's are dropped, 5 kept,
    6 (lost) sent again; the queue is read over a new connection, since the old one died with the broker."""
    import aiida.manage
    from aiida.engine.processes import control

    acknowledged, continued, resets = [], [], []
    tasks = [FakeTask(pid, acknowledged) for pid in (4, 2, 4, 5)]
    broker = SimpleNamespace()
    fake = SimpleNamespace(
        reset_runner=lambda: resets.append("runner"),
        reset_broker=lambda: resets.append("broker"),
        get_broker=lambda: broker if resets == ["runner", "broker"] else None,  # a fresh connection only
        get_process_controller=lambda: SimpleNamespace(continue_process=lambda pid, **kw: continued.append(pid)),
    )
    monkeypatch.setattr(aiida.manage, "get_manager", lambda: fake)
    monkeypatch.setattr(control, "get_active_processes", lambda project: [4, 5, 6])
    monkeypatch.setattr(control, "iterate_process_tasks", lambda given: iter(tasks) if given is broker else iter(()))
    assert configure.repair_process_tasks() == ([6], [2, 4])
    assert acknowledged == [2, 4] and continued == [6]


def test_new_credentials_restart_the_workers_and_missing_workers_are_added(daemon, monkeypatch):
    monkeypatch.setattr(configure, "broker_start_time", lambda: None)
    daemon.started = [100.0]
    step = configure.ensure_daemon("p", 2, "new credentials")
    assert step == Step("daemon of p: workers restarted (new credentials), 2 workers", CHANGED)
    assert daemon.calls == ["restart", "+1"]


def test_a_stopped_daemon_is_started_with_its_workers(daemon):
    daemon.is_daemon_running = False
    assert configure.ensure_daemon("p", 2) == Step("daemon of p: started with 2 workers", CHANGED)


def test_the_broker_process_is_found_by_its_boot_arguments(monkeypatch):
    import psutil

    beam = SimpleNamespace(
        info={
            "name": "beam.smp",
            "create_time": 42.0,
            "cmdline": ["beam.smp", "--", "-noshell", "-s", "rabbit", "boot", "-boot"],
        }
    )
    cli = SimpleNamespace(info={"name": "beam.smp", "create_time": 99.0, "cmdline": ["beam.smp", "-s", "elixir"]})
    monkeypatch.setattr(psutil, "process_iter", lambda attrs: iter([cli, beam]))
    assert configure.broker_start_time() == 42.0
    monkeypatch.setattr(psutil, "process_iter", lambda attrs: iter([cli]))
    assert configure.broker_start_time() is None


def test_no_password_file_names_the_deploy_command(state_dir):
    with pytest.raises(
        SetupError, match=r"cannot read .*postgres-aiida_llpam.password.*`python deploy/services.py up`"
    ):
        configure.detect_services("llpam-daemon")


def test_the_aiida_step_takes_a_lock_in_the_config_directory(tmp_path, monkeypatch):
    from aiida.manage import configuration

    monkeypatch.setattr(configuration, "get_config", lambda create=False: SimpleNamespace(dirpath=str(tmp_path)))
    monkeypatch.setattr(configure, "detect_services", lambda name: pytest.fail("ran under another set-up"))
    with configure.setup_lock(tmp_path / "llpam-setup.lock"), pytest.raises(SetupError, match="another set-up"):
        configure.ensure_daemon_profile("llpam-daemon-x")


def test_detect_services_connects_with_the_stored_passwords(state_dir, monkeypatch):
    import psycopg
    from aiida.brokers.rabbitmq import defaults

    host.store_password("postgres", "aiida_llpam", "pg-secret")
    host.store_password("rabbitmq", "aiida_llpam", "mq-secret")
    connected = []
    monkeypatch.setattr(psycopg, "connect", lambda **kw: connected.append(kw) or SimpleNamespace(close=lambda: None))
    monkeypatch.setattr(defaults, "_probe_rabbitmq_connection", lambda params: connected.append(params))
    storage, broker = configure.detect_services("llpam-daemon")
    assert connected[0]["password"] == storage["database_password"] == "pg-secret"
    assert connected[0]["dbname"] == storage["database_name"] == configure.database_name("llpam-daemon")
    assert connected[1]["username"] == broker["broker_username"] == "aiida_llpam"
    assert broker["broker_password"] == "mq-secret" and broker["broker_host"] == "127.0.0.1"

    def refused(**kwargs):
        raise psycopg.OperationalError('connection failed\nFATAL:  database "x" does not exist')

    monkeypatch.setattr(psycopg, "connect", refused)
    with pytest.raises(SetupError, match=r'on 127.0.0.1:5432: FATAL:  database "x" does not exist: run `python deploy'):
        configure.detect_services("llpam-daemon")


def test_a_venvs_python_and_python3_are_one_program_another_venvs_is_not(tmp_path):
    """A code made with the venv's ``python3`` is the same program as its ``python`` (one interpreter, two names in
    one bin directory), so a second set-up run by the other name finds it; the same interpreter linked from
    another venv is another program (another site-packages)."""
    from aiida_llpam.configure import same_program

    interpreter = tmp_path / "python3.11"
    interpreter.write_text("")
    ours, theirs = tmp_path / "venv" / "bin", tmp_path / "other" / "bin"
    for folder in (ours, theirs):
        folder.mkdir(parents=True)
        for name in ("python", "python3"):
            (folder / name).symlink_to(interpreter)
    assert same_program(str(ours / "python3"), str(ours / "python"))
    assert not same_program(str(ours / "python3"), str(theirs / "python"))
    assert not same_program(str(ours / "python3"), str(ours / "missing"))
