"""The paper's figure panels (Fig. 2d-f, 3b-f) drawn from plain arrays (no AiiDA, no recomputation).

Every ``plot_*`` function takes the arrays of one stored node (see docs/workflow.md for
their names and units), writes one file and returns its path. Sizes follow a
single-column figure (3.4 in wide); fonts are 8-9 pt. Nothing is rescaled: where the
paper's contours (gamma^LL = 0.1, 0.5, 1) fall outside the computed range, the panel
says so instead. Figures are drawn as :mod:`aiida_llpam.plotting.style` says: no pyplot, no global state.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm, TwoSlopeNorm

from aiida_llpam.physics.acoustic import IMAGINARY_TOLERANCE_THZ
from aiida_llpam.physics.convergence import TRACKED
from aiida_llpam.physics.path import at_gamma
from aiida_llpam.physics.units import MU_0, THZ_TO_CM

from .style import WIDTH, new_figure, styled

CAPTIONS = {
    "fig2d_dispersion": "Fig. 2(d): phonon dispersion along the band path coloured by l^z",
    "dispersion_mu": "Phonon dispersion coloured by the magnetic moment mu^z (mu_N)",
    "fig2e_gamma_a_species": "Fig. 2(e): species-projected l^z of the lowest branch along Gamma-A",
    "fig2f_trajectories": "Fig. 2(f): real-space atomic trajectories of one mode (xy projection)",
    "fig3b_gamma_ll_map": "Fig. 3(b): gamma^LL over temperature and radius",
    "fig3c_gamma_ll_cut": "Fig. 3(c): gamma^LL(T) at one radius with D/OD parts; insets eta (free) and eta_paper",
    "fig3d_bz_diagonal": "Fig. 3(d): BZ-resolved diagonal contribution on k_z slices",
    "fig3e_bz_offdiagonal": "Fig. 3(e): BZ-resolved off-diagonal contribution on k_z slices",
    "fig3f_pam_density": (
        "Fig. 3(f): <L_z>(T) without L-L, with the free feedback (eta) and with the paper's (eta_paper)"
    ),
    "gamma_nl_tensor": "gamma^NL_xx and gamma^NL_zz against temperature",
    "magnetization": "<M_z>(T) for the stored dT/dz, with mu_0 <M_z> on the second axis",
    "kmesh_convergence": (
        "k-mesh convergence of the headline sums at the reference temperature (the `convergence` output)"
    ),
}
#: labels of the sums whose convergence is tracked (aiida_llpam.physics.convergence.TRACKED)
SYMBOLS = {
    "gamma_nl_zz": r"$\gamma^{NL}_{zz}$",
    "chi_diagonal": r"$\chi_D$",
    "chi_offdiagonal_interband": r"$\chi_{OD,N}$",
    "chi_offdiagonal_pair": r"$\chi_{OD,P}$",
    "gamma_m": r"$\gamma^M$",
}


def _save(fig, path: Path, panel: str, sources: dict | None, warning: str | None) -> Path:
    """``fig`` written to ``path`` with its sidecar ``path.json`` (panel, caption, sources); ``warning``, e.g. the
    smoke protocol's "NOT physical", is stamped in red over the panel and recorded in the sidecar."""
    if warning:
        fig.text(0.5, 1.0, warning, ha="center", va="bottom", color="red", fontsize=9, weight="bold")
    fig.savefig(path, bbox_inches="tight")
    sidecar = {"panel": panel, "caption": CAPTIONS[panel], "sources": sources or {}}
    if warning:
        sidecar["warning"] = warning
    Path(f"{path}.json").write_text(json.dumps(sidecar, indent=1) + "\n")
    return path


def _imaginary(path_data: dict, frequencies_cm: np.ndarray) -> np.ndarray:
    """Modes below the numerical zero (the acoustic region's tolerance), the acoustic triplet at Gamma left out."""
    imaginary = frequencies_cm < -IMAGINARY_TOLERANCE_THZ * THZ_TO_CM
    if "qpoints" in path_data:
        imaginary[at_gamma(path_data["qpoints"]), :3] = False
    return imaginary


