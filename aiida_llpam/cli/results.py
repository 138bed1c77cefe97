"""``aiida-llpam list | show | figures | export``: stored results, read with QueryBuilder only."""

from __future__ import annotations

from pathlib import Path

import click

from aiida_llpam.workflows.protocols import UNPHYSICAL_PROTOCOLS

from . import main
from .figures import unphysical_warning, write_figures

PROFILE_OPTION = click.option("-p", "--profile", default=None, help="AiiDA profile (default: the default profile).")


def _load(profile):
    from aiida import load_profile

    try:
        load_profile(profile, allow_switch=True)
    except Exception as exc:  # noqa: BLE001 - any failure to load is reported as one line
        raise click.ClickException(f"cannot load AiiDA profile {profile or '(default)'}: {exc}") from None


def _workchain(identifier):
    from aiida_llpam.queries import ResultsError, load_pam_workchain

    try:
        return load_pam_workchain(identifier)
    except ResultsError as exc:
        raise click.ClickException(str(exc)) from None


@main.command("list")
@PROFILE_OPTION
def list_command(profile):
    """Finished PamWorkChains: PK, formula, space group, enantiomer, protocol, date."""
    _load(profile)
    from aiida_llpam.queries import finished_runs, run_settings

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
            + ("  (not physical)" if s.get("protocol") in UNPHYSICAL_PROTOCOLS else "")
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
    from aiida_llpam.queries import gather, sum_rules_record
    from aiida_llpam.report import grid_indices, imaginary_mode_warnings, quality_lines

    node = _workchain(identifier)
    data, _ = gather(node)
    response, s = data["response"], data["settings"]
    it, ir = grid_indices(response, temperature, radius_nm * 1e-9)
    click.echo(
        f"PamWorkChain<{node.pk}> {s.get('formula')} {s.get('space_group')} ({s.get('space_group_number')}), "
        f"enantiomer {s.get('enantiomer')}, handedness {s.get('handedness')}, protocol {s.get('protocol')}"
    )
    if "sohncke" in s:
        from aiida_llpam.physics.symmetry import response_symmetry_text

        click.echo(f"symmetry: {response_symmetry_text(s)}")
    if s.get("protocol") in UNPHYSICAL_PROTOCOLS:
        click.echo(f"NOTE: {UNPHYSICAL_PROTOCOLS[s['protocol']]} (a test of the machinery).")
    for warning in imaginary_mode_warnings(response, data["path"], data["acoustic"]):
        click.echo(f"WARNING: {warning}")
    for line in quality_lines(sum_rules_record(node), data):
        click.echo(line)
    for line in trust_lines(node):
        click.echo(line)
    for line in lifetimes_lines(node, response, it):
        click.echo(line)
    click.echo(f"at T = {response['temperatures_k'][it]:g} K, r = {response['radii_m'][ir] * 1e9:.4g} nm:")
    for line in summary_lines(response, it, ir):
        click.echo(line)
    click.echo("settings:")
    for key in (
        "tau_s",
        "grad_t_k_m",
        "mesh",
        "frequency_cutoff_thz",
        "degeneracy_tolerance_thz",
        "ecutwfc_ry",
        "ecutrho_ry",
        "kpoints_mesh",
        "qpoints_mesh",
        "relaxed",
        "point_group",
        "sohncke",
        "symprec_angstrom",
    ):
        if key in s:
            click.echo(f"  {key:26s} {s[key]}")


@main.command("figures")
@click.argument("identifier")
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--format", "fmt", type=click.Choice(["png", "pdf"]), default="png", show_default=True)
@PROFILE_OPTION
def figures_command(identifier, outdir, fmt, profile):
    """One file per panel of the paper (Fig. 2d-f, 3b-f), from stored nodes only."""
    _load(profile)
    try:
        paths = write_figures(_workchain(identifier), outdir, fmt)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for path in paths:
        click.echo(str(path))


@main.command("export")
@click.argument("identifier")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="results.h5")
@PROFILE_OPTION
def export_command(identifier, output, profile):
    """All arrays and settings in one HDF5 file (units and source UUIDs as attributes)."""
    _load(profile)
    from aiida_llpam.export.hdf5 import write_results_h5
    from aiida_llpam.queries import gather

    data, sources = gather(_workchain(identifier))
    click.echo(str(write_results_h5(output, data, sources, warning=unphysical_warning(data["settings"]))))


def trust_lines(node) -> list[str]:
    """The latest direct-DFPT check and error budget made for the run, where there are any."""
    from aiida_llpam.calculations.functions.error_budget import budget_from_node
    from aiida_llpam.calculations.nodes import read_output
    from aiida_llpam.cli.trust import held_out_verdict
    from aiida_llpam.queries import direct_dfpt_checks, error_budgets
    from aiida_llpam.report import direct_check_lines

    lines = []
    checks = direct_dfpt_checks(node)
    if checks:
        check = checks[-1]
        held_out, _, failed = held_out_verdict(node, check)
        lines += direct_check_lines(
            check.outputs.summary.get_dict(), read_output(check.outputs.table), held_out, failed
        )
    budgets = error_budgets(node)
    if budgets:
        budget = budgets[-1]
        lines.append(
            f"error budget at {budget.base.attributes.get('temperature_k'):g} K (% of each headline value; "
            f"ErrorBudget ArrayData<{budget.pk}>):"
        )
        lines += budget_from_node(budget).lines()
    return lines


