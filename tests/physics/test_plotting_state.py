"""Plotting leaves no global state (STYLE.md, example 6): no backend selected and no rcParams changed by importing
a plotting module or by drawing a panel; the panel's own fonts and resolution hold only while it is drawn. Plotting
and export take arrays: they import no AiiDA and nothing of the layers above them (example 1)."""

import json
import os
import pkgutil
import subprocess
import sys

import numpy as np
import pytest

import aiida_llpam.export
import aiida_llpam.plotting

MODULES = sorted(
    f"{package.__name__}.{m.name}"
    for package in (aiida_llpam.plotting, aiida_llpam.export)
    for m in pkgutil.iter_modules(package.__path__)
)
#: what plotting and export must not import: AiiDA itself and the layers that read or make nodes
ABOVE = ("aiida", "aiida_llpam.workflows", "aiida_llpam.queries", "aiida_llpam.cli", "aiida_llpam.calculations")

#: run in a fresh interpreter, so that each module's top-level code really runs: what importing them changed
_IMPORT_ALL = """
import importlib, json, sys
import matplotlib

backend, before = matplotlib.get_backend(), {k: repr(v) for k, v in matplotlib.rcParams.items()}
for name in sys.argv[1:]:
    importlib.import_module(name)
after = {k: repr(v) for k, v in matplotlib.rcParams.items()}
print(json.dumps({
    "backend": [backend, matplotlib.get_backend()],
    "changed": sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k)),
    "pyplot_imported": "matplotlib.pyplot" in sys.modules,
    "modules": sorted(sys.modules),
}))
"""


def _rc_snapshot() -> dict:
    import matplotlib

    return {key: repr(value) for key, value in matplotlib.rcParams.items()}


def _pyplot_figures() -> list[int]:
    """The figures pyplot holds open (none if no one imported it)."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    return pyplot.get_fignums() if pyplot else []


@pytest.fixture(scope="module")
def imported() -> dict:
    """What importing every plotting and export module in a fresh interpreter did."""
    # svg: a backend the caller chose that is not the one a module-level matplotlib.use("Agg") would select
    env = {**os.environ, "MPLBACKEND": "svg"}
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL, *MODULES], capture_output=True, text=True, env=env, check=False, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_plotting_and_export_module_is_checked():
    names = {"plotting.panels", "plotting.convergence", "plotting.lifetimes", "plotting.style", "export.hdf5"}
    assert {f"aiida_llpam.{name}" for name in names} <= set(MODULES)


def test_importing_the_plotting_modules_changes_no_backend_and_no_rcparams(imported):
    assert imported["backend"] == ["svg", "svg"]
    assert imported["changed"] == [], f"rcParams changed by importing {MODULES}"
    assert not imported["pyplot_imported"], "a plotting module imports pyplot at module level"


def test_plotting_and_export_import_nothing_above_them(imported):
    above = [m for m in imported["modules"] if any(m == name or m.startswith(f"{name}.") for name in ABOVE)]
    assert above == []


def test_drawing_a_panel_from_arrays_leaves_rcparams_unchanged(tmp_path):
    import matplotlib
    import matplotlib.image

    from aiida_llpam.plotting.panels import plot_gamma_nl_tensor
    from aiida_llpam.plotting.style import STYLE

    temperatures = np.linspace(10.0, 600.0, 30)
    gamma_nl = np.zeros((30, 3, 3))
    gamma_nl[:, 0, 0], gamma_nl[:, 2, 2] = 1e-18 * np.tanh(temperatures / 200.0), 2e-18 * np.tanh(temperatures / 150.0)
    backend, before, figures = matplotlib.get_backend(), _rc_snapshot(), _pyplot_figures()
    assert before["savefig.dpi"] != repr(STYLE["savefig.dpi"])  # else the size check below shows nothing

    path = plot_gamma_nl_tensor(
        {"temperatures_k": temperatures, "gamma_nl": gamma_nl},
        tmp_path / "g.png",
        {"gamma_nl": "uuid"},
        warning="NOT physical",
    )

    after = _rc_snapshot()
    assert sorted(k for k in before if before[k] != after[k]) == []
    assert matplotlib.get_backend() == backend
    assert _pyplot_figures() == figures
    # the panel was drawn in its own style: 3.4 in wide at 200 dpi (the default savefig.dpi would give ~340 px)
    image = matplotlib.image.imread(path)
    assert image.shape[1] > 600 and image.std() > 0.01
    assert json.loads((tmp_path / "g.png.json").read_text())["warning"] == "NOT physical"


def test_the_imaginary_label_ignores_the_acoustic_zero_at_gamma():
    """A clean run's first figure must not say "imaginary modes: lowest -0.0": the acoustic triplet at Gamma is zero
    to numerical noise, and noise below the acoustic region's tolerance is not an imaginary mode."""
    import numpy as np

    from aiida_llpam.plotting.panels import _imaginary

    qpoints = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.1], [0.0, 0.0, 0.2]])
    frequencies = np.array([[-0.014, -0.01, 0.0, 130.0], [1.0, 2.0, 3.0, 131.0], [-0.01, 4.0, 5.0, 132.0]])
    assert not _imaginary({"qpoints": qpoints}, frequencies).any()
    frequencies[2, 0] = -2.0  # a real pocket away from Gamma
    assert _imaginary({"qpoints": qpoints}, frequencies).sum() == 1
    frequencies[0, 3] = -5.0  # an optical mode at Gamma is never the acoustic zero
    assert _imaginary({"qpoints": qpoints}, frequencies).sum() == 2


def test_every_plot_function_draws_in_the_style():
    """Each ``plot_*`` of the plotting modules runs inside ``style.styled`` (its fonts and resolution); a decorator
    that slid onto a helper defined above it once left the direct-check figure unstyled."""
    import importlib
    import inspect

    drawers = [
        function
        for name in MODULES
        if name.startswith("aiida_llpam.plotting.")
        for function_name, function in inspect.getmembers(importlib.import_module(name), inspect.isfunction)
        if function_name.startswith("plot") and function.__module__ == name
    ]
    assert len(drawers) >= 12
    assert [f.__qualname__ for f in drawers if not hasattr(f, "__wrapped__")] == []
