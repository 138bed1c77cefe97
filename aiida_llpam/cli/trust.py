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

#: the sum-rule models compared with the run's own (THEORY.md section 8, docs/theory.md): other unfolding
#: supercells, and the on-site acoustic rule of the direct check
DEFAULT_MODELS = {
    "u222": {"rotational_invariance": True, "unfolding_factor": [2, 2, 2], "acoustic": "crystal"},
    "u223": {"rotational_invariance": True, "unfolding_factor": [2, 2, 3], "acoustic": "crystal"},
    "u332": {"rotational_invariance": True, "unfolding_factor": [3, 3, 2], "acoustic": "crystal"},
    "u333": {"rotational_invariance": True, "unfolding_factor": [3, 3, 3], "acoustic": "crystal"},
    "o222": {"rotational_invariance": True, "unfolding_factor": [2, 2, 2], "acoustic": "onsite"},
}
#: the model fitted to direct points (``--fit``): the on-site rule, by default on the default unfolding
FIT_SUM_RULES = DEFAULT_MODELS["o222"]


def fitted_model(fit: tuple[str, ...], unfolding: tuple[int, int, int] | None = None) -> tuple[str, dict]:
    """Label and sum rules of the model fitted to the direct q points ``fit``, on ``unfolding`` (default that of
    :data:`FIT_SUM_RULES`): e.g. ``o223_fit_q2_q3``."""
    from aiida_llpam.calculations.functions.phonopy_force_constants import validate_sum_rules

    factor = list(unfolding or FIT_SUM_RULES["unfolding_factor"])
    sum_rules = {**FIT_SUM_RULES, "unfolding_factor": factor}
    error = validate_sum_rules(sum_rules)
    if error:
        raise ValueError(error)
    return "o" + "".join(str(n) for n in factor) + "_fit_" + "_".join(fit), sum_rules


def _same_dfpt_runs(run: orm.WorkChainNode) -> list[orm.WorkChainNode]:
    from aiida_llpam.queries import PROCESS_TYPE, dfpt_retrieved

    retrieved = dfpt_retrieved(run)
    query = orm.QueryBuilder().append(orm.FolderData, filters={"id": retrieved.pk}, tag="dfpt")
    query.append(
        orm.WorkChainNode, with_incoming="dfpt", filters={"process_type": PROCESS_TYPE, "attributes.exit_status": 0}
    )
    return query.all(flat=True)


def _model_key(sum_rules: dict, fitted: dict) -> tuple:
    """What identifies a sum-rule model: its settings and the direct ph.x folders it fitted (PKs)."""
    return (
        bool(sum_rules["rotational_invariance"]),
        tuple(sum_rules["unfolding_factor"]),
        sum_rules.get("acoustic", "crystal"),
        tuple(sorted(folder.pk for folder in fitted.values())),
    )


def sum_rule_models(
    run: orm.WorkChainNode, models: dict[str, tuple[dict, dict]], computer: str, protocol: str
) -> dict[str, orm.WorkChainNode]:
    """``{label: PamWorkChain}`` of the run's DFPT with each model ``label: (sum_rules, fit_direct folders)``,
    found where one exists, else made (q2r.x onwards). The mesh modes are not stored (they are not part of the
    budget, and tens of MB each)."""
    from aiida.engine import run_get_node

    from aiida_llpam.queries import dfpt_retrieved, dfpt_structure
    from aiida_llpam.workflows.pam import PamWorkChain

    def key_of(node):
        fitted = dict(node.inputs.fit_direct) if "fit_direct" in node.inputs else {}
        return _model_key(node.inputs.sum_rules.get_dict(), fitted)

    existing = {key_of(other): other for other in _same_dfpt_runs(run) if other.pk != run.pk}
    own = key_of(run)
    found = {}
    codes = [orm.load_code(f"{name}@{computer}") for name in ("pw", "ph", "q2r")]
    retrieved = dfpt_retrieved(run)
    for label, (sum_rules, fitted) in models.items():
        key = _model_key(sum_rules, fitted)
        if key == own:  # the run itself
            continue
        if key in existing:
            print(f"sum-rule model {label}: PamWorkChain<{existing[key].pk}> (found)")
            found[label] = existing[key]
            continue
        overrides = {"sum_rules": sum_rules, "response": {"store_mesh_modes": False}}
        builder = PamWorkChain.get_builder_from_protocol(
            *codes, dfpt_structure(retrieved), protocol=protocol, overrides=overrides, dfpt=retrieved
        )
        if fitted:
            builder.fit_direct = fitted
        builder.metadata.label = f"{run.label} (sum-rule model {label})".strip()
        _, node = run_get_node(builder)
        if not node.is_finished_ok:
            raise ValueError(f"sum-rule model {label}: PamWorkChain<{node.pk}> failed: {node.exit_message}")
        print(f"sum-rule model {label}: PamWorkChain<{node.pk}> (made)")
        found[label] = node
    return found


