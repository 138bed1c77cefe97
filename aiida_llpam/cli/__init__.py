"""Command line of aiida-llpam: a thin layer over the physics package and the AiiDA layer."""

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aiida-llpam")
def main():
    """Phonon angular momentum response and L-L feedback from QE force constants."""


# subcommand modules register themselves on ``main``
from . import physics, progress, results, setup, table  # noqa: E402,F401
