"""Find finished PamWorkChains and gather their stored arrays (QueryBuilder; no recomputation)."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.common.exceptions import MultipleObjectsError, NotExistent

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


def _arrays(node) -> dict:
    data = {name: node.get_array(name) for name in node.get_arraynames()}
    for key in ("species", "labels", "symbols", "branch", "frequency_thz", "l_z_hbar", "amplitude_m", "temperature_k"):
        if key in node.base.attributes.keys() and key not in data:
            data[key] = node.base.attributes.get(key)
    return data


def gather(node: orm.WorkChainNode) -> tuple[dict, dict]:
    """(data, sources): the arrays of every figure input and the UUIDs of the nodes they came from."""
    out = node.outputs
    temperatures, gamma_nl = out.gamma_nl.get_x()[1], out.gamma_nl.get_y()[0][1]
    gamma_ll, eta, pam = _arrays(out.gamma_ll), _arrays(out.eta), _arrays(out.pam_density)
    response = {
        "temperatures_k": np.asarray(temperatures),
        "radii_m": gamma_ll["radii_m"],
        "gamma_nl": np.asarray(gamma_nl),
        **{k: v for k, v in _arrays(out.chi).items() if k != "temperatures_k"},
        "gamma_ll": gamma_ll["gamma_ll"],
        "gamma_ll_diagonal": gamma_ll["gamma_ll_diagonal"],
        "gamma_ll_offdiagonal": gamma_ll["gamma_ll_offdiagonal"],
        "eta": eta["eta"],
        "critical_radius_m": np.asarray(out.critical_radius.get_y()[0][1]),
        "pam_density_bare": pam["bare"],
        "pam_density_total": pam["total"],
    }
    data = {
        "path": _arrays(out.dispersion),
        "gamma_a": _arrays(out.gamma_a),
        "trajectory": _arrays(out.trajectory),
        "response": response,
        "bz": _arrays(out.bz_contributions),
        "settings": out.settings.get_dict(),
    }
    response_nodes = ("gamma_nl", "chi", "gamma_ll", "eta", "critical_radius", "pam_density")
    sources = {
        "workchain": node.uuid,
        "path": {"dispersion": out.dispersion.uuid},
        "gamma_a": {"gamma_a": out.gamma_a.uuid},
        "trajectory": {"trajectory": out.trajectory.uuid},
        "response": {name: out[name].uuid for name in response_nodes},
        "bz": {"bz_contributions": out.bz_contributions.uuid},
        "settings": {"settings": out.settings.uuid},
    }
    for key in ("path", "gamma_a", "trajectory", "response", "bz"):
        sources[key]["workchain"] = node.uuid
    return data, sources


def summary(data: dict, temperature_k: float = 300.0, radius_m: float = 20e-9) -> dict:
    """Stored values at the grid point nearest to (T, r)."""
    r = data["response"]
    i = int(np.argmin(np.abs(r["temperatures_k"] - temperature_k)))
    j = int(np.argmin(np.abs(np.log(r["radii_m"] / radius_m))))
    return {
        "temperature_k": float(r["temperatures_k"][i]),
        "radius_m": float(r["radii_m"][j]),
        "gamma_nl": float(r["gamma_nl"][i]),
        "chi_diagonal": float(r["chi_diagonal"][i]),
        "chi_offdiagonal_interband": float(r["chi_offdiagonal_interband"][i]),
        "chi_offdiagonal_pair": float(r["chi_offdiagonal_pair"][i]),
        "chi_zero_point": float(r["chi_zero_point"][i]),
        "gamma_ll": float(r["gamma_ll"][i, j]),
        "gamma_ll_diagonal": float(r["gamma_ll_diagonal"][i, j]),
        "gamma_ll_offdiagonal": float(r["gamma_ll_offdiagonal"][i, j]),
        "eta": float(r["eta"][i, j]),
        "critical_radius_m": float(r["critical_radius_m"][i]),
        "pam_density_bare": float(r["pam_density_bare"][i, j]),
        "pam_density_total": float(r["pam_density_total"][i, j]),
    }
