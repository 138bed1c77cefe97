"""The response with mode-resolved lifetimes beside the constant tau (issue 11), drawn from plain arrays (no AiiDA)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .style import WIDTH, new_figure, styled


@styled
def lifetimes_figure(response: dict, tau_s: float, out: Path) -> Path:
    """Four panels of a response computed with lifetimes: |gamma^NL_zz|(T) and |gamma^M|(T) with both taus, the
    effective tau, the cumulative gamma^NL_zz over frequency at the BZ-map temperature, and tau_ks against frequency
    there.

    ``response``: response quantities by registry name (aiida_llpam.quantities; ``data["response"]`` of
    aiida_llpam.queries.gather for a run with a ``lifetimes_response`` output): ``temperatures_k``, ``gamma_nl_zz``,
    ``gamma_m``, ``mesh_frequencies_thz``, the ``lifetimes_response`` arrays and its ``bz_temperature_k``.
    ``tau_s``: the constant tau of the run (s).
    """
    temperatures = np.asarray(response["temperatures_k"])
    t_map = float(response["bz_temperature_k"])
    it = int(np.argmin(np.abs(temperatures - t_map)))

    fig, axes = new_figure((2 * WIDTH, 1.6 * WIDTH), nrows=2, ncols=2)
    ax = axes[0, 0]
    ax.loglog(temperatures, np.abs(response["gamma_nl_zz"]), "k-", label=rf"constant $\tau$ = {tau_s:.3g} s")
    ax.loglog(temperatures, np.abs(response["gamma_nl_zz_tau_modes"]), "C3-", label=r"$\tau_{ks}(T)$ (phono3py)")
    ax.loglog(
        temperatures, np.abs(response["gamma_m"]) * 1e-6, "k--", lw=0.8, label=r"$|\gamma^M|\times 10^{-6}$, constant"
    )
    ax.loglog(
        temperatures,
        np.abs(response["gamma_m_tau_modes"]) * 1e-6,
        "C3--",
        lw=0.8,
        label=r"$|\gamma^M|\times 10^{-6}$, $\tau_{ks}$",
    )
    ax.set(xlabel="T (K)", ylabel=r"$|\gamma^{NL}_{zz}|$ (J s K$^{-1}$ m$^{-2}$), $|\gamma^M|$ (A/K)")
    ax.legend(frameon=False)

    ax = axes[0, 1]
    # mode terms of both signs can make gamma^NL_zz with tau_ks, and so its effective tau, negative: its size is
    # drawn dotted there, not left off the log axis
    tau_nl = np.asarray(response["tau_effective_nl_s"], dtype=float)
    if np.any(tau_nl > 0):
        ax.loglog(temperatures, np.where(tau_nl > 0, tau_nl, np.nan), "C3-", label=r"from $\gamma^{NL}_{zz}$")
    if np.any(tau_nl < 0):
        ax.loglog(
            temperatures,
            np.where(tau_nl < 0, -tau_nl, np.nan),
            "C3:",
            label=r"from $\gamma^{NL}_{zz}$, negative: $|\tau|$",
        )
    ax.loglog(temperatures, np.abs(response["tau_effective_m_s"]), "C0--", label=r"from $\gamma^M$")
    ax.axhline(tau_s, color="k", lw=0.8, label="constant tau of the run")
    ax.set(xlabel="T (K)", ylabel=r"effective $\tau$ (s)")
    ax.legend(frameon=False)

    ax = axes[1, 0]
    nu = response["cumulative_frequency_thz"]
    for name, style, label in (
        ("cumulative_gamma_nl_zz", "k-", r"constant $\tau$"),
        ("cumulative_gamma_nl_zz_tau_modes", "C3-", r"$\tau_{ks}$"),
    ):
        cumulative = np.asarray(response[name])[it]
        ax.plot(nu, cumulative / cumulative[-1], style, label=label)
    ax.set(xlabel=r"$\nu$ (THz)", ylabel=rf"cumulative $\gamma^{{NL}}_{{zz}}$ / total at {temperatures[it]:g} K")
    ax.legend(frameon=False)

    ax = axes[1, 1]
    tau_ps = np.asarray(response["mesh_tau_ps"])
    frequencies = np.asarray(response["mesh_frequencies_thz"])
    shown = np.isfinite(tau_ps)
    ax.semilogy(frequencies[shown], tau_ps[shown], ".", ms=2, color="C3")
    ax.axhline(tau_s * 1e12, color="k", lw=0.8)
    ax.set(xlabel=r"$\nu$ (THz)", ylabel=rf"$\tau_{{ks}}$ at {t_map:g} K (ps)")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out
