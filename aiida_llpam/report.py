"""Report text of a run from what the queries return (arrays and dicts; no AiiDA import)."""

from __future__ import annotations

import numpy as np

from aiida_llpam.physics.convergence import TRACKED, MeshConvergence
from aiida_llpam.physics.direct_dfpt import CRITERIA
from aiida_llpam.physics.units import THZ_TO_CM
from aiida_llpam.quantities import QUANTITIES


def grid_indices(response: dict, temperature_k: float = 300.0, radius_m: float = 20e-9) -> tuple[int, int]:
    """Indices of the stored grid point nearest to (T, r)."""
    it = int(np.argmin(np.abs(response["temperatures_k"] - temperature_k)))
    ir = int(np.argmin(np.abs(np.log(response["radii_m"] / radius_m))))
    return it, ir


def imaginary_mode_warnings(response: dict, path: dict, acoustic: dict | None = None) -> list[str]:
    """What a run's diagnostics (``response``), band path (``path``) and acoustic check say about unstable modes.

    Any may be {}; ``acoustic`` (the output of that name, absent in runs made before it) also counts
    the modes next to Gamma, where a pocket can hide between path points.
    """
    warnings = []
    if int(response.get("num_imaginary_modes", 0)):
        lowest = float(response["lowest_frequency_thz"]) * THZ_TO_CM
        warnings.append(
            f"{int(response['num_imaginary_modes'])} imaginary modes on the k mesh (lowest {lowest:.2f} cm^-1), "
            "left out of the sums"
        )
    if acoustic and int(acoustic["num_imaginary_modes"]):
        path_min, near_min = (
            float(acoustic[key]) * THZ_TO_CM for key in ("path_lowest_frequency_thz", "near_gamma_lowest_frequency_thz")
        )
        warnings.append(
            f"{int(acoustic['num_imaginary_modes'])} imaginary modes on the band path and next to Gamma "
            f"(lowest {path_min:.2f} cm^-1 on the path, {near_min:.2f} cm^-1 within |q| < 0.05 bohr^-1)"
        )
    elif not acoustic and path.get("frequencies_thz") is not None and path["frequencies_thz"].min() < 0:
        warnings.append(
            f"imaginary frequencies on the band path (lowest {path['frequencies_thz'].min() * THZ_TO_CM:.2f} cm^-1)"
        )
    return warnings


def sum_rules_line(record: dict | None) -> str:
    """The sum rules of a force-constants node (its ``sum_rules`` attribute; None where it has none)."""
    acoustic = "ASR on site from ph.x's Gamma matrix" if (record or {}).get("acoustic") == "onsite" else "ASR"
    if record is None or not record["rotational_invariance"]:
        return f"sum rules: {acoustic} only (no rotational invariance): expect an imaginary TA pocket next to Gamma"
    matched = record.get("matched_qpoints", [])
    fitted = (
        f"; fitted to direct ph.x at {len(matched)} q points, largest misfit left "
        f"{record['match_residual_ry_bohr2']:.1e} Ry/bohr^2"
        if matched
        else ""
    )
    return (
        f"sum rules: {acoustic}; Born-Huang residual {record['born_huang_before']:.2e} -> "
        f"{record['born_huang_after']:.1e} Ry/bohr, Huang {record['huang_before']:.2e} -> {record['huang_after']:.1e} "
        f"Ry, largest IFC change {record['max_change_ry_bohr2']:.1e} Ry/bohr^2 (unfolding x{tuple(record['factor'])}, "
        f"every DFPT dynamical matrix kept{fitted})"
    )


def sound_velocities_line(acoustic: dict) -> str:
    """The sound velocities of an ``acoustic`` output, km/s, three lowest branches per direction."""
    v = np.asarray(acoustic["sound_velocities_m_s"]) / 1e3
    return (
        f"sound velocities (km/s, three lowest branches): along z {v[0].round(2).tolist()}, "
        f"x {v[1].round(2).tolist()}, y {v[2].round(2).tolist()}"
    )


def kmesh_convergence_line(table: dict) -> str:
    """State of a ``convergence`` output: the meshes summed and the change of each step."""
    meshes = ["x".join(map(str, m)) for m in table["convergence_meshes"]]
    if len(meshes) == 1:
        return f"k-mesh convergence: not checked (one mesh, {meshes[0]})"
    changes = table["convergence_max_relative_change"]
    state = "converged" if int(table["convergence_converged"]) else "NOT converged"
    untracked = sorted(set(TRACKED) - set(MeshConvergence.from_arrays(table).tracked))
    return (
        f"k-mesh convergence: {state} (tolerance {float(table['convergence_tolerance']):.1%}); meshes "
        f"{', '.join(meshes)}; largest change per step {', '.join(f'{c:.1%}' for c in changes[1:])}"
        + (f" ({', '.join(untracked)} zero by symmetry, not tracked)" if untracked else "")
    )


