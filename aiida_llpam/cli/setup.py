"""``aiida-llpam setup``: the AiiDA configuration only (profile, computer, codes, pseudo families), as `verdi presto`.

Without options the embedded profile; with ``--daemon-profile`` the profile on the PostgreSQL and RabbitMQ that the
host set-up (``python deploy/services.py up``, outside the package) runs, with its SLURM computer and daemon.
"""

import click

from aiida_llpam.configure import DAEMON_PROFILE
from aiida_llpam.daemon_profile import DEPLOY_COMMAND

from . import main


@main.command("setup")
@click.option(
    "-p", "--profile", "profile", default="llpam", show_default=True, help="Embedded AiiDA profile to create or reuse."
)
@click.option("--mpiprocs", type=int, default=None, help="MPI processes per job (default: min(cores, 2)).")
@click.option(
    "--daemon-profile",
    is_flag=False,
    flag_value=DAEMON_PROFILE,
    default=None,
    help=f"Instead: this profile (alone: {DAEMON_PROFILE}) on the running PostgreSQL + RabbitMQ, computer "
    "localhost-slurm, codes, pseudo families and its daemon (reads the passwords the host set-up stored: root).",
)
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="Daemon workers.")
@click.option("--services", is_flag=True, hidden=True)
def setup_command(profile, mpiprocs, daemon_profile, workers, services):
    """Profile (sqlite_dos, no broker), localhost computer, QE codes and pseudo families.

    With --daemon-profile instead: the daemon profile on PostgreSQL and RabbitMQ (detected, never installed or
    started: `python deploy/services.py up` provisions the host and ends with this step), computer
    localhost-slurm, codes, pseudo families, its options and a running daemon; the embedded profile is left alone.
    """
    if services:
        raise click.UsageError(
            f"the services are set up outside the plugin now: run `{DEPLOY_COMMAND}` as root "
            "(docs/scaleout.md); `aiida-llpam setup --daemon-profile` configures AiiDA for them"
        )
    from aiida_llpam.configure import SetupError, setup_all
    from aiida_llpam.daemon_profile import ensure_daemon_profile

    try:
        steps = ensure_daemon_profile(daemon_profile, workers) if daemon_profile else setup_all(profile, mpiprocs)
    except SetupError as exc:
        raise click.ClickException(str(exc)) from None
    for what, status in steps:
        click.echo(f"{status:8s} {what}")
    if all(status in ("exists", "running") for _, status in steps):
        click.echo("Nothing to do: everything was already set up.")
    if daemon_profile:
        click.echo(f"Submit with `verdi -p {daemon_profile} run workflows/run_quartz.py --submit`.")
