"""``aiida-llpam progress``: per q point of a PamWorkChain's DFPT, what is done and how long the rest may take."""

import time

import click

from . import main
from .results import PROFILE_OPTION, _load


def _read_any_computer(calc):
    from aiida_llpam.monitor import read_calculation_output

    # a command line runs no event loop, so opening a transport (ssh) blocks nothing but this command
    return read_calculation_output(calc, through_transport=True)


def _end_read_transaction():
    """Let the next query see what the workchain's process has stored since: the session's open read
    transaction (a snapshot on SQLite) and its cached nodes are dropped; nothing is written here to lose."""
    from aiida.manage import get_manager

    get_manager().get_profile_storage().get_session().rollback()


@main.command("progress")
@click.argument("identifier")
@click.option(
    "--watch",
    "watch_s",
    type=click.FloatRange(min=1),
    default=None,
    metavar="SECONDS",
    help="Show it again every SECONDS until the workchain terminates (Ctrl-C to stop watching).",
)
@PROFILE_OPTION
def progress_command(identifier, watch_s, profile):
    """Per q point of the DFPT of PamWorkChain IDENTIFIER: state, irreps done, elapsed and time left. Read-only."""
    from aiida_llpam.monitor import DfptNotStarted, dfpt_progress, format_dfpt_progress
    from aiida_llpam.queries import ResultsError, load_pam_workchain

    _load(profile)
    try:
        node = load_pam_workchain(identifier, finished=False)  # running ones are what this command is for
    except ResultsError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        while True:
            try:
                click.echo("\n".join(format_dfpt_progress(dfpt_progress(node, read=_read_any_computer))))
            except DfptNotStarted as exc:
                # watching a workchain just submitted: its DFPT comes after the relaxation and the scf
                if watch_s is None or node.is_terminated:
                    raise click.ClickException(str(exc)) from None
                click.echo(f"{exc}; watching")
            if watch_s is None or node.is_terminated:
                return
            time.sleep(watch_s)
            _end_read_transaction()
            click.echo()
    except KeyboardInterrupt:
        click.echo("stopped watching (the workchain is not affected)")
