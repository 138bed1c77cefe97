"""Report text of a run from what the queries return (arrays and dicts; no AiiDA import)."""

from __future__ import annotations

import numpy as np

from aiida_llpam.physics.convergence import TRACKED, MeshConvergence
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
        warnings.append(f"{int(response['num_imaginary_modes'])} imaginary modes on the k mesh (lowest {lowest:.2f} cm^-1), "
                        "left out of the sums")
    if acoustic and int(acoustic["num_imaginary_modes"]):
        path_min, near_min = (float(acoustic[key]) * THZ_TO_CM for key in ("path_lowest_frequency_thz", "near_gamma_lowest_frequency_thz"))
        warnings.append(f"{int(acoustic['num_imaginary_modes'])} imaginary modes on the band path and next to Gamma "
                        f"(lowest {path_min:.2f} cm^-1 on the path, {near_min:.2f} cm^-1 within |q| < 0.05 bohr^-1)")
    elif not acoustic and path.get("frequencies_thz") is not None and path["frequencies_thz"].min() < 0:
        warnings.append(f"imaginary frequencies on the band path (lowest {path['frequencies_thz'].min() * THZ_TO_CM:.2f} cm^-1)")
    return warnings


def quality_lines(record: dict | None, data: dict) -> list[str]:
    """Sum rules (``record``: the force constants' ``sum_rules`` attribute, None if it has none), the acoustic region
    and the k-mesh convergence of a run (``data``: :func:`aiida_llpam.queries.gather`), with the headline sums +- their
    k-mesh uncertainty."""
    lines = []
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
    table = MeshConvergence.from_arrays(response)
    for name in TRACKED:
        lines.append(f"  {name:30s} {table.values[name][-1]:12.4e} +- {table.uncertainty(name):.1e} {units[f'convergence_{name}']}")
    return lines
