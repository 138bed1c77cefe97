"""The error budget of a run's headline numbers, stored as one node (aiida_llpam.physics.error_budget)."""

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_llpam.calculations.nodes import read_output
from aiida_llpam.physics.error_budget import (
    HEADLINES,
    BudgetRow,
    ErrorBudget,
    headline_values,
    relative_spread,
    velocity_probes,
)

#: the outputs of a PamWorkChain the budget reads, as ``<role>_<output>`` inputs
RUN_OUTPUTS = ("convergence", "gamma_nl", "acoustic")


def run_inputs(role: str, node: orm.WorkChainNode) -> dict:
    """``{<role>_<output>: node}`` of a finished PamWorkChain, as :func:`error_budget` takes them."""
    return {f"{role}_{name}": node.outputs[name] for name in RUN_OUTPUTS}


def _values(kwargs: dict, role: str) -> dict[str, float]:
    return headline_values(*(read_output(kwargs[f"{role}_{name}"]) for name in RUN_OUTPUTS))


@calcfunction
def error_budget(measured: orm.Dict, **kwargs) -> orm.ArrayData:
    """One row per source of uncertainty of the ``reference_*`` run's headline numbers.

    * ``k sums``: the last k-mesh step of the run's own convergence table;
    * ``sum-rule model``: the largest change over the runs ``model_<label>_*`` (other sum-rule models on the same DFPT),
      with ``model_selection`` (Str) saying which models count and why;
    * ``q mesh``: the change to the run ``qmesh_*`` (the same crystal on another ph.x q mesh);
    * ``direct DFPT``: the sound velocities from the model's acoustic frequencies against ph.x at the probe q
      points of ``direct_table`` (a ``direct_dfpt_check`` table; the point nearest Gamma along c, Gamma-K and Gamma-M,
      :func:`aiida_llpam.physics.error_budget.velocity_probes`), as relative deviations;
    * ``measured``: rows measured elsewhere, ``{source: {"method": str, "relative": {quantity: size}}}``, e.g. the
      cut-off step or a functional not yet computed (sizes NaN or absent = not measured).
    """
    reference = _values(kwargs, "reference")
    convergence = read_output(kwargs["reference_convergence"])
    k_rows = {name: np.nan for name in HEADLINES}
    for name in ("gamma_nl_zz", "chi_diagonal", "chi_offdiagonal_interband", "chi_offdiagonal_pair", "gamma_m"):
        column = convergence[f"convergence_{name}"]
        k_rows[name] = float(abs(column[-1] - column[-2]) / abs(column[-1])) if len(column) > 1 else np.nan
    k_rows.update({name: 0.0 for name in HEADLINES if name.startswith("v_")})
    meshes = "x".join(map(str, convergence["convergence_meshes"][-1]))
    rows = [
        BudgetRow("k sums", f"last k-mesh step of the run's own sums (to {meshes}); velocities use no k sums", k_rows)
    ]

    suffix = "_convergence"
    models = sorted(
        key[len("model_") : -len(suffix)] for key in kwargs if key.startswith("model_") and key.endswith(suffix)
    )
    if models:
        spread = relative_spread(reference, [_values(kwargs, f"model_{label}") for label in models])
        method = f"largest change over the models {', '.join(models)} on the same DFPT"
        if "model_selection" in kwargs:
            method += f" ({kwargs['model_selection'].value})"
        rows.append(BudgetRow("sum-rule model", method, spread))
    if "qmesh_convergence" in kwargs:
        spread = relative_spread(reference, [_values(kwargs, "qmesh")])
        rows.append(BudgetRow("q mesh", "change to the run on the other ph.x q mesh (one step: not a bound)", spread))
    if "direct_table" in kwargs:
        table = read_output(kwargs["direct_table"])
        model, direct = table["model_frequencies_cm"], table["direct_frequencies_cm"]
        sizes = {name: np.nan for name in HEADLINES}
        probes = velocity_probes(table["qpoints"])
        for axis, index in probes.items():
            for branch, name in enumerate((f"v_ta1_{axis}", f"v_ta2_{axis}", f"v_la_{axis}")):
                sizes[name] = float(abs(model[index, branch] - direct[index, branch]) / abs(direct[index, branch]))
        qpoints = "; ".join(f"{axis} {np.round(table['qpoints'][i], 3).tolist()}" for axis, i in probes.items())
        rows.append(
            BudgetRow(
                "direct DFPT",
                f"acoustic frequencies of the model against ph.x at the point nearest Gamma along each axis: {qpoints} "
                "(ASR on-site corrected): omega/q is the velocity",
                sizes,
            )
        )
    for source, row in measured.get_dict().items():
        relative = {name: float(row["relative"].get(name, np.nan)) for name in HEADLINES}
        rows.append(BudgetRow(source, row["method"], relative))

    budget = ErrorBudget(reference, tuple(rows))
    node = orm.ArrayData()
    node.set_array("values", np.array([reference[name] for name in HEADLINES]))
    node.set_array("relative", budget.matrix())
    node.set_array("total_relative", budget.total())
    node.base.attributes.set("quantities", list(HEADLINES))
    node.base.attributes.set("sources", [row.source for row in rows])
    node.base.attributes.set("methods", [row.method for row in rows])
    node.base.attributes.set("temperature_k", float(convergence["convergence_temperature_k"]))
    return node


def budget_from_node(node: orm.ArrayData) -> ErrorBudget:
    """The :class:`ErrorBudget` back from a stored node."""
    quantities = node.base.attributes.get("quantities")
    values = dict(zip(quantities, node.get_array("values").tolist()))
    rows = tuple(
        BudgetRow(source, method, dict(zip(quantities, sizes.tolist())))
        for source, method, sizes in zip(
            node.base.attributes.get("sources"), node.base.attributes.get("methods"), node.get_array("relative")
        )
    )
    return ErrorBudget(values, rows)
