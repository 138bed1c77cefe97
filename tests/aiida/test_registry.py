"""The registry of quantities: ports, stored nodes, show, --json, HDF5 and the layout doc all follow it."""

import json
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest

from aiida_llpam import quantities
from aiida_llpam.quantities import OUTPUTS, QUANTITIES, Quantity

from .conftest import REPO


def test_workchain_ports_are_the_registry_outputs():
    from aiida import orm

    from aiida_llpam.workflows.pam import PamWorkChain

    ports = PamWorkChain.spec().outputs
    for name, out in OUTPUTS.items():
        assert ports[name].valid_type is orm.ArrayData, name
        assert ports[name].required == (out.source == "response" and not out.optional), name


@pytest.mark.qe  # the smoke run
def test_stored_nodes_hold_exactly_the_registry(smoke_run):
    # the optional outputs follow the run's inputs: the smoke protocol keeps the mesh modes, and has no lifetimes
    asked = {
        "mesh_modes": smoke_run.inputs.response.parameters.get_dict().get("store_mesh_modes", False),
        "lifetimes_response": "lifetimes" in smoke_run.inputs.response,
    }
    assert asked == {"mesh_modes": True, "lifetimes_response": False}
    for name in OUTPUTS:
        if OUTPUTS[name].optional and not asked[name]:
            assert name not in smoke_run.outputs, name
            continue
        node = smoke_run.outputs[name]
        units = node.base.attributes.get("units")
        expected = {q.name: q.unit for q in QUANTITIES if q.output == name}
        expected.update({array: unit for _, array, unit in quantities.axis_arrays(name)})
        assert units == expected, name
        assert set(node.get_arraynames()) == set(expected), name


def test_layout_doc_is_generated_from_the_registry():
    doc = (REPO / "docs" / "hdf5_layout.md").read_text()
    table = re.search(r"<!-- registry:begin -->\n(.*?)\n<!-- registry:end -->", doc, re.S)
    assert table, "docs/hdf5_layout.md lacks the generated table markers"
    assert table.group(1) == quantities.layout_markdown(), "regenerate with: python -m aiida_llpam.quantities"


@pytest.mark.qe  # the smoke run
def test_a_new_quantity_appears_in_show_json_and_hdf5(smoke_run, monkeypatch, tmp_path):
    """Adding a registry entry (here chi_offdiagonal, which PamResponse computes) needs no other edit."""
    from click.testing import CliRunner

    from aiida_llpam.calculations.functions.phonopy_force_constants import write_force_constants
    from aiida_llpam.calculations.response_job import run as run_job
    from aiida_llpam.cli import main
    from aiida_llpam.export.hdf5 import write_results_h5
    from aiida_llpam.quantities import summary_lines
    from aiida_llpam.queries import gather
    from aiida_llpam.report import grid_indices

    extra = Quantity("chi_offdiagonal", "chi", "kg/m", ("T",), "chi_OD,N + chi_OD,P")
    monkeypatch.setattr(quantities, "QUANTITIES", (*QUANTITIES, extra))

    fc = REPO / "fixtures" / "dfpt" / "quartz_q222"
    out = CliRunner().invoke(
        main,
        [
            "response",
            "--fc",
            str(fc / "quartz.fc"),
            "--mesh",
            "2",
            "2",
            "2",
            "-T",
            "300",
            "-r",
            "2e-8",
            "--tau",
            "1e-11",
            "--grad-t",
            "1",
            "--json",
        ],
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["units"]["chi_offdiagonal"] == "kg/m"

    # the response job and its parser on the stored force constants (in this process, which sees the new entry;
    # in real use the edit of quantities.py reaches the job's process too): the new array is stored, shown, exported
    from aiida_llpam.parsers.response import outputs_from_results

    write_force_constants(smoke_run.outputs.force_constants, tmp_path / "fc.npz")
    (tmp_path / "parameters.json").write_text(json.dumps(smoke_run.inputs.response.parameters.get_dict()))
    run_job(str(tmp_path / "fc.npz"), str(tmp_path / "parameters.json"), str(tmp_path / "results.npz"))
    outputs = outputs_from_results(str(tmp_path / "results.npz"))
    assert "chi_offdiagonal" in outputs["chi"].get_arraynames()
    response = {name: outputs[name] for name in OUTPUTS if OUTPUTS[name].source == "response" and name in outputs}
    data, sources = gather(smoke_run)
    from aiida_llpam.calculations.nodes import read_output

    for node in response.values():
        data["response"].update(read_output(node))
    it, ir = grid_indices(data["response"])
    assert any(
        line.split()[0] == "chi_offdiagonal" and "kg/m" in line for line in summary_lines(data["response"], it, ir)
    )
    path = write_results_h5(tmp_path / "r.h5", data, sources)
    with h5py.File(path) as h5:
        assert h5["chi/chi_offdiagonal"].attrs["units"] == "kg/m"
        # HDF5 keeps the float64 values as they are (kg/m, ~1e-17: no default atol)
        expected = data["response"]["chi_offdiagonal"]
        np.testing.assert_allclose(
            h5["chi/chi_offdiagonal"][()], expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max()
        )


@pytest.mark.qe  # the smoke run
def test_show_prints_every_summarised_quantity(smoke_run):
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from aiida_llpam.cli import main; main()",
            "show",
            str(smoke_run.pk),
            "-p",
            "llpam-tests",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    for q in quantities.summary_quantities():
        if OUTPUTS[q.output].optional:  # lifetimes: not in the smoke run, and show says nothing of them there
            assert q.name not in out.stdout, q.name
            continue
        assert re.search(rf"^\s+{q.name}\s+\S.*{re.escape(q.unit)}\s*$", out.stdout, re.M), q.name
    assert "smoke protocol" in out.stdout
