"""`aiida-llpam setup [--daemon-profile [NAME]]`: AiiDA's configuration only. The options reach the AiiDA step, its
steps are printed, its errors end the command with one clean line, and the host's services are someone else's job
(`python deploy/services.py up`). The AiiDA steps are fakes here (the real ones need the services: tests/services)."""

import pytest
from click.testing import CliRunner

from aiida_llpam import configure, daemon_profile
from aiida_llpam.cli import main
from aiida_llpam.configure import CHANGED, CREATED, EXISTS, RUNNING, SetupError, Step


@pytest.fixture
def calls(monkeypatch):
    """Fakes of the two AiiDA steps; the list records (function, arguments) in call order."""
    recorded = []

    def ensure_daemon_profile(name, workers):
        recorded.append(("ensure_daemon_profile", name, workers))
        return [
            Step(f"profile {name} (core.psql_dos, core.rabbitmq as aiida_llpam): created", CREATED),
            Step(f"daemon of {name}: workers restarted (RabbitMQ restarted under them), {workers} workers", CHANGED),
        ]

    def setup_all(profile, mpiprocs):
        recorded.append(("setup_all", profile, mpiprocs))
        return [(f"profile {profile} (core.sqlite_dos, no broker)", EXISTS)]

    monkeypatch.setattr(daemon_profile, "ensure_daemon_profile", ensure_daemon_profile)
    monkeypatch.setattr(configure, "setup_all", setup_all)
    return recorded


def invoke(*args):
    return CliRunner().invoke(main, ["setup", *args])


def test_daemon_profile_alone_means_llpam_daemon_and_prints_every_step(calls):
    result = invoke("--daemon-profile")
    assert result.exit_code == 0, result.output
    assert calls == [("ensure_daemon_profile", "llpam-daemon", 2)]
    assert result.output.splitlines() == [
        "created  profile llpam-daemon (core.psql_dos, core.rabbitmq as aiida_llpam): created",
        "changed  daemon of llpam-daemon: workers restarted (RabbitMQ restarted under them), 2 workers",
        "Submit with `verdi -p llpam-daemon run workflows/run_quartz.py --submit`.",
    ]


def test_daemon_profile_name_and_workers_reach_the_aiida_step(calls):
    result = invoke("--daemon-profile", "llpam-big", "--workers", "3")
    assert result.exit_code == 0, result.output
    assert calls == [("ensure_daemon_profile", "llpam-big", 3)]


def test_without_options_the_embedded_profile_only(calls):
    result = invoke("--mpiprocs", "1")
    assert result.exit_code == 0, result.output
    assert calls == [("setup_all", "llpam", 1)]
    assert result.output.splitlines() == [
        "exists   profile llpam (core.sqlite_dos, no broker)",
        "Nothing to do: everything was already set up.",
    ]


def test_second_call_says_nothing_to_do(calls, monkeypatch):
    steps = [Step("profile llpam-daemon: exists", EXISTS), Step("daemon of llpam-daemon: running", RUNNING)]
    monkeypatch.setattr(daemon_profile, "ensure_daemon_profile", lambda name, workers: steps)
    result = invoke("--daemon-profile")
    assert result.exit_code == 0 and result.output.splitlines()[2] == "Nothing to do: everything was already set up."


def test_services_not_set_up_ends_with_one_clean_line_naming_the_deploy_command(calls, monkeypatch):
    def refused(name, workers):
        raise SetupError(
            "cannot read /var/lib/aiida-llpam/postgres-aiida_llpam.password and ... (not root, or no "
            "host set-up): run `python deploy/services.py up` as root first (docs/scaleout.md)"
        )

    monkeypatch.setattr(daemon_profile, "ensure_daemon_profile", refused)
    result = invoke("--daemon-profile")
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot read /var/lib/aiida-llpam/postgres-aiida_llpam.password")
    assert result.output.endswith("run `python deploy/services.py up` as root first (docs/scaleout.md)\n")
    assert len(result.output.splitlines()) == 1


def test_the_former_services_option_points_at_the_deploy_command(calls):
    result = invoke("--services")
    assert result.exit_code == 2 and calls == []
    assert "run `python deploy/services.py up` as root" in result.output
    assert "--services" not in invoke("--help").output  # hidden: only there to say where it went


def test_the_embedded_profile_is_refused_as_daemon_profile():
    """With the real AiiDA step: refused before anything is looked up."""
    result = invoke("--daemon-profile", configure.PROFILE)
    assert result.exit_code == 1 and "llpam is the embedded sqlite profile" in result.output


def test_bad_workers_are_a_usage_error(calls):
    result = invoke("--daemon-profile", "--workers", "0")
    assert result.exit_code == 2 and "--workers" in result.output and calls == []
