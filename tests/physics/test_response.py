"""Response sums: THEORY.md sections 3-5 checks on real quartz and silicon force constants."""

import dataclasses

import numpy as np
import pytest
from numpy.testing import assert_allclose

from aiida_llpam.physics import build_phonopy, compute_modes, compute_response
from aiida_llpam.physics.feedback import eta_paper
from aiida_llpam.physics.phonon import set_nac
from aiida_llpam.physics.units import AMU_KG, BOHR_M, PROTON_MASS_AMU

TEMPS = np.array([20.0, 100.0, 300.0, 800.0])
RADII = np.array([5e-9, 20e-9, 1e-6])
TAU, GRAD = 1e-11, 1e4


@pytest.fixture(scope="module")
def quartz_response(quartz):
    return compute_response(quartz, (6, 6, 6), TEMPS, RADII, TAU, GRAD)


def mirror_z(fc):
    """The enantiomer z -> -z of a q2r data set, on a right-handed lattice (a, b, -(mirrored c)).

    A left-handed lattice would give phonopy's NAC a negative cell volume. With c
    flipped back the lattice cell (m1, m2, m3) maps to (m1, m2, -m3); unwrapped
    positions, IFC blocks, eps and Z* transform with s = diag(1, 1, -1).
    """
    s = np.diag([1.0, 1.0, -1.0])
    blocks = lambda a: np.einsum("ij,...jk,kl->...il", s, a, s)  # noqa: E731
    lattice = fc.lattice_bohr @ s
    lattice[2] *= -1.0
    ifc = fc.ifc_ry_bohr2  # [m1, m2, m3, na1, na2, j1, j2]
    if ifc is not None:
        ifc = blocks(ifc[:, :, (-np.arange(fc.mesh[2])) % fc.mesh[2]])
    return dataclasses.replace(
        fc,
        lattice_bohr=lattice,
        positions_bohr=fc.positions_bohr @ s,
        ifc_ry_bohr2=ifc,
        dielectric=None if fc.dielectric is None else blocks(fc.dielectric),
        born_charges=None if fc.born_charges is None else blocks(fc.born_charges),
    )


def test_every_chi_piece_is_positive(quartz_response):
    r = quartz_response
    for piece in (r.chi_diagonal, r.chi_offdiagonal_interband, r.chi_offdiagonal_pair, r.chi_zero_point):
        assert np.all(piece > 0)
    assert np.all(r.chi_offdiagonal_pair >= r.chi_zero_point)
    assert np.all(np.diff(r.chi_total) > 0)  # thermal population grows with T
    assert r.num_excluded_modes == 3  # the acoustic triplet at Gamma


def test_units_and_feedback_relations(quartz_response, quartz_fc):
    r = quartz_response
    # the fixture's low-cut-off relaxation compresses the cell (a = 4.70 A): 2.65 g/cm^3 at experiment
    volume = quartz_fc.volume_bohr3 * BOHR_M**3
    # m^3 (~1e-28): approx's default abs=1e-12 would accept any volume, hence abs=0
    assert r.cell_volume_m3 == pytest.approx(volume, rel=1e-6, abs=0)
    assert r.mass_density_kg_m3 == pytest.approx(np.sum(quartz_fc.masses_amu) * AMU_KG / volume, rel=1e-6, abs=0)
    assert 2500 < r.mass_density_kg_m3 < 3200

    def close(actual, desired, rtol=1e-10):
        """Relations that hold to rounding; atol 1e-12 of the largest value (SI values go down to 1e-17)."""
        assert_allclose(actual, desired, rtol=rtol, atol=1e-12 * np.abs(desired).max())

    gamma_ll = 2 * r.chi_total[:, None] / (r.mass_density_kg_m3 * r.radii_m[None, :] ** 2)
    close(r.gamma_ll, gamma_ll)
    close(r.gamma_ll, r.gamma_ll_diagonal + r.gamma_ll_offdiagonal)
    close(r.pam_density_bare, r.gamma_nl[:, 2, 2] * GRAD)
    sub = r.gamma_ll < 1
    close(r.eta_paper[sub], 1 / (1 - r.gamma_ll[sub]))
    assert np.all(np.isnan(r.eta_paper[~sub])) and np.all(np.isnan(r.pam_density_paper[~sub]))
    close(r.pam_density_paper[sub], (r.eta_paper * r.pam_density_bare[:, None])[sub])
    close(2 * r.chi_total / (r.mass_density_kg_m3 * r.r_paper_m**2), np.ones_like(r.chi_total))
    # the free sample (THEORY.md section 6): the coupling suppresses
    close(r.eta, 1 / (1 + r.gamma_ll))
    close(r.pam_density_total, r.eta * r.pam_density_bare[:, None])
    chi_ml_ll = 2 * r.chi_ml_total[:, None] / (r.mass_density_kg_m3 * r.radii_m[None, :] ** 2)
    close(r.magnetization_total, r.magnetization_bare[:, None] - chi_ml_ll * r.pam_density_total)
    close(r.magnetization_bare, r.gamma_m * GRAD)


