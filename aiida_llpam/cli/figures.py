"""Figures of a stored run: its nodes read here (aiida_llpam.queries), drawn from arrays by aiida_llpam.plotting.

Plain functions for ``aiida-llpam figures`` and the ``verdi run`` scripts in workflows/; they raise ValueError.
"""

from __future__ import annotations

from pathlib import Path

from aiida_llpam.workflows.protocols import UNPHYSICAL_PROTOCOLS

#: outputs the panels are drawn from besides the response (optional outputs of a PamWorkChain)
FIGURE_OUTPUTS = ("dispersion", "gamma_a", "trajectory")


def unphysical_warning(settings: dict) -> str | None:
    """The note stamped on figures and exports of a run whose protocol gives unphysical numbers (smoke); else None."""
    return UNPHYSICAL_PROTOCOLS.get(settings.get("protocol"))


def write_figures(node, outdir, fmt: str = "png") -> list[Path]:
    """Every panel of the paper from ``node``'s (a finished PamWorkChain) stored outputs; the written files."""
    from aiida_llpam.plotting import write_all_panels
    from aiida_llpam.queries import gather

    missing = [name for name in FIGURE_OUTPUTS if name not in node.outputs]
    if missing:
        raise ValueError(f"{node.process_label}<{node.pk}> has no output {', '.join(missing)}: no figures can be drawn")
    data, sources = gather(node)
    panels = write_all_panels(data, outdir, fmt, sources, warning=unphysical_warning(data["settings"]))
    return list(panels.values()) + _direct_check_figures(node, Path(outdir), fmt)


def _direct_check_figures(node, outdir: Path, fmt: str) -> list[Path]:
    """The latest check of the run's model against direct DFPT, where it has one."""
    from aiida_llpam.calculations.nodes import read_output
    from aiida_llpam.plotting.direct_dfpt import plot_direct_check
    from aiida_llpam.queries import direct_dfpt_checks

    checks = direct_dfpt_checks(node)
    if not checks:
        return []
    check = checks[-1]
    sources = {"workchain": node.uuid, "direct_dfpt_check": check.uuid}
    return [plot_direct_check(read_output(check.outputs.table), outdir / f"direct_dfpt_check.{fmt}", sources)]


def write_lifetimes_figure(node, out) -> Path:
    """The lifetimes figure (aiida_llpam.plotting.lifetimes) of a PamWorkChain whose response took lifetimes."""
    from aiida_llpam.plotting.lifetimes import lifetimes_figure
    from aiida_llpam.queries import gather

    # tau_ks is drawn against the frequencies of the mesh modes, stored with the response setting store_mesh_modes
    missing = [name for name in ("lifetimes_response", "mesh_modes") if name not in node.outputs]
    if missing:
        raise ValueError(f"{node.process_label}<{node.pk}> has no output {', '.join(missing)}: no lifetimes figure")
    data, _ = gather(node)
    return lifetimes_figure(data["response"], data["settings"]["tau_s"], out)
