"""Rotational (Born-Huang) and Huang invariance of the interpolated force constants (THEORY.md sections 1, 8).

Why: DFPT force constants of quartz (LDA, ultrasoft O, any q mesh tried) break the
Born-Huang rotational invariance. The acoustic block of D(q) then keeps a term
*linear* in q, omega^2 = +-c|q|, so one branch is imaginary, ~ i sqrt(|q|), in a
pocket next to Gamma. That is exactly where the chiral TA pair carries l = +-1 and
where gamma^NL comes from. ASR, space-group symmetrisation or Born-charge
neutrality do not touch it (they already hold); a denser q mesh does not cure it
(q 2x2x2: -2.7 cm^-1, q 3x3x2: -12 cm^-1).

The conditions must hold for the model phonopy evaluates, short-range IFCs +
Gonze dipole sum: the Ewald part with eps and Z* alone is not invariant (it lacks
the dynamical quadrupoles), so imposing them on the full or on the dipole-
subtracted IFCs leaves or worsens the pocket. The residuals are therefore measured
on D(q) itself (:func:`total_moments`), and the correction enters through the
short-range IFCs, whose moments are exact in the pair vectors.

Where the correction goes: q2r IFCs from an n1 x n2 x n3 q mesh are known only
modulo that supercell; every pair stands for the sum over its periodic images.
:func:`enforce_rotational_invariance` embeds them in a ``factor`` times larger
supercell (on the original Wigner-Seitz images: the same model at every q) and
adds the smallest (Frobenius) redistribution among the images of each pair that
keeps every image sum, so **every DFPT dynamical matrix of the q mesh, Gamma
included, is unchanged exactly**, and zeroes the Born-Huang and Huang residuals.
Only the Fourier interpolation between the DFPT q points changes.

Two further model choices (the sum-rule models of the error budget, docs/theory.md):

* :func:`onsite_acoustic_sum_rule` moves the acoustic sum rule from phonopy's projection at Gamma to the
  on-site correction derived from the raw Gamma matrix, the same correction the direct check applies to ph.x's
  matrices off the mesh (:mod:`aiida_llpam.physics.direct_dfpt`); every grid matrix then equals ph.x's minus
  that correction.
* ``matches`` of :func:`enforce_rotational_invariance`: dynamical matrices of ph.x at q points off the mesh
  that the redistribution among the images should also reproduce (least squares, after the invariance
  conditions, which stay exact), so that direct DFPT near Gamma enters the model and other direct points
  check it.

Units: those of the phonopy object, for the project ``calculator='qe'``: force
constants Ry/bohr^2, lengths bohr, masses AMU; first moments Ry/bohr, second Ry.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from phonopy import Phonopy
from phonopy.harmonic.dynamical_matrix import DynamicalMatrixGL, get_dynamical_matrices_at_qpoints
from scipy import sparse

__all__ = [
    "SumRuleReport",
    "enforce_rotational_invariance",
    "invariance_residuals",
    "onsite_acoustic_sum_rule",
    "total_moments",
]

#: central-difference step of :func:`total_moments` (1/bohr, no 2 pi): 1e-4 and 1e-5 agree to 1e-5 on
#: quartz; 1e-3 leaves a -0.01 cm^-1 pocket
MOMENT_STEP_BOHR = 1e-4
#: columns of the direct-matrix fit projected at a time: 128 x 315,000 orbits (quartz unfolded to 12x12x6) is
#: 320 MB, against 1.8 GB per fitted q point projected at once
FIT_BLOCK_COLUMNS = 128
#: relative cut-off of the direct-matrix fit's least squares, and below which (against the unprojected Gram matrix)
#: there is nothing to fit
FIT_RCOND = 1e-10


@dataclasses.dataclass(frozen=True)
class SumRuleReport:
    """What the correction did: largest residuals before/after (Ry/bohr, Ry) and largest change (Ry/bohr^2)."""

    factor: tuple[int, int, int]
    born_huang_before: float
    born_huang_after: float
    huang_before: float
    huang_after: float
    max_change_ry_bohr2: float
    max_force_constant_ry_bohr2: float
    #: reduced q points whose direct matrices the redistribution fitted, and the largest misfit left (Ry/bohr^2)
    matched_qpoints: tuple[tuple[float, float, float], ...] = ()
    match_residual_ry_bohr2: float = 0.0

    def as_dict(self) -> dict:
        record = dataclasses.asdict(self)
        record["factor"] = list(self.factor)
        record["matched_qpoints"] = [list(q) for q in self.matched_qpoints]
        return record


def _short_range(phonon: Phonopy) -> np.ndarray:
    """The IFCs phonopy Fourier-interpolates: Gonze's short-range part with NAC, else the force constants."""
    dm = phonon.dynamical_matrix
    if isinstance(dm, DynamicalMatrixGL):
        if dm.short_range_force_constants is None:
            dm.make_Gonze_nac_dataset()
        return np.array(dm.short_range_force_constants)
    return np.array(phonon.force_constants)