def test_paper_eta_diverges_where_free_eta_stays_in_range(quartz):
    res = compute_response(quartz, (4, 4, 4), [300.0], [1e-12, 1e-6], TAU, GRAD)
    rc = res.r_paper_m[0]
    assert 1e-12 < rc < 1e-6
    assert np.isnan(res.eta_paper[0, 0]) and res.eta_paper[0, 1] > 1.0
    assert np.array_equal(np.isnan(eta_paper([0.5, 1.0, 3.0])), [False, True, True])
    assert 0 < res.eta[0, 0] < 1e-2 and 1 - 1e-9 < res.eta[0, 1] < 1  # gamma_LL ~ 200 at 1 pm


def test_free_eta_in_unit_interval_for_every_t_and_r(quartz):
    temperatures = np.geomspace(1.0, 3000.0, 25)
    radii = np.geomspace(1e-13, 1e-3, 31)
    eta = compute_response(quartz, (4, 4, 4), temperatures, radii, TAU, GRAD).eta
    assert np.all(np.isfinite(eta)) and np.all(eta > 0) and np.all(eta <= 1)
    assert eta.min() < 1e-3 and eta.max() > 1 - 1e-12  # the grid reaches both ends


def test_quartz_gamma_nl_tensor_is_diagonal_with_xx_equal_yy(quartz):
    """Point group 32: gamma^NL_ij = diag(a, a, b)."""
    g = compute_response(quartz, (8, 8, 8), TEMPS, RADII, TAU, GRAD).gamma_nl
    scale = np.abs(g).max(axis=(1, 2))
    off = g - np.einsum("tii,ij->tij", g, np.eye(3))
    assert np.all(np.abs(off).max(axis=(1, 2)) < 1e-10 * scale)
    assert_allclose(g[:, 0, 0], g[:, 1, 1], rtol=1e-8, atol=1e-12 * scale.max())
    assert np.all(np.abs(g[:, 0, 0]) > 1e-3 * scale)


def test_gamma_nl_linear_in_tau(quartz):
    a = compute_response(quartz, (4, 4, 4), TEMPS, RADII, 1e-12, GRAD)
    b = compute_response(quartz, (4, 4, 4), TEMPS, RADII, 3e-12, GRAD)
    assert_allclose(b.gamma_nl, 3 * a.gamma_nl, rtol=1e-10, atol=1e-12 * np.abs(3 * a.gamma_nl).max())
    assert np.abs(a.gamma_nl).max() > 0


def test_symmetry_folding_equals_full_mesh(quartz):
    folded = compute_response(quartz, (4, 4, 3), TEMPS, RADII, TAU, GRAD)
    full = compute_response(quartz, (4, 4, 3), TEMPS, RADII, TAU, GRAD, use_symmetry=False)
    for name in (
        "gamma_nl",
        "chi_diagonal",
        "chi_offdiagonal_interband",
        "chi_offdiagonal_pair",
        "gamma_m",
        "chi_ml_diagonal",
        "chi_ml_offdiagonal_interband",
        "chi_ml_offdiagonal_pair",
    ):
        # the DFPT force constants break the point group at the 1e-6 level; the folded sum is the symmetric one
        rtol = 1e-5
        expected = getattr(full, name)
        assert_allclose(getattr(folded, name), expected, rtol=rtol, atol=rtol * np.abs(expected).max(), err_msg=name)
    assert_allclose(folded.bz_chi_offdiagonal, full.bz_chi_offdiagonal, rtol=1e-5, atol=0)


def test_bz_maps_sum_to_chi(quartz):
    res = compute_response(quartz, (4, 4, 4), [150.0, 300.0], RADII, TAU, GRAD, bz_temperature_k=300.0)
    assert res.bz_chi_diagonal.shape == (4, 4, 4)
    # kg/m (~1e-17): abs=0, approx's default abs=1e-12 would accept any value
    assert res.bz_chi_diagonal.sum() == pytest.approx(res.chi_diagonal[1], rel=1e-10, abs=0)
    assert res.bz_chi_offdiagonal.sum() == pytest.approx(res.chi_offdiagonal[1], rel=1e-10, abs=0)
    assert_allclose(np.sort(res.bz_kz_reduced), [-0.5, -0.25, 0.0, 0.25], rtol=0, atol=1e-12)  # reduced coordinates


def test_classical_limit_against_phonopy_thermal_displacements(quartz):
    """chi -> (1/V_c) sum_kappa m_kappa <u_x^2 + u_y^2> for k_B T >> hbar omega_max."""
    temperature = 30000.0
    mesh = (4, 4, 4)
    res = compute_response(quartz, mesh, [temperature], [20e-9], TAU, GRAD)
    quartz.run_mesh(mesh, with_eigenvectors=True, is_mesh_symmetry=False, is_gamma_center=True)
    quartz.run_thermal_displacements(temperatures=[temperature], freq_min=res.frequency_cutoff_thz)
    u2 = quartz.thermal_displacements.thermal_displacements[0].reshape(-1, 3)  # (nat, 3) in Angstrom^2
    masses = quartz.primitive.masses * AMU_KG
    reference = np.sum(masses * (u2[:, 0] + u2[:, 1])) * 1e-20 / res.cell_volume_m3
    assert res.chi_total[0] == pytest.approx(reference, rel=0.02, abs=0)  # kg/m
    assert res.chi_offdiagonal[0] > res.chi_diagonal[0]