def direct_folders(directs: list[orm.WorkChainNode], partial: bool = False) -> dict[str, orm.FolderData]:
    """The retrieved folder of each finished q point of the DirectDfptWorkChains ``directs``, relabelled ``q1``,
    ``q2``, ... in their order (the last finished job of a relaunched q point).

    ``partial``: take the finished q points of a terminated workchain whose other points did not finish.
    """
    folders = []
    for direct in directs:
        if direct.process_label != "DirectDfptWorkChain" or not (
            direct.is_finished_ok or partial and direct.is_terminated
        ):
            raise ValueError(
                f"{direct.process_label}<{direct.pk}> is not a finished DirectDfptWorkChain "
                "(partial: a terminated one, its finished q points)"
            )
        jobs = {}
        for link in sorted(direct.base.links.get_outgoing().all(), key=lambda link: link.node.ctime):
            if link.link_label.startswith("ph_q") and link.node.is_finished_ok:
                jobs[int(link.link_label[len("ph_q") :])] = link.node.outputs.retrieved
        folders += [jobs[index] for index in sorted(jobs)]
    return {f"q{i}": folder for i, folder in enumerate(folders, start=1)}


def check_against_direct(run: orm.WorkChainNode, folders: dict[str, orm.FolderData]) -> orm.CalcFunctionNode:
    """``direct_dfpt_check`` of ``run``'s model on the single-q ph.x ``folders`` (reused if it exists); the ph.x
    runs need not have been made for this model, only at its DFPT's settings."""
    from aiida_llpam.calculations.functions import direct_dfpt_check
    from aiida_llpam.queries import dfpt_retrieved, direct_dfpt_checks

    wanted = {key: node.pk for key, node in folders.items()}
    for check in direct_dfpt_checks(run):
        if {key: check.inputs[key].pk for key in check.inputs if key.startswith("q")} == wanted:
            return check
    _, check = direct_dfpt_check.run_get_node(run.outputs.force_constants, dfpt_retrieved(run), **folders)
    return check


def held_out_verdict(run: orm.WorkChainNode, check: orm.CalcFunctionNode) -> tuple[list[int], dict, list[str]]:
    """The q points (indices into the check) the run's model did not fit, the summary there, the criteria it
    misses there (aiida_llpam.physics.direct_dfpt.CRITERIA)."""
    from aiida_llpam.calculations.functions.dyn_mat_folder import qpoint_labels
    from aiida_llpam.calculations.nodes import read_output
    from aiida_llpam.physics.direct_dfpt import failed_criteria, select, summarise

    fitted = {node.pk for node in run.inputs.fit_direct.values()} if "fit_direct" in run.inputs else set()
    labels = qpoint_labels(key for key in check.inputs if key.startswith("q"))
    held_out = [i for i, key in enumerate(labels) if check.inputs[key].pk not in fitted]
    summary = summarise(select(read_output(check.outputs.table), held_out))
    return held_out, summary, failed_criteria(summary)


def make_error_budget(
    run: orm.WorkChainNode,
    models: dict[str, orm.WorkChainNode],
    qmesh_run: orm.WorkChainNode | None,
    check: orm.CalcFunctionNode | None,
    measured: dict,
    selection: str = "",
) -> orm.ArrayData:
    """The ``error_budget`` node of ``run`` from the other runs and checks (a new one each call); ``selection``
    says which sum-rule models count and why."""
    from aiida_llpam.calculations.functions.error_budget import error_budget, run_inputs

    inputs = run_inputs("reference", run)
    if selection:
        inputs["model_selection"] = orm.Str(selection)
    for label, model in models.items():
        inputs.update(run_inputs(f"model_{label}", model))
    if qmesh_run is not None:
        inputs.update(run_inputs("qmesh", qmesh_run))
    if check is not None:
        inputs["direct_table"] = check.outputs.table
    return error_budget(orm.Dict(measured), **inputs)


