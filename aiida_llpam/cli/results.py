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
    if data["predates_v2"]:
        raise click.ClickException(
            f"PamWorkChain<{node.pk}> predates physics v2: its figures need quantities it did not store; "
            "recompute its response with workflows/recompute_response.py"
        )
    return list(write_all_panels(data, outdir, fmt, sources).values())


@main.command("list")
@PROFILE_OPTION
def list_command(profile):
    """Finished PamWorkChains: PK, formula, space group, enantiomer, protocol, date."""
    _load(profile)
    from aiida_llpam.tools.results import finished_runs, run_settings

    runs = finished_runs()
    if not runs:
        click.echo("No finished aiida-llpam runs in this profile.")
        return
    click.echo(f"{'PK':>6}  {'formula':10} {'space group':14} {'enantiomer':14} {'protocol':11} date")
    for node in runs:
        s = run_settings(node)
        group = f"{s.get('space_group', '?')} ({s.get('space_group_number', '?')})"
        click.echo(
            f"{node.pk:6d}  {s.get('formula', '?'):10} {group:14} {str(s.get('enantiomer') or '-'):14} "
            f"{s.get('protocol', '?'):11} {node.ctime:%Y-%m-%d %H:%M}"
        )


@main.command("show")
@click.argument("identifier")
@PROFILE_OPTION
@click.option("-T", "temperature", type=float, default=300.0, show_default=True, help="Temperature (K).")
@click.option("-r", "radius_nm", type=float, default=20.0, show_default=True, help="Radius (nm).")
def show_command(identifier, profile, temperature, radius_nm):
    """Every stored response quantity at (T, r) with its unit, and the run's settings."""
    _load(profile)
    from aiida_llpam.quantities import summary_lines
    from aiida_llpam.tools.results import gather, grid_indices, imaginary_mode_warnings

    node = _workchain(identifier)
    data, _ = gather(node)
    response, s = data["response"], data["settings"]
    it, ir = grid_indices(response, temperature, radius_nm * 1e-9)
    click.echo(f"PamWorkChain<{node.pk}> {s.get('formula')} {s.get('space_group')} ({s.get('space_group_number')}), "
               f"enantiomer {s.get('enantiomer')}, handedness {s.get('handedness')}, protocol {s.get('protocol')}")
    if data["predates_v2"]:
        click.echo("NOTE: this run predates physics v2 (THEORY.md version 2): its stored eta is the paper's "
                   "1/(1 - gamma^LL), shown as eta_paper; the free-sample eta, the gamma^NL tensor and the "
                   "magnetisation were not computed. Recompute with workflows/recompute_response.py.")
    if s.get("protocol") == "smoke":
        click.echo("NOTE: smoke protocol: force constants from Gamma alone, not physical quartz (a test of the machinery).")
    for warning in imaginary_mode_warnings(response, data["path"], data["acoustic"]):
        click.echo(f"WARNING: {warning}")
    for line in _quality_lines(node, data):
        click.echo(line)
    click.echo(f"at T = {response['temperatures_k'][it]:g} K, r = {response['radii_m'][ir] * 1e9:.4g} nm:")
    for line in summary_lines(response, it, ir):
        click.echo(line)
    click.echo("settings:")
    for key in ("tau_s", "grad_t_k_m", "mesh", "frequency_cutoff_thz", "degeneracy_tolerance_thz", "ecutwfc_ry",
                "ecutrho_ry", "kpoints_mesh", "qpoints_mesh", "relaxed", "point_group", "sohncke", "symprec_angstrom"):
        if key in s:
            click.echo(f"  {key:26s} {s[key]}")


def _quality_lines(node, data) -> list[str]:
    """Sum rules, the acoustic region and the k-mesh convergence of a run, with the headline sums +- their k-mesh uncertainty."""
    from aiida_llpam.physics.convergence import TRACKED
    from aiida_llpam.physics.units import THZ_TO_CM
    from aiida_llpam.quantities import QUANTITIES

    lines = []
    record = node.outputs.force_constants.base.attributes.get("sum_rules", None)
    if record is None or not record["rotational_invariance"]:
        lines.append("sum rules: ASR only (no rotational invariance): expect an imaginary TA pocket next to Gamma")
    else:
        lines.append(f"sum rules: Born-Huang residual {record['born_huang_before']:.2e} -> {record['born_huang_after']:.1e} Ry/bohr "
                     f"(unfolding x{record['factor']}, every DFPT dynamical matrix kept)")  # fmt: skip
    acoustic = data["acoustic"]
    if acoustic:
        v = acoustic["sound_velocities_m_s"] / 1e3
        lines.append(f"acoustic region: lowest frequency {acoustic['path_lowest_frequency_thz'] * THZ_TO_CM:.2f} cm^-1 on the path, "
                     f"{acoustic['near_gamma_lowest_frequency_thz'] * THZ_TO_CM:.2f} cm^-1 next to Gamma, "
                     f"{int(acoustic['num_imaginary_modes'])} imaginary modes")  # fmt: skip
        lines.append(f"sound velocities (km/s, three lowest branches): along z {v[0].round(2).tolist()}, "
                     f"x {v[1].round(2).tolist()}, y {v[2].round(2).tolist()}")  # fmt: skip
    response = data["response"]
    if "convergence_meshes" not in response:
        lines.append("k-mesh convergence: not stored in this run")
        return lines
    meshes = ["x".join(map(str, m)) for m in response["convergence_meshes"]]
    changes = response["convergence_max_relative_change"]
    if len(meshes) == 1:
        lines.append(f"k-mesh convergence: not checked (one mesh, {meshes[0]})")
        return lines
    state = "converged" if int(response["convergence_converged"]) else "NOT converged"
    lines.append(f"k-mesh convergence: {state} (tolerance {float(response['convergence_tolerance']):.1%}); meshes "
                 f"{', '.join(meshes)}; largest change per step {', '.join(f'{c:.1%}' for c in changes[1:])}")  # fmt: skip
    units = {q.name: q.unit for q in QUANTITIES if q.output == "convergence"}
    lines.append(f"headline sums at {float(response['convergence_temperature_k']):g} K on {meshes[-1]} "
                 "(+- the change of the last k-mesh step):")  # fmt: skip
    for name in TRACKED:
        column = response[f"convergence_{name}"]
        lines.append(f"  {name:30s} {column[-1]:12.4e} +- {abs(column[-1] - column[-2]):.1e} {units[f'convergence_{name}']}")
    return lines


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
