"""Provenance queries: find aiida-llpam runs and read what they stored (QueryBuilder and links; no recomputation).

The functions docs/queries.md describes. Report text built from what they return is in :mod:`aiida_llpam.report`.
"""

from __future__ import annotations

import re

from aiida import orm
from aiida.common.exceptions import MultipleObjectsError, NotExistent
from aiida.common.links import LinkType

from aiida_llpam.calculations.nodes import read_output
from aiida_llpam.quantities import OUTPUTS

PROCESS_TYPE = "aiida.workflows:llpam.pam"


class ResultsError(ValueError):
    """An identifier that does not name an aiida-llpam workchain (finished, where one is asked for)."""


def load_pam_workchain(identifier: str, finished: bool = True) -> orm.WorkChainNode:
    """An aiida-llpam PamWorkChain by PK, UUID or label, finished ok if ``finished`` (otherwise in any state);
    ResultsError naming what it is not."""
    node = None
    try:
        node = orm.load_node(identifier)
    except (NotExistent, MultipleObjectsError, ValueError):
        matches = (
            orm.QueryBuilder()
            .append(orm.WorkChainNode, filters={"label": identifier, "process_type": PROCESS_TYPE})
            .all(flat=True)
        )
        if len(matches) > 1:
            raise ResultsError(f"{identifier}: label names {len(matches)} workchains, use a PK or UUID") from None
        node = matches[0] if matches else None
    if node is None:
        raise ResultsError(f"{identifier}: no node with this PK, UUID or label")
    if not isinstance(node, orm.WorkChainNode) or node.process_type != PROCESS_TYPE:
        raise ResultsError(f"{identifier}: {node.__class__.__name__}<{node.pk}> is not an aiida-llpam PamWorkChain")
    if finished and not node.is_finished_ok:
        raise ResultsError(
            f"{identifier}: PamWorkChain<{node.pk}> did not finish successfully ({node.process_state.value})"
        )
    return node


def finished_runs() -> list[orm.WorkChainNode]:
    query = orm.QueryBuilder().append(
        orm.WorkChainNode,
        filters={"process_type": PROCESS_TYPE, "attributes.exit_status": 0, "attributes.process_state": "finished"},
    )
    return sorted(query.all(flat=True), key=lambda n: n.ctime)


def dfpt_retrieved(node: orm.WorkChainNode) -> orm.FolderData:
    """The ph.x dynamical matrices a finished PamWorkChain made its force constants from: what its q2r.x read.

    That is the `dfpt` input, the retrieved folder of the single ph.x job, or the folder collected from the
    per-q-point jobs.
    """
    if "dfpt" in node.inputs:
        return node.inputs.dfpt
    called = {link.link_label: link.node for link in node.base.links.get_outgoing(link_type=LinkType.CALL_WORK).all()}
    if "q2r_nac" in called:
        return called["q2r_nac"].inputs.q2r.parent_folder
    if "ph" in called and "retrieved" in called["ph"].outputs:  # the run stopped between ph.x and q2r.x
        return called["ph"].outputs.retrieved
    raise ValueError(f"{node.process_label}<{node.pk}> has no finished ph.x run")


def dfpt_ph_calculation(retrieved: orm.FolderData) -> orm.CalcJobNode:
    """The ph.x calculation behind a folder of dynamical matrices; for the per-q-point route its Gamma job, for a
    mirrored DFPT (``mirror_dfpt_z``) the ph.x run it mirrors, for one assembled on a denser mesh
    (``assemble_dynamical_matrices``) the mesh run it started from."""
    creator = retrieved.creator
    if creator is not None and creator.process_label == "mirror_dfpt_z":
        return dfpt_ph_calculation(creator.inputs.retrieved)
    if creator is not None and creator.process_label == "assemble_dynamical_matrices":
        return dfpt_ph_calculation(creator.inputs.dfpt)
    if creator is not None and creator.process_label == "collect_dynamical_matrices":
        creator = creator.inputs.q1.creator
    if creator is None or "qpoints" not in creator.inputs or "parent_folder" not in creator.inputs:
        raise ValueError(
            f"{retrieved.__class__.__name__}<{retrieved.pk}> is not the retrieved folder of a ph.x mesh run"
        )
    return creator


def _is_ph(calculation: orm.CalcJobNode) -> bool:
    return "qpoints" in calculation.inputs