def total_moments(phonon: Phonopy, step_bohr: float = MOMENT_STEP_BOHR) -> tuple[np.ndarray, np.ndarray]:
    """First and second moments per primitive atom of the model phonopy evaluates (IFCs + Gonze NAC).

    F(q)[p, a, b] = sum_k' sqrt(m_p m_k') D_{pa,k'b}(q) (rows of D contracted with a
    uniform translation: the non-analytic G = 0 term drops out by charge neutrality)
    is differentiated by central differences in Cartesian q (1/bohr, no 2 pi).
    Returns M1[p, a, b, c] = sum_s Phi_ab R_c (Ry/bohr) and
    M2[p, a, b, c, d] = sum_s Phi_ab R_c R_d (Ry), R = r_s - r_p.
    """
    prim = phonon.primitive
    n_p = len(prim)
    sqrt_m = np.sqrt(prim.masses)

    def contracted(q_cart):
        dm = get_dynamical_matrices_at_qpoints(phonon.dynamical_matrix, q_cart @ prim.cell.T)  # reduced q
        dm = dm.reshape(len(q_cart), n_p, 3, n_p, 3) * sqrt_m[:, None, None, None] * sqrt_m[None, None, :, None]
        return dm.sum(axis=3)

    h = step_bohr
    e = np.eye(3) * h
    two_pi = 2 * np.pi
    m1 = ((contracted(e) - contracted(-e)).imag / (2 * h * two_pi)).transpose(1, 2, 3, 0)
    c, d = np.meshgrid(range(3), range(3), indexing="ij")
    c, d = c.ravel(), d.ravel()
    corners = [contracted(sign_c * e[c] + sign_d * e[d]) for sign_c, sign_d in ((1, 1), (1, -1), (-1, 1), (-1, -1))]
    second = -(corners[0] - corners[1] - corners[2] + corners[3]).real / (4 * h * h * two_pi**2)  # (9, p, a, b)
    m2 = second.reshape(3, 3, n_p, 3, 3).transpose(2, 3, 4, 0, 1)
    return m1, m2


_BH_PAIRS = ((0, 1), (0, 2), (1, 2))
_HUANG_PAIRS = [(i, j) for i in range(9) for j in range(i + 1, 9)]


