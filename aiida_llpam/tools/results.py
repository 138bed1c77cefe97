"""Find finished PamWorkChains and gather their stored arrays (QueryBuilder; no recomputation)."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.common.exceptions import MultipleObjectsError, NotExistent
from aiida.common.links import LinkType

from aiida_llpam.calculations.nodes import LAYOUT_VERSION, read_output
from aiida_llpam.physics.convergence import TRACKED, MeshConvergence
from aiida_llpam.physics.units import THZ_TO_CM
from aiida_llpam.quantities import OUTPUTS, QUANTITIES

PROCESS_TYPE = "aiida.workflows:llpam.pam"


class ResultsError(ValueError):
    """An identifier that does not name a finished aiida-llpam workchain."""


def load_pam_workchain(identifier: str) -> orm.WorkChainNode:
    """A finished-ok PamWorkChain by PK, UUID or label."""
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
    if not node.is_finished_ok:
        raise ResultsError(f"{identifier}: PamWorkChain<{node.pk}> did not finish successfully ({node.process_state.value})")
    return node


def finished_runs() -> list[orm.WorkChainNode]:
    query = orm.QueryBuilder().append(
        orm.WorkChainNode,
        filters={"process_type": PROCESS_TYPE, "attributes.exit_status": 0, "attributes.process_state": "finished"},
    )
    return sorted(query.all(flat=True), key=lambda n: n.ctime)


def _legacy_response(out) -> dict:
    """The arrays of a run made before physics v2 (THEORY.md version 1), under v2 names where the meaning is kept.

    v1 stored eta = 1/(1 - gamma^LL), which is v2's ``eta_paper``; its critical radius is ``r_paper_m``;
    gamma^NL was only the zz component. The free-sample eta, the tensor and the magnetisation were not computed.
    """
    response = {name: out.chi.get_array(name) for name in out.chi.get_arraynames()}
    response.update({name: out.gamma_ll.get_array(name) for name in out.gamma_ll.get_arraynames()})
    bz = out.bz_contributions
    response.update(
        gamma_nl_zz=np.asarray(out.gamma_nl.get_y()[0][1]),
        eta_paper=out.eta.get_array("eta"),
        r_paper_m=np.asarray(out.critical_radius.get_y()[0][1]),
        pam_density_bare=out.pam_density.get_array("bare")[:, 0],
        pam_density_paper=out.pam_density.get_array("total"),
        bz_chi_diagonal=bz.get_array("chi_diagonal"),
        bz_chi_offdiagonal=bz.get_array("chi_offdiagonal"),
        bz_kz_reduced=bz.get_array("kz_reduced"),
    )
    return response


def is_v1(node: orm.WorkChainNode) -> bool:
    """True for a run made before physics v2: its nodes carry no layout marker (see calculations.nodes)."""
    return node.outputs.chi.base.attributes.get("llpam_layout", 1) < LAYOUT_VERSION


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


def _ph_calculation(retrieved: orm.FolderData) -> orm.CalcJobNode:
    """The ph.x calculation behind a folder of dynamical matrices; for the per-q-point route its Gamma job."""
    creator = retrieved.creator
    if creator is not None and creator.process_label == "collect_dynamical_matrices":
        creator = creator.inputs.q1.creator
    if creator is None or "qpoints" not in creator.inputs or "parent_folder" not in creator.inputs:
        raise ValueError(f"{retrieved.__class__.__name__}<{retrieved.pk}> is not the retrieved folder of a ph.x mesh run")
    return creator


def dfpt_wall_time_s(retrieved: orm.FolderData) -> float:
    """Wall time (s) of the ph.x job(s) that wrote a folder of dynamical matrices: first start to last end."""
    creator = retrieved.creator
    if creator is not None and creator.process_label == "mirror_dfpt_z":
        return dfpt_wall_time_s(creator.inputs.retrieved)
    if creator is not None and creator.process_label == "collect_dynamical_matrices":
        jobs = [creator.inputs[key].creator for key in creator.inputs if key.startswith("q")]
    else:
        jobs = [_ph_calculation(retrieved)]
    return (max(job.mtime for job in jobs) - min(job.ctime for job in jobs)).total_seconds()


def dfpt_scf_calculation(retrieved: orm.FolderData) -> orm.CalcJobNode:
    """The pw.x calculation whose ground state a ph.x run (a folder of dynamical matrices) perturbed."""
    return _ph_calculation(retrieved).inputs.parent_folder.creator


def dfpt_structure(retrieved: orm.FolderData) -> orm.StructureData:
    """The structure a ph.x run computed (that of the scf it ran on): given, or relaxed by the workchain."""
    return _ph_calculation(retrieved).inputs.parent_folder.creator.inputs.structure


def dfpt_settings(retrieved: orm.FolderData) -> dict:
    """Cut-offs (Ry), scf k mesh and ph.x q mesh of a ph.x run, from its provenance (ph.x -> the scf it ran on).

    For a mirrored DFPT (``mirror_dfpt_z``) they are those of the ph.x run it mirrors.
    """
    if retrieved.creator is not None and retrieved.creator.process_label == "mirror_dfpt_z":
        return dfpt_settings(retrieved.creator.inputs.retrieved)
    ph = _ph_calculation(retrieved)
    pw = ph.inputs.parent_folder.creator
    system = pw.inputs.parameters["SYSTEM"]
    return {
        "ecutwfc_ry": system["ecutwfc"],
        "ecutrho_ry": system.get("ecutrho", 4 * system["ecutwfc"]),  # pw.x's default when the input has none
        "kpoints_mesh": list(pw.inputs.kpoints.get_kpoints_mesh()[0]),
        "qpoints_mesh": list(ph.inputs.qpoints.get_kpoints_mesh()[0]),
    }


def run_settings(node: orm.WorkChainNode) -> dict:
    """The settings a run was made with, read from provenance: protocol, DFPT inputs, symmetry, response."""
    out = node.outputs
    settings = out.settings.get_dict()
    if is_v1(node):  # v1 kept the run's metadata inside the response settings
        return settings
    if "protocol" in node.inputs:
        settings["protocol"] = node.inputs.protocol.value
    settings.update(out.symmetry.get_dict())
    retrieved = dfpt_retrieved(node)
    settings.update(dfpt_settings(retrieved))
    if "dfpt" in node.inputs:
        settings["dfpt_reused_from"] = retrieved.creator.uuid
    settings["relaxed"] = any(isinstance(c, orm.WorkChainNode) and c.process_label == "PwRelaxWorkChain" for c in node.called) or (
        "dfpt" in node.inputs and node.inputs.structure.creator is not None  # a structure made by a vc-relax
    )
    return settings


def gather(node: orm.WorkChainNode) -> tuple[dict, dict]:
    """(data, sources): the arrays of every figure input and the UUIDs of the nodes they came from.

    data = {"path", "gamma_a", "trajectory": arrays of those outputs, "response": every response quantity
    by registry name plus temperatures_k and radii_m, "settings": run_settings, "predates_v2": bool}.
    """
    out = node.outputs
    legacy = is_v1(node)
    if legacy:
        response = _legacy_response(out)
        response_nodes = ("gamma_nl", "chi", "gamma_ll", "eta", "critical_radius", "pam_density", "bz_contributions")
    else:
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
        "predates_v2": legacy,
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


def quality_lines(node: orm.WorkChainNode, data: dict) -> list[str]:
    """Sum rules, the acoustic region and the k-mesh convergence of a run, with the headline sums +- their k-mesh uncertainty."""
    lines = []
    record = node.outputs.force_constants.base.attributes.get("sum_rules", None)
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
