"""The interpolated model checked against direct DFPT at q points off the DFPT mesh (THEORY.md section 8).

The force-constant model (q2r.x IFCs, sum rules, Gonze NAC) reproduces ph.x's dynamical matrices on the q mesh
ph.x computed; between the mesh points, and above all in the acoustic region next to Gamma where the chiral TA
pair carries l = +-1, it is an interpolation. A ph.x run at a single q off the mesh measures that interpolation.

The acoustic sum rule. Raw DFPT breaks the ASR: in the production quartz run the acoustic modes at Gamma sit at
-20, -20 and -11 cm^-1, and at 0.05 c* that violation is larger in omega^2 than the TA signal itself. The model
carries q2r.x's ``zasr='crystal'`` correction, which lives at Gamma, and next to Gamma it tends to the on-site
("simple") correction derived from the raw Gamma matrix,

    Phi_{ia,jb}(q) -> Phi_{ia,jb}(q) - delta_ij sum_k Re Phi_{ia,kb}(Gamma),

which makes every row of Phi(Gamma) sum to zero. The direct matrices get the same on-site correction from the
raw Gamma matrix of the DFPT the model was made from (same scf settings), before they are compared.

Conventions: ph.x writes Phi(q) with the phase on lattice vectors; phonopy's D(q) carries it on atomic
positions, D_ij = e^{-2 pi i q.tau_i} Phi_ij e^{2 pi i q.tau_j} / sqrt(m_i m_j) (checked to 1e-12 against the model
at the mesh points, tests/physics/test_direct_dfpt.py). Frequencies in THz unless a name says cm^-1, l in hbar,
mu in mu_N.
"""

from __future__ import annotations

import numpy as np
from phonopy import Phonopy

from .dynmat import DynamicalMatrixFile
from .modes import PhononModes, compute_modes, modes_from_eigensystem, mu_kernels
from .units import THZ_TO_CM

__all__ = [
    "CRITERIA",
    "DEFAULT_VALIDATION_QPOINTS",
    "compare_with_model",
    "failed_criteria",
    "select",
    "direct_modes",
    "onsite_asr_correction",
    "phonopy_matrix",
    "raw_gamma_acoustic_cm",
    "star_matches",
    "summarise",
]

#: reduced q points of the default check (hexagonal labels): Gamma-A at 0.05, 0.1 and 0.2 c*, 0.1 along Gamma-M
#: and along Gamma-K; all within |q| <= 0.25 in reduced units, where the model is interpolation
DEFAULT_VALIDATION_QPOINTS = ((0.0, 0.0, 0.05), (0.0, 0.0, 0.1), (0.0, 0.0, 0.2), (0.1, 0.0, 0.0), (0.1, 0.1, 0.0))


def onsite_asr_correction(phi_gamma_ry_bohr2: np.ndarray) -> np.ndarray:
    """(nat, 3, 3) sum_k Re Phi_{ia,kb}(Gamma): what the on-site ASR correction subtracts from each diagonal block."""
    return np.asarray(phi_gamma_ry_bohr2).real.sum(axis=1)


def gamma_matrix(dyn: DynamicalMatrixFile) -> np.ndarray:
    """Phi(Gamma) of a ph.x Gamma dyn file (the analytic part: ph.x writes the non-analytic term nowhere)."""
    at_gamma = np.flatnonzero(np.abs(dyn.q_2pi_alat).max(axis=1) < 1e-10)
    if not len(at_gamma):
        raise ValueError("the DFPT's first dyn file has no Gamma point: it cannot give the acoustic sum rule")
    return dyn.phi_ry_bohr2[at_gamma[0]]


def phonopy_matrix(dyn: DynamicalMatrixFile, index: int, correction: np.ndarray | None) -> np.ndarray:
    """Phi(q) (3 nat, 3 nat) of the matrix ``index`` of ``dyn`` in Ry/bohr^2 and phonopy's phase convention, not
    divided by the masses, with the on-site ``correction`` subtracted where given; exactly Hermitian."""
    phi = np.array(dyn.phi_ry_bohr2[index])
    nat = len(phi)
    if correction is not None:
        phi[np.arange(nat), np.arange(nat)] -= correction
    phase = np.repeat(np.exp(2j * np.pi * dyn.positions_alat @ dyn.q_2pi_alat[index]), 3)
    matrix = phi.transpose(0, 2, 1, 3).reshape(3 * nat, 3 * nat)
    matrix = phase.conj()[:, None] * matrix * phase[None, :]
    return 0.5 * (matrix + matrix.conj().T)  # ph.x symmetrises to ~1e-8; the eigensolver wants exact Hermiticity