def _residuals(m1: np.ndarray, m2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Born-Huang residuals (p, a, pair) = M1[p,a,b,g] - M1[p,a,g,b] and the Huang residuals [ab,cd] - [cd,ab].

    The Huang brackets are summed over atoms and symmetrised in a<->b and c<->d, the
    part an index-symmetric correction can change.
    """
    bh = np.stack([m1[:, :, b, g] - m1[:, :, g, b] for b, g in _BH_PAIRS], axis=-1)
    brackets = m2.sum(axis=0)
    brackets = 0.25 * (
        brackets + brackets.transpose(1, 0, 2, 3) + brackets.transpose(0, 1, 3, 2) + brackets.transpose(1, 0, 3, 2)
    ).reshape(9, 9)
    huang = np.array([brackets[i, j] - brackets[j, i] for i, j in _HUANG_PAIRS])
    return bh, huang


def invariance_residuals(phonon: Phonopy, step_bohr: float = MOMENT_STEP_BOHR) -> tuple[float, float]:
    """Largest Born-Huang (Ry/bohr) and Huang (Ry) residual of the model phonopy evaluates."""
    bh, huang = _residuals(*total_moments(phonon, step_bohr))
    return float(np.abs(bh).max()), float(np.abs(huang).max())


def _pair_moments(phonon: Phonopy) -> tuple[np.ndarray, np.ndarray]:
    """Image-averaged pair vectors R1[p, s, :] (bohr) and R R products R2[p, s, :, :] (bohr^2), R = r_s - r_p."""
    prim = phonon.primitive
    vectors, multiplicity = prim.get_smallest_vectors()
    cart = vectors @ prim.cell
    count, offset = multiplicity[..., 0].T, multiplicity[..., 1].T  # (p, s)
    r1 = np.zeros((*count.shape, 3))
    r2 = np.zeros((*count.shape, 3, 3))
    for n in np.unique(count):  # vectorised per multiplicity
        p, s = np.nonzero(count == n)
        images = cart[offset[p, s][:, None] + np.arange(n)]  # (pairs, n, 3)
        r1[p, s] = images.mean(axis=1)
        r2[p, s] = np.einsum("kia,kib->kab", images, images) / n
    return r1, r2


def _permutation_orbits(phonon: Phonopy) -> np.ndarray:
    """Orbit index of every compact-fc entry (p, s, a, b) under Phi[p, s, a, b] = Phi[p', s', b, a]."""
    prim = phonon.primitive
    p2s = np.asarray(prim.p2s_map)
    s2p = np.asarray(prim.s2p_map)
    p2p = prim.p2p_map
    perms = np.asarray(prim.atomic_permutations)  # (translations, n_s): where each atom goes
    n_p, n_s = len(p2s), len(s2p)
    # the translation t(s) that brings supercell atom s onto its primitive representative
    home = np.array([p2s[p2p[s2p[s]]] for s in range(n_s)])
    translation = np.argmax(perms == home[None, :], axis=0)
    partner_p = np.array([p2p[s2p[s]] for s in range(n_s)])  # (n_s,)
    partner_s = perms[translation[None, :], p2s[:, None]]  # (n_p, n_s): image of p under t(s)
    index = np.arange(n_p * n_s * 9).reshape(n_p, n_s, 3, 3)
    mate = index[partner_p[None, :], partner_s].transpose(0, 1, 3, 2)
    _, orbit = np.unique(np.minimum(index, mate).ravel(), return_inverse=True)
    return orbit


def _constraint_rows(r1: np.ndarray, r2: np.ndarray) -> np.ndarray:
    """Rows (constraint, flattened compact fc) of the Born-Huang and Huang sums, same order as :func:`_residuals`."""
    n_p, n_s = r1.shape[:2]
    rows = []
    for p in range(n_p):
        for a in range(3):
            for b, g in _BH_PAIRS:
                row = np.zeros((n_p, n_s, 3, 3))
                row[p, :, a, b] = r1[p, :, g]
                row[p, :, a, g] = -r1[p, :, b]
                rows.append(row.ravel())
    pairs = [(a, b) for a in range(3) for b in range(3)]
    for i, j in _HUANG_PAIRS:
        (a, b), (c, d) = pairs[i], pairs[j]
        row = np.zeros((n_p, n_s, 3, 3))
        row[:, :, a, b] += r2[:, :, c, d]
        row[:, :, c, d] -= r2[:, :, a, b]
        rows.append(row.ravel())
    return np.array(rows)


def _sum_by_orbit(rows: np.ndarray, orbit: np.ndarray, n_orbits: int) -> np.ndarray:
    """(constraints, entries) -> (orbits, constraints): the columns of each orbit added."""
    order = np.argsort(orbit, kind="stable")
    starts = np.searchsorted(orbit[order], np.arange(n_orbits))
    return np.add.reduceat(rows.T[order], starts, axis=0)


def _embed(phonon: Phonopy, factor) -> tuple[Phonopy, np.ndarray]:
    """The same model on a ``factor`` times larger supercell, and the map of its atoms onto the small one.

    Every short-range IFC goes to the big-supercell atom at r_p + v for each of its
    Wigner-Seitz image vectors v (weight 1/multiplicity), so the big model equals
    the small one at every q; the dipole part is the big supercell's own.
    """
    big = Phonopy(
        phonon.unitcell,
        supercell_matrix=np.asarray(phonon.supercell_matrix) @ np.diag(factor),
        primitive_matrix=phonon.primitive_matrix,
        calculator=phonon.calculator,
        log_level=0,
    )
    short_small = _short_range(phonon)
    n_p, n_s_small = short_small.shape[:2]
    n_s = len(big.supercell)
    big_cell = big.supercell.cell
    big_frac = big.supercell.scaled_positions
    small_frac = big.supercell.positions @ np.linalg.inv(phonon.supercell.cell)
    offset = small_frac[:, None, :] - phonon.supercell.scaled_positions[None, :, :]
    offset -= np.rint(offset)
    fold = np.argmin(np.linalg.norm(offset @ phonon.supercell.cell, axis=-1), axis=1)

    vectors, multiplicity = phonon.primitive.get_smallest_vectors()
    cart = vectors @ phonon.primitive.cell
    short_big = np.zeros((n_p, n_s, 3, 3))
    inv_cell = np.linalg.inv(big_cell)
    for p, home in enumerate(big.primitive.p2s_map):
        for s in range(n_s_small):
            count, start = multiplicity[s, p]
            target = (big.supercell.positions[home] + cart[start : start + count]) @ inv_cell  # (count, 3)
            delta = target[:, None, :] - big_frac[None, :, :]
            delta -= np.rint(delta)
            site = np.argmin(np.linalg.norm(delta @ big_cell, axis=-1), axis=1)
            np.add.at(short_big[p], site, short_small[p, s] / count)

    big.force_constants = np.zeros((n_p, n_s, 3, 3))
    if phonon.nac_params is not None:
        big.nac_params = phonon.nac_params
        dipole = -_short_range(big)  # short-range part of zero IFCs = minus the dipole part
    else:
        dipole = 0.0
    big.force_constants = short_big + dipole
    return big, fold


def onsite_acoustic_sum_rule(phonon: Phonopy, phi_gamma_ry_bohr2: np.ndarray) -> Phonopy:
    """The model with the acoustic sum rule of the direct check: every grid matrix is ph.x's minus the on-site term.

    ``phonon``: compact force constants that reproduce ph.x's matrices at the mesh points away from Gamma and
    carry phonopy's ASR projection at Gamma (what :func:`aiida_llpam.physics.build_phonopy` makes from q2r.x);
    ``phi_gamma_ry_bohr2``: ph.x's raw Phi(Gamma) (nat, nat, 3, 3), the analytic part. Adding
    (Phi_raw(Gamma) - Phi_model(Gamma)) / N to every pair of the N-cell supercell changes the model at Gamma
    only, among the mesh points; removing sum_k Re Phi_raw(Gamma)_{ik} from each on-site block then shifts every
    mesh point alike. The optical modes move by the same on-site term at every q (about 2 cm^-1 on the
    production quartz), instead of only at Gamma.
    """
    force_constants = np.array(phonon.force_constants)
    n_p, n_s = force_constants.shape[:2]
    if n_p != len(phonon.primitive):
        raise ValueError("compact force constants (n_primitive, n_supercell, 3, 3) expected")
    raw = np.asarray(phi_gamma_ry_bohr2).real
    if raw.shape != (n_p, n_p, 3, 3):
        raise ValueError(f"Phi(Gamma): expected shape {(n_p, n_p, 3, 3)}, got {raw.shape}")
    p2p = phonon.primitive.p2p_map
    owner = np.array([p2p[s] for s in phonon.primitive.s2p_map])  # primitive atom of each supercell atom
    model = np.stack([force_constants[:, owner == j].sum(axis=1) for j in range(n_p)], axis=1)
    force_constants += ((raw - model) / (n_s // n_p))[:, owner]
    home = np.asarray(phonon.primitive.p2s_map)
    force_constants[np.arange(n_p), home] -= raw.sum(axis=1)
    result = Phonopy(
        phonon.unitcell,
        supercell_matrix=phonon.supercell_matrix,
        primitive_matrix=phonon.primitive_matrix,
        calculator=phonon.calculator,
        log_level=0,
    )
    result.force_constants = force_constants
    if phonon.nac_params is not None:
        result.nac_params = phonon.nac_params
    return result


def _phase_rows(phonon: Phonopy, q_reduced: np.ndarray) -> np.ndarray:
    """(n_p, n_s) complex: Phi_{pa,jb}(q) = sum_{s of atom j} fc[p, s, a, b] phase[p, s] in phonopy's convention
    (image-averaged e^{2 pi i q.(r_s - r_p)}), the linear map from compact IFCs to the matrix at q."""
    vectors, multiplicity = phonon.primitive.get_smallest_vectors()
    count, start = multiplicity[..., 0].T, multiplicity[..., 1].T
    phase = np.zeros(count.shape, dtype=complex)
    for n in np.unique(count):
        p, s = np.nonzero(count == n)
        images = vectors[start[p, s][:, None] + np.arange(n)]  # (pairs, n, 3) reduced
        phase[p, s] = np.exp(2j * np.pi * images @ np.asarray(q_reduced, dtype=float)).mean(axis=1)
    return phase


def _independent(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the real parts on and above the diagonal and the imaginary parts above it of an (n, n)
    Hermitian matrix: everything else follows from them."""
    upper_real = np.flatnonzero(np.triu(np.ones((n, n), dtype=bool)).ravel())
    upper_imag = np.flatnonzero(np.triu(np.ones((n, n), dtype=bool), k=1).ravel())
    return upper_real, upper_imag


def _match_columns(phonon: Phonopy, q_reduced, orbit: np.ndarray, n_orbits: int) -> sparse.csc_matrix:
    """(orbits, independent elements of Phi(q)), sparse: the linear map from the orbit values of the compact IFCs to
    the real and imaginary parts of Phi(q) in the order of :func:`_as_real`. Each orbit reaches at most two elements
    (an entry and its transpose), so the map has about 4 nonzeros per orbit; dense it would be 1.8 GB per q for
    quartz unfolded to 12x12x6 (315,000 orbits), which made fits to in-plane stars run out of memory."""
    n_p, n_s = len(phonon.primitive), len(phonon.supercell)
    p2p = phonon.primitive.p2p_map
    owner = np.array([p2p[s] for s in phonon.primitive.s2p_map])
    phase = _phase_rows(phonon, q_reduced)
    p, s, a, b = (index.ravel() for index in np.indices((n_p, n_s, 3, 3)))
    element = np.ravel_multi_index((p, a, owner[s], b), (n_p, 3, n_p, 3))
    size = (3 * n_p) ** 2
    upper_real, upper_imag = _independent(3 * n_p)
    column = np.full(2 * size, -1)  # element (real parts, then imaginary parts) -> independent column, or -1
    column[upper_real] = np.arange(len(upper_real))
    column[size + upper_imag] = len(upper_real) + np.arange(len(upper_imag))
    rows, cols, values = [], [], []
    for offset, part in ((0, phase[p, s].real), (size, phase[p, s].imag)):
        target = column[element + offset]
        keep = target >= 0
        rows.append(orbit[keep])
        cols.append(target[keep])
        values.append(part[keep])
    shape = (n_orbits, len(upper_real) + len(upper_imag))
    # duplicate (orbit, column) pairs add up, as the dense accumulation did
    return sparse.csc_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=shape)


