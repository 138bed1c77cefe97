"""Runs that start from what a finished run stored, no ph.x: what ``workflows/run_from_dfpt.py`` and
``workflows/recompute_response.py`` do (the lifetimes' scripts are in :mod:`.lifetimes`).

:func:`run_from_dfpt` redoes q2r.x onwards from a run's DFPT (optionally mirrored to the other enantiomer, or on a
denser q mesh with single-q ph.x runs at the stars it lacks: :func:`denser_mesh_cover`),
:func:`recompute_response` the response alone from its force constants. The new nodes link back to the stored
ones. Each runs in this interpreter and ends the process with the reason (``sys.exit``) when refused or when the
run failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from aiida import orm
from aiida.common.exceptions import MultipleObjectsError, NotExistent
from aiida.engine import run_get_node

from aiida_llpam.calculations.functions import mirror_dfpt_z
from aiida_llpam.calculations.functions.assemble_dynamical_matrices import assemble_dynamical_matrices, dyn_texts
from aiida_llpam.calculations.response import PamResponseCalculation, validate_parameters
from aiida_llpam.physics.dynmat import read_dynamical_matrices
from aiida_llpam.physics.mesh_cover import MeshCover, cover_mesh, irreducible_representatives
from aiida_llpam.physics.settings import RESPONSE_KEYS
from aiida_llpam.queries import ResultsError, dfpt_retrieved, dfpt_structure, load_pam_workchain
from aiida_llpam.structures import MIRROR_OPERATION, mark_enantiomer, mirror_z
from aiida_llpam.workflows.pam import PamWorkChain

from .runs import load_codes, print_figures


def pam_workchain(identifier: str, finished: bool = False) -> orm.WorkChainNode:
    """The PamWorkChain ``identifier`` (PK, UUID or label), finished ok if ``finished``; exits naming what it is
    not (:func:`aiida_llpam.queries.load_pam_workchain`)."""
    try:
        return load_pam_workchain(identifier, finished=finished)
    except ResultsError as exc:
        sys.exit(str(exc))


def outcome_line(node: orm.ProcessNode) -> str:
    return f"{node.process_label}<{node.pk}> {node.process_state.value}, exit status {node.exit_status}"


def single_q_folders(identifiers) -> dict[str, orm.FolderData]:
    """``q1``, ``q2``, ...: the retrieved folders of every single-q ph.x job that finished ok under the
    DirectDfptWorkChains ``identifiers`` (one that failed or was killed keeps the jobs it finished)."""
    folders = []
    for identifier in identifiers:
        node = orm.load_node(identifier)
        if not (isinstance(node, orm.WorkChainNode) and node.process_label == "DirectDfptWorkChain"):
            sys.exit(f"{identifier}: not a DirectDfptWorkChain")
        jobs = [n for n in node.called if n.process_label == "PhBaseWorkChain" and n.is_finished_ok]
        folders.extend(job.outputs.retrieved for job in sorted(jobs, key=lambda n: n.pk))
    return {f"q{i}": folder for i, folder in enumerate(folders, start=1)}


def denser_mesh_cover(
    retrieved: orm.FolderData, mesh, direct: dict[str, orm.FolderData]
) -> tuple[MeshCover, np.ndarray]:
    """How the dyn files of a DFPT and of single-q runs cover the q mesh ``mesh``, and the reduced q of one point
    of each star they lack (the single-q ph.x runs still to do, in the crystal ph.x ran on)."""
    named = dyn_texts(retrieved, direct)
    cover = cover_mesh(mesh, [read_dynamical_matrices(text) for text in named.values()], list(named))
    atoms = dfpt_structure(retrieved).get_ase()
    missing = irreducible_representatives(
        cover.missing, mesh, atoms.cell[:], atoms.get_scaled_positions(), atoms.get_atomic_numbers()
    )
    return cover, missing


def _assembled(retrieved: orm.FolderData, pk: str, qmesh, direct_pks) -> orm.FolderData:
    """The DFPT of run ``pk`` on the denser mesh ``qmesh``, with the single-q runs of the DirectDfptWorkChains
    ``direct_pks``; exits naming the q points still to run."""
    direct = single_q_folders(direct_pks)
    try:
        cover, missing = denser_mesh_cover(retrieved, qmesh, direct)
    except ValueError as exc:
        sys.exit(f"the dyn files cannot make the {list(qmesh)} q mesh: {exc}")
    if len(missing):
        points = " ".join("--qpoint " + " ".join(f"{x:.12g}" for x in q) for q in missing)
        sys.exit(
            f"the {list(qmesh)} q mesh lacks {len(missing)} stars ({len(cover.missing)} of its points): run ph.x at "
            f"them first, e.g. verdi run workflows/run_direct_dfpt.py {pk} {points}"
        )
    qpoints = orm.KpointsData()
    qpoints.set_kpoints_mesh(list(qmesh))
    return assemble_dynamical_matrices(qpoints, retrieved, **direct)


def run_from_dfpt(
    pk: str,
    protocol: str = "production",
    enantiomer: str = "as-is",
    computer: str = "localhost",
    pk_file: Path | None = None,
    figures: Path | None = None,
    qmesh=None,
    direct=(),
) -> orm.WorkChainNode:
    """A PamWorkChain on the DFPT of the PamWorkChain ``pk`` (its ph.x retrieved files and the structure ph.x ran
    on): q2r.x, the sum rules, the response and the figure data with ``protocol``'s settings and the current code.

    ``qmesh``: a denser q mesh that contains the DFPT's, its other stars from the single-q ph.x runs of the
    DirectDfptWorkChains ``direct`` on the same scf (calcfunction ``assemble_dynamical_matrices``); exits listing
    the q points still to run. ``enantiomer`` "other": the structure and ph.x's files mirrored z -> -z
    (calcfunction ``mirror_dfpt_z``), the run marked ``enantiomer_of`` the original structure. Returns the
    finished node; exits when it failed.
    """
    old = pam_workchain(pk)
    try:  # a run that failed after its ph.x finished (e.g. in the response) still has a DFPT to reuse
        retrieved = dfpt_retrieved(old)
    except ValueError as exc:
        sys.exit(f"{exc}: its DFPT cannot be reused")
    structure = dfpt_structure(retrieved)  # the structure ph.x ran on (given or relaxed)
    description = f"DFPT of PamWorkChain<{old.uuid}>; q2r.x onwards with the current code"
    if qmesh:
        retrieved = _assembled(retrieved, pk, qmesh, direct)
        description += f"; q mesh {list(qmesh)} with the single-q ph.x runs of DirectDfptWorkChain {list(direct)}"
    if enantiomer == "other":
        original = structure
        structure = orm.StructureData(ase=mirror_z(original.get_ase()))
        structure.description = f"{MIRROR_OPERATION} of StructureData {original.uuid}"
        retrieved = mirror_dfpt_z(retrieved)
        description += f"; enantiomer: {MIRROR_OPERATION} of StructureData {original.uuid} and of its ph.x files"
    codes = load_codes(computer)
    builder = PamWorkChain.get_builder_from_protocol(*codes, structure, protocol=protocol, dfpt=retrieved)
    redone = "force constants and response redone"
    suffix = "other enantiomer from the mirrored DFPT" if enantiomer == "other" else redone
    base = old.label.removesuffix(f" ({redone})")  # a redo of a redo keeps one suffix
    builder.metadata.label = f"{base} ({suffix})".strip()
    builder.metadata.description = description
    _, node = run_get_node(builder)
    if enantiomer == "other":
        mark_enantiomer(node, original)
    print(outcome_line(node))
    if pk_file:
        Path(pk_file).write_text(f"{node.pk}\n")
    if not node.is_finished_ok:
        sys.exit(f"the workchain failed: {node.exit_message}")
    print_figures(node, figures)
    return node


def load_force_constants(identifier: str) -> tuple[orm.ArrayData, dict]:
    """The force-constants node and the response parameters it was last used with."""
    try:
        node = orm.load_node(identifier)
    except (NotExistent, MultipleObjectsError) as exc:
        sys.exit(f"{identifier}: {exc}")
    if isinstance(node, orm.WorkflowNode):
        if "force_constants" not in node.outputs:
            sys.exit(f"{identifier}: {node.process_label}<{node.pk}> has no force_constants output")
        node = node.outputs.force_constants
    if not (isinstance(node, orm.ArrayData) and "force_constants" in node.get_arraynames()):
        sys.exit(f"{identifier}: not a force-constants node of aiida-llpam")
    previous = (
        orm.QueryBuilder()
        # orm.Data, not orm.ArrayData: QueryBuilder matches subclasses by entry point, and aiida-phonopy's
        # ForceConstantsData (the node since issue #10) is not under ArrayData's
        .append(orm.Data, filters={"id": node.pk}, tag="fc")
        .append(
            orm.ProcessNode,
            with_incoming="fc",
            tag="calc",
            filters={
                "or": [
                    {"attributes.function_name": "pam_response"},  # runs made before the CalcJob
                    {"process_type": "aiida.calculations:llpam.response"},
                ]
            },
        )
        .append(orm.Dict, with_outgoing="calc", edge_filters={"label": "parameters"})
        .order_by({orm.Dict: {"ctime": "desc"}})
        .first()
    )
    parameters = previous[0].get_dict() if previous else {}
    return node, {key: value for key, value in parameters.items() if key in RESPONSE_KEYS}


def recompute_response(
    identifier: str,
    temperatures: list[float] | None = None,
    radii: list[float] | None = None,
    tau: float | None = None,
    grad_t: float | None = None,
    mesh: list[int] | None = None,
    bz_temperature: float | None = None,
    code: str = "llpam-response@localhost",
    pk_file: Path | None = None,
) -> orm.CalcJobNode:
    """A PamResponseCalculation on the force constants of ``identifier`` (a PamWorkChain or the force-constants
    node), with the settings given (K, nm, s, K/m) over those of the last response computed from that node.

    Returns the finished calculation; exits when the parameters are refused or the calculation failed.
    """
    fc, parameters = load_force_constants(identifier)
    updates = {
        "temperatures_k": temperatures,
        "radii_nm": radii,
        "tau_s": tau,
        "grad_t_k_m": grad_t,
        "mesh": mesh,
        "bz_temperature_k": bz_temperature,
    }
    parameters.update({key: value for key, value in updates.items() if value is not None})
    node = orm.Dict(parameters)
    error = validate_parameters(node, None)
    if error:
        sys.exit(error)
    results, calc = run_get_node(PamResponseCalculation, code=orm.load_code(code), force_constants=fc, parameters=node)
    if not calc.is_finished_ok:
        sys.exit(f"PamResponseCalculation<{calc.pk}> failed: {calc.exit_message}")
    print(f"PamResponseCalculation<{calc.pk}> from force constants {fc.__class__.__name__}<{fc.pk}>")
    for name in sorted(results):
        print(f"  {name:18s} {results[name].__class__.__name__}<{results[name].pk}>")
    if pk_file:
        Path(pk_file).write_text(f"{calc.pk}\n")
    return calc
