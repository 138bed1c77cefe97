"""Thermal PAM response and L-L feedback (THEORY.md sections 3-5), in SI units.

Sums run over the irreducible part of a Gamma-centred mesh
(:mod:`aiida_llpam.physics.mesh`) in chunks of k points, so no array larger
than ``chunk x nb x nb x n_T`` is ever built. Modes with frequency below
``frequency_cutoff_thz`` (the acoustic modes at Gamma and any unstable mode)
are left out of every sum; their number is reported.

Units: gamma_nl in J s K^-1 m^-2 (for the given tau), chi_* in kg/m
(= J s^2 m^-3), gamma_ll and eta dimensionless, radii in m, <L_z> in J s m^-3.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from phonopy import Phonopy

from .mesh import KMesh, make_kmesh
from .modes import DEGENERACY_TOLERANCE_THZ, PhononModes, iter_modes
from .units import AMU_KG, BOHR_M, HBAR, KB, THZ_TO_J

__all__ = ["PamResponse", "compute_response", "feedback"]

#: below this |x_s - x_s'| the interband ratio (f_s - f_s')/(E_s' - E_s) takes its limit f(f+1)/kT
_DEGENERATE_X = 1.0e-7
#: pair elements nb x nb x n_T per chunk of k points (16 MB of float64; a few such arrays live at once)
_CHUNK_ELEMENTS = 2_000_000


@dataclasses.dataclass(frozen=True)
class PamResponse:
    """Every response quantity on a (T, r) grid; SI units, see the module docstring."""

    temperatures_k: np.ndarray  # (nT,)
    radii_m: np.ndarray  # (nr,)
    tau_s: float
    grad_t_k_m: float
    mesh: tuple[int, int, int]
    frequency_cutoff_thz: float
    num_excluded_modes: int  # modes below the cutoff on the full mesh (acoustic at Gamma, unstable)
    mass_density_kg_m3: float
    cell_volume_m3: float
    gamma_nl: np.ndarray  # (nT,)
    chi_diagonal: np.ndarray  # (nT,)
    chi_offdiagonal_interband: np.ndarray  # (nT,)
    chi_offdiagonal_pair: np.ndarray  # (nT,) including the zero-point part
    chi_zero_point: np.ndarray  # (nT,) T-independent part of chi_offdiagonal_pair
    bz_temperature_k: float
    bz_kz_reduced: np.ndarray  # (n3,) k_z of each slice in units of the third reciprocal vector, in [-1/2, 1/2)
    bz_chi_diagonal: np.ndarray  # (n1, n2, n3) summand of chi_D per k point at bz_temperature_k
    bz_chi_offdiagonal: np.ndarray  # (n1, n2, n3) summand of chi_OD (interband + pair)

    @property
    def chi_total(self) -> np.ndarray:
        return self.chi_diagonal + self.chi_offdiagonal_interband + self.chi_offdiagonal_pair

    @property
    def chi_offdiagonal(self) -> np.ndarray:
        return self.chi_offdiagonal_interband + self.chi_offdiagonal_pair

    def _ll_factor(self) -> np.ndarray:
        return 2.0 / (self.mass_density_kg_m3 * self.radii_m**2)  # (nr,)

    @property
    def gamma_ll(self) -> np.ndarray:
        """(nT, nr) = 2 chi / (rho r^2)."""
        return np.outer(self.chi_total, self._ll_factor())

    @property
    def gamma_ll_diagonal(self) -> np.ndarray:
        return np.outer(self.chi_diagonal, self._ll_factor())

    @property
    def gamma_ll_offdiagonal(self) -> np.ndarray:
        return np.outer(self.chi_offdiagonal, self._ll_factor())

    @property
    def eta(self) -> np.ndarray:
        """(nT, nr) amplification 1/(1 - gamma_ll); NaN where gamma_ll >= 1 (no linear solution)."""
        return feedback(self.gamma_ll)

    @property
    def critical_radius_m(self) -> np.ndarray:
        """(nT,) radius where gamma_ll = 1: sqrt(2 chi / rho)."""
        return np.sqrt(2.0 * self.chi_total / self.mass_density_kg_m3)

    @property
    def pam_density_bare(self) -> np.ndarray:
        """(nT, nr) <L_z>^NL = gamma_nl dT/dz (independent of r)."""
        return np.repeat((self.gamma_nl * self.grad_t_k_m)[:, None], len(self.radii_m), axis=1)

    @property
    def pam_density_total(self) -> np.ndarray:
        """(nT, nr) eta gamma_nl dT/dz; NaN where supercritical."""
        return self.eta * self.pam_density_bare


def feedback(gamma_ll: np.ndarray) -> np.ndarray:
    """eta = 1 / (1 - gamma_ll) for gamma_ll < 1, NaN otherwise (never negative or infinite)."""
    gamma_ll = np.asarray(gamma_ll, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(gamma_ll < 1.0, 1.0 / (1.0 - gamma_ll), np.nan)


def _occupations(energy_j: np.ndarray, temperatures_k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x = E/k_B T, Bose factor f and f(f+1) = e^x/(e^x-1)^2 on (..., nT), overflow-safe."""
    x = energy_j[..., None] / (KB * temperatures_k)
    with np.errstate(over="ignore"):
        f = 1.0 / np.expm1(x)
        ff1 = 0.25 / np.sinh(0.5 * x) ** 2
    return x, f, ff1