def enforce_rotational_invariance(
    phonon: Phonopy, factor=(2, 2, 2), step_bohr: float = MOMENT_STEP_BOHR, matches=()
) -> tuple[Phonopy, SumRuleReport]:
    """A phonopy object on the ``factor`` times larger supercell that obeys Born-Huang and Huang invariance.

    ``phonon``: compact force constants (translational ASR imposed, as
    :func:`aiida_llpam.physics.build_phonopy` makes them), optionally with Gonze NAC,
    which the result carries too. Every DFPT dynamical matrix of the original q
    mesh is kept (the image sum of each pair is fixed); among such models the
    smallest change in the Frobenius norm is taken. ASR and index symmetry are kept
    because the change is index-symmetric and its image sums vanish. A factor of 2
    along every axis is needed on quartz: unfolding only along c leaves the in-plane
    pocket.

    ``matches``: pairs (reduced q, Phi(q)), Phi (3 n_p, 3 n_p) complex in Ry/bohr^2 and phonopy's phase
    convention, not divided by the masses (:func:`aiida_llpam.physics.direct_dfpt.phonopy_matrix`), every
    member of each star for a symmetric model. Within the changes that keep the mesh and make the model
    invariant, the one of smallest norm that fits them in the least-squares sense is added.
    """
    factor = tuple(int(n) for n in factor)
    if len(factor) != 3 or min(factor) < 1:
        raise ValueError(f"factor: three positive integers, got {factor}")
    force_constants = np.asarray(phonon.force_constants)
    n_p = force_constants.shape[0]
    if n_p != len(phonon.primitive):
        raise ValueError("compact force constants (n_primitive, n_supercell, 3, 3) expected")
    bh, huang = _residuals(*total_moments(phonon, step_bohr))
    target = -np.concatenate([bh.ravel(), huang])

    big, fold = _embed(phonon, factor)
    n_s = len(big.supercell)
    orbit = _permutation_orbits(big)
    n_orbits = orbit.max() + 1
    size = np.bincount(orbit, minlength=n_orbits).astype(float)
    # every big orbit folds onto one small orbit: the image sums a change must keep
    fold_entry = np.ravel_multi_index(
        np.meshgrid(np.arange(n_p), fold, np.arange(3), np.arange(3), indexing="ij"), force_constants.shape
    ).ravel()
    small_orbit = _permutation_orbits(phonon)
    group = np.zeros(n_orbits, dtype=int)
    group[orbit] = small_orbit[fold_entry]

    # variables z_o = sqrt(size_o) y_o (y: value of orbit o), so |change|_F = |z|; keeping the image
    # sum of group g is u_g . z = 0 with u_o = sqrt(size_o) normalised within the group
    u = np.sqrt(size)
    u /= np.sqrt(np.bincount(group, weights=size))[group]

    # onto u_g . z = 0 for every group g; v: (orbits, k); sparse, as the fit projects thousands of columns
    groups = sparse.csr_matrix((u, (group, np.arange(n_orbits))), shape=(group.max() + 1, n_orbits))

    def project(v):
        return v - groups.T @ (groups @ v)

    r1, r2 = _pair_moments(big)
    rows = _sum_by_orbit(_constraint_rows(r1, r2), orbit, n_orbits) / np.sqrt(size)[:, None]  # (orbits, constraints)
    projected = project(rows)
    solve = np.linalg.pinv(rows.T @ projected, rcond=1e-12)
    z = projected @ (solve @ target)

    if len(matches):
        # least squares in what is left: changes that keep the mesh and the invariance conditions exactly
        def keep(v):
            v = project(v)
            return v - projected @ (solve @ (projected.T @ v))

        fitted = _without_time_reversed(matches)
        qpoints = np.array([q for q, _ in fitted])
        columns = sparse.hstack([_match_columns(big, q, orbit, n_orbits) for q in qpoints], format="csc")
        columns = sparse.diags(1 / np.sqrt(size)) @ columns
        misfit = np.concatenate([_as_real(phi - model) for (_, phi), model in zip(fitted, _matrices(big, qpoints))])
        misfit -= columns.T @ z
        # z += K C (C^T K C)^+ misfit with K = keep: the Gram matrix C^T K C is built a block of columns at a
        # time, so K C (orbits x all columns, dense) never exists at once
        gram = np.empty((columns.shape[1], columns.shape[1]))
        for start in range(0, columns.shape[1], FIT_BLOCK_COLUMNS):
            block = slice(start, start + FIT_BLOCK_COLUMNS)
            gram[:, block] = columns.T @ keep(columns[:, block].toarray())
        # matches the mesh already fixes (a star of the DFPT mesh) leave nothing to fit: the Gram matrix is then
        # round-off (1e-14 against 1 unprojected), which lstsq's relative cut-off would take for directions
        unprojected = float(columns.multiply(columns).sum(axis=0).max())
        if np.abs(gram).max() > FIT_RCOND * unprojected:
            z = z + keep(columns @ np.linalg.lstsq(gram, misfit, rcond=FIT_RCOND)[0])
    change = (z / np.sqrt(size))[orbit].reshape(n_p, n_s, 3, 3)
    big.force_constants = np.asarray(big.force_constants) + change

    bh_after, huang_after = invariance_residuals(big, step_bohr)
    residual = 0.0
    if len(matches):
        after = _matrices(big, np.array([q for q, _ in matches], dtype=float))
        residual = max(float(np.abs(np.asarray(phi) - model).max()) for (_, phi), model in zip(matches, after))
    report = SumRuleReport(
        factor=factor,
        born_huang_before=float(np.abs(bh).max()),
        born_huang_after=bh_after,
        huang_before=float(np.abs(huang).max()),
        huang_after=huang_after,
        max_change_ry_bohr2=float(np.abs(change).max()),
        max_force_constant_ry_bohr2=float(np.abs(force_constants).max()),
        matched_qpoints=tuple(tuple(float(x) for x in q) for q, _ in matches),
        match_residual_ry_bohr2=residual,
    )
    return big, report


def _matrices(phonon: Phonopy, qpoints_reduced: np.ndarray) -> np.ndarray:
    """Phi(q) (q, 3 n_p, 3 n_p) of the model in Ry/bohr^2, phonopy's phase convention, not mass-weighted."""
    dm = get_dynamical_matrices_at_qpoints(phonon.dynamical_matrix, qpoints_reduced)
    sqrt_m = np.repeat(np.sqrt(phonon.primitive.masses), 3)
    return np.asarray(dm) * np.outer(sqrt_m, sqrt_m)[None]


def _as_real(matrix: np.ndarray) -> np.ndarray:
    """The independent real and imaginary parts of a Hermitian matrix, in the order of :func:`_match_columns`."""
    upper_real, upper_imag = _independent(len(matrix))
    return np.concatenate([matrix.real.ravel()[upper_real], matrix.imag.ravel()[upper_imag]])


def _without_time_reversed(matches) -> list:
    """The matches less each -q whose q is already there: real IFCs give Phi(-q) = Phi(q)* anyway."""
    kept = []
    for q, phi in matches:
        if not any(np.allclose(-np.asarray(q), other, atol=1e-8) for other, _ in kept):
            kept.append((np.asarray(q, dtype=float), np.asarray(phi)))
    return kept
