"""Thermal PAM response, L-L susceptibility and magnetisation (THEORY.md sections 3-6), in SI units.

Sums run over the irreducible part of a Gamma-centred mesh
(:mod:`aiida_llpam.physics.mesh`) in chunks of k points, so no array larger
than ``chunk x nb x nb x n_T`` is ever built. Every branch sum is a trace over
degenerate subspaces (section 3): D pieces pair branches inside one subspace,
OD pieces branches of different subspaces. Tensors summed on the irreducible
points are symmetrised with the rotations the mesh was folded with,
gamma = (1/|G|) sum_R R gamma R^T (an axial times a polar vector: proper
rotations only). Modes with frequency below ``frequency_cutoff_thz`` (the
acoustic modes at Gamma and any unstable mode) are left out of every sum;
their number is reported.

Units: gamma_nl in J s K^-1 m^-2 (for the given tau), chi_* in kg/m
(= J s^2 m^-3), chi_ml_* in A s/m, gamma_m in A m^-1 per K m^-1 (= A/K),
magnetisation in A/m, mu_0 M in T, <L_z> in J s m^-3, radii in m.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from phonopy import Phonopy

from .convergence import MeshConvergence, converge, tracked_by_symmetry
from .degeneracy import DEGENERACY_TOLERANCE_THZ
from .feedback import eta_free, eta_paper, gamma_ll, r_paper
from .lifetimes import Lifetimes, tau_s_from_linewidth
from .mesh import KMesh, make_kmesh
from .modes import PhononModes, iter_modes
from .settings import ResponseSettings
from .symmetry import axial_tensor_form, cartesian_rotations
from .units import AMU_KG, BOHR_M, HBAR, KB, MU_0, MU_N, THZ_TO_J

__all__ = ["PamResponse", "compute_response", "response_sums"]

#: below this |x_s - x_s'| the interband ratio (f_s - f_s')/(E_s' - E_s) takes its limit f(f+1)/kT
_DEGENERATE_X = 1.0e-7
#: pair elements nb x nb x n_T per chunk of k points (16 MB of float64; a few such arrays live at once)
_CHUNK_ELEMENTS = 2_000_000
#: frequency bins of the cumulative gamma^NL (phono3py-kaccum samples 100 by default; finer here, as the
#: chiral TA pair that carries the response lives in the lowest few of them)
_CUMULATIVE_BINS = 200
#: per-mode summands of response_sums that go into the cumulative sums (constant tau, tau_ks)
_MODE_SUMS = ("mode_gamma_nl", "mode_gamma_nl_tau_modes")


@dataclasses.dataclass(frozen=True)
class PamResponse:
    """Every response quantity on a (T, r) grid; SI units, see the module docstring."""

    settings: ResponseSettings
    num_excluded_modes: int  # modes below the cutoff on the full mesh (acoustic at Gamma, unstable)
    num_imaginary_modes: int  # modes with frequency below -cutoff on the full mesh
    lowest_frequency_thz: float  # lowest frequency on the mesh (negative: imaginary)
    mass_density_kg_m3: float
    cell_volume_m3: float
    gamma_nl: np.ndarray  # (nT, 3, 3) <L_i> = gamma_ij dT/dx_j
    gamma_m: np.ndarray  # (nT,) <M_z> = gamma_m dT/dz; NaN without Born charges
    chi_diagonal: np.ndarray  # (nT,) intra-subspace (isothermal)
    chi_offdiagonal_interband: np.ndarray  # (nT,) OD,N
    chi_offdiagonal_pair: np.ndarray  # (nT,) OD,P including the zero-point part
    chi_zero_point: np.ndarray  # (nT,) T-independent part of chi_offdiagonal_pair
    chi_ml_diagonal: np.ndarray  # (nT,) the same pieces for the magnetisation (A s/m)
    chi_ml_offdiagonal_interband: np.ndarray
    chi_ml_offdiagonal_pair: np.ndarray
    bz_kz_reduced: np.ndarray  # (n3,) k_z of each slice in units of the third reciprocal vector, in [-1/2, 1/2)
    bz_chi_diagonal: np.ndarray  # (n1, n2, n3) summand of chi_D per k point at bz_temperature_k
    bz_chi_offdiagonal: np.ndarray  # (n1, n2, n3) summand of chi_OD (interband + pair)
    # the modes on the irreducible k points: None unless settings.store_mesh_modes
    mesh_qpoints: np.ndarray | None  # (nk, 3) irreducible k points, reduced
    mesh_weights: np.ndarray | None  # (nk,) their multiplicities
    mesh_frequencies_thz: np.ndarray  # (nk, nb)
    mesh_l_z_hbar: np.ndarray  # (nk, nb)
    mesh_mu_z_mu_n: np.ndarray  # (nk, nb), NaN without Born charges
    convergence: MeshConvergence | None = None  # the k meshes summed before this one (response_from_settings)
    # with mode-resolved lifetimes (physics.lifetimes) only, else None
    gamma_nl_tau_modes: np.ndarray | None = None  # (nT, 3, 3) with tau_ks(T)
    gamma_m_tau_modes: np.ndarray | None = None  # (nT,)
    cumulative_frequency_thz: np.ndarray | None = None  # (nw,) upper edge of each frequency bin
    cumulative_gamma_nl_zz: np.ndarray | None = None  # (nT, nw) modes below each edge, the constant tau
    cumulative_gamma_nl_zz_tau_modes: np.ndarray | None = None  # (nT, nw) the same with tau_ks(T)
    mesh_tau_ps: np.ndarray | None = None  # (nk, nb) tau at bz_temperature_k (shared in degenerate subspaces)

    def __getattr__(self, name: str):
        # the registry's convergence_* arrays (output "convergence") read through the table
        if name.startswith("convergence_") and self.convergence is not None:
            arrays = self.convergence.as_arrays()
            if name in arrays:
                return arrays[name]
        raise AttributeError(name)

    # ---- the settings, for readers of the result -------------------------------------------------
    temperatures_k = property(lambda self: self.settings.temperatures_k)
    radii_m = property(lambda self: self.settings.radii_m)
    tau_s = property(lambda self: self.settings.tau_s)
    grad_t_k_m = property(lambda self: self.settings.grad_t_k_m)
    mesh = property(lambda self: self.settings.mesh)
    frequency_cutoff_thz = property(lambda self: self.settings.frequency_cutoff_thz)
    bz_temperature_k = property(lambda self: self.settings.bz_temperature_k)

    # ---- derived quantities ----------------------------------------------------------------------
    @property
    def gamma_nl_zz(self) -> np.ndarray:
        """(nT,) the paper's gamma^NL: <L_z> per dT/dz."""
        return self.gamma_nl[:, 2, 2]

    @property
    def gamma_nl_zz_tau_modes(self) -> np.ndarray | None:
        return None if self.gamma_nl_tau_modes is None else self.gamma_nl_tau_modes[:, 2, 2]

    @property
    def tau_effective_nl_s(self) -> np.ndarray | None:
        """(nT,) the constant tau that gives the mode-resolved gamma^NL_zz."""
        return None if self.gamma_nl_tau_modes is None else self.tau_s * self.gamma_nl_zz_tau_modes / self.gamma_nl_zz

    @property
    def tau_effective_m_s(self) -> np.ndarray | None:
        """(nT,) the constant tau that gives the mode-resolved gamma^M (NaN without Born charges)."""
        return None if self.gamma_m_tau_modes is None else self.tau_s * self.gamma_m_tau_modes / self.gamma_m

    @property
    def chi_offdiagonal(self) -> np.ndarray:
        return self.chi_offdiagonal_interband + self.chi_offdiagonal_pair

    @property
    def chi_total(self) -> np.ndarray:
        return self.chi_diagonal + self.chi_offdiagonal

    @property
    def chi_ml_total(self) -> np.ndarray:
        return self.chi_ml_diagonal + self.chi_ml_offdiagonal_interband + self.chi_ml_offdiagonal_pair

    @property
    def gamma_ll(self) -> np.ndarray:
        """(nT, nr) = 2 chi / (rho r^2)."""
        return gamma_ll(self.chi_total, self.mass_density_kg_m3, self.radii_m)

    @property
    def gamma_ll_diagonal(self) -> np.ndarray:
        return gamma_ll(self.chi_diagonal, self.mass_density_kg_m3, self.radii_m)

    @property
    def gamma_ll_offdiagonal(self) -> np.ndarray:
        return gamma_ll(self.chi_offdiagonal, self.mass_density_kg_m3, self.radii_m)

    @property
    def eta(self) -> np.ndarray:
        """(nT, nr) 1/(1 + gamma_ll): the free sample (THEORY.md section 6)."""
        return eta_free(self.gamma_ll)

    @property
    def eta_paper(self) -> np.ndarray:
        """(nT, nr) the paper's 1/(1 - gamma_ll); NaN where gamma_ll >= 1."""
        return eta_paper(self.gamma_ll)

    @property
    def r_paper_m(self) -> np.ndarray:
        """(nT,) sqrt(2 chi / rho), where eta_paper diverges (not a sample size)."""
        return r_paper(self.chi_total, self.mass_density_kg_m3)

    @property
    def pam_density_bare(self) -> np.ndarray:
        """(nT,) <L_z>^NL = gamma_nl_zz dT/dz (independent of r)."""
        return self.gamma_nl_zz * self.grad_t_k_m

    @property
    def pam_density_total(self) -> np.ndarray:
        """(nT, nr) <L_z>^total = eta <L_z>^NL (free sample)."""
        return self.eta * self.pam_density_bare[:, None]

    @property
    def pam_density_paper(self) -> np.ndarray:
        """(nT, nr) eta_paper <L_z>^NL; NaN where gamma_ll >= 1."""
        return self.eta_paper * self.pam_density_bare[:, None]

    @property
    def magnetization_bare(self) -> np.ndarray:
        """(nT,) <M_z>^NL = gamma_m dT/dz, A/m."""
        return self.gamma_m * self.grad_t_k_m

    @property
    def mu0_magnetization_bare_t(self) -> np.ndarray:
        """(nT,) mu_0 <M_z>^NL, T: the field scale."""
        return MU_0 * self.magnetization_bare

    @property
    def magnetization_total(self) -> np.ndarray:
        """(nT, nr) <M_z>^NL - (2 chi_ML / (rho r^2)) <L_z>^total, A/m (free sample)."""
        return self.magnetization_bare[:, None] - gamma_ll(self.chi_ml_total, self.mass_density_kg_m3, self.radii_m) * (
            self.pam_density_total
        )


