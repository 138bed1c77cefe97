"""Fixtures that bring up the scale-out services (PostgreSQL, RabbitMQ, SLURM) and a throw-away daemon profile.

Tests marked ``services`` start system daemons and install Debian packages, so they run only when asked for, with
``-m services`` or ``LLPAM_SERVICES_TESTS=1``, and only as root on a system with apt-get; otherwise they are skipped
with the reason. Unmarked tests in this folder check the pure helpers and always run.

The daemon profile lives in the private AIIDA_PATH of the test run (tests/conftest.py) and is deleted, with its
database and daemon, at the end of the session; the system services are left running, as a second run reuses them.
"""

import os
import re
import time

import pytest

from aiida_llpam.tools import services

TEST_PROFILE = "llpam-daemon-test"
#: (step name, call number) -> (seconds, [Step, ...]); printed in the terminal summary
TIMINGS: dict[tuple[str, int], tuple[float, list]] = {}


def pytest_configure(config):
    config.addinivalue_line("markers", "services: starts PostgreSQL, RabbitMQ, SLURM and an AiiDA daemon (root, apt)")


def _services_skip_reason(config) -> str | None:
    """Why the services tests cannot or should not run here, None when they can."""
    markexpr = config.getoption("markexpr") or ""
    asked = os.environ.get("LLPAM_SERVICES_TESTS") == "1" or re.search(r"(?<!not )\bservices\b", markexpr)
    if not asked:
        return "services tests start system daemons: run them with `-m services` or LLPAM_SERVICES_TESTS=1"
    return services.unavailable_reason()


def _timed(name: str, call: int, function, *args, **kwargs) -> list:
    start = time.monotonic()
    steps = function(*args, **kwargs)
    TIMINGS[(name, call)] = (time.monotonic() - start, steps)
    return steps


@pytest.fixture(scope="session")
def system_services(request):
    """PostgreSQL, RabbitMQ and SLURM, each ensured twice.

    Yields {"database": the test profile's database, "steps": {name: (first call's steps, second call's steps)}}.
    """
    # checked here, not in a function-scoped fixture: session fixtures are set up before those
    reason = _services_skip_reason(request.config)
    if reason:
        pytest.skip(reason)
    database = services.database_name(TEST_PROFILE)
    steps = {}
    for name, function, kwargs in (
        ("ensure_postgresql", services.ensure_postgresql, {"database": database}),
        ("ensure_rabbitmq", services.ensure_rabbitmq, {}),
        ("ensure_slurm", services.ensure_slurm, {}),
    ):
        steps[name] = (_timed(name, 1, function, **kwargs), _timed(name, 2, function, **kwargs))
    yield {"database": database, "steps": steps}
    # normally gone with the profile (daemon_profile); left behind when the session stopped before that
    services.drop_database(database)


@pytest.fixture(scope="session")
def daemon_profile(system_services):
    """The daemon profile TEST_PROFILE, ensured twice; deleted with its database and daemon afterwards."""
    from aiida.manage.configuration import get_profile

    previous = get_profile()
    first = _timed("ensure_daemon_profile", 1, services.ensure_daemon_profile, TEST_PROFILE, workers=2)
    second = _timed("ensure_daemon_profile", 2, services.ensure_daemon_profile, TEST_PROFILE, workers=2)
    yield TEST_PROFILE, first, second
    services.remove_daemon_profile(TEST_PROFILE)
    if previous is not None and previous.name != TEST_PROFILE:
        from aiida import load_profile

        load_profile(previous.name, allow_switch=True)


def pytest_terminal_summary(terminalreporter):
    if not TIMINGS:
        return
    terminalreporter.section("aiida-llpam services: ensure_* timings")
    for (name, call), (seconds, steps) in sorted(TIMINGS.items()):
        statuses = sorted({step.status for step in steps})
        terminalreporter.write_line(f"{name} call {call}: {seconds:6.1f} s  {', '.join(statuses)}")