def quality_lines(record: dict | None, data: dict) -> list[str]:
    """Sum rules (``record``: the force constants' ``sum_rules`` attribute, None if it has none), the acoustic region
    and the k-mesh convergence of a run (``data``: :func:`aiida_llpam.queries.gather`), with the headline sums +- their
    k-mesh uncertainty."""
    lines = [sum_rules_line(record)]
    acoustic = data["acoustic"]
    if acoustic:
        lines.append(
            f"acoustic region: lowest frequency {acoustic['path_lowest_frequency_thz'] * THZ_TO_CM:.2f} cm^-1 "
            f"on the path, {acoustic['near_gamma_lowest_frequency_thz'] * THZ_TO_CM:.2f} cm^-1 next to Gamma, "
            f"{int(acoustic['num_imaginary_modes'])} imaginary modes"
        )
        lines.append(sound_velocities_line(acoustic))
    response = data["response"]
    if "convergence_meshes" not in response:
        lines.append("k-mesh convergence: not stored in this run")
        return lines
    lines.append(kmesh_convergence_line(response))
    if len(response["convergence_meshes"]) == 1:
        return lines
    meshes = ["x".join(map(str, m)) for m in response["convergence_meshes"]]
    units = {q.name: q.unit for q in QUANTITIES if q.output == "convergence"}
    lines.append(
        f"headline sums at {float(response['convergence_temperature_k']):g} K on {meshes[-1]} "
        "(+- the change of the last k-mesh step):"
    )
    table = MeshConvergence.from_arrays(response)
    for name in TRACKED:
        unit = units[f"convergence_{name}"]
        lines.append(f"  {name:30s} {table.values[name][-1]:12.4e} +- {table.uncertainty(name):.1e} {unit}")
    return lines


def direct_check_lines(
    summary: dict, table: dict, held_out: list[int] | None = None, failed: list[str] | None = None
) -> list[str]:
    """The model against direct DFPT at q points off the DFPT mesh (a ``direct_dfpt_check``'s outputs);
    ``held_out``: the points the model did not fit (None: all), ``failed``: the criteria it misses there."""
    held_out = list(range(len(table["qpoints"]))) if held_out is None else held_out
    lines = [
        f"model vs direct DFPT (ph.x at q off the DFPT mesh, on-site ASR from the raw Gamma matrix; raw Gamma "
        f"acoustic {', '.join(f'{f:.1f}' for f in table['gamma_asr_violation_cm'])} cm^-1):"
    ]
    for i, q in enumerate(table["qpoints"]):
        model, direct = table["model_frequencies_cm"][i], table["direct_frequencies_cm"][i]
        lines.append(
            f"  q = {np.round(q, 3).tolist()}: acoustic model {', '.join(f'{f:.2f}' for f in model[:3])} / direct "
            f"{', '.join(f'{f:.2f}' for f in direct[:3])} cm^-1; largest deviation "
            f"{summary['per_q_max_deviation_cm'][i]:.2f} cm^-1; TA splitting {table['model_ta_splitting_cm'][i]:.2f} / "
            f"{table['direct_ta_splitting_cm'][i]:.2f} cm^-1" + ("" if i in held_out else " (fitted)")
        )
    lines.append(
        f"  modes above {summary['optical_threshold_cm']:.0f} cm^-1 within "
        f"{summary['max_deviation_above_threshold_cm']:.2f} cm^-1 "
        f"({summary.get('max_raw_deviation_above_threshold_cm', float('nan')):.2f} against the raw direct "
        f"matrix), acoustic within {summary['max_acoustic_deviation_cm']:.2f} cm^-1, l^z within "
        f"{summary['max_l_z_deviation']:.3f} hbar, mu^z within {summary['max_mu_z_deviation']:.4f} mu_N"
    )
    if failed is not None:
        where = "at the points it did not fit" if len(held_out) < len(table["qpoints"]) else "at every point"
        lines.append(
            f"  criteria (acoustic {CRITERIA['max_acoustic_deviation_cm']}, above 100 cm^-1 "
            f"{CRITERIA['max_deviation_above_threshold_cm']} cm^-1, TA splitting {CRITERIA['ta_splitting']:.0%}) "
            f"{where}: " + ("met" if not failed else "missed: " + "; ".join(failed))
        )
    return lines
