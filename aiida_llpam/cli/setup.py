"""``aiida-llpam setup``: the embedded AiiDA environment, idempotently."""

import click

from . import main


@main.command("setup")
@click.option("-p", "--profile", "profile", default="llpam", show_default=True, help="AiiDA profile to create or reuse.")
@click.option("--mpiprocs", type=int, default=None, help="MPI processes per job (default: min(cores, 2)).")
def setup_command(profile, mpiprocs):
    """Profile (sqlite_dos, no broker), localhost computer, QE codes and pseudo family."""
    from aiida_llpam.tools.setup import SetupError, setup_all

    try:
        steps = setup_all(profile, mpiprocs)
    except SetupError as exc:
        raise click.ClickException(str(exc)) from None
    for what, status in steps:
        click.echo(f"{status:8s} {what}")
    if all(status == "exists" for _, status in steps):
        click.echo("Nothing to do: everything was already set up.")
