"""``aiida-llpam list | show | figures | export``: stored results, read with QueryBuilder only."""

from __future__ import annotations

import math
from pathlib import Path

import click

from . import main

PROFILE_OPTION = click.option("-p", "--profile", default=None, help="AiiDA profile (default: the default profile).")


def _load(profile):
    from aiida import load_profile

    try:
        load_profile(profile, allow_switch=True)
    except Exception as exc:  # noqa: BLE001 - any failure to load is reported as one line
        raise click.ClickException(f"cannot load AiiDA profile {profile or '(default)'}: {exc}") from None


def _workchain(identifier):
    from aiida_llpam.tools.results import ResultsError, load_pam_workchain

    try:
        return load_pam_workchain(identifier)
    except ResultsError as exc:
        raise click.ClickException(str(exc)) from None


def write_figures(node, outdir, fmt: str = "png") -> list[Path]:
    """Every panel of the paper from ``node``'s stored outputs; returns the written files."""
    from aiida_llpam.plotting import write_all_panels
    from aiida_llpam.tools.results import gather

    data, sources = gather(node)
    return list(write_all_panels(data, outdir, fmt, sources).values())


@main.command("list")
@PROFILE_OPTION
def list_command(profile):
    """Finished PamWorkChains: PK, formula, enantiomer, protocol, date."""
    _load(profile)
    from aiida_llpam.tools.results import finished_runs

    runs = finished_runs()
    if not runs:
        click.echo("No finished aiida-llpam runs in this profile.")
        return
    click.echo(f"{'PK':>6}  {'formula':10} {'enantiomer':16} {'protocol':11} {'space group':12} date")
    for node in runs:
        s = node.outputs.settings.get_dict()
        click.echo(
            f"{node.pk:6d}  {s.get('formula', '?'):10} {str(s.get('enantiomer') or '-'):16} {s.get('protocol', '?'):11} "
            f"{s.get('space_group', '?') + ' (' + str(s.get('space_group_number', '?')) + ')':12} {node.ctime:%Y-%m-%d %H:%M}"
        )


@main.command("show")
@click.argument("identifier")
@PROFILE_OPTION
@click.option("-T", "temperature", type=float, default=300.0, show_default=True, help="Temperature (K).")
@click.option("-r", "radius_nm", type=float, default=20.0, show_default=True, help="Radius (nm).")
def show_command(identifier, profile, temperature, radius_nm):
    """Stored gamma^NL, chi pieces, gamma^LL, eta, r_c at (T, r), and the run's settings."""
    _load(profile)
    from aiida_llpam.tools.results import gather, summary

    node = _workchain(identifier)
    data, _ = gather(node)
    values = summary(data, temperature, radius_nm * 1e-9)
    s = data["settings"]
    rows = [
        ("T", values["temperature_k"], "K"),
        ("r", values["radius_m"] * 1e9, "nm"),
        ("gamma_NL", values["gamma_nl"], "J s K^-1 m^-2"),
        ("chi_D", values["chi_diagonal"], "kg/m"),
        ("chi_OD,interband", values["chi_offdiagonal_interband"], "kg/m"),
        ("chi_OD,pair", values["chi_offdiagonal_pair"], "kg/m"),
        ("chi_zero_point", values["chi_zero_point"], "kg/m"),
        ("gamma_LL", values["gamma_ll"], ""),
        ("gamma_LL (D)", values["gamma_ll_diagonal"], ""),
        ("gamma_LL (OD)", values["gamma_ll_offdiagonal"], ""),
        ("eta", values["eta"], "(nan: gamma_LL >= 1)"),
        ("r_c", values["critical_radius_m"], "m"),
        ("<L_z> bare", values["pam_density_bare"], "J s m^-3"),
        ("<L_z> with L-L", values["pam_density_total"], "J s m^-3"),
    ]
    click.echo(f"PamWorkChain<{node.pk}> {s.get('formula')} {s.get('space_group')} ({s.get('space_group_number')}), "
               f"enantiomer {s.get('enantiomer')}, protocol {s.get('protocol')}")
    for name, value, unit in rows:
        text = "nan" if isinstance(value, float) and math.isnan(value) else f"{value:.8g}"
        click.echo(f"  {name:18s} {text:>14} {unit}")
    click.echo("settings:")
    for key in ("tau_s", "grad_t_k_m", "mesh", "frequency_cutoff_thz", "ecutwfc_ry", "ecutrho_ry", "kpoints_mesh",
                "qpoints_mesh", "relaxed", "pseudo_family", "mass_density_kg_m3", "num_excluded_modes"):
        click.echo(f"  {key:20s} {s.get(key)}")


@main.command("figures")
@click.argument("identifier")
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--format", "fmt", type=click.Choice(["png", "pdf"]), default="png", show_default=True)
@PROFILE_OPTION
def figures_command(identifier, outdir, fmt, profile):
    """One file per panel of the paper (Fig. 2d-f, 3b-f), from stored nodes only."""
    _load(profile)
    for path in write_figures(_workchain(identifier), outdir, fmt):
        click.echo(str(path))


@main.command("export")
@click.argument("identifier")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="results.h5")
@PROFILE_OPTION
def export_command(identifier, output, profile):
    """All arrays and settings in one HDF5 file (units and source UUIDs as attributes)."""
    _load(profile)
    from aiida_llpam.export.hdf5 import write_results_h5
    from aiida_llpam.tools.results import gather

    data, sources = gather(_workchain(identifier))
    click.echo(str(write_results_h5(output, data, sources)))
