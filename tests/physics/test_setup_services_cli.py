"""`aiida-llpam setup --services [--stop]`: the options reach the services module, its steps are printed as they
come, and its errors end the command with one clean line. The services module is replaced by fakes here (the real
one needs root and installs system packages: tests/services)."""

import pytest
from click.testing import CliRunner

from aiida_llpam.cli import main
from aiida_llpam.tools import services
from aiida_llpam.tools.services import CHANGED, CREATED, EXISTS, RUNNING, STOPPED, ServiceError, Step

ENSURE_ALL_SERVICES = services.ensure_all_services  # the real one, before the fixture replaces it


@pytest.fixture
def calls(monkeypatch):
    """Fakes of the services entry points; the list records (function, arguments) in call order."""
    recorded = []

    def ensure_all_services(profile, workers):
        recorded.append(("ensure_all_services", profile, workers))
        yield Step("cluster 15/main: created", CREATED)
        yield Step("rabbitmq: started", CHANGED)
        yield Step(f"daemon of {profile}: running with {workers} workers", RUNNING)

    def stop_services(profile):
        recorded.append(("stop_services", profile))
        yield Step(f"daemon of {profile}: stopped", STOPPED)
        yield Step("postgresql: stopped", STOPPED)

    def embedded_setup(*args):
        raise AssertionError("--services must not set up the embedded profile")

    monkeypatch.setattr(services, "unavailable_reason", lambda: None)
    monkeypatch.setattr(services, "ensure_all_services", ensure_all_services)
    monkeypatch.setattr(services, "stop_services", stop_services)
    monkeypatch.setattr("aiida_llpam.configure.setup_all", embedded_setup)
    return recorded


def invoke(*args):
    return CliRunner().invoke(main, ["setup", *args])


def test_services_up_with_defaults_prints_every_step(calls):
    result = invoke("--services")
    assert result.exit_code == 0, result.output
    assert calls == [("ensure_all_services", "llpam-daemon", 2)]
    assert result.output.splitlines()[:3] == [
        "created  cluster 15/main: created",
        "changed  rabbitmq: started",
        "running  daemon of llpam-daemon: running with 2 workers",
    ]
    assert "verdi -p llpam-daemon run workflows/run_quartz.py --submit" in result.output


def test_services_options_reach_the_module(calls):
    result = invoke("--services", "--workers", "3", "--daemon-profile", "llpam-big")
    assert result.exit_code == 0, result.output
    assert calls == [("ensure_all_services", "llpam-big", 3)]


def test_second_call_says_nothing_to_do(calls, monkeypatch):
    monkeypatch.setattr(services, "ensure_all_services", lambda profile, workers: iter([Step("slurm: up", EXISTS)]))
    result = invoke("--services")
    assert result.exit_code == 0 and result.output.splitlines() == [
        "exists   slurm: up",
        "Nothing to do: every service was already set up and running.",
    ]


def test_stop(calls):
    result = invoke("--services", "--stop", "--daemon-profile", "llpam-big")
    assert result.exit_code == 0, result.output
    assert calls == [("stop_services", "llpam-big")]
    assert result.output.splitlines() == ["stopped  daemon of llpam-big: stopped", "stopped  postgresql: stopped"]


def test_a_failing_step_ends_with_one_clean_line_after_the_steps_done(calls, monkeypatch):
    def failing(profile, workers):
        yield Step("cluster 15/main: exists", EXISTS)
        raise ServiceError("`apt-get install -y rabbitmq-server` failed: E: Unable to fetch some archives")

    monkeypatch.setattr(services, "ensure_all_services", failing)
    result = invoke("--services")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "exists   cluster 15/main: exists",
        "Error: `apt-get install -y rabbitmq-server` failed: E: Unable to fetch some archives",
    ]
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("stop", [[], ["--stop"]])
def test_not_root_is_refused_before_anything_runs(calls, monkeypatch, stop):
    monkeypatch.setattr(services, "unavailable_reason", lambda: "the services set-up needs root (apt-get, ...)")
    result = invoke("--services", *stop)
    assert result.exit_code == 1 and calls == []
    assert result.output == "Error: the services set-up needs root (apt-get, ...)\n"


def test_the_embedded_profile_is_refused_as_daemon_profile(calls, monkeypatch):
    """With the real ensure_all_services: refused before PostgreSQL (no database is made for it)."""
    monkeypatch.setattr(services, "ensure_all_services", ENSURE_ALL_SERVICES)
    monkeypatch.setattr(services, "ensure_postgresql", lambda **kwargs: pytest.fail("PostgreSQL was set up"))
    result = invoke("--services", "--daemon-profile", services.EMBEDDED_PROFILE)
    assert result.exit_code == 1
    assert "llpam is the embedded sqlite profile" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--stop"], "use it with --services"), (["--services", "--workers", "0"], "--workers")],
)
def test_bad_options_are_usage_errors(calls, args, message):
    result = invoke(*args)
    assert result.exit_code == 2 and message in result.output and calls == []