@styled
def plot_dispersion(
    path_data: dict, out: Path, sources=None, colour: str = "l_z_hbar", warning: str | None = None
) -> Path:
    """Fig. 2(d): frequencies (cm^-1) along the path, each segment coloured by l^z (hbar) or mu^z (mu_N)."""
    x = path_data["distance"] * 1e-10  # 1/A
    freq = path_data["frequencies_thz"] * THZ_TO_CM
    lz = path_data[colour]
    fig, ax = new_figure((WIDTH, 2.6))
    scale = 1.0 if colour == "l_z_hbar" else max(float(np.nanmax(np.abs(lz))), 1e-12)
    norm = TwoSlopeNorm(vmin=-scale, vcenter=0.0, vmax=scale)
    for s in range(freq.shape[1]):
        points = np.stack([x, freq[:, s]], axis=1)
        segments = np.stack([points[:-1], points[1:]], axis=1)
        lines = LineCollection(segments, cmap="coolwarm", norm=norm, linewidths=1.0)
        lines.set_array(0.5 * (lz[:-1, s] + lz[1:, s]))
        ax.add_collection(lines)
    ticks = [(x[int(i)], label) for i, label in path_data["labels"]]
    for position, _ in ticks:
        ax.axvline(position, color="0.7", lw=0.5)
    ax.set_xticks([t[0] for t in ticks], [t[1].replace("Gamma", r"$\Gamma$") for t in ticks])
    ax.set_xlim(x[0], x[-1])
    ax.set_ylim(min(0.0, freq.min()) - 10, freq.max() * 1.03)
    ax.set_ylabel(r"Frequency (cm$^{-1}$)")
    imaginary = _imaginary(path_data, freq)
    if imaginary.any():
        ax.text(
            0.01,
            0.01,
            f"imaginary modes: lowest {freq[imaginary].min():.2f} cm$^{{-1}}$",
            transform=ax.transAxes,
            fontsize=6,
            color="r",
        )
    label = r"$l^z$ ($\hbar$)" if colour == "l_z_hbar" else r"$\mu^z$ ($\mu_N$)"
    fig.colorbar(lines, ax=ax, pad=0.02, label=label)
    return _save(fig, out, "fig2d_dispersion" if colour == "l_z_hbar" else "dispersion_mu", sources, warning)


@styled
def plot_gamma_a_species(gamma_a: dict, out: Path, sources=None, warning: str | None = None) -> Path:
    """Fig. 2(e): l^z of one branch along Gamma-A, total and per species."""
    fig, ax = new_figure((WIDTH, 2.3))
    kz = gamma_a["kz_c_star"]
    for i, species in enumerate(gamma_a["species"]):
        ax.plot(kz, gamma_a["l_z_species_hbar"][:, i], lw=1.2, label=species)
    ax.plot(kz, gamma_a["l_z_hbar"], "k-", lw=1.5, label="total")
    ax.axhline(0, color="0.6", lw=0.5)
    ax.set_xlim(0, 0.5)
    ax.set_xlabel(r"$k_z$ ($c^*$), $\Gamma$ to A")
    ax.set_ylabel(r"$l^z$ ($\hbar$)")
    ax.set_title(f"branch {int(gamma_a.get('branch', 0))} (lowest = 0)", fontsize=8)
    ax.legend(frameon=False)
    return _save(fig, out, "fig2e_gamma_a_species", sources, warning)


