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

from .convergence import MeshConvergence, converge
from .degeneracy import DEGENERACY_TOLERANCE_THZ
from .feedback import eta_free, eta_paper, gamma_ll, r_paper
from .mesh import KMesh, make_kmesh
from .modes import PhononModes, iter_modes
from .settings import ResponseSettings
from .units import AMU_KG, BOHR_M, HBAR, KB, MU_0, MU_N, THZ_TO_J

__all__ = ["PamResponse", "compute_response", "response_sums"]

#: below this |x_s - x_s'| the interband ratio (f_s - f_s')/(E_s' - E_s) takes its limit f(f+1)/kT
_DEGENERATE_X = 1.0e-7
#: pair elements nb x nb x n_T per chunk of k points (16 MB of float64; a few such arrays live at once)
_CHUNK_ELEMENTS = 2_000_000


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
    mesh_qpoints: np.ndarray  # (nk, 3) irreducible k points, reduced
    mesh_weights: np.ndarray  # (nk,) their multiplicities
    mesh_frequencies_thz: np.ndarray  # (nk, nb)
    mesh_l_z_hbar: np.ndarray  # (nk, nb)
    mesh_mu_z_mu_n: np.ndarray  # (nk, nb), NaN without Born charges
    convergence: MeshConvergence | None = None  # the k meshes summed before this one (response_from_settings)

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


def response_sums(modes: PhononModes, temperatures_k: np.ndarray, cutoff_thz: float) -> dict[str, np.ndarray]:
    """Per-k summands (k first) of every response sum, before the 1/(N V_c) and tau factors.

    gamma_nl (nk, 3, 3, nT) and gamma_m (nk, nT) lack tau; the susceptibility pieces
    (nk, nw, nT) stack L-L (w = 0) and, with Born charges, magnetisation-L (w = 1).
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
    gamma_nl = -HBAR * np.einsum(
        "kist,kjts,kst,ksT->kijT", modes.angular_momentum, modes.velocity_m_s, same, dfdt, optimize=True
    ).real
    mz = modes.angular_momentum[:, 2]
    # pair weights hbar^2 |M_ss'|^2 (chi) and hbar mu_N Re(mu_ss' M*_ss') (chi_ml), J^2 s^2 and J s A m^2
    weights = [HBAR**2 * np.abs(mz) ** 2]
    if modes.magnetic_moment is not None:
        mu = modes.magnetic_moment
        gamma_m = -MU_N * np.einsum("kst,kts,kst,ksT->kT", mu, modes.velocity_m_s[:, 2], same, dfdt, optimize=True).real
        weights.append(HBAR * MU_N * (mu * mz.conj()).real)
    else:
        gamma_m = np.full(dfdt.shape[::2], np.nan)
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
            close, 0.5 * (ff1[:, :, None, :] + ff1[:, None, :, :]) / (KB * temperatures_k), (f[:, :, None] - f[:, None]) / gap
        )
    pair_sum = e_s + e_t

    sums = {
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
) -> PamResponse:
    """All response sums of THEORY.md on a Gamma-centred ``mesh`` for the given grids (validated).

    ``use_symmetry=False`` sums over the full mesh (time reversal only), the
    reference for the symmetry folding.
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
    return response_from_settings(phonon, settings, use_symmetry)


def response_from_settings(
    phonon: Phonopy, settings: ResponseSettings, use_symmetry: bool = True, report=lambda _: None
) -> PamResponse:
    """:func:`compute_response` for settings already validated, on ``mesh`` and then the ``convergence_meshes``.

    The result is that of the last mesh summed (the first converged one, or the
    last of the list); its ``convergence`` holds the table. ``report`` receives a
    line per mesh.
    """

    def sums_on(mesh):
        return _response_on_mesh(phonon, dataclasses.replace(settings, mesh=tuple(mesh)), use_symmetry)

    result, table = converge(sums_on, settings, report)
    return dataclasses.replace(result, convergence=table)


def _response_on_mesh(phonon: Phonopy, settings: ResponseSettings, use_symmetry: bool) -> PamResponse:
    """Every sum on ``settings.mesh``."""
    primitive = phonon.primitive
    rotations = phonon.primitive_symmetry.pointgroup_operations if use_symmetry else None
    kmesh: KMesh = make_kmesh(settings.mesh, rotations, primitive.cell)
    qpoints = kmesh.ir_qpoints
    grid = np.append(settings.temperatures_k, settings.bz_temperature_k)  # last column feeds the BZ maps

    nb = 3 * len(primitive)
    chunk = max(1, _CHUNK_ELEMENTS // (nb * nb * len(grid)))
    totals: dict[str, np.ndarray] = {}
    bz_d, bz_od, per_mode = [], [], []
    for start, modes in zip(
        range(0, len(qpoints), chunk),
        iter_modes(phonon, qpoints, chunk, settings.degeneracy_tolerance_thz),
    ):
        weights = kmesh.ir_weights[start : start + chunk].astype(float)
        per_k = response_sums(modes, grid, settings.frequency_cutoff_thz)
        per_mode.append((modes.frequencies_thz, modes.l_z_hbar, modes.mu_z_mu_n))
        for name, value in per_k.items():
            totals[name] = totals.get(name, 0.0) + np.tensordot(weights, value, axes=1)
        bz_d.append(per_k["diagonal"][:, 0, -1])
        bz_od.append(
            per_k["offdiagonal_interband"][:, 0, -1] + per_k["offdiagonal_pair_thermal"][:, 0, -1] + per_k["zero_point"][:, 0]
        )

    volume = abs(np.linalg.det(primitive.cell)) * BOHR_M**3
    norm = 1.0 / (kmesh.num_points * volume)
    rot = kmesh.rotations_cartesian
    gamma_nl = np.einsum("gia,abT,gjb->Tij", rot, totals["gamma_nl"][..., :-1], rot) / len(rot)

    def pieces(index: int) -> dict[str, np.ndarray]:
        if index >= len(totals["diagonal"]):  # no Born charges: no magnetisation
            return dict.fromkeys(("diagonal", "offdiagonal_interband", "offdiagonal_pair"), np.full(len(grid) - 1, np.nan))
        zero_point = totals["zero_point"][index] * norm
        return {
            "diagonal": totals["diagonal"][index, :-1] * norm,
            "offdiagonal_interband": totals["offdiagonal_interband"][index, :-1] * norm,
            "offdiagonal_pair": totals["offdiagonal_pair_thermal"][index, :-1] * norm + zero_point,
            "zero_point": np.full(len(grid) - 1, zero_point),
        }

    chi, chi_ml = pieces(0), pieces(1)
    frequencies, l_z, mu_z = (np.concatenate(column) for column in zip(*per_mode))

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
        mesh_qpoints=qpoints,
        mesh_weights=kmesh.ir_weights,
        mesh_frequencies_thz=frequencies,
        mesh_l_z_hbar=l_z,
        mesh_mu_z_mu_n=mu_z,
    )
