"""Mode-resolved lifetimes in the response sums (THEORY.md section 4), on the real quartz DFPT force constants.

The linewidths here are made from the modes themselves (constant, or a function of frequency), so that the
expected result is known exactly; phono3py's own files are read in tests/aiida/test_lifetimes*.py.
"""

import dataclasses

import numpy as np
import pytest

from aiida_llpam.physics.lifetimes import Lifetimes, tau_s_from_linewidth
from aiida_llpam.physics.response import compute_response
from aiida_llpam.physics.settings import ResponseSettings

MESH = (4, 4, 3)
TEMPS = [50.0, 150.0, 300.0]
TAU = 2.0e-12
LIFETIME_TEMPS = np.array([10.0, 100.0, 300.0, 500.0])


def _on_mesh(phonon, symmetric=True):
    phonon.run_mesh(MESH, is_gamma_center=True, is_mesh_symmetry=symmetric)
    return phonon.mesh.qpoints.copy(), phonon.mesh.frequencies.copy()


def _lifetimes(phonon, gamma_of_frequency, symmetric=True):
    """Lifetimes with Gamma_ks(T) = gamma_of_frequency(nu_ks) * T / 300 K, as phono3py stores them."""
    qpoints, frequencies = _on_mesh(phonon, symmetric)
    gamma = gamma_of_frequency(frequencies)[None] * (LIFETIME_TEMPS / 300.0)[:, None, None]
    return Lifetimes(MESH, LIFETIME_TEMPS, qpoints, frequencies, gamma)


def test_tau_from_half_width():
    # Gamma is the half width in THz (ordinary frequency): tau = 1 / (2 Gamma 2 pi)
    assert tau_s_from_linewidth(np.array(1.0)) == pytest.approx(1e-12 / (4 * np.pi), rel=1e-12, abs=0)  # s, ~8e-14