def dfpt_wall_time_s(retrieved: orm.FolderData) -> float:
    """Wall time (s) of the ph.x job(s) that wrote a folder of dynamical matrices: first start to last end; for a
    folder assembled on a denser mesh, that of its mesh run plus each single-q job's, which ran at other times."""
    creator = retrieved.creator
    if creator is not None and creator.process_label == "mirror_dfpt_z":
        return dfpt_wall_time_s(creator.inputs.retrieved)
    if creator is not None and creator.process_label == "assemble_dynamical_matrices":
        single = [creator.inputs[key].creator for key in creator.inputs if re.fullmatch(r"q\d+", key)]
        return dfpt_wall_time_s(creator.inputs.dfpt) + sum((j.mtime - j.ctime).total_seconds() for j in single)
    if creator is not None and creator.process_label == "collect_dynamical_matrices":
        jobs = [creator.inputs[key].creator for key in creator.inputs if key.startswith("q")]
    else:
        jobs = [dfpt_ph_calculation(retrieved)]
    return (max(job.mtime for job in jobs) - min(job.ctime for job in jobs)).total_seconds()


def dfpt_scf_calculation(retrieved: orm.FolderData) -> orm.CalcJobNode:
    """The pw.x calculation whose ground state a ph.x run (a folder of dynamical matrices) perturbed.

    A ph.x job restarted after an interruption (``recover``) has the interrupted ph.x job as its parent folder:
    the chain of parents is followed back to the pw.x run.
    """
    calculation = dfpt_ph_calculation(retrieved).inputs.parent_folder.creator
    while _is_ph(calculation):
        calculation = calculation.inputs.parent_folder.creator
    return calculation


def dfpt_scf_equilibrium(retrieved: orm.FolderData):
    """(scf calculation, stress in GPa, forces in eV/A) of the scf a ph.x run perturbed, at its last step;
    stress and forces are None where pw.x computed none (no ``tstress``/``tprnfor``)."""
    scf = dfpt_scf_calculation(retrieved)
    trajectory = scf.outputs.output_trajectory
    names = trajectory.get_arraynames()
    if "stress" not in names or "forces" not in names:
        return scf, None, None
    return scf, trajectory.get_array("stress")[-1], trajectory.get_array("forces")[-1]


def dfpt_structure(retrieved: orm.FolderData) -> orm.StructureData:
    """The structure a ph.x run computed (that of the scf it ran on): given, or relaxed by the workchain.

    Refused for a mirrored DFPT: its structure is the mirror image, which no ph.x computed (the run's input).
    """
    if retrieved.creator is not None and retrieved.creator.process_label == "mirror_dfpt_z":
        raise ValueError(f"FolderData<{retrieved.pk}> is a mirrored DFPT: its structure is the run's input `structure`")
    return dfpt_scf_calculation(retrieved).inputs.structure


def dfpt_settings(retrieved: orm.FolderData) -> dict:
    """Cut-offs (Ry), scf k mesh and ph.x q mesh of a ph.x run, from its provenance (ph.x -> the scf it ran on).

    For a mirrored DFPT (``mirror_dfpt_z``) they are those of the ph.x run it mirrors; for one assembled on a
    denser mesh (``assemble_dynamical_matrices``) the q mesh is the assembled one.
    """
    ph = dfpt_ph_calculation(retrieved)
    pw = dfpt_scf_calculation(retrieved)
    system = pw.inputs.parameters["SYSTEM"]
    creator = retrieved.creator
    assembled = creator is not None and creator.process_label == "assemble_dynamical_matrices"
    qpoints = creator.inputs.qpoints if assembled else ph.inputs.qpoints
    return {
        "ecutwfc_ry": system["ecutwfc"],
        "ecutrho_ry": system.get("ecutrho", 4 * system["ecutwfc"]),  # pw.x's default when the input has none
        "kpoints_mesh": list(pw.inputs.kpoints.get_kpoints_mesh()[0]),
        "qpoints_mesh": list(qpoints.get_kpoints_mesh()[0]),
    }


def sum_rules_record(node: orm.WorkChainNode) -> dict | None:
    """The sum-rule record (residuals before and after) of a run's force constants; None where it has none."""
    return node.outputs.force_constants.base.attributes.get("sum_rules", None)