def test_mirror_image_flips_gamma_nl_and_keeps_chi(quartz_fc, quartz_rigid_fc, quartz):
    mirrored = build_phonopy(mirror_z(quartz_fc), mirror_z(quartz_rigid_fc))
    a = compute_response(quartz, (4, 4, 4), TEMPS, RADII, TAU, GRAD)
    b = compute_response(mirrored, (4, 4, 4), TEMPS, RADII, TAU, GRAD)
    assert np.abs(a.gamma_nl_zz).min() > 0
    # 1e-5: the DFPT force constants break the point group at that level (see the folding test)
    assert_allclose(b.gamma_nl, -a.gamma_nl, rtol=1e-5, atol=1e-5 * np.abs(a.gamma_nl).max())
    assert_allclose(b.chi_total, a.chi_total, rtol=1e-6, atol=0)  # all positive (test above)
    # mu^z is an axial vector like l: gamma^M flips, the cross susceptibility chi_ML does not
    assert np.abs(a.gamma_m).min() > 0
    assert_allclose(b.gamma_m, -a.gamma_m, rtol=1e-5, atol=0)  # none is zero (above)
    assert_allclose(b.chi_ml_total, a.chi_ml_total, rtol=1e-6, atol=1e-12 * np.abs(a.chi_ml_total).max())


def test_centrosymmetric_silicon_has_no_gamma_nl(silicon, quartz):
    si = compute_response(silicon, (6, 6, 6), TEMPS, RADII, TAU, GRAD)
    qz = compute_response(quartz, (6, 6, 6), TEMPS, RADII, TAU, GRAD)
    assert np.all(si.chi_total > 0)
    # per volume and per unit gamma_NL scale, silicon is zero to numerical precision
    assert np.abs(si.gamma_nl).max() < 1e-9 * np.abs(qz.gamma_nl).max()
    assert np.all(np.isnan(si.gamma_m)) or np.abs(si.gamma_m).max() < 1e-9 * np.abs(qz.gamma_m).max()


def test_mesh_convergence_not_scaling_with_nk(quartz):
    """Sums are normalised by N: refining 16^3 -> 24^3 (3.4x more points) changes them little.

    chi converges smoothly (percent level); gamma^NL is a small difference of
    nearly cancelling chiral-pair terms near Gamma and converges more slowly.
    """
    values = {n: compute_response(quartz, (n, n, n), [300.0], [20e-9], TAU, GRAD) for n in (16, 20, 24)}
    chi = np.array([values[n].chi_total[0] for n in (16, 20, 24)])
    gamma = np.array([values[n].gamma_nl_zz[0] for n in (16, 20, 24)])
    assert chi.max() / chi.min() < 1.03
    assert np.all(gamma > 0) and gamma.max() / gamma.min() < 1.25


def test_acoustic_magnetic_moment_vanishes_at_gamma(quartz):
    """Charge neutrality (sum of Z* = 0): mu -> 0 for the acoustic branches as k -> 0, linearly."""
    for direction in ([0.0, 0.0, 1.0], [1.0, 0.0, 0.0]):
        steps = np.array([1e-2, 1e-3, 1e-4])
        mu = np.abs(compute_modes(quartz, steps[:, None] * direction).mu_z_mu_n[:, :3]).max(axis=1)
        assert mu[-1] < 1e-5 and mu[0] / mu[-1] > 30
    # along c the optical E pairs stay circular and keep a moment (in-plane, LO-TO makes them linear, mu ~ 0)
    optical = np.abs(compute_modes(quartz, [[0.0, 0.0, 1e-4]]).mu_z_mu_n[0, 3:]).max()
    assert optical > 1e-2


def test_isotropic_born_charges_reduce_mu_to_weighted_l(quartz_fc, quartz_rigid_fc):
    """Z*_kappa = z_kappa 1 gives mu^z = sum_kappa (z_kappa m_p / m_kappa) l_kappa (THEORY.md section 5)."""
    phonon = build_phonopy(quartz_fc, quartz_rigid_fc)
    charges = np.where(np.array(phonon.primitive.symbols) == "Si", 4.0, -2.0)  # neutral
    set_nac(phonon, charges[:, None, None] * np.eye(3), quartz_rigid_fc.dielectric)
    q = np.array([[0.0, 0.0, 0.091], [0.12, -0.31, 0.27]])
    modes = compute_modes(phonon, q)
    expected = modes.l_z_atom_hbar @ (charges * PROTON_MASS_AMU / phonon.primitive.masses)
    assert_allclose(modes.mu_z_mu_n, expected, rtol=1e-5, atol=1e-10)
    assert np.abs(expected).max() > 1e-2
