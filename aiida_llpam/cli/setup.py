"""``aiida-llpam setup``: the embedded AiiDA environment, or with ``--services`` the scale-out services, idempotently."""

import click

from aiida_llpam.configure import DAEMON_PROFILE

from . import main


@main.command("setup")
@click.option(
    "-p", "--profile", "profile", default="llpam", show_default=True, help="AiiDA profile to create or reuse."
)
@click.option("--mpiprocs", type=int, default=None, help="MPI processes per job (default: min(cores, 2)).")
@click.option(
    "--services",
    is_flag=True,
    help="Instead: PostgreSQL, RabbitMQ, SLURM and a daemon profile (needs root and apt; see docs/scaleout.md).",
)
@click.option("--stop", is_flag=True, help="With --services: stop the daemon, SLURM, RabbitMQ and PostgreSQL.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="Daemon workers.")
@click.option("--daemon-profile", default=DAEMON_PROFILE, show_default=True, help="Profile of the daemon.")
def setup_command(profile, mpiprocs, services, stop, workers, daemon_profile):
    """Profile (sqlite_dos, no broker), localhost computer, QE codes and pseudo family.

    With --services instead (as root): PostgreSQL, RabbitMQ, SLURM and the daemon profile DAEMON_PROFILE with
    computer localhost-slurm and a running daemon; the embedded profile is left alone. --stop stops them.
    """
    if services:
        return _services(stop, workers, daemon_profile)
    if stop:
        raise click.UsageError("--stop stops the services: use it with --services")
    from aiida_llpam.configure import SetupError, setup_all

    try:
        steps = setup_all(profile, mpiprocs)
    except SetupError as exc:
        raise click.ClickException(str(exc)) from None
    for what, status in steps:
        click.echo(f"{status:8s} {what}")
    if all(status == "exists" for _, status in steps):
        click.echo("Nothing to do: everything was already set up.")


def _services(stop, workers, daemon_profile):
    """Bring the services up (or ``stop`` them), printing each step as soon as its service is done."""
    from aiida_llpam.tools import services

    reason = services.unavailable_reason()
    if reason:
        raise click.ClickException(reason)
    steps = services.stop_services(daemon_profile) if stop else services.ensure_all_services(daemon_profile, workers)
    statuses = []
    try:
        for step in steps:
            click.echo(f"{step.status:8s} {step.description}")
            statuses.append(step.status)
    except services.ServiceError as exc:
        raise click.ClickException(str(exc)) from None
    if not stop and all(status in (services.EXISTS, services.RUNNING) for status in statuses):
        click.echo("Nothing to do: every service was already set up and running.")
    elif not stop:
        click.echo(f"Submit with `verdi -p {daemon_profile} run workflows/run_quartz.py --submit`.")
