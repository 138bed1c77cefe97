"""Every number of docs/comparison.md, read from one stored PamWorkChain (no QE, no rescaling).

    verdi -p PROFILE run docs/comparison_numbers.py IDENTIFIER [-T 300] [-r 20] [--other-dfpt IDENTIFIER2]

IDENTIFIER: a PamWorkChain (e.g. of an imported fixtures/reference archive). The stored nodes give the
headline values; the per-branch split of gamma^NL_zz and gamma^M (which modes carry l and which carry mu)
is recomputed from the run's own force-constants node on its own k mesh, and must add up to the stored totals.
Uncertainties: the k-mesh one is the change of the last step of the run's `convergence` table; with
--other-dfpt (a run on another DFPT, e.g. the fast reference) the relative difference of the headline sums
between the two DFPTs is printed as well (the q-mesh / scf part).
"""

import argparse
import dataclasses

import numpy as np

from aiida_llpam.calculations.functions.phonopy_force_constants import phonopy_from_node
from aiida_llpam.physics import ResponseSettings, make_kmesh
from aiida_llpam.physics.convergence import TRACKED, MeshConvergence
from aiida_llpam.physics.modes import iter_modes
from aiida_llpam.physics.response import response_sums
from aiida_llpam.physics.units import HBAR, THZ_TO_CM
from aiida_llpam.queries import gather, load_pam_workchain
from aiida_llpam.report import grid_indices

#: the paper's numbers (arXiv:2603.25019 text; THEORY.md section 10)
PAPER = {"gamma_ll": 0.8, "eta": 5.0, "magnetization_a_m": (1.0, 10.0), "pam_per_cell_hbar": 0.5}
#: frequency bands (cm^-1) for the split by mode
BANDS = ((0.0, 60.0, "acoustic region (< 60 cm^-1)"), (60.0, 600.0, "60-600 cm^-1"), (600.0, 1e9, "> 600 cm^-1"))