def run_settings(node: orm.WorkChainNode) -> dict:
    """The settings a run was made with, read from provenance: protocol, DFPT inputs, symmetry, response."""
    out = node.outputs
    settings = out.settings.get_dict()
    if "protocol" in node.inputs:
        settings["protocol"] = node.inputs.protocol.value
    if "symmetry" in out:  # runs made before the symmetry output
        settings.update(out.symmetry.get_dict())
    retrieved = dfpt_retrieved(node)
    settings.update(dfpt_settings(retrieved))
    if "dfpt" in node.inputs:
        settings["dfpt_reused_from"] = retrieved.creator.uuid
    settings["relaxed"] = any(
        isinstance(c, orm.WorkChainNode) and c.process_label == "PwRelaxWorkChain" for c in node.called
    ) or (
        "dfpt" in node.inputs and node.inputs.structure.creator is not None  # a structure made by a vc-relax
    )
    return settings


def gather(node: orm.WorkChainNode) -> tuple[dict, dict]:
    """(data, sources): the arrays of every figure input and the UUIDs of the nodes they came from.

    data = {"path", "gamma_a", "trajectory": arrays of those outputs, "response": every response quantity
    by registry name plus temperatures_k and radii_m, "settings": run_settings}.
    """
    out = node.outputs
    # optional outputs (lifetimes_response) only where the run made them
    response_nodes = tuple(name for name, spec in OUTPUTS.items() if spec.source == "response" and name in out)
    response = {}
    for name in response_nodes:
        response.update(read_output(out[name]))
    response["temperatures_k"] = out.chi.get_array("temperatures_k")
    response["radii_m"] = out.gamma_ll.get_array("radii_m")
    figures = {key: read_output(out[key]) for key in ("dispersion", "acoustic", "gamma_a", "trajectory") if key in out}
    path = figures.get("dispersion", {})
    if "l_hbar" in path:
        path["l_z_hbar"] = path["l_hbar"][..., 2]
    data = {
        "path": path,
        "acoustic": figures.get("acoustic", {}),
        "gamma_a": figures.get("gamma_a", {}),
        "trajectory": figures.get("trajectory", {}),
        "response": response,
        "settings": run_settings(node),
    }
    sources = {
        "workchain": node.uuid,
        "path": {"dispersion": out.dispersion.uuid} if "dispersion" in out else {},
        "acoustic": {"acoustic": out.acoustic.uuid} if "acoustic" in out else {},
        "gamma_a": {"gamma_a": out.gamma_a.uuid} if "gamma_a" in out else {},
        "trajectory": {"trajectory": out.trajectory.uuid} if "trajectory" in out else {},
        "response": {name: out[name].uuid for name in response_nodes},
        "settings": {"settings": out.settings.uuid},
    }
    for key in ("path", "acoustic", "gamma_a", "trajectory", "response"):
        sources[key]["workchain"] = node.uuid
    return data, sources


def _created_by(process_label: str, link_label: str, node: orm.Node) -> list[orm.CalcFunctionNode]:
    """Calcfunctions ``process_label`` that took ``node`` as input ``link_label``, oldest first."""
    query = orm.QueryBuilder().append(orm.Node, filters={"id": node.pk}, tag="input")
    query.append(
        orm.CalcFunctionNode,
        with_incoming="input",
        edge_filters={"label": link_label},
        filters={"attributes.process_label": process_label, "attributes.exit_status": 0},
    )
    return sorted(query.all(flat=True), key=lambda calc: calc.ctime)


def direct_dfpt_checks(node: orm.WorkChainNode) -> list[orm.CalcFunctionNode]:
    """The checks of a run's force-constant model against direct DFPT (``direct_dfpt_check``), oldest first."""
    return _created_by("direct_dfpt_check", "force_constants", node.outputs.force_constants)


def error_budgets(node: orm.WorkChainNode) -> list[orm.ArrayData]:
    """The error budgets made for a run (``error_budget`` with the run as reference), oldest first."""
    return [
        calc.outputs.result for calc in _created_by("error_budget", "reference_convergence", node.outputs.convergence)
    ]


def response_lifetimes(node: orm.WorkChainNode) -> tuple[orm.ArrayData, orm.SinglefileData] | None:
    """The lifetimes node a run's response took and the kappa file they were read from, or None (constant tau)."""
    incoming = node.base.links.get_incoming(link_label_filter="response__lifetimes").all_nodes()
    if not incoming:
        return None
    (lifetimes,) = incoming
    return lifetimes, lifetimes.creator.inputs.kappa


def kappa_comparisons(kappa: orm.SinglefileData) -> list[orm.Dict]:
    """The comparisons of a kappa file with measured values (``kappa_comparison``), oldest first."""
    return [calc.outputs.result for calc in _created_by("kappa_comparison", "kappa", kappa)]