def test_constant_linewidth_reproduces_the_constant_tau(quartz):
    constant = compute_response(quartz, MESH, TEMPS, [20e-9], TAU, 1.0)
    qpoints, frequencies = _on_mesh(quartz)
    gamma = np.full((1, *frequencies.shape), 1.0 / (4 * np.pi * TAU * 1e12))
    lifetimes = Lifetimes(MESH, np.array([300.0]), qpoints, frequencies, gamma)
    res = compute_response(quartz, MESH, [300.0], [20e-9], 1e-12, 1.0, lifetimes=lifetimes)
    it = TEMPS.index(300.0)
    scale = np.abs(constant.gamma_nl).max()
    np.testing.assert_allclose(res.gamma_nl_tau_modes[0], constant.gamma_nl[it], rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(res.gamma_m_tau_modes[0], constant.gamma_m[it], rtol=1e-10)
    np.testing.assert_allclose(res.tau_effective_nl_s, TAU, rtol=1e-10)
    # the cumulative sum ends at the total, for both taus
    np.testing.assert_allclose(res.cumulative_gamma_nl_zz_tau_modes[:, -1], res.gamma_nl_zz_tau_modes, rtol=1e-10)
    np.testing.assert_allclose(res.cumulative_gamma_nl_zz[:, -1], res.gamma_nl_zz, rtol=1e-10)
    assert np.all(np.diff(res.cumulative_frequency_thz) > 0)


def test_irreducible_lifetimes_unfold_to_the_full_mesh(quartz):
    """Stored on the irreducible points or on every point of the mesh: the same sums, folded or over the full mesh."""

    def width(nu):
        return 0.002 + 0.01 * np.abs(nu) ** 2  # THz; grows with frequency as anharmonic widths do

    irreducible, full = _lifetimes(quartz, width), _lifetimes(quartz, width, symmetric=False)
    assert len(irreducible.qpoints) < len(full.qpoints) == np.prod(MESH)
    results = {
        (stored, folded): compute_response(quartz, MESH, TEMPS, [20e-9], TAU, 1.0, lifetimes=lt, use_symmetry=folded)
        for stored, lt in (("irreducible", irreducible), ("full", full))
        for folded in (True, False)
    }
    reference = results["irreducible", True]
    scale = np.abs(reference.gamma_nl_tau_modes).max()
    for folded in (True, False):
        # the same sums whichever set phono3py stored: the unfolding gives every k point its star's widths (the
        # 1e-6 left over: a full-mesh point's own frequency vs its star's, the DFPT's symmetry breaking)
        a, b = results["irreducible", folded], results["full", folded]
        np.testing.assert_allclose(a.gamma_nl_tau_modes, b.gamma_nl_tau_modes, rtol=0, atol=1e-6 * scale)
        np.testing.assert_allclose(a.gamma_m_tau_modes, b.gamma_m_tau_modes, rtol=1e-6)
    # folded sums against the full mesh: the DFPT force constants break the point group at the 1e-6 level
    # (test_response's folding test), amplified by the long tau of the slowest modes here
    full_mesh = results["irreducible", False]
    np.testing.assert_allclose(full_mesh.gamma_nl_tau_modes, reference.gamma_nl_tau_modes, rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(full_mesh.gamma_m_tau_modes, reference.gamma_m_tau_modes, rtol=1e-4)
    # a frequency-dependent tau changes the answer: the constant-tau result is not what came back
    assert abs(reference.tau_effective_nl_s[-1] / TAU - 1) > 0.1
    # point group 32: xx = yy, off-diagonal zero, with mode-resolved tau too
    g = reference.gamma_nl_tau_modes[-1]
    assert g[0, 0] == pytest.approx(g[1, 1], rel=1e-5, abs=0) and np.abs(g - np.diag(np.diag(g))).max() < 1e-5 * scale


def test_degenerate_modes_share_one_tau(quartz):
    """Different widths inside a degenerate pair: both modes take their mean, so the sum does not depend on which
    branch phono3py listed first."""
    qpoints, frequencies = _on_mesh(quartz)
    rng = np.random.default_rng(7)
    gamma = 0.01 + 0.02 * rng.random((1, *frequencies.shape))
    swapped = gamma.copy()
    # the E pairs at Gamma (k = 0) are degenerate: swap the widths inside each pair
    gamma_point = int(np.flatnonzero(~np.any(qpoints, axis=1))[0])
    pairs = [
        (s, s + 1)
        for s in range(3, frequencies.shape[1] - 1)
        if abs(frequencies[gamma_point, s + 1] - frequencies[gamma_point, s]) < 1e-4
    ]
    assert pairs
    for s, t in pairs:
        swapped[0, gamma_point, [s, t]] = gamma[0, gamma_point, [t, s]]
    results = [
        compute_response(
            quartz,
            MESH,
            [300.0],
            [20e-9],
            TAU,
            1.0,
            lifetimes=Lifetimes(MESH, np.array([300.0]), qpoints, frequencies, g),
        )
        for g in (gamma, swapped)
    ]
    np.testing.assert_allclose(results[1].gamma_nl_tau_modes, results[0].gamma_nl_tau_modes, rtol=1e-12)
    tau = results[0].mesh_tau_ps
    for s, t in pairs:
        assert tau[gamma_point, s] == pytest.approx(tau[gamma_point, t], rel=1e-12)


def test_linewidths_interpolate_linearly_in_temperature(quartz):
    lifetimes = _lifetimes(quartz, lambda nu: 0.01 + 0 * nu)
    qpoints = lifetimes.qpoints[:3]
    rotations = quartz.primitive_symmetry.pointgroup_operations
    widths = lifetimes.linewidths_on(qpoints, MESH, rotations, [10.0, 55.0, 200.0, 500.0])
    np.testing.assert_allclose(widths[0, 5], 0.01 * np.array([10.0, 55.0, 200.0, 500.0]) / 300.0, rtol=1e-12)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mesh": (6, 6, 4)}, "computed on the 6x6x4 mesh, the response sums on 4x4x3"),
        ({"temperatures": [5.0, 300.0]}, "temperatures [5.0] K outside the lifetimes' 10-500 K"),
        ({"frequency_scale": 1.01}, "the lifetimes were computed with other force constants"),
        ({"zero_width": True}, "zero linewidth (infinite tau)"),
    ],
)
def test_mismatched_lifetimes_are_refused_with_the_reason(quartz, change, message):
    lifetimes = _lifetimes(quartz, lambda nu: 0.01 + 0 * nu)
    temperatures = change.get("temperatures", TEMPS)
    mesh = change.get("mesh", MESH)
    if "mesh" in change:
        lifetimes = dataclasses.replace(
            lifetimes, mesh=mesh, qpoints=lifetimes.qpoints * np.array(MESH) / np.array(mesh)
        )
        mesh = MESH
    if "frequency_scale" in change:
        lifetimes = dataclasses.replace(
            lifetimes, frequencies_thz=lifetimes.frequencies_thz * change["frequency_scale"]
        )
    if "zero_width" in change:
        gamma = lifetimes.gamma_thz.copy()
        gamma[:, 1, 4] = 0.0  # a mode at k != 0, well above the cutoff
        lifetimes = dataclasses.replace(lifetimes, gamma_thz=gamma)
    with pytest.raises(ValueError, match="lifetimes: ") as error:
        compute_response(quartz, mesh, temperatures, [20e-9], TAU, 1.0, lifetimes=lifetimes)
    assert message in str(error.value)


