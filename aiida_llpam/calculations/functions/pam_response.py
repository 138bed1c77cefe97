"""The PAM response and mode data of one force-constants node, one output node per quantity."""

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_llpam.physics import compute_response
from aiida_llpam.physics.path import dispersion_along_path, gamma_a_branch, mode_trajectory

from .phonopy_force_constants import phonopy_from_node


def _arrays(arrays: dict, units: dict, **attributes) -> orm.ArrayData:
    node = orm.ArrayData()
    for name, value in arrays.items():
        node.set_array(name, np.asarray(value))
    node.base.attributes.set("units", units)
    for key, value in attributes.items():
        node.base.attributes.set(key, value)
    return node


def _xy(x, x_name, x_unit, y, y_name, y_unit) -> orm.XyData:
    node = orm.XyData()
    node.set_x(np.asarray(x, dtype=float), x_name, x_unit)
    node.set_y(np.asarray(y, dtype=float), y_name, y_unit)
    return node


def grid(spec) -> np.ndarray:
    """A grid from a list, or from {start, stop, num[, extra]} (geometric when start > 0 and spans > 1 decade)."""
    if isinstance(spec, (list, tuple)):
        return np.asarray(spec, dtype=float)
    start, stop, num = float(spec["start"]), float(spec["stop"]), int(spec["num"])
    if start > 0 and stop / start > 10:
        values = np.geomspace(start, stop, num)
    else:
        values = np.linspace(start, stop, num)
    return np.unique(np.concatenate([values, np.asarray(spec.get("extra", []), dtype=float)]))


@calcfunction
def pam_response(force_constants: orm.ArrayData, parameters: orm.Dict) -> dict:
    """gamma^NL, chi pieces, gamma^LL, eta, r_c, <L_z>, BZ maps, path and trajectory data.

    ``parameters`` (the workchain's ``response`` input plus run metadata):
    temperatures_k, radii_nm (list or {start, stop, num, extra}), tau_s,
    grad_t_k_m, mesh, frequency_cutoff_thz, bz_temperature_k,
    path_points_per_segment, trajectory_q, trajectory_branch; every other key
    is copied to the ``settings`` output.
    """
    p = parameters.get_dict()
    phonon = phonopy_from_node(force_constants)
    temperatures = grid(p["temperatures_k"])
    radii = grid(p["radii_nm"]) * 1e-9
    res = compute_response(
        phonon,
        p["mesh"],
        temperatures,
        radii,
        p["tau_s"],
        p["grad_t_k_m"],
        frequency_cutoff_thz=p["frequency_cutoff_thz"],
        bz_temperature_k=p["bz_temperature_k"],
    )
    path = dispersion_along_path(phonon, p["path_points_per_segment"])
    branch = gamma_a_branch(phonon, p["trajectory_branch"])
    trajectory = mode_trajectory(phonon, p["trajectory_q"], p["trajectory_branch"])

    tr = {"temperatures_k": temperatures, "radii_m": radii}
    tr_units = {"temperatures_k": "K", "radii_m": "m"}
    settings = dict(p)
    settings.update(
        temperatures_k=temperatures.tolist(),
        radii_m=radii.tolist(),
        mass_density_kg_m3=res.mass_density_kg_m3,
        cell_volume_m3=res.cell_volume_m3,
        num_excluded_modes=res.num_excluded_modes,
        units={"tau_s": "s", "grad_t_k_m": "K/m", "frequency_cutoff_thz": "THz", "bz_temperature_k": "K"},
    )
    settings.pop("radii_nm")
    return {
        "dispersion": _arrays(
            {k: path[k] for k in ("qpoints", "distance", "frequencies_thz", "l_z_hbar", "l_z_species_hbar")},
            {"qpoints": "reduced", "distance": "1/m", "frequencies_thz": "THz", "l_z_hbar": "hbar", "l_z_species_hbar": "hbar"},
            species=path["species"],
            labels=path["labels"],
        ),
        "gamma_a": _arrays(
            {k: branch[k] for k in ("kz_c_star", "frequencies_thz", "l_z_hbar", "l_z_species_hbar")},
            {"kz_c_star": "c*", "frequencies_thz": "THz", "l_z_hbar": "hbar", "l_z_species_hbar": "hbar"},
            species=branch["species"],
            branch=branch["branch"],
        ),
        "trajectory": _arrays(
            {k: trajectory[k] for k in ("positions_m", "equilibrium_m", "l_z_atom_hbar", "q_reduced")},
            {"positions_m": "m", "equilibrium_m": "m", "l_z_atom_hbar": "hbar", "q_reduced": "reduced"},
            symbols=trajectory["symbols"],
            branch=trajectory["branch"],
            frequency_thz=trajectory["frequency_thz"],
            l_z_hbar=trajectory["l_z_hbar"],
            amplitude_m=trajectory["amplitude_m"],
        ),
        "gamma_nl": _xy(temperatures, "temperature", "K", res.gamma_nl, "gamma_nl", "J s K^-1 m^-2"),
        "chi": _arrays(
            {
                "temperatures_k": temperatures,
                "chi_diagonal": res.chi_diagonal,
                "chi_offdiagonal_interband": res.chi_offdiagonal_interband,
                "chi_offdiagonal_pair": res.chi_offdiagonal_pair,
                "chi_zero_point": res.chi_zero_point,
                "chi_total": res.chi_total,
            },
            {"temperatures_k": "K", **dict.fromkeys(
                ("chi_diagonal", "chi_offdiagonal_interband", "chi_offdiagonal_pair", "chi_zero_point", "chi_total"), "kg/m")},
        ),
        "gamma_ll": _arrays(
            {**tr, "gamma_ll": res.gamma_ll, "gamma_ll_diagonal": res.gamma_ll_diagonal, "gamma_ll_offdiagonal": res.gamma_ll_offdiagonal},
            {**tr_units, "gamma_ll": "1", "gamma_ll_diagonal": "1", "gamma_ll_offdiagonal": "1"},
        ),
        "eta": _arrays({**tr, "eta": res.eta}, {**tr_units, "eta": "1 (NaN where gamma_ll >= 1)"}),
        "critical_radius": _xy(temperatures, "temperature", "K", res.critical_radius_m, "critical_radius", "m"),
        "pam_density": _arrays(
            {**tr, "bare": res.pam_density_bare, "total": res.pam_density_total},
            {**tr_units, "bare": "J s m^-3", "total": "J s m^-3 (NaN where gamma_ll >= 1)"},
        ),
        "bz_contributions": _arrays(
            {"chi_diagonal": res.bz_chi_diagonal, "chi_offdiagonal": res.bz_chi_offdiagonal, "kz_reduced": res.bz_kz_reduced},
            {"chi_diagonal": "kg/m per k point", "chi_offdiagonal": "kg/m per k point", "kz_reduced": "reciprocal lattice vector b3"},
            temperature_k=res.bz_temperature_k,
            mesh=list(res.mesh),
        ),
        "settings": orm.Dict(settings),
    }