def split_by_band(node, temperature_k: float) -> list[tuple[str, float, float]]:
    """(band, share of gamma^NL_zz, share of gamma^M): the response's own sums with only one band's modes kept."""
    settings = ResponseSettings.from_mapping(node.inputs.response.parameters.get_dict())
    settings = dataclasses.replace(settings, mesh=tuple(node.outputs.settings["mesh"]))  # the mesh the sums ended on
    phonon = phonopy_from_node(node.outputs.force_constants)
    kmesh = make_kmesh(settings.mesh, phonon.primitive_symmetry.pointgroup_operations, phonon.primitive.cell)
    totals = np.zeros((len(BANDS), 2))
    start = 0
    for modes in iter_modes(phonon, kmesh.ir_qpoints, 256):
        weights = kmesh.ir_weights[start : start + len(modes.qpoints)]
        start += len(modes.qpoints)
        wavenumber = modes.frequencies_thz * THZ_TO_CM
        for b, (low, high, _) in enumerate(BANDS):
            # modes outside the band get a negative frequency, which the sums leave out like unstable modes
            band = (wavenumber >= low) & (wavenumber < high)
            kept = dataclasses.replace(modes, frequencies_thz=np.where(band, modes.frequencies_thz, -1.0))
            sums = response_sums(kept, np.array([temperature_k]), settings.frequency_cutoff_thz)
            totals[b] += [weights @ sums["gamma_nl"][:, 2, 2, 0], weights @ sums["gamma_m"][:, 0]]
    shares = totals / totals.sum(axis=0)
    return [(label, shares[b, 0], shares[b, 1]) for b, (_, _, label) in enumerate(BANDS)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("identifier")
    parser.add_argument("-T", dest="temperature", type=float, default=300.0)
    parser.add_argument("-r", dest="radius_nm", type=float, default=20.0)
    parser.add_argument("--other-dfpt", help="a run on another DFPT: the headline sums' spread between the two")
    args = parser.parse_args(argv)

    node = load_pam_workchain(args.identifier)
    data, _ = gather(node)
    r, s = data["response"], data["settings"]
    it, ir = grid_indices(r, args.temperature, args.radius_nm * 1e-9)
    t, radius = r["temperatures_k"][it], r["radii_m"][ir]
    cell_volume = float(r["cell_volume_m3"])
    gamma_ll = r["gamma_ll"][it, ir]
    factor = PAPER["gamma_ll"] / gamma_ll
    rows = [
        (
            "run",
            f"PamWorkChain<{node.pk}> {node.uuid}, protocol {s.get('protocol')}, k mesh {s['mesh']}, "
            f"tau {s['tau_s']:g} s, dT/dz {s['grad_t_k_m']:g} K/m",
        ),
        ("T, r", f"{t:g} K, {radius * 1e9:.4g} nm"),
        ("gamma^NL_ij", np.array2string(r["gamma_nl"][it], precision=4)),
        (
            "gamma^NL_zz x V_c (J s K^-1 m)",
            f"{r['gamma_nl_zz'][it] * cell_volume:.4e}  (per primitive cell, V_c {cell_volume * 1e30:.2f} A^3)",
        ),
        (
            "chi_D, chi_OD,N, chi_OD,P (kg/m)",
            f"{r['chi_diagonal'][it]:.4e}, {r['chi_offdiagonal_interband'][it]:.4e}, "
            f"{r['chi_offdiagonal_pair'][it]:.4e}",
        ),
        (
            "OD / D",
            f"{(r['chi_offdiagonal_interband'][it] + r['chi_offdiagonal_pair'][it]) / r['chi_diagonal'][it]:.2f}",
        ),
        ("gamma^LL", f"{gamma_ll:.4e}  (paper {PAPER['gamma_ll']})"),
        ("eta (free)", f"{r['eta'][it, ir]:.10f}"),
        ("eta_paper", f"{r['eta_paper'][it, ir]:.10f}  (paper {PAPER['eta']})"),
        ("r_paper (nm)", f"{r['r_paper_m'][it] * 1e9:.4f}"),
        ("factor paper / computed gamma^LL", f"{factor:.3g} = ({factor ** (1 / 3):.0f})^3 k points"),
        ("<L_z>^NL (J s m^-3)", f"{r['pam_density_bare'][it]:.4e}"),
        (
            "<L_z>^NL per primitive cell (hbar)",
            f"{r['pam_density_bare'][it] * cell_volume / HBAR:.3e}  (paper ~{PAPER['pam_per_cell_hbar']})",
        ),
        ("gamma^M (A/K)", f"{r['gamma_m'][it]:.4e}"),
        (
            "<M_z>^NL (A/m)",
            f"{r['magnetization_bare'][it]:.4e}  "
            f"(paper {PAPER['magnetization_a_m'][0]}-{PAPER['magnetization_a_m'][1]})",
        ),
        ("mu_0 <M_z>^NL (T)", f"{r['mu0_magnetization_bare_t'][it]:.4e}"),
        ("chi_ML (A s/m)", f"{r['chi_ml_total'][it]:.4e}"),
        ("<M_z>^total - <M_z>^NL (A/m)", f"{r['magnetization_total'][it, ir] - r['magnetization_bare'][it]:.4e}"),
        (
            "imaginary modes on the mesh",
            f"{int(r['num_imaginary_modes'])} (lowest {float(r['lowest_frequency_thz']) * THZ_TO_CM:.2f} cm^-1)",
        ),
    ]
    for label, value in rows:
        print(f"{label:38s} {value}")
    print("\nheadline sums with their uncertainty (k mesh: last step of the convergence table):")
    other = gather(load_pam_workchain(args.other_dfpt))[0]["response"] if args.other_dfpt else None
    table = MeshConvergence.from_arrays(r)
    for name in TRACKED:
        column = table.values[name]
        step = abs(column[-1] / column[-2] - 1)
        line = f"  {name:28s} {column[-1]:.4e} +- {table.uncertainty(name):.1e} (k mesh {step:.1%})"
        if other is not None:
            other_value = other[f"convergence_{name}"][-1]
            line += f"; other DFPT {other_value:.4e} ({other_value / column[-1] - 1:+.1%})"
        print(line)
    acoustic = data["acoustic"]
    print(
        f"acoustic region: {int(acoustic['num_imaginary_modes'])} imaginary modes, lowest next to Gamma "
        f"{acoustic['near_gamma_lowest_frequency_thz'] * THZ_TO_CM:.2f} cm^-1; sound velocities (km/s) z, x, y: "
        f"{(acoustic['sound_velocities_m_s'] / 1e3).round(2).tolist()}"
    )
    print("\nshare of gamma^NL_zz and gamma^M by frequency band:")
    for label, share_l, share_mu in split_by_band(node, t):
        print(f"  {label:30s} gamma^NL_zz {share_l:+8.3f}   gamma^M {share_mu:+8.3f}")
    modes = r
    lz, mu, nu = modes["mesh_l_z_hbar"], modes["mesh_mu_z_mu_n"], modes["mesh_frequencies_thz"] * THZ_TO_CM
    for low, high, label in BANDS:
        band = (nu >= low) & (nu < high) & (nu > 1.0)
        print(
            f"  {label:30s} max |l^z| {np.abs(lz[band]).max():.3f} hbar, max |mu^z| {np.abs(mu[band]).max():.4f} mu_N"
        )


if __name__ == "__main__":
    main()