def test_lifetimes_refuse_a_convergence_sequence(quartz):
    from aiida_llpam.physics.response import response_from_settings

    settings = ResponseSettings(
        temperatures_k=[300.0], radii_m=[20e-9], tau_s=TAU, grad_t_k_m=1.0, mesh=MESH, convergence_meshes=((6, 6, 4),)
    )
    with pytest.raises(ValueError, match="convergence_meshes: mode-resolved lifetimes are on one mesh"):
        response_from_settings(quartz, settings, lifetimes=_lifetimes(quartz, lambda nu: 0.01 + 0 * nu))


def test_kappa_of_one_rta_against_another_at_the_same_temperatures():
    """Perpendicular to c (mean of xx, yy) and along c (zz) of both, and their ratios; RTAs at other temperatures
    are not compared (nothing is interpolated between them)."""
    from aiida_llpam.physics.lifetimes import RtaKappa, kappa_against_reference

    temperatures = np.array([100.0, 300.0])
    kappa, reference = np.zeros((2, 6)), np.zeros((2, 6))
    kappa[:, :3] = [[12.0, 10.0, 30.0], [4.0, 4.0, 9.0]]
    reference[:, :3] = [[10.0, 10.0, 20.0], [5.0, 5.0, 10.0]]
    result = kappa_against_reference(
        RtaKappa(temperatures, kappa, None, None), RtaKappa(temperatures, reference, None, None)
    )
    assert result["temperatures_k"] == [100.0, 300.0]
    np.testing.assert_allclose(result["perpendicular_w_mk"], [11.0, 4.0], rtol=1e-12)
    np.testing.assert_allclose(result["reference_parallel_w_mk"], [20.0, 10.0], rtol=1e-12)
    np.testing.assert_allclose(result["ratio_perpendicular"], [1.1, 0.8], rtol=1e-12)
    np.testing.assert_allclose(result["ratio_parallel"], [1.5, 0.9], rtol=1e-12)
    with pytest.raises(ValueError, match="2 from 100 K against 1 from 300 K: two RTAs are compared at the same"):
        kappa_against_reference(
            RtaKappa(temperatures, kappa, None, None), RtaKappa(temperatures[1:], reference[1:], None, None)
        )


def test_kappa_against_measured_values_of_a_uniaxial_crystal(tmp_path):
    """Perpendicular to c is the mean of xx and yy, along c is zz; the computed kappa is interpolated linearly in T
    and never extrapolated; the ratio is computed over measured."""
    import h5py

    from aiida_llpam.physics.lifetimes import kappa_against_measured, read_kappa

    temperatures = np.array([100.0, 200.0, 400.0])
    kappa = np.zeros((3, 6))
    kappa[:, 0], kappa[:, 1], kappa[:, 2] = [12.0, 6.0, 3.0], [10.0, 6.0, 3.0], [30.0, 16.0, 8.0]
    path = tmp_path / "kappa-m444.hdf5"
    with h5py.File(path, "w") as handle:
        handle["temperature"], handle["kappa"] = temperatures, kappa
    rta = read_kappa(path)
    np.testing.assert_array_equal(rta.kappa_w_mk, kappa)
    assert rta.heat_capacity_ev_k is None and rta.volume_angstrom3 is None  # the file has neither
    measured = {"source": "a test", "temperatures_k": [150.0, 300.0], "perpendicular_w_mk": [8.0, 6.0],
                "parallel_w_mk": [20.0, 10.0]}  # fmt: skip
    result = kappa_against_measured(rta, measured)
    np.testing.assert_allclose(result["computed_perpendicular_w_mk"], [8.5, 4.5], rtol=1e-12)
    np.testing.assert_allclose(result["computed_parallel_w_mk"], [23.0, 12.0], rtol=1e-12)
    np.testing.assert_allclose(result["ratio_perpendicular"], [8.5 / 8.0, 4.5 / 6.0], rtol=1e-12)
    np.testing.assert_allclose(result["ratio_parallel"], [23.0 / 20.0, 1.2], rtol=1e-12)
    assert result["source"] == "a test" and result["measured_parallel_w_mk"] == [20.0, 10.0]
    with pytest.raises(ValueError, match="measured kappa: 50 K outside the RTA's 100-400 K"):
        kappa_against_measured(rta, measured | {"temperatures_k": [50.0, 300.0]})
    with pytest.raises(ValueError, match="one perpendicular and one parallel value per temperature"):
        kappa_against_measured(rta, measured | {"parallel_w_mk": [10.0]})
    with pytest.raises(ValueError, match="value per temperature, at least one"):
        kappa_against_measured(rta, measured | {"temperatures_k": [], "perpendicular_w_mk": [], "parallel_w_mk": []})
    with h5py.File(tmp_path / "empty.hdf5", "w") as handle:
        handle["temperature"] = temperatures
    with pytest.raises(ValueError, match="kappa file: no kappa"):
        read_kappa(tmp_path / "empty.hdf5")