#: the extra of a response run with lifetimes whose force constants turned out not to be the RTA's fc2
#: (``run_lifetimes``); ``show`` prints it before the lifetimes' numbers
REFUSED_EXTRA = "llpam_lifetimes_refused"


def lifetimes_lines(node, response: dict, it: int) -> list[str]:
    """With mode-resolved lifetimes: the thermal conductivity of their RTA beside the effective tau at temperature
    index ``it``, and every comparison of that kappa with measured values."""
    import numpy as np

    from aiida_llpam.physics.lifetimes import SPLIT_BOUNDS_CM, frequency_split, read_kappa, uniaxial_kappa
    from aiida_llpam.queries import kappa_comparisons, response_lifetimes

    found = response_lifetimes(node)
    if found is None:
        return []
    _, kappa_file = found
    refused = node.base.extras.get(REFUSED_EXTRA, None)
    refusal = [f"lifetimes: REFUSED, {refused}; the numbers below are not the lifetimes' phonons"] if refused else []
    temperature = response["temperatures_k"][it]
    with kappa_file.open(mode="rb") as handle:
        rta = read_kappa(handle)
    temperatures, kappa = rta.temperatures_k, rta.kappa_w_mk
    if not temperatures[0] <= temperature <= temperatures[-1]:
        return [f"lifetimes: the RTA of {kappa_file.filename} ran at {temperatures[0]:g}-{temperatures[-1]:g} K"]
    perpendicular, parallel = (np.interp(temperature, temperatures, k) for k in uniaxial_kappa(kappa))
    lines = refusal + [
        f"lifetimes (RTA kappa of {kappa_file.filename}, SinglefileData<{kappa_file.pk}>) at {temperature:g} K: "
        f"kappa {perpendicular:.3g} W/(m K) perpendicular to c, {parallel:.3g} along c; effective tau "
        f"{response['tau_effective_nl_s'][it] * 1e12:.3g} ps (gamma^NL_zz), "
        f"{response['tau_effective_m_s'][it] * 1e12:.3g} ps (gamma^M)"
    ]
    low, high = SPLIT_BOUNDS_CM
    parts = [
        frequency_split(response["cumulative_frequency_thz"], response[name][it])
        for name in ("cumulative_gamma_nl_zz", "cumulative_gamma_nl_zz_tau_modes")
    ]
    lines.append(
        f"  gamma^NL_zz by mode frequency, constant tau | tau_ks (J s K^-1 m^-2): below {low:g} cm^-1 "
        f"{parts[0][0]:.3g} | {parts[1][0]:.3g}, {low:g}-{high:g} cm^-1 {parts[0][1]:.3g} | {parts[1][1]:.3g}, "
        f"above {parts[0][2]:.3g} | {parts[1][2]:.3g}"
    )
    for comparison in kappa_comparisons(kappa_file):
        lines.extend(comparison_lines(comparison))
    return lines


def comparison_lines(comparison) -> list[str]:
    """A stored comparison of kappa with measured values (calcfunction ``kappa_comparison``): one line per
    measured temperature, then the exponents of the diffusivity where it holds them."""
    c = comparison.get_dict()
    lines = [f"  kappa computed/measured W/(m K) (ratio), Dict<{comparison.pk}>, {c['source']}:"]
    for index, temperature in enumerate(c["temperatures_k"]):
        line = (
            f"    {temperature:g} K: perpendicular to c {c['computed_perpendicular_w_mk'][index]:.3g}/"
            f"{c['measured_perpendicular_w_mk'][index]:.3g} ({c['ratio_perpendicular'][index]:.2f}), along c "
            f"{c['computed_parallel_w_mk'][index]:.3g}/{c['measured_parallel_w_mk'][index]:.3g} "
            f"({c['ratio_parallel'][index]:.2f})"
        )
        if "computed_anisotropy" in c:  # stored since 2026-12-04
            line += (
                f"; anisotropy along c / perpendicular {c['computed_anisotropy'][index]:.2f}/"
                f"{c['measured_anisotropy'][index]:.2f}"
            )
        lines.append(line)
    if "diffusivity" in c:
        lines.append("  " + _diffusivity_line(c["diffusivity"]))
        values = c["diffusivity"].get("values", {})
        for index, temperature in enumerate(values.get("temperatures_k", [])):
            lines.append(
                f"    D at {temperature:g} K, computed/measured mm^2/s (ratio): perpendicular to c "
                f"{values['computed_perpendicular_mm2_s'][index]:.3g}/{values['perpendicular_mm2_s'][index]:.3g} "
                f"({values['ratio_perpendicular'][index]:.2f}), along c {values['computed_parallel_mm2_s'][index]:.3g}/"
                f"{values['parallel_mm2_s'][index]:.3g} ({values['ratio_parallel'][index]:.2f})"
            )
    return lines


def _diffusivity_line(d: dict) -> str:
    """The computed exponents n of D ~ T^-n (kappa over the heat capacity) beside the measured ones."""
    t1, t2 = d["temperatures_k"]
    return (
        f"diffusivity D ~ T^-n, {t1:g}-{t2:g} K: n {d['computed_exponent_perpendicular']:.2f} perpendicular to c "
        f"(measured {d['exponent_perpendicular']:.3g}), {d['computed_exponent_parallel']:.2f} along c (measured "
        f"{d['exponent_parallel']:.3g}); {d['source']}"
    )
