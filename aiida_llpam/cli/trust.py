"""The error budget of a finished run: its model checked against direct DFPT, other sum-rule models on the same
DFPT, another q mesh, and what was measured elsewhere, tabulated by the calcfunction ``error_budget``.

Every number is a node: each sum-rule model is a PamWorkChain on the run's own DFPT (``dfpt`` input, q2r.x onwards),
the check against direct DFPT is a ``direct_dfpt_check`` on the ph.x runs of a DirectDfptWorkChain, the table is
the output of ``error_budget``. Runs already made are found in the profile and reused, so the command is idempotent.
"""

from __future__ import annotations

import json
from pathlib import Path

from aiida import orm

#: unfolding supercells of the rotational sum rules compared with the default (2, 2, 2) (THEORY.md section 8)
DEFAULT_UNFOLDINGS = ((2, 2, 3), (3, 3, 2), (3, 3, 3))


def _same_dfpt_runs(run: orm.WorkChainNode) -> list[orm.WorkChainNode]:
    from aiida_llpam.queries import PROCESS_TYPE, dfpt_retrieved

    retrieved = dfpt_retrieved(run)
    query = orm.QueryBuilder().append(orm.FolderData, filters={"id": retrieved.pk}, tag="dfpt")
    query.append(
        orm.WorkChainNode, with_incoming="dfpt", filters={"process_type": PROCESS_TYPE, "attributes.exit_status": 0}
    )
    return query.all(flat=True)


def sum_rule_models(run: orm.WorkChainNode, unfoldings, computer: str, protocol: str) -> dict[str, orm.WorkChainNode]:
    """``{label: PamWorkChain}`` of the run's DFPT with each unfolding supercell, made where missing.

    The mesh modes are not stored (they are not part of the budget, and tens of MB each).
    """
    from aiida.engine import run_get_node

    from aiida_llpam.queries import dfpt_retrieved, dfpt_structure
    from aiida_llpam.workflows.pam import PamWorkChain

    existing = {}
    for other in _same_dfpt_runs(run):
        record = other.outputs.force_constants.base.attributes.get("sum_rules", None) or {}
        if record.get("rotational_invariance") and other.pk != run.pk:
            existing[tuple(record["factor"])] = other
    models = {}
    codes = [orm.load_code(f"{name}@{computer}") for name in ("pw", "ph", "q2r")]
    retrieved = dfpt_retrieved(run)
    for factor in map(tuple, unfoldings):
        label = "u" + "".join(map(str, factor))
        if factor in existing:
            print(f"sum-rule model {label}: PamWorkChain<{existing[factor].pk}> (found)")
            models[label] = existing[factor]
            continue
        overrides = {
            "sum_rules": {"rotational_invariance": True, "unfolding_factor": list(factor)},
            "response": {"store_mesh_modes": False},
        }
        builder = PamWorkChain.get_builder_from_protocol(
            *codes, dfpt_structure(retrieved), protocol=protocol, overrides=overrides, dfpt=retrieved
        )
        builder.metadata.label = f"{run.label} (sum-rule model {label})".strip()
        _, node = run_get_node(builder)
        if not node.is_finished_ok:
            raise ValueError(f"sum-rule model {label}: PamWorkChain<{node.pk}> failed: {node.exit_message}")
        print(f"sum-rule model {label}: PamWorkChain<{node.pk}> (made)")
        models[label] = node
    return models


def check_against_direct(
    run: orm.WorkChainNode, direct: orm.WorkChainNode, partial: bool = False
) -> orm.CalcFunctionNode:
    """``direct_dfpt_check`` of ``run``'s model on the ph.x runs of the DirectDfptWorkChain ``direct`` (reused
    if it exists); the ph.x runs need not have been made for this model, only at its DFPT's settings.

    ``partial``: take the q points whose ph.x finished even if others did not (the check's inputs name them).
    """
    from aiida_llpam.calculations.functions import direct_dfpt_check
    from aiida_llpam.queries import dfpt_retrieved, direct_dfpt_checks

    if direct.process_label != "DirectDfptWorkChain" or not (direct.is_finished_ok or partial and direct.is_terminated):
        raise ValueError(
            f"{direct.process_label}<{direct.pk}> is not a finished DirectDfptWorkChain "
            "(partial: a terminated one, its finished q points)"
        )
    folders = {}  # the last finished job of each q point (a relaunched one has the same label)
    for link in sorted(direct.base.links.get_outgoing().all(), key=lambda link: link.node.ctime):
        if link.link_label.startswith("ph_q") and link.node.is_finished_ok:
            folders[link.link_label[len("ph_") :]] = link.node.outputs.retrieved
    for check in direct_dfpt_checks(run):
        if {key: check.inputs[key].pk for key in folders} == {key: node.pk for key, node in folders.items()}:
            return check
    _, check = direct_dfpt_check.run_get_node(run.outputs.force_constants, dfpt_retrieved(run), **folders)
    return check


def make_error_budget(
    run: orm.WorkChainNode,
    models: dict[str, orm.WorkChainNode],
    qmesh_run: orm.WorkChainNode | None,
    check: orm.CalcFunctionNode | None,
    measured: dict,
) -> orm.ArrayData:
    """The ``error_budget`` node of ``run`` from the other runs and checks (a new one each call)."""
    from aiida_llpam.calculations.functions.error_budget import error_budget, run_inputs

    inputs = run_inputs("reference", run)
    for label, model in models.items():
        inputs.update(run_inputs(f"model_{label}", model))
    if qmesh_run is not None:
        inputs.update(run_inputs("qmesh", qmesh_run))
    if check is not None:
        inputs["direct_table"] = check.outputs.table
    return error_budget(orm.Dict(measured), **inputs)


def error_budget_for(
    run_pk,
    direct_pk=None,
    qmesh_pk=None,
    measured_path: Path | None = None,
    unfoldings=DEFAULT_UNFOLDINGS,
    computer: str = "localhost",
    partial: bool = False,
) -> orm.ArrayData:
    """Everything above for the PamWorkChain ``run_pk``, printed as ``aiida-llpam show`` prints it."""
    from aiida_llpam.calculations.functions.error_budget import budget_from_node
    from aiida_llpam.queries import load_pam_workchain

    run = load_pam_workchain(str(run_pk))
    protocol = run.inputs.protocol.value if "protocol" in run.inputs else "production"
    models = sum_rule_models(run, unfoldings, computer, protocol)
    check = check_against_direct(run, orm.load_node(direct_pk), partial) if direct_pk else None
    if direct_pk:
        print("each sum-rule model against the direct DFPT (largest deviation, cm^-1; TA splitting, relative):")
        for label, node in {"default": run, **models}.items():
            summary = check_against_direct(node, orm.load_node(direct_pk), partial).outputs.summary
            print(
                f"  {label:8s} acoustic {summary['max_acoustic_deviation_cm']:6.2f}  above "
                f"{summary['optical_threshold_cm']:.0f} cm^-1 {summary['max_deviation_above_threshold_cm']:6.2f}  "
                f"TA splitting {', '.join(f'{x:.0%}' for x in summary['ta_splitting_relative_deviation'])}"
            )
    qmesh = load_pam_workchain(str(qmesh_pk)) if qmesh_pk else None
    measured = json.loads(Path(measured_path).read_text()) if measured_path else {}
    budget = make_error_budget(run, models, qmesh, check, measured)
    print(f"error budget of PamWorkChain<{run.pk}>: ArrayData<{budget.pk}>")
    for line in budget_from_node(budget).lines():
        print(line)
    return budget
