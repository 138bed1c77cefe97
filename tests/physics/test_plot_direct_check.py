"""The figure of the check against direct DFPT (aiida_llpam.plotting.direct_dfpt)."""

import numpy as np

from aiida_llpam.plotting.direct_dfpt import plot_direct_check, q_label


def test_q_labels_drop_the_round_off_of_cartesian_q():
    # ph.x's Cartesian q turned reduced: 8.3e-11 where the point has 0 (seen on quartz at 0.1 along Gamma-M)
    assert q_label([0.1, 8.26259e-11, 0.0]) == "q = (0.1, 0, 0)"
    assert q_label([0.0, -1e-12, 0.05]) == "q = (0, 0, 0.05)"
    assert q_label([1 / 6, 0.0, 0.5]) == "q = (0.1667, 0, 0.5)"


def test_the_figure_is_drawn_with_its_sidecar(tmp_path):
    frequencies = np.tile(np.linspace(10.0, 1000.0, 6), (2, 1))  # cm^-1
    table = {
        "qpoints": np.array([[0.1, 8.26259e-11, 0.0], [0.0, 0.0, 0.05]]),
        "model_frequencies_cm": frequencies + 0.5,
        "direct_frequencies_cm": frequencies,
        "raw_frequencies_cm": frequencies - 3.0,
    }
    path = plot_direct_check(table, tmp_path / "check.png")
    assert path.stat().st_size > 1000 and (tmp_path / "check.png.json").exists()