def star_matches(gamma: DynamicalMatrixFile, direct: list[DynamicalMatrixFile]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(reduced q, Phi(q)) of every q of every star in ``direct``, on-site corrected with the raw Gamma matrix
    of ``gamma``: what :func:`aiida_llpam.physics.sum_rules.enforce_rotational_invariance` fits as ``matches``."""
    correction = onsite_asr_correction(gamma_matrix(gamma))
    return [
        (dyn.qpoints_reduced[index], phonopy_matrix(dyn, index, correction))
        for dyn in direct
        for index in range(len(dyn.q_2pi_alat))
    ]


def direct_modes(dyn: DynamicalMatrixFile, index: int, phonon: Phonopy, correction: np.ndarray | None) -> PhononModes:
    """Modes of the direct dynamical matrix ``index`` of ``dyn`` (on-site ``correction`` subtracted where given),
    with phonopy's masses, phase convention, unit factor and Born charges of the model ``phonon``."""
    nat = len(dyn.phi_ry_bohr2[index])
    masses = np.repeat(phonon.primitive.masses, 3)
    matrix = phonopy_matrix(dyn, index, correction) / np.sqrt(masses[:, None] * masses[None, :])
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    factor = phonon.unit_conversion_factor
    frequencies = np.sign(eigenvalues) * np.sqrt(np.abs(eigenvalues)) * factor
    q = dyn.qpoints_reduced[index][None, :]
    no_velocity = np.zeros((1, 3, 3 * nat, 3 * nat), dtype=complex)  # the check compares frequencies, l and mu only
    return modes_from_eigensystem(q, frequencies[None, :], eigenvectors[None], no_velocity, factor, mu_kernels(phonon))


def _ta_splitting_cm(frequencies_cm: np.ndarray) -> float:
    """omega_2 - omega_1 (cm^-1): the splitting of the two lowest branches (the TA pair next to Gamma)."""
    return float(frequencies_cm[1] - frequencies_cm[0])


def compare_with_model(phonon: Phonopy, gamma: DynamicalMatrixFile, direct: list[DynamicalMatrixFile]) -> dict:
    """Frequencies (cm^-1), l^z and mu^z of the model against each direct ph.x run, its first q point each.

    ``gamma`` is the DFPT's Gamma dyn file (the on-site ASR correction); ``direct`` one dyn file per q point.
    Returns arrays over (q, branch): ``model_frequencies_cm``, ``direct_frequencies_cm`` (ASR-corrected),
    ``raw_frequencies_cm`` (as ph.x wrote them), ``model_l_z``, ``direct_l_z``, ``model_mu_z``, ``direct_mu_z``,
    the ``qpoints`` (reduced) and the TA splittings (cm^-1) of model and direct DFPT.
    """
    correction = onsite_asr_correction(gamma_matrix(gamma))
    qpoints = np.array([dyn.qpoints_reduced[0] for dyn in direct])
    if np.any(np.linalg.norm(qpoints, axis=1) < 1e-8):
        raise ValueError("a direct q point is Gamma: the check is for q points off the DFPT mesh")
    model = compute_modes(phonon, qpoints)
    corrected = [direct_modes(dyn, 0, phonon, correction) for dyn in direct]
    raw = [direct_modes(dyn, 0, phonon, None) for dyn in direct]
    table = {
        "qpoints": qpoints,
        "model_frequencies_cm": model.frequencies_thz * THZ_TO_CM,
        "direct_frequencies_cm": np.concatenate([m.frequencies_thz for m in corrected]) * THZ_TO_CM,
        "raw_frequencies_cm": np.concatenate([m.frequencies_thz for m in raw]) * THZ_TO_CM,
        "model_l_z": model.l_z_hbar,
        "direct_l_z": np.concatenate([m.l_z_hbar for m in corrected]),
        "model_mu_z": model.mu_z_mu_n,
        "direct_mu_z": np.concatenate([m.mu_z_mu_n for m in corrected]),
    }
    table["model_ta_splitting_cm"] = np.array([_ta_splitting_cm(f) for f in table["model_frequencies_cm"]])
    table["direct_ta_splitting_cm"] = np.array([_ta_splitting_cm(f) for f in table["direct_frequencies_cm"]])
    table["gamma_asr_violation_cm"] = raw_gamma_acoustic_cm(gamma, phonon)
    return table


def raw_gamma_acoustic_cm(gamma: DynamicalMatrixFile, phonon: Phonopy) -> np.ndarray:
    """The three lowest raw frequencies at Gamma (cm^-1, negative for imaginary) of the DFPT's Gamma dyn file, with
    the masses of ``phonon``: the ASR violation of the DFPT, a convergence measure of its acoustic region."""
    index = int(np.flatnonzero(np.abs(gamma.q_2pi_alat).max(axis=1) < 1e-10)[0])
    return direct_modes(gamma, index, phonon, None).frequencies_thz[0, :3] * THZ_TO_CM


def summarise(table: dict, optical_threshold_cm: float = 100.0) -> dict:
    """Largest deviations of the model from the direct DFPT, per q point and over all (cm^-1 and relative)."""
    model, direct = table["model_frequencies_cm"], table["direct_frequencies_cm"]
    deviation = np.abs(model - direct)
    optical = direct > optical_threshold_cm
    acoustic = np.zeros_like(optical)
    acoustic[:, :3] = True
    split_model, split_direct = table["model_ta_splitting_cm"], table["direct_ta_splitting_cm"]
    with np.errstate(divide="ignore", invalid="ignore"):
        split_relative = np.abs(split_model - split_direct) / np.abs(split_direct)
    raw_deviation = np.abs(model - table["raw_frequencies_cm"])
    return {
        "max_deviation_above_threshold_cm": float(deviation[optical].max(initial=0.0)),
        # the same modes against the raw direct matrix: how much of the deviation is the choice of ASR correction
        "max_raw_deviation_above_threshold_cm": float(raw_deviation[optical].max(initial=0.0)),
        "optical_threshold_cm": optical_threshold_cm,
        "max_acoustic_deviation_cm": float(deviation[acoustic].max()),
        "per_q_max_deviation_cm": deviation.max(axis=1).tolist(),
        "per_q_acoustic_deviation_cm": deviation[:, :3].max(axis=1).tolist(),
        "ta_splitting_relative_deviation": split_relative.tolist(),
        "max_l_z_deviation": float(np.abs(table["model_l_z"] - table["direct_l_z"]).max()),
        "max_mu_z_deviation": float(np.nanmax(np.abs(table["model_mu_z"] - table["direct_mu_z"]))),
    }


#: what a model must meet at held-out direct points (issue 18): acoustic and optical (above 100 cm^-1)
#: frequencies in cm^-1, the TA splitting relative to ph.x's
CRITERIA = {"max_acoustic_deviation_cm": 1.5, "max_deviation_above_threshold_cm": 2.5, "ta_splitting": 0.25}


def select(table: dict, rows) -> dict:
    """The comparison ``table`` restricted to the q points ``rows`` (e.g. those a fitted model did not see)."""
    rows = list(rows)
    return {key: value if key == "gamma_asr_violation_cm" else np.asarray(value)[rows] for key, value in table.items()}


def failed_criteria(summary: dict) -> list[str]:
    """The :data:`CRITERIA` a :func:`summarise` result misses, as text (empty: the model passes)."""
    failed = [
        f"{key} {summary[key]:.2f} > {limit}"
        for key, limit in CRITERIA.items()
        if key != "ta_splitting" and summary[key] > limit
    ]
    splitting = np.asarray(summary["ta_splitting_relative_deviation"], dtype=float)
    if np.any(splitting > CRITERIA["ta_splitting"]):
        failed.append(f"TA splitting {np.nanmax(splitting):.1%} > {CRITERIA['ta_splitting']:.0%}")
    return failed
