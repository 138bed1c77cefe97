"""Bring this machine's services for aiida-llpam's scale-out up, down, or report them; as root, with the Python of
aiida-llpam's virtualenv (`source .venv/bin/activate`):

    python deploy/services.py up [--daemon-profile NAME] [--workers N] [--no-profile]
    python deploy/services.py down [--daemon-profile NAME]
    python deploy/services.py status

``up`` installs (apt) and starts PostgreSQL, RabbitMQ, munge and SLURM, and sshd on 127.0.0.1:2222 for the stand-in
cluster account (deploy/sshd.py) with that account's venv for the response job (deploy/cluster_env.py), then
configures AiiDA for them in the current config directory (``AIIDA_PATH``) with
``aiida_llpam.daemon_profile.ensure_daemon_profile``, the step `aiida-llpam setup --daemon-profile` runs alone, and
last deletes RabbitMQ's ``guest`` user. With ``--no-profile``
it stops after the services and prints that command. Every step is idempotent and printed as ``<status> <what>``; a
second ``up`` reports only ``exists``/``running``. ``down`` stops the daemon of the profile, the SLURM jobs and
daemons, sshd, RabbitMQ with epmd, and PostgreSQL. Two set-ups at once: the second fails at once ("another set-up is
running")."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import deploy/ as the package it is
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiida_llpam.configure import DAEMON_PROFILE, EXISTS, PROFILE, RUNNING, SetupError, Step
from aiida_llpam.daemon_profile import database_name, ensure_daemon_profile, stop_daemon
from deploy import cluster_env, postgresql, rabbitmq, slurm, sshd
from deploy.host import ServiceError, host_lock, unavailable_reason


def up(profile: str | None = DAEMON_PROFILE, workers: int = 2) -> Iterator[Step]:
    """PostgreSQL, RabbitMQ, SLURM, then (unless ``profile`` is None) the daemon profile and no ``guest`` user.

    A generator, so that a caller can show each service's steps as soon as it is up (the first call installs
    packages and takes minutes).
    """
    if profile == PROFILE:
        raise SetupError(f"{PROFILE} is the embedded sqlite profile: the daemon profile needs another name")
    with host_lock():
        yield from postgresql.ensure_postgresql(database=database_name(profile or DAEMON_PROFILE))
        yield from rabbitmq.ensure_rabbitmq()
        yield from slurm.ensure_slurm()
        yield from sshd.ensure_sshd()
        yield from cluster_env.ensure_cluster_venv()
        if profile is not None:
            yield from ensure_daemon_profile(profile, workers=workers)
            yield rabbitmq.remove_guest()  # after the profile's broker settings name the new user


def down(profile: str | None = DAEMON_PROFILE) -> Iterator[Step]:
    """Stop the daemon of ``profile`` (the current config directory), then SLURM, RabbitMQ and PostgreSQL."""
    with host_lock():
        if profile is not None:
            yield stop_daemon(profile)
        yield sshd.stop_sshd()
        yield from slurm.stop_slurm()
        yield from rabbitmq.stop_rabbitmq()
        yield postgresql.stop_postgresql()


def status() -> Iterator[Step]:
    """What runs (read only, no lock)."""
    yield postgresql.status()
    yield rabbitmq.status()
    yield from slurm.status()
    yield sshd.status()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="deploy/services.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--daemon-profile", default=DAEMON_PROFILE, help=f"AiiDA profile (default {DAEMON_PROFILE})")
    parser.add_argument("--workers", type=int, default=2, help="daemon workers (default 2)")
    parser.add_argument("--no-profile", action="store_true", help="up: the services only, not the AiiDA profile")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    reason = unavailable_reason()
    if reason and args.action != "status":
        print(f"Error: {reason}", file=sys.stderr)
        return 1
    profile = None if args.no_profile else args.daemon_profile
    steps = {"up": lambda: up(profile, args.workers), "down": lambda: down(profile), "status": status}[args.action]()
    statuses = []
    try:
        for step in steps:
            print(f"{step.status:8s} {step.description}", flush=True)
            statuses.append(step.status)
    except (ServiceError, SetupError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    if args.action == "up" and all(status in (EXISTS, RUNNING) for status in statuses):
        print("Nothing to do: every service was already set up and running.")
    if args.action == "up" and profile is None:
        print(f"Next, for AiiDA: aiida-llpam setup --daemon-profile {args.daemon_profile} --workers {args.workers}")
    elif args.action == "up":
        print(f"Submit with `verdi -p {profile} run workflows/run_quartz.py --submit`.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
