"""The k-mesh convergence sequence of the response sums (aiida_llpam.physics.convergence)."""

import numpy as np
import pytest

from aiida_llpam.physics import ResponseSettings, response_from_settings
from aiida_llpam.physics.convergence import TRACKED, MeshConvergence

BASE = dict(
    temperatures_k=[100.0, 300.0],
    radii_nm=[20.0],
    tau_s=1e-11,
    grad_t_k_m=1.0,
    mesh=[4, 4, 4],
    frequency_cutoff_thz=0.05,
    bz_temperature_k=300.0,
)


def settings(**extra):
    return ResponseSettings.from_mapping({**BASE, **extra})


def test_a_loose_tolerance_stops_at_the_first_refinement(quartz):
    lines = []
    result = response_from_settings(
        quartz, settings(convergence_meshes=[[6, 6, 6], [8, 8, 8]], convergence_tolerance=10.0), report=lines.append
    )
    assert result.mesh == (6, 6, 6) and result.settings.mesh == (6, 6, 6)
    assert result.bz_chi_diagonal.shape == (6, 6, 6)  # every array is the last mesh's
    assert result.convergence.converged
    np.testing.assert_array_equal(result.convergence_meshes, [[4, 4, 4], [6, 6, 6]])
    assert len(lines) == 2 and lines[1].startswith("k mesh 6x6x6")


def test_a_tight_tolerance_runs_every_mesh_and_says_it_did_not_converge(quartz):
    result = response_from_settings(
        quartz, settings(convergence_meshes=[[6, 6, 6], [8, 8, 8]], convergence_tolerance=1e-9)
    )
    table = result.convergence
    assert result.mesh == (8, 8, 8) and not table.converged and int(result.convergence_converged) == 0
    # the table is the result's own numbers at the reference temperature (300 K, index 1)
    assert table.temperature_k == 300.0
    for name in TRACKED:
        # SI values of ~1e-17: abs=0, since approx's default abs=1e-12 would accept anything
        assert table.values[name][-1] == pytest.approx(getattr(result, name)[1], rel=1e-12, abs=0)
    values = np.array([table.values[name] for name in TRACKED])
    expected = np.max(np.abs(values[:, 2] - values[:, 1]) / np.abs(values[:, 2]))
    assert table.relative_change[-1] == pytest.approx(expected)
    assert np.isnan(table.relative_change[0])
    assert table.uncertainty("gamma_nl_zz") == pytest.approx(abs(values[0, 2] - values[0, 1]), rel=1e-6, abs=0)


def test_without_a_sequence_the_table_has_one_mesh(quartz):
    result = response_from_settings(quartz, settings())
    assert result.convergence_meshes.tolist() == [[4, 4, 4]]
    assert not result.convergence.converged and np.isnan(result.convergence.uncertainty("chi_diagonal"))


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"convergence_meshes": [[1000, 1000, 1000]]}, "convergence_meshes: 1000x1000x1000 has 1e\\+09 k points"),
        ({"convergence_meshes": [[4, 4]]}, "convergence_meshes: a mesh must be three positive integers"),
        ({"convergence_meshes": "8 8 8"}, "convergence_meshes: must be a list"),
        ({"convergence_tolerance": 0.0}, "convergence_tolerance: must be > 0"),
    ],
)
def test_bad_convergence_settings_are_refused_by_name(extra, message):
    with pytest.raises(ValueError, match=message):
        settings(**extra)


def test_sums_that_symmetry_forbids_do_not_decide_convergence(silicon):
    """Si (Fd-3m): gamma^NL_zz is round-off (~1e-31, changing sign between meshes) and is not tracked; the chi pieces
    (even in l, interband matrix elements) are nonzero and are."""
    result = response_from_settings(silicon, settings(convergence_meshes=[[6, 6, 6]], convergence_tolerance=1e-9))
    table = result.convergence
    assert table.tracked == ("chi_diagonal", "chi_offdiagonal_interband", "chi_offdiagonal_pair")
    assert result.convergence_tracked.tolist() == [0, 1, 1, 1, 0]
    assert MeshConvergence.from_arrays(table.as_arrays()).tracked == table.tracked
    values = np.array([table.values[name] for name in table.tracked])
    expected = np.max(np.abs(values[:, 1] - values[:, 0]) / np.abs(values[:, 1]))
    assert table.relative_change[-1] == pytest.approx(expected, rel=1e-12, abs=0)
    # round-off against the sums symmetry allows (chi_OD,N ~ 1e-19 kg/m)
    assert np.all(np.abs(table.values["gamma_nl_zz"]) < 1e-25)
    assert np.all(np.abs(table.values["chi_offdiagonal_interband"]) > 1e-21)


def test_a_chiral_crystal_tracks_every_sum_as_do_tables_stored_before_the_mask(quartz):
    result = response_from_settings(quartz, settings(convergence_meshes=[[6, 6, 6]]))
    assert result.convergence.tracked == TRACKED
    arrays = result.convergence.as_arrays()
    arrays.pop("convergence_tracked")
    assert MeshConvergence.from_arrays(arrays).tracked == TRACKED
