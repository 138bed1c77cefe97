"""The dyn-file reader and the direct-DFPT comparison on the real q 2x2x2 DFPT of quartz (fixtures/dfpt)."""

import numpy as np
import pytest

from aiida_llpam.physics import compute_modes
from aiida_llpam.physics.direct_dfpt import compare_with_model, direct_modes, onsite_asr_correction, summarise
from aiida_llpam.physics.dynmat import read_dynamical_matrices
from aiida_llpam.physics.units import THZ_TO_CM

from .conftest import QUARTZ


def dyn(index):
    return read_dynamical_matrices((QUARTZ / f"quartz.dyn{index}").read_text())


def test_reader_gives_the_star_in_reduced_coordinates():
    star = dyn(3)  # the star of M: three q points
    assert star.phi_ry_bohr2.shape == (3, 9, 9, 3, 3)
    np.testing.assert_allclose(np.sort(np.abs(star.qpoints_reduced).sum(axis=1)), [0.5, 0.5, 1.0], atol=1e-8)
    # ph.x's matrices are Hermitian in (i a, j b)
    phi = star.phi_ry_bohr2[0].transpose(0, 2, 1, 3).reshape(27, 27)
    np.testing.assert_allclose(phi, phi.conj().T, atol=1e-7 * np.abs(phi).max())


@pytest.mark.parametrize("index", [2, 3, 4])
def test_raw_matrices_are_the_model_at_the_mesh_points(quartz, index):
    """The model reproduces ph.x away from Gamma; this fixes the phase convention (an l^z sign error would show)."""
    star = dyn(index)
    for k in range(len(star.q_2pi_alat)):
        model = compute_modes(quartz, star.qpoints_reduced[k])
        direct = direct_modes(star, k, quartz, None)
        np.testing.assert_allclose(direct.frequencies_thz, model.frequencies_thz, atol=1e-6)
        np.testing.assert_allclose(direct.l_z_hbar, model.l_z_hbar, atol=1e-5)
        np.testing.assert_allclose(direct.mu_z_mu_n, model.mu_z_mu_n, atol=1e-7)  # mu_N; quartz moments are ~1e-2


def test_onsite_correction_makes_gamma_acoustic(quartz):
    gamma = dyn(1)
    index = int(np.flatnonzero(np.abs(gamma.q_2pi_alat).max(axis=1) < 1e-10)[0])
    raw = direct_modes(gamma, index, quartz, None).frequencies_thz[0] * THZ_TO_CM
    corrected = direct_modes(gamma, index, quartz, onsite_asr_correction(gamma.phi_ry_bohr2[index])).frequencies_thz[0]
    assert np.abs(raw[:3]).min() > 10.0  # the raw DFPT breaks the ASR (q 2x2x2: 17.5 and 33.8 cm^-1)
    # the dyn file's 8 decimals of Ry/bohr^2 leave eigenvalues of ~1e-8: |omega| of a few 0.1 cm^-1 (measured 0.14)
    np.testing.assert_allclose(corrected[:3] * THZ_TO_CM, 0.0, atol=0.3)
    assert np.abs(corrected[:3] * THZ_TO_CM).max() < 0.02 * np.abs(raw[:3]).min()


def test_comparison_table_and_summary(quartz):
    table = compare_with_model(quartz, dyn(1), [dyn(2), dyn(3)])
    assert table["model_frequencies_cm"].shape == table["direct_frequencies_cm"].shape == (2, 27)
    # at mesh points the model is the raw matrix, so raw and model agree and the ASR correction is what differs
    np.testing.assert_allclose(table["raw_frequencies_cm"], table["model_frequencies_cm"], atol=1e-4)
    summary = summarise(table)
    assert summary["max_acoustic_deviation_cm"] > 1.0
    assert len(summary["per_q_max_deviation_cm"]) == 2


def test_gamma_is_refused(quartz):
    with pytest.raises(ValueError, match="Gamma"):
        compare_with_model(quartz, dyn(1), [dyn(1)])


def test_the_budgets_velocity_probes_are_chosen_by_direction():
    """The direct point that checks a sound velocity is the one nearest Gamma along that axis, wherever the user put
    it in the list (the production reference lists 0.05, 0.1, 0.2 and 0.15 c*: no in-plane point, so no x or y)."""
    from aiida_llpam.physics.error_budget import velocity_probes

    assert velocity_probes([[0, 0, 0.05], [0, 0, 0.1], [0, 0, 0.2], [0, 0, 0.15]]) == {"z": 0}
    qpoints = [[0, 0, 0.1], [0.1, 0, 0], [0, 0, 0.05], [0.1, 0.1, 0], [0.05, 0.05, 0], [0.1, 0.2, 0]]
    assert velocity_probes(qpoints) == {"z": 2, "x": 4, "y": 1}
    assert velocity_probes([[0, 0, -0.05], [0.1, 0.1, 0.1]]) == {}