def test_the_diffusivity_exponent_and_the_anisotropy_need_no_measured_heat_capacity(tmp_path):
    """D = kappa / C of the same modes: its exponent n (D ~ T^-n) between two temperatures compares with a
    laser-flash measurement without a heat capacity from elsewhere; the anisotropy is kappa_zz over the mean of
    kappa_xx and kappa_yy, computed and measured."""
    import h5py

    from aiida_llpam.physics.lifetimes import kappa_against_measured, read_kappa

    temperatures = np.array([100.0, 200.0, 400.0])
    kappa = np.zeros((3, 6))
    kappa[:, 0] = kappa[:, 1] = [11.0, 6.0, 3.0]
    kappa[:, 2] = [30.0, 16.0, 8.0]
    # two grid points of weights 1 and 3, two bands each: per cell (1 x 1.0 + 3 x 0.4) / 4 = 0.55 times 1, 2, 3
    # (x 1e-4 eV/K); an unweighted mean would give 0.7
    per_point = np.array([[0.4, 0.6], [0.1, 0.3]])[None] * np.array([1.0, 2.0, 3.0])[:, None, None] * 1e-4
    path = tmp_path / "kappa-m444.hdf5"
    with h5py.File(path, "w") as handle:
        handle["temperature"], handle["kappa"] = temperatures, kappa
        handle["heat_capacity"], handle["weight"] = per_point, np.array([1, 3])
    rta = read_kappa(path)
    np.testing.assert_allclose(rta.heat_capacity_ev_k, [0.55e-4, 1.1e-4, 1.65e-4], rtol=1e-12)
    measured = {
        "source": "a test",
        "temperatures_k": [200.0],
        "perpendicular_w_mk": [5.0],
        "parallel_w_mk": [10.0],
        "diffusivity": {"source": "flash", "temperatures_k": [100.0, 400.0], "exponent_perpendicular": 1.6,
                        "exponent_parallel": 1.8},
    }  # fmt: skip
    result = kappa_against_measured(rta, measured)
    np.testing.assert_allclose(result["computed_anisotropy"], [16.0 / 6.0], rtol=1e-12)
    np.testing.assert_allclose(result["measured_anisotropy"], [2.0], rtol=1e-12)
    d = result["diffusivity"]
    # C triples from 100 to 400 K: D_perp falls from 11 to 1, D_par from 30 to 8/3, over a factor 4 in T
    assert d["computed_exponent_perpendicular"] == pytest.approx(np.log(11.0) / np.log(4.0), rel=1e-12)
    assert d["computed_exponent_parallel"] == pytest.approx(np.log(30.0 / (8.0 / 3.0)) / np.log(4.0), rel=1e-12)
    assert d["exponent_parallel"] == 1.8 and d["source"] == "flash"
    with pytest.raises(ValueError, match="needs the RTA's heat capacity"):
        kappa_against_measured(dataclasses.replace(rta, heat_capacity_ev_k=None), measured)
    late = measured | {"diffusivity": measured["diffusivity"] | {"temperatures_k": [200.0, 500.0]}}
    with pytest.raises(ValueError, match="measured diffusivity exponent: 500 K outside the RTA's 100-400 K"):
        kappa_against_measured(rta, late)
    partial = measured | {"diffusivity": {"source": "flash", "temperatures_k": [100.0, 400.0]}}
    with pytest.raises(ValueError, match="diffusivity without exponent_perpendicular, exponent_parallel"):
        kappa_against_measured(rta, partial)


