"""``aiida-llpam table``: every finished PamWorkChain as one row (text, CSV or JSON), read from stored nodes only."""

from __future__ import annotations

import csv
import io
import json
import math

import click

from . import main
from .results import PROFILE_OPTION, _load

NA = "n/a"
ZERO_BY_SYMMETRY = "0 (symmetry)"
#: the columns, in order: (key, header of the text table, width)
COLUMNS = (
    ("pk", "PK", 4),
    ("formula", "formula", 10),
    ("space_group", "space group", 16),
    ("handedness", "handedness", 10),
    ("protocol", "protocol", 10),
    ("temperature_k", "T (K)", 7),
    ("gamma_nl_zz", "gamma^NL_zz", 11),
    ("gamma_nl_zz_uncertainty", "+-", 8),
    ("gamma_m", "gamma^M", 11),
    ("gamma_m_uncertainty", "+-", 8),
    ("converged", "converged", 9),
    ("imaginary_modes", "imag. modes", 11),
)


def _units() -> dict[str, str]:
    from aiida_llpam.quantities import QUANTITIES

    units = {q.name: q.unit for q in QUANTITIES}
    return {
        "temperature_k": "K",
        "gamma_nl_zz": units["gamma_nl_zz"],
        "gamma_nl_zz_uncertainty": units["gamma_nl_zz"],
        "gamma_m": units["gamma_m"],
        "gamma_m_uncertainty": units["gamma_m"],
    }


def _number(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def run_row(node, temperature_k: float = 300.0) -> dict:
    """One finished PamWorkChain as a dict of COLUMNS keys; None where the run did not store the quantity.

    gamma^NL_zz and gamma^M come from the last row of the ``convergence`` output when its reference temperature
    is ``temperature_k`` (the uncertainty is the change of the last k-mesh step), else from the ``gamma_nl`` and
    ``magnetization`` outputs at the stored temperature nearest to ``temperature_k`` (no uncertainty).
    """
    import numpy as np

    from aiida_llpam.calculations.nodes import read_output
    from aiida_llpam.physics.convergence import MeshConvergence
    from aiida_llpam.queries import run_settings
    from aiida_llpam.structures import ENANTIOMER_EXTRA, handedness_label

    out = node.outputs
    settings = run_settings(node)
    group = settings.get("space_group")
    row = {key: None for key, _, _ in COLUMNS}
    row.update(
        pk=node.pk,
        uuid=node.uuid,
        formula=settings.get("formula"),
        space_group=group,
        space_group_number=settings.get("space_group_number"),
        protocol=settings.get("protocol"),
    )
    row["handedness"] = handedness_label(settings, short=True)
    # gamma^NL_zz and gamma^M are the same (zz) component of an axial tensor: where the point group forbids it the
    # stored sums are numerical noise, and the text table says so
    row["zero_by_symmetry"] = ["gamma_nl_zz", "gamma_m"] if settings.get("gamma_m_allowed") is False else []
    row["mirror_of"] = None
    if ENANTIOMER_EXTRA in node.base.extras:
        row["mirror_of"] = node.base.extras.get(ENANTIOMER_EXTRA).get("structure_uuid")

    table = read_output(out.convergence) if "convergence" in out else {}
    if table and abs(float(table["convergence_temperature_k"]) - temperature_k) < 1e-6:
        row["temperature_k"] = float(table["convergence_temperature_k"])
        convergence = MeshConvergence.from_arrays(table)
        for name in ("gamma_nl_zz", "gamma_m"):
            row[name] = _number(convergence.values[name][-1])
            row[f"{name}_uncertainty"] = _number(convergence.uncertainty(name))  # NaN (None) for one mesh
        if len(table["convergence_meshes"]) > 1:
            row["converged"] = bool(int(table["convergence_converged"]))
    else:
        response = read_output(out.gamma_nl)
        if "magnetization" in out:
            response.update(read_output(out.magnetization))
        temperatures = out.chi.get_array("temperatures_k")
        it = int(np.argmin(np.abs(temperatures - temperature_k)))
        row["temperature_k"] = float(temperatures[it])
        for name in ("gamma_nl_zz", "gamma_m"):
            if name in response:
                row[name] = _number(np.asarray(response[name])[it])
    if "acoustic" in out:
        row["imaginary_modes"] = int(out.acoustic.get_array("num_imaginary_modes"))
    return row


def _cell(key: str, value) -> str:
    if value is None:
        return NA
    if key == "converged":
        return "yes" if value else "NO"
    if isinstance(value, float) and key != "temperature_k":
        return f"{value:.2e}" if key.endswith("uncertainty") else f"{value:.4e}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def format_text(rows: list[dict]) -> str:
    units = _units()
    cells = [
        [ZERO_BY_SYMMETRY if key in row["zero_by_symmetry"] else _cell(key, row[key]) for key, _, _ in COLUMNS]
        for row in rows
    ]
    group = [key for key, _, _ in COLUMNS].index("space_group")
    for cell, row in zip(cells, rows):  # the symbol with its number, as `aiida-llpam list` shows it
        if row["space_group"] is not None:
            cell[group] = f"{row['space_group']} ({_cell('space_group_number', row['space_group_number'])})"
    widths = [max([width, len(header)] + [len(r[i]) for r in cells]) for i, (_, header, width) in enumerate(COLUMNS)]
    align = lambda i, text: f"{text:>{widths[i]}s}" if COLUMNS[i][0] == "pk" else f"{text:{widths[i]}s}"  # noqa: E731
    lines = ["  ".join(align(i, header) for i, (_, header, _) in enumerate(COLUMNS)).rstrip()]
    lines += ["  ".join(align(i, text) for i, text in enumerate(r)).rstrip() for r in cells]
    lines.append(
        f"units: gamma^NL_zz {units['gamma_nl_zz']}, gamma^M {units['gamma_m']}; +- is the change of the last "
        f"k-mesh step; n/a: not stored by that run; {ZERO_BY_SYMMETRY}: forbidden by the point group"
    )
    return "\n".join(lines)


def format_csv(rows: list[dict]) -> str:
    units = _units()
    keys = [key for key, _, _ in COLUMNS]
    keys = keys[:3] + ["space_group_number"] + keys[3:] + ["uuid", "mirror_of"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([f"{key} ({units[key]})" if key in units else key for key in keys])
    for row in rows:
        writer.writerow([NA if row.get(key) is None else row[key] for key in keys])
    return buffer.getvalue().rstrip("\n")


def format_json(rows: list[dict]) -> str:
    return json.dumps({"units": _units(), "runs": rows}, indent=2)


FORMATS = {"text": format_text, "csv": format_csv, "json": format_json}


@main.command("table")
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), default="text", show_default=True)
@click.option("-T", "temperature", type=float, default=300.0, show_default=True, help="Temperature (K).")
@PROFILE_OPTION
def table_command(fmt, temperature, profile):
    """Every finished PamWorkChain: formula, space group, handedness, protocol, gamma^NL_zz and gamma^M at T
    with their k-mesh uncertainty, convergence flag, imaginary modes ("n/a" / null where a run did not store it)."""
    _load(profile)
    from aiida_llpam.queries import finished_runs

    rows = [run_row(node, temperature) for node in finished_runs()]
    if not rows and fmt == "text":
        click.echo("No finished aiida-llpam runs in this profile.")
        return
    click.echo(FORMATS[fmt](rows))