def _chunk_sums(
    modes: PhononModes,
    weights: np.ndarray,
    temperatures_k: np.ndarray,
    cutoff_thz: float,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Weighted branch sums for one chunk, and the per-k sums the BZ maps need."""
    valid = modes.frequencies_thz > cutoff_thz  # (nk, nb)
    nu = np.where(valid, modes.frequencies_thz, 1.0)
    energy = THZ_TO_J * nu  # J
    x, f, ff1 = _occupations(energy, temperatures_k)  # (nk, nb, nT)
    f = f * valid[..., None]
    ff1 = ff1 * valid[..., None]

    l_js = HBAR * modes.l_z_hbar * valid  # J s
    v = modes.group_velocity_z_m_s
    dfdt = x / temperatures_k * ff1  # df0/dT, 1/K

    # matrix elements between distinct valid branches
    m2 = np.abs(modes.mz) ** 2 * (valid[:, :, None] & valid[:, None, :])
    m2 = m2 * (1.0 - np.eye(m2.shape[-1]))
    omega_s, omega_t = nu[:, :, None], nu[:, None, :]
    root = np.sqrt(omega_s * omega_t)
    a2 = 0.25 * HBAR**2 * m2 * ((omega_s + omega_t) / root) ** 2  # |A_ss'|^2, J^2 s^2
    b2 = 0.25 * HBAR**2 * m2 * ((omega_s - omega_t) / root) ** 2  # |B_ss'|^2

    e_s, e_t = energy[:, :, None, None], energy[:, None, :, None]
    f_s, f_t = f[:, :, None, :], f[:, None, :, :]
    gap = e_t - e_s
    close = np.abs(gap) < _DEGENERATE_X * KB * temperatures_k
    with np.errstate(divide="ignore", invalid="ignore"):
        interband = np.where(close, 0.5 * (ff1[:, :, None, :] + ff1[:, None, :, :]) / (KB * temperatures_k), (f_s - f_t) / gap)
    pair_thermal = (f_s + f_t) / (e_s + e_t)

    per_k = {
        "gamma_nl": -np.einsum("ks,ks,kst->kt", l_js, v, dfdt),
        "chi_diagonal": np.einsum("ks,kst->kt", l_js**2, ff1) / (KB * temperatures_k),
        "chi_offdiagonal_interband": np.einsum("kst,kstT->kT", a2, interband),
        "chi_offdiagonal_pair_thermal": np.einsum("kst,kstT->kT", b2, pair_thermal),
        "chi_zero_point": np.einsum("kst,kst->k", b2, 1.0 / (energy[:, :, None] + energy[:, None, :])),
    }
    sums = {name: np.einsum("k,k...->...", weights, value) for name, value in per_k.items()}
    sums["num_excluded_modes"] = np.sum(weights * np.sum(~valid, axis=1))
    return sums, per_k


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
    """All response sums of THEORY.md on a Gamma-centred ``mesh`` for the given grids.

    ``use_symmetry=False`` sums over the full mesh (time reversal only), the
    reference for the symmetry folding.
    """
    temperatures = np.asarray(temperatures_k, dtype=float).ravel()
    radii = np.asarray(radii_m, dtype=float).ravel()
    for name, values in (("temperature", temperatures), ("radius", radii)):
        if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise ValueError(f"every {name} must be a positive number, got {values.tolist()}")
    for name, value in (("tau", tau_s), ("frequency cutoff", frequency_cutoff_thz), ("BZ temperature", bz_temperature_k)):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")
    if not np.isfinite(grad_t_k_m):
        raise ValueError(f"temperature gradient must be finite, got {grad_t_k_m}")

    primitive = phonon.primitive
    rotations = phonon.primitive_symmetry.pointgroup_operations if use_symmetry else None
    kmesh: KMesh = make_kmesh(mesh, rotations, primitive.cell)
    qpoints = kmesh.ir_qpoints
    grid = np.append(temperatures, bz_temperature_k)  # last column feeds the BZ maps

    nb = 3 * len(primitive)
    chunk = max(1, _CHUNK_ELEMENTS // (nb * nb * len(grid)))
    totals: dict[str, np.ndarray] = {}
    bz_d, bz_od = [], []
    for start, modes in zip(
        range(0, len(qpoints), chunk),
        iter_modes(phonon, qpoints, chunk, degeneracy_tolerance_thz),
    ):
        weights = kmesh.ir_weights[start : start + chunk].astype(float)
        sums, per_k = _chunk_sums(modes, weights, grid, frequency_cutoff_thz)
        for name, value in sums.items():
            totals[name] = totals.get(name, 0.0) + value
        bz_d.append(per_k["chi_diagonal"][:, -1])
        bz_od.append(
            per_k["chi_offdiagonal_interband"][:, -1]
            + per_k["chi_offdiagonal_pair_thermal"][:, -1]
            + per_k["chi_zero_point"]
        )

    volume = abs(np.linalg.det(primitive.cell)) * BOHR_M**3
    norm = 1.0 / (kmesh.num_points * volume)
    zero_point = np.full(len(temperatures), totals["chi_zero_point"] * norm)

    def full_mesh(per_ir: list[np.ndarray]) -> np.ndarray:
        values = np.concatenate(per_ir)[kmesh.full_to_ir] * norm
        return values.reshape(kmesh.mesh[::-1]).transpose(2, 1, 0)  # index [a0, a1, a2]

    return PamResponse(
        temperatures_k=temperatures,
        radii_m=radii,
        tau_s=float(tau_s),
        grad_t_k_m=float(grad_t_k_m),
        mesh=kmesh.mesh,
        frequency_cutoff_thz=float(frequency_cutoff_thz),
        num_excluded_modes=int(totals["num_excluded_modes"]),
        mass_density_kg_m3=float(np.sum(primitive.masses) * AMU_KG / volume),
        cell_volume_m3=float(volume),
        gamma_nl=totals["gamma_nl"][:-1] * tau_s * norm,
        chi_diagonal=totals["chi_diagonal"][:-1] * norm,
        chi_offdiagonal_interband=totals["chi_offdiagonal_interband"][:-1] * norm,
        chi_offdiagonal_pair=totals["chi_offdiagonal_pair_thermal"][:-1] * norm + zero_point,
        chi_zero_point=zero_point,
        bz_temperature_k=float(bz_temperature_k),
        bz_kz_reduced=kmesh.qpoints[:: kmesh.mesh[0] * kmesh.mesh[1], 2],
        bz_chi_diagonal=full_mesh(bz_d),
        bz_chi_offdiagonal=full_mesh(bz_od),
    )