def error_budget_for(
    run_pk,
    direct_pks=(),
    qmesh_pk=None,
    measured_path: Path | None = None,
    models: dict[str, dict] | None = None,
    fit: tuple[str, ...] = (),
    computer: str = "localhost",
    partial: bool = False,
    fit_unfolding: list[tuple[int, int, int]] | tuple = (),
) -> orm.ArrayData:
    """Everything above for the PamWorkChain ``run_pk``, printed as ``aiida-llpam show`` prints it.

    ``direct_pks``: DirectDfptWorkChains at the run's DFPT settings, their q points numbered q1, q2, ... in order;
    ``fit``: labels among them that a further model (:data:`FIT_SUM_RULES`) fits, the others held out; one such
    model per unfolding factor of ``fit_unfolding`` (default: that of :data:`FIT_SUM_RULES`; a longer unfolding
    along c gives the fit more images there). The
    sum-rule row of the budget is the spread over the models that meet the criteria at their held-out points
    (over all of them, and said so, where none does).
    """
    from aiida_llpam.calculations.functions.error_budget import budget_from_node
    from aiida_llpam.queries import load_pam_workchain

    run = load_pam_workchain(str(run_pk))
    protocol = run.inputs.protocol.value if "protocol" in run.inputs else "production"
    folders = direct_folders([orm.load_node(pk) for pk in direct_pks], partial) if direct_pks else {}
    unknown = sorted(set(fit) - set(folders))
    if unknown:
        raise ValueError(f"--fit {', '.join(unknown)}: no such direct q point (have {', '.join(folders) or 'none'})")
    variants = {label: (sum_rules, {}) for label, sum_rules in (DEFAULT_MODELS if models is None else models).items()}
    for unfolding in (fit_unfolding or [None]) if fit else ():
        label, sum_rules = fitted_model(fit, unfolding)
        variants[label] = (sum_rules, {key: folders[key] for key in fit})
    made = sum_rule_models(run, variants, computer, protocol)
    check = check_against_direct(run, folders) if folders else None
    passing, selection = list(made), "no direct points: every model"
    if folders:
        print("each sum-rule model at the direct points it did not fit (largest deviation, cm^-1; TA splitting):")
        verdicts = {}
        for label, node in {"this run": run, **made}.items():
            held_out, summary, failed = held_out_verdict(node, check_against_direct(node, folders))
            verdicts[label] = not failed
            print(
                f"  {label:16s} q {','.join(f'q{i + 1}' for i in held_out)}: acoustic "
                f"{summary['max_acoustic_deviation_cm']:5.2f}, above {summary['optical_threshold_cm']:.0f} cm^-1 "
                f"{summary['max_deviation_above_threshold_cm']:5.2f}, TA splitting "
                f"{', '.join(f'{x:.0%}' for x in summary['ta_splitting_relative_deviation'])}: "
                + ("passes" if not failed else "fails (" + "; ".join(failed) + ")")
            )
        passing = [label for label in made if verdicts[label]]
        if passing:
            selection = f"the models that pass the held-out direct points: {', '.join(passing)}"
        elif verdicts["this run"]:
            selection = "no other model passes the held-out direct points (this one does): the spread over all of them"
        else:
            selection = "no model passes the held-out direct points: the spread over all of them"
        passing = passing or list(made)
    qmesh = load_pam_workchain(str(qmesh_pk)) if qmesh_pk else None
    measured = json.loads(Path(measured_path).read_text()) if measured_path else {}
    budget = make_error_budget(run, {label: made[label] for label in passing}, qmesh, check, measured, selection)
    print(f"error budget of PamWorkChain<{run.pk}>: ArrayData<{budget.pk}>")
    for line in budget_from_node(budget).lines():
        print(line)
    return budget
