"""The one registry of the quantities aiida-llpam stores (name, unit, axes, output node, description).

Everything that names a stored quantity is generated from this table, in the
spirit of phonopy's ``physical_units.py``: the calcfunction outputs and the
workchain's output ports (:mod:`aiida_llpam.calculations.nodes`), ``aiida-llpam
show``, ``aiida-llpam response --json``, the HDF5 export and
``docs/hdf5_layout.md``. A new quantity is one :class:`Quantity` entry whose
``name`` is an attribute of :class:`~aiida_llpam.physics.response.PamResponse`
(or a key of the figure data): it then appears everywhere.

Axes name the dimensions of an array: ``T`` temperatures (the node's
``temperatures_k``), ``r`` radii (``radii_m``), ``i``/``j`` Cartesian
components, ``k``/``q`` k points, ``s`` branches, ``a`` atoms, ``p`` species,
``n1``/``n2``/``n3`` mesh indices, ``f`` frames, ``c`` a Cartesian vector,
``d`` directions, ``m`` meshes of a convergence sequence, ``w`` frequency bins.
No AiiDA import here: the physics CLI uses it without a profile.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np

__all__ = [
    "AXES",
    "OUTPUTS",
    "QUANTITIES",
    "Output",
    "Quantity",
    "layout_markdown",
    "quantities_of",
    "response_values",
    "summary_quantities",
]

#: an axis that is itself stored (as this array, in this unit) in every node that uses it
AXES = {"T": ("temperatures_k", "K"), "r": ("radii_m", "m")}
#: axes that `show` reduces to one value (T, r) or prints whole (i, j): quantities with only these are summarised
SUMMARY_AXES = {"T", "r", "i", "j"}


@dataclasses.dataclass(frozen=True)
class Output:
    """One output node (an ``ArrayData`` port of the workchain)."""

    name: str
    source: str  # "response" (PamResponse attributes) or "figures" (keys of the figure data)
    description: str
    attributes: tuple[str, ...] = ()  # non-array metadata stored as node attributes
    optional: bool = False  # stored only by runs that compute it (the lifetimes output: with a lifetimes input)


@dataclasses.dataclass(frozen=True)
class Quantity:
    """One stored array."""

    name: str
    output: str
    unit: str
    axes: tuple[str, ...]
    description: str

    @property
    def summarised(self) -> bool:
        return set(self.axes) <= SUMMARY_AXES


OUTPUTS = {
    out.name: out
    for out in (
        Output(
            "gamma_nl", "response", "Bare thermal PAM response tensor (THEORY.md section 4): <L_i> = gamma_ij dT/dx_j."
        ),
        Output("chi", "response", "Static isothermal L-L susceptibility and its pieces (THEORY.md section 6)."),
        Output("gamma_ll", "response", "L-L coefficient gamma^LL(T, r) = 2 chi / (rho r^2) and its D/OD parts."),
        Output(
            "eta", "response", "Feedback factors: eta = 1/(1 + gamma^LL) (free sample), eta_paper = 1/(1 - gamma^LL)."
        ),
        Output("r_paper", "response", "sqrt(2 chi / rho): where the paper's eta diverges; not a sample size."),
        Output(
            "pam_density",
            "response",
            "<L_z>(T) for dT/dz = grad_t_k_m: bare, with the free feedback, with the paper's.",
        ),
        Output(
            "magnetization",
            "response",
            "Phonon magnetisation (THEORY.md section 5): gamma^M, <M_z>, mu_0 <M_z>, chi_ML.",
        ),
        Output(
            "bz_contributions",
            "response",
            "Summands of chi_D and chi_OD per k point on the full mesh (Fig. 3d, e).",
            ("bz_temperature_k", "mesh"),
        ),
        Output(
            "mesh_modes",
            "response",
            "Frequencies, l^z and mu^z per mode on the irreducible k points of the sums; "
            "only with the response setting store_mesh_modes.",
            optional=True,
        ),
        Output(
            "convergence",
            "response",
            "The k meshes summed, in order, with the tracked sums at the reference "
            "temperature; the change of the last step is the k-mesh uncertainty.",
        ),
        Output("diagnostics", "response", "Cell, density and the modes the sums left out (imaginary ones counted)."),
        Output(
            "lifetimes_response",
            "response",
            "The tau-linear sums with mode-resolved tau_ks(T) from phono3py "
            "(THEORY.md section 4) beside the constant tau; only with a lifetimes input.",
            ("bz_temperature_k",),
            optional=True,
        ),
        Output(
            "dispersion",
            "figures",
            "Frequencies, l and mu^z along the band path (Fig. 2d).",
            ("labels", "species", "lattice"),
        ),
        Output(
            "acoustic",
            "figures",
            "The acoustic region (THEORY.md section 8): imaginary modes on the band path and "
            "next to Gamma, sound velocities from the slope at Gamma.",
        ),
        Output(
            "gamma_a",
            "figures",
            "One branch from Gamma along c* to the zone boundary (Fig. 2e).",
            ("species", "branch"),
        ),
        Output(
            "trajectory",
            "figures",
            "Atomic trajectories of one mode over one period (Fig. 2f).",
            ("symbols", "branch", "frequency_thz", "l_z_hbar", "amplitude_m"),
        ),
    )
}

_Q = Quantity
QUANTITIES = (
    _Q("gamma_nl", "gamma_nl", "J s K^-1 m^-2", ("T", "i", "j"), "gamma^NL_ij(T) for the stored tau"),
    _Q("gamma_nl_zz", "gamma_nl", "J s K^-1 m^-2", ("T",), "gamma^NL_zz, the paper's gamma^NL"),
    _Q("chi_diagonal", "chi", "kg/m", ("T",), "chi_D: inside degenerate subspaces (isothermal)"),
    _Q("chi_offdiagonal_interband", "chi", "kg/m", ("T",), "chi_OD,N: between subspaces, f_s - f_s'"),
    _Q("chi_offdiagonal_pair", "chi", "kg/m", ("T",), "chi_OD,P: between subspaces, 1 + f_s + f_s' (with zero point)"),
    _Q("chi_zero_point", "chi", "kg/m", ("T",), "T-independent part of chi_OD,P"),
    _Q("chi_total", "chi", "kg/m", ("T",), "chi = chi_D + chi_OD,N + chi_OD,P"),
    _Q("gamma_ll", "gamma_ll", "1", ("T", "r"), "gamma^LL = 2 chi / (rho r^2)"),
    _Q("gamma_ll_diagonal", "gamma_ll", "1", ("T", "r"), "gamma^LL from chi_D"),
    _Q("gamma_ll_offdiagonal", "gamma_ll", "1", ("T", "r"), "gamma^LL from chi_OD"),
    _Q("eta", "eta", "1", ("T", "r"), "1/(1 + gamma^LL): free sample, in (0, 1]"),
    _Q("eta_paper", "eta", "1", ("T", "r"), "the paper's 1/(1 - gamma^LL); NaN where gamma^LL >= 1"),
    _Q("r_paper_m", "r_paper", "m", ("T",), "sqrt(2 chi / rho), where eta_paper diverges"),
    _Q("pam_density_bare", "pam_density", "J s m^-3", ("T",), "<L_z>^NL = gamma^NL_zz dT/dz"),
    _Q("pam_density_total", "pam_density", "J s m^-3", ("T", "r"), "eta <L_z>^NL (free sample)"),
    _Q("pam_density_paper", "pam_density", "J s m^-3", ("T", "r"), "eta_paper <L_z>^NL; NaN where gamma^LL >= 1"),
    _Q("gamma_m", "magnetization", "A/K", ("T",), "gamma^M: <M_z> per dT/dz (A/m per K/m) for the stored tau"),
    _Q("magnetization_bare", "magnetization", "A/m", ("T",), "<M_z>^NL = gamma^M dT/dz"),
    _Q("mu0_magnetization_bare_t", "magnetization", "T", ("T",), "mu_0 <M_z>^NL"),
    _Q("chi_ml_diagonal", "magnetization", "A s/m", ("T",), "chi_ML, D piece"),
    _Q("chi_ml_offdiagonal_interband", "magnetization", "A s/m", ("T",), "chi_ML, OD,N piece"),
    _Q("chi_ml_offdiagonal_pair", "magnetization", "A s/m", ("T",), "chi_ML, OD,P piece (with zero point)"),
    _Q("chi_ml_total", "magnetization", "A s/m", ("T",), "cross susceptibility chi_ML"),
    _Q("magnetization_total", "magnetization", "A/m", ("T", "r"), "<M_z>^NL - (2 chi_ML / (rho r^2)) <L_z>^total"),
    _Q(
        "bz_chi_diagonal",
        "bz_contributions",
        "kg/m per k point",
        ("n1", "n2", "n3"),
        "summand of chi_D at temperature_k",
    ),
    _Q("bz_chi_offdiagonal", "bz_contributions", "kg/m per k point", ("n1", "n2", "n3"), "summand of chi_OD"),
    _Q("bz_kz_reduced", "bz_contributions", "b3 (reduced)", ("n3",), "k_z of each slice, in [-1/2, 1/2)"),
    _Q("mesh_qpoints", "mesh_modes", "reduced", ("k", "c"), "irreducible k points of the sums"),
    _Q("mesh_weights", "mesh_modes", "1", ("k",), "multiplicity of each irreducible k point"),
    _Q("mesh_frequencies_thz", "mesh_modes", "THz", ("k", "s"), "frequencies (negative: imaginary)"),
    _Q("mesh_l_z_hbar", "mesh_modes", "hbar", ("k", "s"), "l^z per mode"),
    _Q("mesh_mu_z_mu_n", "mesh_modes", "mu_N", ("k", "s"), "mu^z per mode (NaN without Born charges)"),
    _Q(
        "convergence_meshes", "convergence", "1", ("m", "c"), "k meshes summed, in order (the last one is the result's)"
    ),
    _Q("convergence_temperature_k", "convergence", "K", (), "reference temperature of the table"),
    _Q("convergence_tolerance", "convergence", "1", (), "relative tolerance of the last step"),
    _Q(
        "convergence_converged",
        "convergence",
        "1",
        (),
        "1: the last step moved every sum by less than the tolerance; 0: not converged or a single mesh",
    ),
    _Q("convergence_max_relative_change", "convergence", "1", ("m",), "largest relative change from the previous mesh"),
    _Q(
        "convergence_tracked",
        "convergence",
        "1",
        ("quantity",),
        "1 where the sum (gamma_nl_zz, chi_D, chi_OD,N, chi_OD,P, gamma_M) decides convergence; 0: zero by symmetry",
    ),
    _Q("convergence_gamma_nl_zz", "convergence", "J s K^-1 m^-2", ("m",), "gamma^NL_zz per mesh"),
    _Q("convergence_chi_diagonal", "convergence", "kg/m", ("m",), "chi_D per mesh"),
    _Q("convergence_chi_offdiagonal_interband", "convergence", "kg/m", ("m",), "chi_OD,N per mesh"),
    _Q("convergence_chi_offdiagonal_pair", "convergence", "kg/m", ("m",), "chi_OD,P per mesh"),
    _Q("convergence_gamma_m", "convergence", "A/K", ("m",), "gamma^M per mesh (NaN without Born charges)"),
    _Q("gamma_nl_tau_modes", "lifetimes_response", "J s K^-1 m^-2", ("T", "i", "j"), "gamma^NL_ij(T) with tau_ks(T)"),
    _Q("gamma_nl_zz_tau_modes", "lifetimes_response", "J s K^-1 m^-2", ("T",), "gamma^NL_zz with tau_ks(T)"),
    _Q("gamma_m_tau_modes", "lifetimes_response", "A/K", ("T",), "gamma^M with tau_ks(T)"),
    _Q("tau_effective_nl_s", "lifetimes_response", "s", ("T",), "the constant tau giving gamma^NL_zz of tau_ks(T)"),
    _Q("tau_effective_m_s", "lifetimes_response", "s", ("T",), "the constant tau giving gamma^M of tau_ks(T)"),
    _Q("cumulative_frequency_thz", "lifetimes_response", "THz", ("w",), "upper edge of each frequency bin"),
    _Q(
        "cumulative_gamma_nl_zz",
        "lifetimes_response",
        "J s K^-1 m^-2",
        ("T", "w"),
        "gamma^NL_zz of the modes below each edge, constant tau",
    ),
    _Q(
        "cumulative_gamma_nl_zz_tau_modes", "lifetimes_response", "J s K^-1 m^-2", ("T", "w"), "the same with tau_ks(T)"
    ),
    _Q(
        "mesh_tau_ps",
        "lifetimes_response",
        "ps",
        ("k", "s"),
        "tau_ks at bz_temperature_k on the irreducible k points (shared in degenerate subspaces; NaN: left out)",
    ),
    _Q("mass_density_kg_m3", "diagnostics", "kg/m^3", (), "rho = cell mass / V_c"),
    _Q("cell_volume_m3", "diagnostics", "m^3", (), "V_c, primitive cell"),
    _Q("num_excluded_modes", "diagnostics", "1", (), "modes below the frequency cutoff on the full mesh"),
    _Q("num_imaginary_modes", "diagnostics", "1", (), "modes below -cutoff (imaginary) on the full mesh"),
    _Q("lowest_frequency_thz", "diagnostics", "THz", (), "lowest frequency on the mesh (negative: imaginary)"),
    _Q("qpoints", "dispersion", "reduced", ("q", "c"), "path points"),
    _Q("distance", "dispersion", "1/m", ("q",), "length along the path"),
    _Q("frequencies_thz", "dispersion", "THz", ("q", "s"), "frequencies"),
    _Q("l_hbar", "dispersion", "hbar", ("q", "s", "c"), "l (x, y, z) per mode"),
    _Q("l_z_species_hbar", "dispersion", "hbar", ("q", "s", "p"), "l^z per species"),
    _Q("mu_z_mu_n", "dispersion", "mu_N", ("q", "s"), "mu^z per mode (NaN without Born charges)"),
    _Q("path_lowest_frequency_thz", "acoustic", "THz", (), "lowest frequency on the band path (negative: imaginary)"),
    _Q(
        "near_gamma_lowest_frequency_thz",
        "acoustic",
        "THz",
        (),
        "lowest frequency on 200 directions x 12 radii, |q| = 1e-4 to 5e-2 bohr^-1, around Gamma",
    ),
    _Q("num_imaginary_modes", "acoustic", "1", (), "modes below -0.05 cm^-1 on the band path and around Gamma"),
    _Q("sound_directions", "acoustic", "1", ("d", "c"), "Cartesian unit vectors: z (c axis), x, y"),
    _Q(
        "sound_velocities_m_s",
        "acoustic",
        "m/s",
        ("d", "s"),
        "nu/|q| of the three lowest branches at |q| = 2e-3 bohr^-1",
    ),
    _Q("kz_c_star", "gamma_a", "c*", ("q",), "k_z along Gamma to the zone boundary"),
    _Q("frequencies_thz", "gamma_a", "THz", ("q",), "frequency of the branch"),
    _Q("l_z_hbar", "gamma_a", "hbar", ("q",), "l^z of the branch"),
    _Q("l_z_species_hbar", "gamma_a", "hbar", ("q", "p"), "l^z of the branch per species"),
    _Q("positions_m", "trajectory", "m", ("f", "a", "c"), "atomic positions per frame"),
    _Q("equilibrium_m", "trajectory", "m", ("a", "c"), "equilibrium positions"),
    _Q("l_z_atom_hbar", "trajectory", "hbar", ("a",), "l^z per atom of the mode"),
    _Q("q_reduced", "trajectory", "reduced", ("c",), "wave vector of the mode"),
)


def quantities_of(output: str) -> tuple[Quantity, ...]:
    return tuple(q for q in QUANTITIES if q.output == output)


def axis_arrays(output: str) -> list[tuple[str, str, str]]:
    """(axis, array name, unit) of every T / r axis the quantities of ``output`` use, in that order."""
    used = {axis for q in quantities_of(output) for axis in q.axes}
    return [(axis, *AXES[axis]) for axis in AXES if axis in used]


def response_values(result) -> dict:
    """Every response quantity of a :class:`~aiida_llpam.physics.response.PamResponse` by name; those of optional
    outputs only where the run computed them."""
    values = {q.name: getattr(result, q.name) for q in QUANTITIES if OUTPUTS[q.output].source == "response"}
    return {name: value for name, value in values.items() if value is not None}


def summary_quantities() -> tuple[Quantity, ...]:
    """Response quantities `show` prints at one (T, r)."""
    return tuple(q for q in QUANTITIES if OUTPUTS[q.output].source == "response" and q.summarised)


def value_at(quantity: Quantity, value, it: int, ir: int):
    """A quantity's value at temperature index ``it`` and radius index ``ir`` (scalars and i, j kept)."""
    value = np.asarray(value)
    index = tuple(it if axis == "T" else ir if axis == "r" else slice(None) for axis in quantity.axes)
    return value[index] if index else value


