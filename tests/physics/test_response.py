"""Response sums: THEORY.md sections 3-5 checks on real quartz and silicon force constants."""

import dataclasses

import numpy as np
import pytest

from aiida_llpam.physics import build_phonopy, compute_response, feedback
from aiida_llpam.physics.units import AMU_KG, BOHR_M

TEMPS = np.array([20.0, 100.0, 300.0, 800.0])
RADII = np.array([5e-9, 20e-9, 1e-6])
TAU, GRAD = 1e-11, 1e4


@pytest.fixture(scope="module")
def quartz_response(quartz):
    return compute_response(quartz, (6, 6, 6), TEMPS, RADII, TAU, GRAD)


def mirror_x(fc):
    """The mirror image x -> -x of a q2r data set: lattice, positions, IFC blocks, eps, Z*."""
    s = np.diag([-1.0, 1.0, 1.0])
    blocks = lambda a: np.einsum("ij,...jk,kl->...il", s, a, s)  # noqa: E731
    return dataclasses.replace(
        fc,
        lattice_bohr=fc.lattice_bohr @ s,
        positions_bohr=fc.positions_bohr @ s,
        ifc_ry_bohr2=None if fc.ifc_ry_bohr2 is None else blocks(fc.ifc_ry_bohr2),
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
    assert r.cell_volume_m3 == pytest.approx(volume)
    assert r.mass_density_kg_m3 == pytest.approx(np.sum(quartz_fc.masses_amu) * AMU_KG / volume)
    assert 2500 < r.mass_density_kg_m3 < 3200
    gamma_ll = 2 * r.chi_total[:, None] / (r.mass_density_kg_m3 * r.radii_m[None, :] ** 2)
    assert np.allclose(r.gamma_ll, gamma_ll)
    assert np.allclose(r.gamma_ll, r.gamma_ll_diagonal + r.gamma_ll_offdiagonal)
    assert np.allclose(r.pam_density_bare, r.gamma_nl[:, None] * GRAD)
    sub = r.gamma_ll < 1
    assert np.allclose(r.eta[sub], 1 / (1 - r.gamma_ll[sub]))
    assert np.all(np.isnan(r.eta[~sub])) and np.all(np.isnan(r.pam_density_total[~sub]))
    assert np.allclose(r.pam_density_total[sub], (r.eta * r.pam_density_bare)[sub])
    assert np.allclose(2 * r.chi_total / (r.mass_density_kg_m3 * r.critical_radius_m**2), 1.0)


def test_supercritical_radius_gives_nan_not_negative(quartz):
    res = compute_response(quartz, (4, 4, 4), [300.0], [1e-12, 1e-6], TAU, GRAD)
    rc = res.critical_radius_m[0]
    assert 1e-12 < rc < 1e-6
    assert np.isnan(res.eta[0, 0]) and res.eta[0, 1] > 1.0
    assert np.array_equal(np.isnan(feedback([0.5, 1.0, 3.0])), [False, True, True])


def test_gamma_nl_linear_in_tau(quartz):
    a = compute_response(quartz, (4, 4, 4), TEMPS, RADII, 1e-12, GRAD)
    b = compute_response(quartz, (4, 4, 4), TEMPS, RADII, 3e-12, GRAD)
    assert np.allclose(b.gamma_nl, 3 * a.gamma_nl)
    assert np.abs(a.gamma_nl).max() > 0


def test_symmetry_folding_equals_full_mesh(quartz):
    folded = compute_response(quartz, (4, 4, 3), TEMPS, RADII, TAU, GRAD)
    full = compute_response(quartz, (4, 4, 3), TEMPS, RADII, TAU, GRAD, use_symmetry=False)
    for name in ("gamma_nl", "chi_diagonal", "chi_offdiagonal_interband", "chi_offdiagonal_pair"):
        assert np.allclose(getattr(folded, name), getattr(full, name), rtol=1e-7), name
    assert np.allclose(folded.bz_chi_offdiagonal, full.bz_chi_offdiagonal, rtol=1e-7)


def test_bz_maps_sum_to_chi(quartz):
    res = compute_response(quartz, (4, 4, 4), [150.0, 300.0], RADII, TAU, GRAD, bz_temperature_k=300.0)
    assert res.bz_chi_diagonal.shape == (4, 4, 4)
    assert res.bz_chi_diagonal.sum() == pytest.approx(res.chi_diagonal[1], rel=1e-10)
    assert res.bz_chi_offdiagonal.sum() == pytest.approx(res.chi_offdiagonal[1], rel=1e-10)
    assert np.allclose(np.sort(res.bz_kz_reduced), [-0.5, -0.25, 0.0, 0.25])


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
    assert res.chi_total[0] == pytest.approx(reference, rel=0.02)
    assert res.chi_offdiagonal[0] > res.chi_diagonal[0]


def test_mirror_image_flips_gamma_nl_and_keeps_chi(quartz_fc, quartz_rigid_fc, quartz):
    mirrored = build_phonopy(mirror_x(quartz_fc), mirror_x(quartz_rigid_fc))
    a = compute_response(quartz, (4, 4, 4), TEMPS, RADII, TAU, GRAD)
    b = compute_response(mirrored, (4, 4, 4), TEMPS, RADII, TAU, GRAD)
    assert np.abs(a.gamma_nl).min() > 0
    assert np.allclose(b.gamma_nl, -a.gamma_nl, rtol=1e-6)
    assert np.allclose(b.chi_total, a.chi_total, rtol=1e-6)


def test_centrosymmetric_silicon_has_no_gamma_nl(silicon, quartz):
    si = compute_response(silicon, (6, 6, 6), TEMPS, RADII, TAU, GRAD)
    qz = compute_response(quartz, (6, 6, 6), TEMPS, RADII, TAU, GRAD)
    assert np.all(si.chi_total > 0)
    # per volume and per unit gamma_NL scale, silicon is zero to numerical precision
    assert np.abs(si.gamma_nl).max() < 1e-9 * np.abs(qz.gamma_nl).max()


def test_mesh_convergence_not_scaling_with_nk(quartz):
    """Sums are normalised by N: refining 16^3 -> 24^3 (3.4x more points) changes them little.

    chi converges smoothly (percent level); gamma^NL is a small difference of
    nearly cancelling chiral-pair terms near Gamma and converges more slowly.
    """
    values = {n: compute_response(quartz, (n, n, n), [300.0], [20e-9], TAU, GRAD) for n in (16, 20, 24)}
    chi = np.array([values[n].chi_total[0] for n in (16, 20, 24)])
    gamma = np.array([values[n].gamma_nl[0] for n in (16, 20, 24)])
    assert chi.max() / chi.min() < 1.03
    assert np.all(gamma > 0) and gamma.max() / gamma.min() < 1.25
