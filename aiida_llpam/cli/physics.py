"""``aiida-llpam modes`` and ``aiida-llpam response``: the physics engine without any AiiDA profile."""

from __future__ import annotations

import json
import math

import click
import numpy as np

from aiida_llpam.physics.units import THZ_TO_CM

from . import main


def _load_phonon(fc_path: str, nac_path: str | None, sum_rules: bool):
    """Build the phonopy object (with the workflow's rotational sum rules) or exit with a one-line error."""
    from aiida_llpam.physics import ForceConstantsError, Q2RFormatError, build_phonopy, read_q2r
    from aiida_llpam.physics.sum_rules import enforce_rotational_invariance

    try:
        fc = read_q2r(fc_path)
        nac = read_q2r(nac_path, read_ifc=False) if nac_path else None
        phonon = build_phonopy(fc, nac)
    except (Q2RFormatError, ForceConstantsError) as exc:
        raise click.ClickException(str(exc)) from None
    return enforce_rotational_invariance(phonon)[0] if sum_rules else phonon


def _parse_q(text: str) -> list[float]:
    try:
        q = [float(x) for x in text.replace(",", " ").split()]
    except ValueError:
        q = []
    if len(q) != 3 or not all(math.isfinite(x) for x in q):
        raise click.ClickException(f"--q: a q point is three numbers in reduced coordinates, got {text!r}")
    return q


FC_OPTION = click.option(
    "--fc",
    "fc_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="q2r.x force-constant file WITHOUT dipole subtraction (dyn files with the dielectric block removed).",
)
SUM_RULES_OPTION = click.option(
    "--sum-rules/--no-sum-rules",
    default=True,
    show_default=True,
    help="Born-Huang + Huang invariance by unfolding, as the workflow does (docs/theory.md); off: ASR only.",
)
NAC_OPTION = click.option(
    "--nac-fc",
    "nac_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="q2r.x file that carries eps/Z* (its IFCs are not used); switches on phonopy's Gonze NAC.",
)


@main.command("modes")
@FC_OPTION
@NAC_OPTION
@SUM_RULES_OPTION
@click.option(
    "--q", "qpoints", multiple=True, required=True, help='q point "qx qy qz" in reduced coordinates; repeatable.'
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def modes_command(fc_path, nac_path, sum_rules, qpoints, as_json):
    """Frequencies, l^z and v^z per branch (ascending frequency) at given q points."""
    from aiida_llpam.physics import compute_modes

    q = np.array([_parse_q(text) for text in qpoints])
    phonon = _load_phonon(fc_path, nac_path, sum_rules)
    modes = compute_modes(phonon, q)
    records = [
        {
            "q": q[i].tolist(),
            "frequencies_thz": modes.frequencies_thz[i].tolist(),
            "l_z_hbar": modes.l_z_hbar[i].tolist(),
            "group_velocity_z_m_s": modes.group_velocity_z_m_s[i].tolist(),
        }
        for i in range(len(q))
    ]
    if as_json:
        click.echo(json.dumps(records, indent=1))
        return
    for rec in records:
        click.echo(f"q = {rec['q']} (reduced)")
        click.echo(f"{'branch':>6} {'nu (THz)':>12} {'nu (cm-1)':>12} {'l_z (hbar)':>12} {'v_z (m/s)':>12}")
        for s, (nu, l, v) in enumerate(zip(rec["frequencies_thz"], rec["l_z_hbar"], rec["group_velocity_z_m_s"])):
            click.echo(f"{s:6d} {nu:12.5f} {nu * THZ_TO_CM:12.3f} {l:12.5f} {v:12.2f}")


@main.command("response")
@FC_OPTION
@NAC_OPTION
@SUM_RULES_OPTION
@click.option("--mesh", nargs=3, type=int, required=True, help="Gamma-centred k mesh for the sums, e.g. 12 12 12.")
@click.option("-T", "temperatures", multiple=True, type=float, required=True, help="Temperature in K; repeatable.")
@click.option("-r", "radii", multiple=True, type=float, required=True, help="Cylinder radius in m; repeatable.")
@click.option("--tau", type=float, required=True, help="Phonon relaxation time in s.")
@click.option("--grad-t", type=float, required=True, help="Temperature gradient dT/dz in K/m.")
@click.option(
    "--cutoff-thz",
    type=float,
    default=0.05,
    show_default=True,
    help="Modes below this frequency are left out of the sums.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print every response quantity of the registry as JSON (NaN as null)."
)
def response_command(fc_path, nac_path, sum_rules, mesh, temperatures, radii, tau, grad_t, cutoff_thz, as_json):
    """gamma^NL_ij, chi pieces, gamma^LL, eta (free and paper), <L_z>, gamma^M, <M_z> on a k mesh (SI units)."""
    from aiida_llpam.physics import ResponseSettings, response_from_settings
    from aiida_llpam.quantities import QUANTITIES, response_values, summary_lines

    try:  # the physics' own validation: one message naming the bad setting
        settings = ResponseSettings(
            temperatures_k=temperatures,
            radii_m=radii,
            tau_s=tau,
            grad_t_k_m=grad_t,
            mesh=mesh,
            frequency_cutoff_thz=cutoff_thz,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    res = response_from_settings(_load_phonon(fc_path, nac_path, sum_rules), settings)
    values = response_values(res)
    if as_json:
        data = {"settings": settings.as_dict(), "units": {q.name: q.unit for q in QUANTITIES if q.name in values}}
        data.update({name: _json_ready(value) for name, value in values.items()})
        click.echo(json.dumps(data, indent=1))
        return
    values.update(temperatures_k=res.temperatures_k, radii_m=res.radii_m)
    click.echo(f"k mesh {res.mesh}, tau = {tau:g} s, dT/dz = {grad_t:g} K/m")
    for it, t in enumerate(res.temperatures_k):
        for ir, r in enumerate(res.radii_m):
            click.echo(f"T = {t:g} K, r = {r:.4g} m")
            for line in summary_lines(values, it, ir):
                click.echo(line)


def _json_ready(value):
    """Nested lists with NaN as null (JSON has no NaN)."""
    array = np.asarray(value, dtype=float)
    return (
        np.where(np.isfinite(array), array, None).tolist()
        if array.ndim
        else (float(array) if np.isfinite(array) else None)
    )
