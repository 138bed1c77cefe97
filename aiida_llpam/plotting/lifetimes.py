"""The response with mode-resolved lifetimes beside the constant tau (issue 11), from stored nodes only."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .panels import WIDTH  # noqa: E402


def lifetimes_figure(node, out: Path) -> Path:
    """Four panels of a PamWorkChain whose response had lifetimes (output ``lifetimes_response``):
    |gamma^NL_zz|(T) and |gamma^M|(T) with both taus, the effective tau, the cumulative gamma^NL_zz over
    frequency at the BZ-map temperature, and tau_ks against frequency there."""
    lt = node.outputs.lifetimes_response
    temperatures = lt.get_array("temperatures_k")
    from aiida_llpam.queries import run_settings

    tau_s = run_settings(node)["tau_s"]
    gamma_nl = node.outputs.gamma_nl.get_array("gamma_nl_zz")
    gamma_m = node.outputs.magnetization.get_array("gamma_m")
    t_map = float(lt.base.attributes.get("bz_temperature_k"))
    it = int(np.argmin(np.abs(temperatures - t_map)))

    fig, axes = plt.subplots(2, 2, figsize=(2 * WIDTH, 1.6 * WIDTH))
    ax = axes[0, 0]
    ax.loglog(temperatures, np.abs(gamma_nl), "k-", label=rf"constant $\tau$ = {tau_s:.3g} s")
    ax.loglog(temperatures, np.abs(lt.get_array("gamma_nl_zz_tau_modes")), "C3-", label=r"$\tau_{ks}(T)$ (phono3py)")
    ax.loglog(temperatures, np.abs(gamma_m) * 1e-6, "k--", lw=0.8, label=r"$|\gamma^M|\times 10^{-6}$, constant")
    ax.loglog(
        temperatures,
        np.abs(lt.get_array("gamma_m_tau_modes")) * 1e-6,
        "C3--",
        lw=0.8,
        label=r"$|\gamma^M|\times 10^{-6}$, $\tau_{ks}$",
    )
    ax.set(xlabel="T (K)", ylabel=r"$|\gamma^{NL}_{zz}|$ (J s K$^{-1}$ m$^{-2}$), $|\gamma^M|$ (A/K)")
    ax.legend(frameon=False)

    ax = axes[0, 1]
    ax.loglog(temperatures, lt.get_array("tau_effective_nl_s"), "C3-", label=r"from $\gamma^{NL}_{zz}$")
    ax.loglog(temperatures, np.abs(lt.get_array("tau_effective_m_s")), "C0--", label=r"from $\gamma^M$")
    ax.axhline(tau_s, color="k", lw=0.8, label="constant tau of the run")
    ax.set(xlabel="T (K)", ylabel=r"effective $\tau$ (s)")
    ax.legend(frameon=False)

    ax = axes[1, 0]
    nu = lt.get_array("cumulative_frequency_thz")
    for name, style, label in (("cumulative_gamma_nl_zz", "k-", r"constant $\tau$"),
                               ("cumulative_gamma_nl_zz_tau_modes", "C3-", r"$\tau_{ks}$")):  # fmt: skip
        cumulative = lt.get_array(name)[it]
        ax.plot(nu, cumulative / cumulative[-1], style, label=label)
    ax.set(xlabel=r"$\nu$ (THz)", ylabel=rf"cumulative $\gamma^{{NL}}_{{zz}}$ / total at {temperatures[it]:g} K")
    ax.legend(frameon=False)

    ax = axes[1, 1]
    modes = node.outputs.mesh_modes
    tau_ps = lt.get_array("mesh_tau_ps")
    frequencies = modes.get_array("mesh_frequencies_thz")
    shown = np.isfinite(tau_ps)
    ax.semilogy(frequencies[shown], tau_ps[shown], ".", ms=2, color="C3")
    ax.axhline(tau_s * 1e12, color="k", lw=0.8)
    ax.set(xlabel=r"$\nu$ (THz)", ylabel=rf"$\tau_{{ks}}$ at {t_map:g} K (ps)")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