def _format(value) -> str:
    if np.ndim(value) == 0:
        value = float(value)
        return "nan" if math.isnan(value) else f"{value:.8g}"  # 8 digits: eta - 1 is ~1e-6 for quartz
    return "[" + ", ".join(_format(v) for v in value) + "]"


def summary_lines(data: Mapping[str, np.ndarray], it: int, ir: int) -> list[str]:
    """``name  value  unit`` for every summarised quantity present in ``data`` (missing ones say so)."""
    lines = []
    for q in summary_quantities():
        if OUTPUTS[q.output].optional and q.name not in data:
            continue  # a quantity of runs with that input only (lifetimes): nothing to say about the others
        text = _format(value_at(q, data[q.name], it, ir)) if q.name in data else "n/a (not stored in this run)"
        lines.append(f"  {q.name:30s} {text:>16} {q.unit if q.name in data else ''}")
    return lines


def layout_markdown() -> str:
    """The table of every output node and its arrays, for docs/hdf5_layout.md (a test keeps them equal)."""
    lines = ["| group (output node) | dataset | axes | unit | description |", "| --- | --- | --- | --- | --- |"]
    for out in OUTPUTS.values():
        for axis, name, unit in axis_arrays(out.name):
            lines.append(f"| /{out.name} | {name} | ({axis}) | {unit} | axis |")
        for q in quantities_of(out.name):
            lines.append(f"| /{out.name} | {q.name} | ({', '.join(q.axes)}) | {q.unit} | {q.description} |")
        if out.attributes:
            lines.append(f"| /{out.name} | attributes: {', '.join(out.attributes)} | | | JSON |")
    return "\n".join(lines)


if __name__ == "__main__":  # regenerate the table of docs/hdf5_layout.md
    print(layout_markdown())