@styled
def plot_trajectories(trajectory: dict, out: Path, sources=None, warning: str | None = None) -> Path:
    """Fig. 2(f): xy projection of each atom's ellipse, start phase and sense of rotation."""
    pos = trajectory["positions_m"] * 1e10  # A
    eq = trajectory["equilibrium_m"] * 1e10
    symbols = list(trajectory["symbols"])
    colours = {s: c for s, c in zip(dict.fromkeys(symbols), ("tab:blue", "tab:red", "tab:green", "tab:orange"))}
    scale = 0.5 / max(np.abs(pos - eq[None]).max(), 1e-30)  # draw displacements enlarged for visibility
    fig, ax = new_figure((WIDTH, WIDTH))
    for atom, symbol in enumerate(symbols):
        path = eq[atom, :2] + scale * (pos[:, atom, :2] - eq[atom, :2])
        ax.plot(path[:, 0], path[:, 1], color="purple", lw=0.8)
        ax.plot(*path[0], "o", color="red", ms=3)
        step = max(1, len(path) // 8)
        ax.annotate("", xy=path[step], xytext=path[0], arrowprops={"arrowstyle": "-|>", "color": "blue", "lw": 0.8})
        ax.plot(*eq[atom, :2], "o", color=colours[symbol], ms=7 if symbol == "Si" else 5, alpha=0.6)
        sense = "+" if trajectory["l_z_atom_hbar"][atom] > 0 else "-"
        ax.text(eq[atom, 0] + 0.15, eq[atom, 1] + 0.15, f"{symbol}{atom + 1} {sense}", fontsize=6)
    ax.set_aspect("equal")
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    q = trajectory.get("q_reduced", [0, 0, 0])
    ax.set_title(
        f"k = ({q[0]:g}, {q[1]:g}, {q[2]:g}), branch {int(trajectory.get('branch', 0))}, "
        f"l = {float(trajectory.get('l_z_hbar', np.nan)):+.2f} ħ\n"
        f"displacements x{scale:.0f} (display only); +/- = sense of rotation about z",
        fontsize=7,
    )
    return _save(fig, out, "fig2f_trajectories", sources, warning)


@styled
def plot_gamma_ll_map(
    response: dict, out: Path, sources=None, cut_radius_m: float = 20e-9, warning: str | None = None
) -> Path:
    """Fig. 3(b): gamma^LL on (T, r), log colour scale, contours 0.1/0.5/1 where they exist."""
    t, r = response["temperatures_k"], response["radii_m"]
    g = response["gamma_ll"]
    fig, ax = new_figure((WIDTH, 2.7))
    positive = g[g > 0]
    mesh = ax.pcolormesh(
        t, r * 1e9, g.T, norm=LogNorm(positive.min(), positive.max()), cmap="viridis", shading="nearest"
    )
    levels = [v for v in (0.1, 0.5, 1.0) if g.min() < v < g.max()]
    if levels:
        contours = ax.contour(t, r * 1e9, g.T, levels=levels, colors="w", linewidths=[0.6] * (len(levels) - 1) + [1.5])
        ax.clabel(contours, fontsize=6, fmt="%g")
    else:
        ax.text(
            0.02,
            0.03,
            "gamma^LL = 0.1, 0.5, 1 lie outside the computed range",
            transform=ax.transAxes,
            color="w",
            fontsize=6,
        )
    ax.plot(
        t,
        response["r_paper_m"] * 1e9,
        "r-",
        lw=1.2,
        label=r"$\gamma^{LL}=1$ ($r_{paper}$: the paper's $\eta$ diverges)",
    )
    ax.axhline(cut_radius_m * 1e9, color="w", ls="--", lw=0.8)
    ax.set_yscale("log")
    ax.set_ylim(min(r.min(), response["r_paper_m"].min()) * 1e9, max(r.max(), 20e-9) * 1e9)
    ax.set_xlabel("Temperature (K)")
    ax.set_ylabel("Radius r (nm)")
    ax.legend(loc="upper left", frameon=False, fontsize=6, labelcolor="w")
    fig.colorbar(mesh, ax=ax, pad=0.02, label=r"$\gamma^{LL}$")
    return _save(fig, out, "fig3b_gamma_ll_map", sources, warning)


def _radius_index(radii_m: np.ndarray, radius_m: float) -> int:
    return int(np.argmin(np.abs(np.log(radii_m / radius_m))))


@styled
def plot_gamma_ll_cut(
    response: dict, out: Path, sources=None, radius_m: float = 20e-9, warning: str | None = None
) -> Path:
    """Fig. 3(c): gamma^LL(T) at one radius with D and OD parts; insets eta - 1 (free) and eta_paper - 1."""
    j = _radius_index(response["radii_m"], radius_m)
    t = response["temperatures_k"]
    fig, ax = new_figure((WIDTH, 2.5))
    ax.plot(t, response["gamma_ll"][:, j], "k-", lw=1.5, label="total")
    ax.plot(t, response["gamma_ll_diagonal"][:, j], "b--", lw=1.0, label="diagonal (D)")
    ax.plot(t, response["gamma_ll_offdiagonal"][:, j], "r-.", lw=1.0, label="off-diagonal (OD)")
    ax.set_yscale("log")
    top = np.nanmax(response["gamma_ll"][:, j])
    ax.set_ylim(top=top * 1e6)  # head room for the insets above the curves
    ax.set_xlabel("Temperature (K)")
    ax.set_ylabel(r"$\gamma^{LL}$")
    ax.set_title(f"r = {response['radii_m'][j] * 1e9:.3g} nm", fontsize=8)
    ax.legend(frameon=False, loc="lower right")
    for position, name, title in (
        ([0.1, 0.56, 0.32, 0.2], "eta", r"$\eta - 1$, free: $1/(1+\gamma^{LL})$"),
        ([0.6, 0.56, 0.32, 0.2], "eta_paper", r"$\eta_{paper} - 1$: $1/(1-\gamma^{LL})$"),
    ):
        inset = ax.inset_axes(position)
        inset.plot(t, response[name][:, j] - 1.0, "g-" if name == "eta" else "m-", lw=1.0)
        inset.set_title(title, fontsize=5.5)
        inset.tick_params(labelsize=5)
        inset.yaxis.get_offset_text().set_fontsize(5)
    return _save(fig, out, "fig3c_gamma_ll_cut", sources, warning)


@styled
def plot_bz_slices(
    bz: np.ndarray,
    kz: np.ndarray,
    out: Path,
    panel: str,
    label: str,
    sources=None,
    nslices: int = 4,
    warning: str | None = None,
) -> Path:
    """Fig. 3(d, e): per-k contributions on k_z slices (own colour scale per panel)."""
    order = np.argsort(kz)
    chosen = order[np.round(np.linspace(len(order) // 2, len(order) - 1, min(nslices, len(order)))).astype(int)]
    fig, axes = new_figure((WIDTH * 1.6, 1.9), ncols=len(chosen), squeeze=False, sharey=True)
    vmax = bz.max()
    n1, n2 = bz.shape[:2]
    # after fftshift pixel i sits at k = (i - n//2)/n: put pixel centres there, Gamma at the origin
    extent = (-(n1 // 2 + 0.5) / n1, (n1 - n1 // 2 - 0.5) / n1, -(n2 // 2 + 0.5) / n2, (n2 - n2 // 2 - 0.5) / n2)
    for ax, index in zip(axes[0], chosen):
        image = ax.imshow(
            np.fft.fftshift(bz[:, :, index], axes=(0, 1)).T,
            origin="lower",
            cmap="magma",
            vmin=0,
            vmax=vmax,
            extent=extent,
        )
        ax.set_title(f"$k_z$ = {kz[index]:+.2f} $c^*$", fontsize=7)
        ax.set_xlabel(r"$k_1$ ($b_1$)", fontsize=7)
        ax.set_xticks([-0.5, 0.0, 0.5], ["-½", "0", "½"])
        ax.set_yticks([-0.5, 0.0, 0.5], ["-½", "0", "½"])
        ax.tick_params(labelsize=6)
    axes[0][0].set_ylabel(r"$k_2$ ($b_2$)", fontsize=7)
    fig.colorbar(image, ax=axes[0].tolist(), pad=0.02, label=label)
    return _save(fig, out, panel, sources, warning)


@styled
def plot_pam_density(
    response: dict, out: Path, sources=None, radii_nm=(18.0, 20.0), warning: str | None = None
) -> Path:
    """Fig. 3(f): |<L_z>|(T) without feedback (black), with the free feedback eta and with the paper's eta_paper."""
    t, radii = response["temperatures_k"], response["radii_m"]
    fig, ax = new_figure((WIDTH, 2.5))
    ax.plot(t, np.abs(response["pam_density_bare"]), "k-", lw=1.8, label="without L-L")
    for j in dict.fromkeys(_radius_index(radii, r * 1e-9) for r in radii_nm):
        radius = f"r = {radii[j] * 1e9:.3g} nm"
        ax.plot(t, np.abs(response["pam_density_total"][:, j]), "--", lw=1.0, label=f"free, {radius}")
        ax.plot(t, np.abs(response["pam_density_paper"][:, j]), ":", lw=1.0, label=f"paper's sign, {radius}")
    shift = np.nanmax(np.abs(response["eta"][:, [_radius_index(radii, r * 1e-9) for r in radii_nm]] - 1.0))
    ax.text(0.03, 0.04, f"max |eta - 1| at r >= {min(radii_nm):g} nm: {shift:.1e}", transform=ax.transAxes, fontsize=6)
    ax.set_yscale("log")
    ax.set_xlabel("Temperature (K)")
    ax.set_ylabel(r"$|\langle L_z\rangle|$ (J s m$^{-3}$)")
    ax.legend(frameon=False, fontsize=5, loc="center right")
    return _save(fig, out, "fig3f_pam_density", sources, warning)


@styled
def plot_gamma_nl_tensor(response: dict, out: Path, sources=None, warning: str | None = None) -> Path:
    """gamma^NL_xx and gamma^NL_zz (J s K^-1 m^-2) against T."""
    t, g = response["temperatures_k"], response["gamma_nl"]
    fig, ax = new_figure((WIDTH, 2.3))
    ax.plot(t, g[:, 0, 0], "b-", lw=1.2, label=r"$\gamma^{NL}_{xx}$")
    ax.plot(t, g[:, 2, 2], "k-", lw=1.5, label=r"$\gamma^{NL}_{zz}$ (the paper's)")
    ax.axhline(0, color="0.6", lw=0.5)
    ax.set_xlabel("Temperature (K)")
    ax.set_ylabel(r"$\gamma^{NL}$ (J s K$^{-1}$ m$^{-2}$)")
    ax.legend(frameon=False)
    return _save(fig, out, "gamma_nl_tensor", sources, warning)


@styled
def plot_magnetization(response: dict, out: Path, sources=None, warning: str | None = None) -> Path:
    """<M_z>^NL(T) in A/m with mu_0 <M_z> in T on a second axis."""
    t, m = response["temperatures_k"], response["magnetization_bare"]
    fig, ax = new_figure((WIDTH, 2.3))
    ax.plot(t, m, "k-", lw=1.5)
    ax.axhline(0, color="0.6", lw=0.5)
    ax.set_xlabel("Temperature (K)")
    ax.set_ylabel(r"$\langle M_z\rangle$ (A/m)")
    second = ax.secondary_yaxis("right", functions=(lambda a: a * MU_0 * 1e6, lambda b: b / (MU_0 * 1e6)))
    second.set_ylabel(r"$\mu_0\langle M_z\rangle$ ($\mu$T)")
    return _save(fig, out, "magnetization", sources, warning)


@styled
def plot_kmesh_convergence(arrays: dict, out: Path, sources=None, warning: str | None = None) -> Path:
    """The k-mesh convergence of one response: each tracked sum relative to the last mesh, and the largest
    relative step, against N (k points per axis); the ``convergence_*`` arrays of one ``convergence`` node."""
    meshes = np.asarray(arrays["convergence_meshes"])
    n = meshes[:, 0]
    fig, (top, bottom) = new_figure((WIDTH, 4.2), nrows=2, sharex=True)
    for name in TRACKED:
        values = np.asarray(arrays[f"convergence_{name}"], dtype=float)
        if np.all(np.isfinite(values)) and values[-1] != 0:  # gamma_m is NaN without Born charges
            top.plot(n, values / values[-1] - 1.0, marker="o", ms=3, lw=0.8, label=SYMBOLS[name])
    top.axhline(0.0, color="0.6", lw=0.5)
    top.set_ylabel(f"value / value(N={n[-1]}) - 1")
    top.legend(frameon=False)
    tolerance = float(arrays["convergence_tolerance"])
    bottom.semilogy(
        n[1:], np.asarray(arrays["convergence_max_relative_change"])[1:], marker="o", ms=3, lw=0.8, color="k"
    )
    bottom.axhline(tolerance, color="tab:red", lw=0.8, ls="--", label=f"tolerance {tolerance:.0%}")
    bottom.set_ylabel("largest relative change\nfrom the previous mesh")
    bottom.set_xlabel("N (k points per axis, N x N x N mesh)")
    bottom.set_xticks(n)
    bottom.legend(frameon=False)
    top.set_title(f"k-mesh convergence at {float(arrays['convergence_temperature_k']):.0f} K", fontsize=8)
    fig.tight_layout()
    return _save(fig, out, "kmesh_convergence", sources, warning)


def write_all_panels(
    data: dict, outdir, fmt: str = "png", sources: dict | None = None, warning: str | None = None
) -> dict[str, Path]:
    """Every panel from ``data`` = {"path", "gamma_a", "trajectory", "response"} (dicts of arrays, see
    aiida_llpam.queries.gather) as ``outdir/<panel>.<fmt>``, each stamped with ``warning`` if given (e.g. the smoke
    protocol's "NOT physical"); panel name -> file."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    sources = sources or {}
    response, from_response = data["response"], sources.get("response")

    def target(panel):
        return outdir / f"{panel}.{fmt}"

    panels = {
        "fig2d_dispersion": plot_dispersion(
            data["path"], target("fig2d_dispersion"), sources.get("path"), warning=warning
        ),
        "fig2e_gamma_a_species": plot_gamma_a_species(
            data["gamma_a"], target("fig2e_gamma_a_species"), sources.get("gamma_a"), warning=warning
        ),
        "fig2f_trajectories": plot_trajectories(
            data["trajectory"], target("fig2f_trajectories"), sources.get("trajectory"), warning=warning
        ),
        "fig3b_gamma_ll_map": plot_gamma_ll_map(response, target("fig3b_gamma_ll_map"), from_response, warning=warning),
        "fig3c_gamma_ll_cut": plot_gamma_ll_cut(response, target("fig3c_gamma_ll_cut"), from_response, warning=warning),
        "fig3d_bz_diagonal": plot_bz_slices(
            response["bz_chi_diagonal"],
            response["bz_kz_reduced"],
            target("fig3d_bz_diagonal"),
            "fig3d_bz_diagonal",
            r"$\chi_D$ per k (kg/m)",
            from_response,
            warning=warning,
        ),
        "fig3e_bz_offdiagonal": plot_bz_slices(
            response["bz_chi_offdiagonal"],
            response["bz_kz_reduced"],
            target("fig3e_bz_offdiagonal"),
            "fig3e_bz_offdiagonal",
            r"$\chi_{OD}$ per k (kg/m)",
            from_response,
            warning=warning,
        ),
        "fig3f_pam_density": plot_pam_density(response, target("fig3f_pam_density"), from_response, warning=warning),
        "gamma_nl_tensor": plot_gamma_nl_tensor(response, target("gamma_nl_tensor"), from_response, warning=warning),
    }
    if len(response.get("convergence_meshes", ())) > 1:  # runs made before the table, or on one mesh, have none
        panels["kmesh_convergence"] = plot_kmesh_convergence(
            response, target("kmesh_convergence"), from_response, warning=warning
        )
    # the magnetic panels need Born charges (every workflow run has them)
    if np.all(np.isfinite(response["magnetization_bare"])):
        panels["magnetization"] = plot_magnetization(response, target("magnetization"), from_response, warning=warning)
        panels["dispersion_mu"] = plot_dispersion(
            data["path"], target("dispersion_mu"), sources.get("path"), "mu_z_mu_n", warning=warning
        )
    return panels