def kappa_file_with_volume(path):
    """A kappa file of phono3py's layout at 100 and 300 K: kappa 12/30 and 6/10 W/(m K) (perpendicular/along c),
    one mode of heat capacity 1e-4 and 3e-4 eV/K, and the conversion factor phono3py writes for a 120 A^3 cell."""
    import h5py
    from phono3py.conductivity.utils import get_unit_to_WmK

    with h5py.File(path, "w") as handle:
        handle["temperature"] = np.array([100.0, 300.0])
        handle["kappa"] = np.array([[12.0, 12.0, 30.0, 0, 0, 0], [6.0, 6.0, 10.0, 0, 0, 0]])
        handle["heat_capacity"] = np.array([[[1.0e-4]], [[3.0e-4]]])
        handle["weight"] = np.array([1])
        handle["kappa_unit_conversion"] = get_unit_to_WmK() / 120.0
    return path


def test_the_diffusivity_itself_takes_the_cell_volume_from_the_kappa_file(tmp_path):
    """Measured D (mm^2/s) against kappa / (C / V): V from the conversion factor phono3py writes into its kappa
    file, which is phono3py's own unit over the volume (checked against phono3py's function)."""
    import h5py

    from aiida_llpam.physics.lifetimes import kappa_against_measured, read_kappa

    path = kappa_file_with_volume(tmp_path / "kappa-m444.hdf5")
    rta = read_kappa(path)
    assert rta.volume_angstrom3 == pytest.approx(120.0, rel=1e-12)
    measured = {
        "source": "a test", "temperatures_k": [300.0], "perpendicular_w_mk": [6.0], "parallel_w_mk": [10.0],
        "diffusivity": {"source": "flash", "temperatures_k": [100.0, 300.0], "exponent_perpendicular": 1.6,
                        "exponent_parallel": 1.8,
                        "values": {"temperatures_k": [200.0], "perpendicular_mm2_s": [8.0], "parallel_mm2_s": [16.0]}},
    }  # fmt: skip
    result = kappa_against_measured(rta, measured)
    # at 200 K: kappa 9 and 20 W/(m K); C = 2e-4 eV/K in 120 A^3 = 2.670e5 J/(m^3 K)
    per_volume = 2.0e-4 * 1.602176634e-19 / 120.0e-30  # scipy's e: phonopy's is 7e-7 apart
    values = result["diffusivity"]["values"]
    np.testing.assert_allclose(values["computed_perpendicular_mm2_s"], [9.0 / per_volume * 1e6], rtol=1e-5)
    np.testing.assert_allclose(values["computed_parallel_mm2_s"], [20.0 / per_volume * 1e6], rtol=1e-5)
    np.testing.assert_allclose(values["ratio_parallel"], [20.0 / per_volume * 1e6 / 16.0], rtol=1e-5)
    early = {**measured["diffusivity"], "values": {**measured["diffusivity"]["values"], "temperatures_k": [50.0]}}
    with pytest.raises(ValueError, match="measured diffusivity: 50 K outside the RTA's 100-300 K"):
        kappa_against_measured(rta, measured | {"diffusivity": early})
    negative = {**measured["diffusivity"], "values": {**measured["diffusivity"]["values"], "parallel_mm2_s": [-1.0]}}
    with pytest.raises(ValueError, match="one positive D per direction and temperature"):
        kappa_against_measured(rta, measured | {"diffusivity": negative})
    with h5py.File(path, "a") as handle:
        del handle["kappa_unit_conversion"]
    without_volume = read_kappa(path)
    assert without_volume.volume_angstrom3 is None
    with pytest.raises(ValueError, match=r"needs the cell volume \(kappa file: no kappa_unit_conversion\)"):
        kappa_against_measured(without_volume, measured)


def test_the_mode_split_adds_up_to_the_total():
    """The split of a cumulative sum at 60 and 600 cm^-1: linear inside a bin, nothing below the lowest edge, the
    parts adding up to the last value."""
    from aiida_llpam.physics.lifetimes import frequency_split
    from aiida_llpam.physics.units import THZ_TO_CM

    edges_cm = np.array([30.0, 90.0, 300.0, 900.0, 1200.0])
    cumulative = np.array([1.0, 3.0, -2.0, 5.0, 6.0])
    parts = frequency_split(edges_cm / THZ_TO_CM, cumulative)
    # 60 cm^-1 is halfway between 30 and 90 (2.0); 600 halfway between 300 and 900 (1.5)
    np.testing.assert_allclose(parts, [2.0, -0.5, 4.5], rtol=1e-12)
    assert parts.sum() == pytest.approx(cumulative[-1], rel=1e-12)
    np.testing.assert_allclose(frequency_split(edges_cm / THZ_TO_CM, cumulative, (10.0,)), [0.0, 6.0], atol=1e-15)
