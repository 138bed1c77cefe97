"""``aiida-llpam modes`` and ``aiida-llpam response``: the physics engine without any AiiDA profile."""

from __future__ import annotations

import json
import math

import click
import numpy as np

from aiida_llpam.physics.units import THZ_TO_CM

from . import main


def _positive(name):
    def check(ctx, param, value):
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if v is not None and not (math.isfinite(v) and v > 0):
                raise click.ClickException(f"{param.opts[0]}: {name} must be > 0, got {v}")
        return value

    return check


def _mesh(ctx, param, value):
    if value is not None and min(value) <= 0:
        raise click.ClickException(f"--mesh: mesh numbers must be positive integers, got {' '.join(map(str, value))}")
    return value


def _load_phonon(fc_path: str, nac_path: str | None):
    """Build the phonopy object or exit with a one-line error naming the problem."""
    from aiida_llpam.physics import ForceConstantsError, Q2RFormatError, build_phonopy, read_q2r

    try:
        fc = read_q2r(fc_path)
        nac = read_q2r(nac_path, read_ifc=False) if nac_path else None
        return build_phonopy(fc, nac)
    except (Q2RFormatError, ForceConstantsError) as exc:
        raise click.ClickException(str(exc)) from None


def _parse_q(text: str) -> list[float]:
    try:
        q = [float(x) for x in text.replace(",", " ").split()]
    except ValueError:
        q = []
    if len(q) != 3 or not all(math.isfinite(x) for x in q):
        raise click.ClickException(f"--q: a q point is three numbers in reduced coordinates, got {text!r}")
    return q


FC_OPTION = click.option(
    "--fc", "fc_path", required=True, type=click.Path(dir_okay=False),
    help="q2r.x force-constant file WITHOUT dipole subtraction (dyn files with the dielectric block removed).",
)
NAC_OPTION = click.option(
    "--nac-fc", "nac_path", type=click.Path(dir_okay=False), default=None,
    help="q2r.x file that carries eps/Z* (its IFCs are not used); switches on phonopy's Gonze NAC.",
)


@main.command("modes")
@FC_OPTION
@NAC_OPTION
@click.option("--q", "qpoints", multiple=True, required=True, help='q point "qx qy qz" in reduced coordinates; repeatable.')
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def modes_command(fc_path, nac_path, qpoints, as_json):
    """Frequencies, l^z and v^z per branch (ascending frequency) at given q points."""
    from aiida_llpam.physics import compute_modes

    q = np.array([_parse_q(text) for text in qpoints])
    phonon = _load_phonon(fc_path, nac_path)
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
@click.option("--mesh", nargs=3, type=int, required=True, callback=_mesh, help="Gamma-centred k mesh for the sums, e.g. 12 12 12.")
@click.option("-T", "temperatures", multiple=True, type=float, required=True, callback=_positive("temperature"), help="Temperature in K; repeatable.")
@click.option("-r", "radii", multiple=True, type=float, required=True, callback=_positive("radius"), help="Cylinder radius in m; repeatable.")
@click.option("--tau", type=float, required=True, callback=_positive("tau"), help="Phonon relaxation time in s.")
@click.option("--grad-t", type=float, required=True, help="Temperature gradient dT/dz in K/m.")
@click.option("--cutoff-thz", type=float, default=0.05, show_default=True, callback=_positive("frequency cutoff"), help="Modes below this frequency are left out of the sums.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def response_command(fc_path, nac_path, mesh, temperatures, radii, tau, grad_t, cutoff_thz, as_json):
    """gamma^NL, chi pieces, gamma^LL, eta, r_c and <L_z> on a k mesh (SI units)."""
    from aiida_llpam.physics import compute_response

    if not math.isfinite(grad_t):
        raise click.ClickException(f"--grad-t: temperature gradient must be finite, got {grad_t}")
    phonon = _load_phonon(fc_path, nac_path)
    res = compute_response(phonon, mesh, temperatures, radii, tau, grad_t, frequency_cutoff_thz=cutoff_thz)

    def nested(a):
        return [[None if not np.isfinite(x) else float(x) for x in row] for row in a]

    data = {
        "temperatures_k": res.temperatures_k.tolist(),
        "radii_m": res.radii_m.tolist(),
        "mesh": list(res.mesh),
        "tau_s": res.tau_s,
        "grad_t_k_m": res.grad_t_k_m,
        "gamma_nl": res.gamma_nl.tolist(),
        "chi_diagonal": res.chi_diagonal.tolist(),
        "chi_offdiagonal_interband": res.chi_offdiagonal_interband.tolist(),
        "chi_offdiagonal_pair": res.chi_offdiagonal_pair.tolist(),
        "chi_zero_point": res.chi_zero_point.tolist(),
        "critical_radius_m": res.critical_radius_m.tolist(),
        "gamma_ll": nested(res.gamma_ll),
        "eta": nested(res.eta),
        "pam_density_bare": nested(res.pam_density_bare),
        "pam_density_total": nested(res.pam_density_total),
        "mass_density_kg_m3": res.mass_density_kg_m3,
        "num_excluded_modes": res.num_excluded_modes,
    }
    if as_json:
        click.echo(json.dumps(data, indent=1))
        return
    click.echo(f"k mesh {res.mesh}, tau = {tau:g} s, dT/dz = {grad_t:g} K/m, rho = {res.mass_density_kg_m3:.1f} kg/m^3")
    click.echo(f"{'T (K)':>8} {'gamma_NL (J s/K/m^2)':>21} {'chi_D (kg/m)':>13} {'chi_OD,N':>11} {'chi_OD,P':>11} {'chi_ZP':>11} {'r_c (m)':>11}")
    for i, t in enumerate(res.temperatures_k):
        click.echo(
            f"{t:8.2f} {res.gamma_nl[i]:21.4e} {res.chi_diagonal[i]:13.4e} {res.chi_offdiagonal_interband[i]:11.4e} "
            f"{res.chi_offdiagonal_pair[i]:11.4e} {res.chi_zero_point[i]:11.4e} {res.critical_radius_m[i]:11.4e}"
        )
    click.echo(f"\n{'T (K)':>8} {'r (m)':>10} {'gamma_LL':>11} {'eta':>11} {'<L_z> bare':>12} {'<L_z> total':>12}  (J s m^-3)")
    for i, t in enumerate(res.temperatures_k):
        for j, r in enumerate(res.radii_m):
            click.echo(
                f"{t:8.2f} {r:10.3e} {res.gamma_ll[i, j]:11.4e} {res.eta[i, j]:11.4e} "
                f"{res.pam_density_bare[i, j]:12.4e} {res.pam_density_total[i, j]:12.4e}"
            )