def _occupations(energy_j: np.ndarray, temperatures_k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x = E/k_B T, Bose factor f and f(f+1) = e^x/(e^x-1)^2 on (..., nT), overflow-safe."""
    x = energy_j[..., None] / (KB * temperatures_k)
    with np.errstate(over="ignore"):
        f = 1.0 / np.expm1(x)
        ff1 = 0.25 / np.sinh(0.5 * x) ** 2
    return x, f, ff1


def response_sums(
    modes: PhononModes, temperatures_k: np.ndarray, cutoff_thz: float, tau_modes_s: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Per-k summands (k first) of every response sum, before the 1/(N V_c) and tau factors.

    gamma_nl (nk, 3, 3, nT) and gamma_m (nk, nT) lack tau; the susceptibility pieces
    (nk, nw, nT) stack L-L (w = 0) and, with Born charges, magnetisation-L (w = 1).
    With ``tau_modes_s`` (nk, nb, nT; one value per degenerate subspace, s) also gamma_nl_tau_modes and
    gamma_m_tau_modes, and per mode (nk, nb, 3, 3, nT) mode_gamma_nl (lacking tau) and mode_gamma_nl_tau_modes:
    a subspace's trace split over its branches (their sum, not each branch, is basis independent).
    """
    valid = modes.frequencies_thz > cutoff_thz  # (nk, nb)
    nu = np.where(valid, modes.frequencies_thz, 1.0)
    energy = THZ_TO_J * nu  # J
    x, f, ff1 = _occupations(energy, temperatures_k)  # (nk, nb, nT)
    f = f * valid[..., None]
    ff1 = ff1 * valid[..., None]
    dfdt = x / temperatures_k * ff1  # df0/dT, 1/K

    pairs = valid[:, :, None] & valid[:, None, :]
    same = modes.same_subspace & pairs  # D: inside one degenerate subspace
    other = ~modes.same_subspace & pairs  # OD: between subspaces

    # traces over each subspace S: sum_{s, s' in S} O_ss' V_s's, weighted by df0/dT(omega_S)
    gamma_nl = (
        -HBAR
        * np.einsum(
            "kist,kjts,kst,ksT->kijT", modes.angular_momentum, modes.velocity_m_s, same, dfdt, optimize=True
        ).real
    )
    sums = {}
    if tau_modes_s is not None:
        dfdt_tau = dfdt * np.where(valid[..., None], tau_modes_s, 0.0)
        for name, weight in (("mode_gamma_nl", dfdt), ("mode_gamma_nl_tau_modes", dfdt_tau)):
            sums[name] = (
                -HBAR
                * np.einsum(
                    "kist,kjts,kst,ksT->ksijT", modes.angular_momentum, modes.velocity_m_s, same, weight, optimize=True
                ).real
            )
        sums["gamma_nl_tau_modes"] = sums["mode_gamma_nl_tau_modes"].sum(axis=1)
    mz = modes.angular_momentum[:, 2]
    # pair weights hbar^2 |M_ss'|^2 (chi) and hbar mu_N Re(mu_ss' M*_ss') (chi_ml), J^2 s^2 and J s A m^2
    weights = [HBAR**2 * np.abs(mz) ** 2]
    if modes.magnetic_moment is not None:
        mu = modes.magnetic_moment
        gamma_m = -MU_N * np.einsum("kst,kts,kst,ksT->kT", mu, modes.velocity_m_s[:, 2], same, dfdt, optimize=True).real
        if tau_modes_s is not None:
            sums["gamma_m_tau_modes"] = (
                -MU_N
                * np.einsum("kst,kts,kst,ksT->kT", mu, modes.velocity_m_s[:, 2], same, dfdt_tau, optimize=True).real
            )
        weights.append(HBAR * MU_N * (mu * mz.conj()).real)
    else:
        gamma_m = np.full(dfdt.shape[::2], np.nan)
        if tau_modes_s is not None:
            sums["gamma_m_tau_modes"] = gamma_m
    weights = np.array(weights)  # (nw, nk, nb, nb)

    omega_s, omega_t = nu[:, :, None], nu[:, None, :]
    root = omega_s * omega_t
    ratio_n = (omega_s + omega_t) ** 2 / root * 0.25 * other  # |A|^2 / (hbar^2 |M|^2)
    ratio_p = (omega_s - omega_t) ** 2 / root * 0.25 * other  # |B|^2 / (hbar^2 |M|^2)

    e_s, e_t = energy[:, :, None, None], energy[:, None, :, None]
    gap = e_t - e_s
    close = np.abs(gap) < _DEGENERATE_X * KB * temperatures_k
    with np.errstate(divide="ignore", invalid="ignore"):
        interband = np.where(
            close,
            0.5 * (ff1[:, :, None, :] + ff1[:, None, :, :]) / (KB * temperatures_k),
            (f[:, :, None] - f[:, None]) / gap,
        )
    pair_sum = e_s + e_t

    sums |= {
        "gamma_nl": gamma_nl,
        "gamma_m": gamma_m,
        "diagonal": np.einsum("wkst,kst,ksT->kwT", weights, same, ff1, optimize=True) / (KB * temperatures_k),
        "offdiagonal_interband": np.einsum("wkst,kst,kstT->kwT", weights, ratio_n, interband, optimize=True),
        "offdiagonal_pair_thermal": np.einsum(
            "wkst,kst,kstT->kwT", weights, ratio_p, (f[:, :, None] + f[:, None]) / pair_sum, optimize=True
        ),
        "zero_point": np.einsum("wkst,kst,kst->kw", weights, ratio_p, 1.0 / pair_sum[..., 0], optimize=True),
        "excluded": np.sum(~valid, axis=1),
        "imaginary": np.sum(modes.frequencies_thz < -cutoff_thz, axis=1),
    }
    return sums


def compute_response(
    phonon: Phonopy,
    mesh,
    temperatures_k,
    radii_m,
    tau_s: float,
    grad_t_k_m: float,
    frequency_cutoff_thz: float = 0.05,
    bz_temperature_k: float = 300.0,
    degeneracy_tolerance_thz: float = DEGENERACY_TOLERANCE_THZ,
    use_symmetry: bool = True,
    lifetimes: Lifetimes | None = None,
) -> PamResponse:
    """All response sums of THEORY.md on a Gamma-centred ``mesh`` for the given grids (validated).

    ``use_symmetry=False`` sums over the full mesh (time reversal only), the
    reference for the symmetry folding. With ``lifetimes`` the tau-linear sums
    are also made with the mode-resolved tau_ks(T) (fields ``*_tau_modes``).
    """
    settings = ResponseSettings(
        temperatures_k=temperatures_k,
        radii_m=radii_m,
        tau_s=tau_s,
        grad_t_k_m=grad_t_k_m,
        mesh=tuple(mesh),
        frequency_cutoff_thz=frequency_cutoff_thz,
        bz_temperature_k=bz_temperature_k,
        degeneracy_tolerance_thz=degeneracy_tolerance_thz,
    )
    return response_from_settings(phonon, settings, use_symmetry, lifetimes=lifetimes)


def response_from_settings(
    phonon: Phonopy,
    settings: ResponseSettings,
    use_symmetry: bool = True,
    report=lambda _: None,
    lifetimes: Lifetimes | None = None,
) -> PamResponse:
    """:func:`compute_response` for settings already validated, on ``mesh`` and then the ``convergence_meshes``.

    The result is that of the last mesh summed (the first converged one, or the
    last of the list); its ``convergence`` holds the table. ``report`` receives a
    line per mesh. ``lifetimes`` live on one mesh, so they exclude a convergence sequence.
    """
    if lifetimes is not None and settings.convergence_meshes:
        raise ValueError(
            "convergence_meshes: mode-resolved lifetimes are on one mesh "
            f"({'x'.join(map(str, lifetimes.mesh))}); converge the k sums with the constant tau first"
        )

    def sums_on(mesh):
        return _response_on_mesh(phonon, dataclasses.replace(settings, mesh=tuple(mesh)), use_symmetry, lifetimes)

    # the crystal's own point group decides what is tracked, whatever use_symmetry folds the mesh with
    rotations = cartesian_rotations(phonon.primitive.cell, phonon.primitive_symmetry.pointgroup_operations)
    zz_allowed = bool(axial_tensor_form(rotations)["allowed"][2][2])
    result, table = converge(sums_on, settings, report, tracked_by_symmetry(zz_allowed))
    return dataclasses.replace(result, convergence=table)


def _tau_modes_s(lifetimes: Lifetimes, modes: PhononModes, qpoints, mesh, rotations, grid, cutoff_thz) -> np.ndarray:
    """tau (nk, nb, nT) in s on ``qpoints``: Gamma averaged over each degenerate subspace of ``modes``."""
    linewidth = lifetimes.linewidths_on(qpoints, mesh, rotations, grid, modes.frequencies_thz)
    same = modes.same_subspace
    shared = np.einsum("kst,ktT->ksT", same, linewidth) / same.sum(axis=-1)[..., None]
    summed = modes.frequencies_thz > cutoff_thz
    if np.any(shared[summed] <= 0):
        k, s = np.argwhere(summed & np.any(shared <= 0, axis=-1))[0]
        raise ValueError(
            f"lifetimes: zero linewidth (infinite tau) at k = {np.round(qpoints[k], 4).tolist()}, branch {s + 1} "
            f"({modes.frequencies_thz[k, s]:.4g} THz), a mode the sums include: raise frequency_cutoff_thz or "
            "check the RTA run"
        )
    return tau_s_from_linewidth(shared)


def _response_on_mesh(
    phonon: Phonopy, settings: ResponseSettings, use_symmetry: bool, lifetimes: Lifetimes | None = None
) -> PamResponse:
    """Every sum on ``settings.mesh``."""
    primitive = phonon.primitive
    rotations = phonon.primitive_symmetry.pointgroup_operations if use_symmetry else None
    kmesh: KMesh = make_kmesh(settings.mesh, rotations, primitive.cell)
    qpoints = kmesh.ir_qpoints
    grid = np.append(settings.temperatures_k, settings.bz_temperature_k)  # last column feeds the BZ maps

    nb = 3 * len(primitive)
    chunk = max(1, _CHUNK_ELEMENTS // (nb * nb * len(grid)))
    totals: dict[str, np.ndarray] = {}
    bz_d, bz_od, per_mode, tau_ps = [], [], [], []
    rot = kmesh.rotations_cartesian
    if lifetimes is not None:
        # cumulative gamma^NL_zz over frequency bins up to the highest mode of the lifetimes
        edges = np.linspace(0.0, 1.001 * lifetimes.frequencies_thz.max(), _CUMULATIVE_BINS + 1)
        cumulative = {name: np.zeros((len(grid), _CUMULATIVE_BINS)) for name in _MODE_SUMS}
    for start, modes in zip(
        range(0, len(qpoints), chunk),
        iter_modes(phonon, qpoints, chunk, settings.degeneracy_tolerance_thz),
    ):
        weights = kmesh.ir_weights[start : start + chunk].astype(float)
        tau = None
        if lifetimes is not None:
            tau = _tau_modes_s(
                lifetimes,
                modes,
                qpoints[start : start + chunk],
                settings.mesh,
                phonon.primitive_symmetry.pointgroup_operations,
                grid,
                settings.frequency_cutoff_thz,
            )
            tau_ps.append(np.where(modes.frequencies_thz > settings.frequency_cutoff_thz, tau[..., -1] * 1e12, np.nan))
        per_k = response_sums(modes, grid, settings.frequency_cutoff_thz, tau)
        per_mode.append((modes.frequencies_thz, modes.l_z_hbar, modes.mu_z_mu_n))
        if lifetimes is not None:
            bins = np.clip(np.searchsorted(edges, modes.frequencies_thz) - 1, 0, _CUMULATIVE_BINS - 1)
            for name in _MODE_SUMS:
                # zz of the symmetrised tensor (rotations mix z with x, y in cubic groups), weighted per k
                zz = np.einsum("gza,ksabT,gzb->ksT", rot[:, 2:3], per_k.pop(name), rot[:, 2:3]) / len(rot)
                np.add.at(cumulative[name].T, bins.ravel(), (weights[:, None, None] * zz).reshape(-1, len(grid)))
        for name, value in per_k.items():
            totals[name] = totals.get(name, 0.0) + np.tensordot(weights, value, axes=1)
        bz_d.append(per_k["diagonal"][:, 0, -1])
        bz_od.append(
            per_k["offdiagonal_interband"][:, 0, -1]
            + per_k["offdiagonal_pair_thermal"][:, 0, -1]
            + per_k["zero_point"][:, 0]
        )

    volume = abs(np.linalg.det(primitive.cell)) * BOHR_M**3
    norm = 1.0 / (kmesh.num_points * volume)

    def symmetrised(summed: np.ndarray) -> np.ndarray:
        return np.einsum("gia,abT,gjb->Tij", rot, summed[..., :-1], rot) / len(rot)

    gamma_nl = symmetrised(totals["gamma_nl"])
    with_lifetimes = {}
    if lifetimes is not None:
        with_lifetimes = {
            "gamma_nl_tau_modes": symmetrised(totals["gamma_nl_tau_modes"]) * norm,
            "gamma_m_tau_modes": totals["gamma_m_tau_modes"][:-1] * norm,
            "cumulative_frequency_thz": edges[1:],
            "cumulative_gamma_nl_zz": np.cumsum(cumulative["mode_gamma_nl"][:-1], axis=1) * settings.tau_s * norm,
            "cumulative_gamma_nl_zz_tau_modes": np.cumsum(cumulative["mode_gamma_nl_tau_modes"][:-1], axis=1) * norm,
            "mesh_tau_ps": np.concatenate(tau_ps),
        }

    def pieces(index: int) -> dict[str, np.ndarray]:
        if index >= len(totals["diagonal"]):  # no Born charges: no magnetisation
            return dict.fromkeys(
                ("diagonal", "offdiagonal_interband", "offdiagonal_pair"), np.full(len(grid) - 1, np.nan)
            )
        zero_point = totals["zero_point"][index] * norm
        return {
            "diagonal": totals["diagonal"][index, :-1] * norm,
            "offdiagonal_interband": totals["offdiagonal_interband"][index, :-1] * norm,
            "offdiagonal_pair": totals["offdiagonal_pair_thermal"][index, :-1] * norm + zero_point,
            "zero_point": np.full(len(grid) - 1, zero_point),
        }

    chi, chi_ml = pieces(0), pieces(1)
    frequencies, l_z, mu_z = (np.concatenate(column) for column in zip(*per_mode))
    mesh_modes = {
        "mesh_qpoints": qpoints,
        "mesh_weights": kmesh.ir_weights,
        "mesh_frequencies_thz": frequencies,
        "mesh_l_z_hbar": l_z,
        "mesh_mu_z_mu_n": mu_z,
    }

    def full_mesh(per_ir: list[np.ndarray]) -> np.ndarray:
        values = np.concatenate(per_ir)[kmesh.full_to_ir] * norm
        return values.reshape(kmesh.mesh[::-1]).transpose(2, 1, 0)  # index [a0, a1, a2]

    return PamResponse(
        settings=settings,
        num_excluded_modes=int(totals["excluded"]),
        num_imaginary_modes=int(totals["imaginary"]),
        lowest_frequency_thz=float(frequencies.min()),
        mass_density_kg_m3=float(np.sum(primitive.masses) * AMU_KG / volume),
        cell_volume_m3=float(volume),
        gamma_nl=gamma_nl * settings.tau_s * norm,
        gamma_m=totals["gamma_m"][:-1] * settings.tau_s * norm,
        chi_diagonal=chi["diagonal"],
        chi_offdiagonal_interband=chi["offdiagonal_interband"],
        chi_offdiagonal_pair=chi["offdiagonal_pair"],
        chi_zero_point=chi["zero_point"],
        chi_ml_diagonal=chi_ml["diagonal"],
        chi_ml_offdiagonal_interband=chi_ml["offdiagonal_interband"],
        chi_ml_offdiagonal_pair=chi_ml["offdiagonal_pair"],
        bz_kz_reduced=kmesh.qpoints[:: kmesh.mesh[0] * kmesh.mesh[1], 2],
        bz_chi_diagonal=full_mesh(bz_d),
        bz_chi_offdiagonal=full_mesh(bz_od),
        **(mesh_modes if settings.store_mesh_modes else dict.fromkeys(mesh_modes)),
        **with_lifetimes,
    )
