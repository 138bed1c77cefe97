"""The committed reference archive: imported into a profile with no QE codes, reproduced as figures/tables/HDF5."""

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

ARCHIVES = sorted((Path(__file__).resolve().parents[2] / "fixtures" / "reference").glob("quartz_*.aiida"))
PROFILE = "llpam-archive"


def cli(*args):
    """The command line, on the profile the current archive was imported into."""
    from aiida.manage import get_manager

    return subprocess.run(
        [sys.executable, "-c", "from aiida_llpam.cli import main; main()", *args, "-p", get_manager().get_profile().name],
        capture_output=True, text=True, timeout=600,
    )


def test_reference_archives_are_committed():
    assert "quartz_fast.aiida" in [a.name for a in ARCHIVES]


@pytest.fixture(scope="module", params=ARCHIVES, ids=[a.stem for a in ARCHIVES])
def imported(request):
    """A fresh sqlite_dos profile (no computer, no codes) with only one archive in it."""
    from aiida import load_profile, orm
    from aiida.manage.configuration import create_profile, get_config
    from aiida.tools.archive import import_archive

    archive = request.param
    profile = f"{PROFILE}-{archive.stem}"
    config = get_config(create=True)
    if profile not in config.profile_names:
        create_profile(
            config, storage_backend="core.sqlite_dos",
            storage_config={"filepath": str(Path(config.dirpath) / "repository" / profile)},
            name=profile, email="archive@localhost",
        )
        config.store()
    load_profile(profile, allow_switch=True)
    import_archive(archive)
    # the archive brings its code and computer nodes, but nothing here can run them
    assert all(not computer.is_configured for computer in orm.Computer.collection.all())
    runs = orm.QueryBuilder().append(orm.WorkChainNode, filters={"process_type": "aiida.workflows:llpam.pam"}).all(flat=True)
    assert len(runs) == 1
    return runs[0]


def test_archive_holds_a_finished_run_with_full_provenance(imported, request):
    from aiida import orm

    assert imported.is_finished_ok
    ph = (
        orm.QueryBuilder()
        .append(orm.ArrayData, filters={"id": imported.outputs.gamma_ll.pk}, tag="out")
        .append(orm.CalcJobNode, with_descendants="out", filters={"process_type": "aiida.calculations:quantumespresso.ph"})
        .distinct()
        .all(flat=True)
    )
    assert len(ph) == 1
    settings = imported.outputs.settings.get_dict()
    archive = request.node.callspec.params["imported"]
    assert archive.stem == f"quartz_{settings['protocol']}"  # the file says which protocol made it
    assert settings["relaxed"] and settings["space_group_number"] == 154


def test_figures_from_stored_nodes(imported, tmp_path):
    out = cli("figures", imported.uuid, "-o", str(tmp_path / "figs"))
    assert out.returncode == 0, out.stderr
    files = sorted((tmp_path / "figs").glob("*.png"))
    assert [f.stem for f in files] == sorted([
        "fig2d_dispersion", "fig2e_gamma_a_species", "fig2f_trajectories", "fig3b_gamma_ll_map",
        "fig3c_gamma_ll_cut", "fig3d_bz_diagonal", "fig3e_bz_offdiagonal", "fig3f_pam_density",
    ])
    import matplotlib.image as mpimg

    for f in files:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = mpimg.imread(f)
        assert image.shape[0] > 200 and image.shape[1] > 300 and image.std() > 0.01  # not blank
        sidecar = json.loads(Path(f"{f}.json").read_text())
        assert sidecar["sources"]["workchain"] == imported.uuid
    out = cli("figures", str(imported.pk), "-o", str(tmp_path / "pdf"), "--format", "pdf")
    assert out.returncode == 0 and all(p.read_bytes()[:5] == b"%PDF-" for p in (tmp_path / "pdf").glob("*.pdf"))


def test_list_and_show_print_stored_values(imported):
    out = cli("list")
    assert out.returncode == 0, out.stderr
    assert str(imported.pk) in out.stdout and "fast" in out.stdout and "P3_221" in out.stdout
    out = cli("show", str(imported.pk))
    assert out.returncode == 0, out.stderr
    chi = imported.outputs.chi
    i = int(np.argmin(np.abs(chi.get_array("temperatures_k") - 300.0)))
    shown = {line.split()[0]: line.split()[1] for line in out.stdout.splitlines() if line.startswith("  chi_D ")}
    assert float(shown["chi_D"]) == pytest.approx(chi.get_array("chi_diagonal")[i], rel=1e-7)
    g = imported.outputs.gamma_ll
    j = int(np.argmin(np.abs(np.log(g.get_array("radii_m") / 20e-9))))
    line = next(line for line in out.stdout.splitlines() if line.strip().startswith("gamma_LL "))
    assert float(line.split()[1]) == pytest.approx(g.get_array("gamma_ll")[i, j], rel=1e-7)


def test_hdf5_round_trip(imported, tmp_path):
    target = tmp_path / "results.h5"
    out = cli("export", str(imported.pk), "-o", str(target))
    assert out.returncode == 0, out.stderr
    with h5py.File(target) as h5:
        assert h5.attrs["workchain_uuid"] == imported.uuid
        assert np.array_equal(h5["response/gamma_ll"][()], imported.outputs.gamma_ll.get_array("gamma_ll"))
        assert np.array_equal(h5["response/chi_total"][()], imported.outputs.chi.get_array("chi_total"))
        assert np.array_equal(h5["bz/chi_offdiagonal"][()], imported.outputs.bz_contributions.get_array("chi_offdiagonal"))
        assert np.array_equal(h5["path/l_z_hbar"][()], imported.outputs.dispersion.get_array("l_z_hbar"))
        assert h5["response/chi_total"].attrs["units"] == "kg/m"
        assert json.loads(h5["response"].attrs["source_uuids"])["chi"] == imported.outputs.chi.uuid
        assert json.loads(h5["settings"].attrs["tau_s"]) == imported.outputs.settings["tau_s"]


@pytest.mark.parametrize("identifier, message", [("999999", "no node"), ("no-such-label", "no node")])
def test_bad_identifier_is_one_line_error(imported, identifier, message):
    for command in ("show", "figures", "export"):
        extra = ["-o", "/tmp/llpam-never"] if command != "show" else []
        out = cli(command, identifier, *extra)
        assert out.returncode != 0
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], out.stderr


def test_node_that_is_not_a_pam_workchain(imported):
    out = cli("show", str(imported.outputs.settings.pk))
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "not an aiida-llpam PamWorkChain" in lines[0]
