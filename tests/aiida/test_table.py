"""``aiida-llpam table`` on the committed reference archives, and ``workflows/run_crystal.py --dry-run``.

The archives are imported (with test_reference_archive's ``import_into_own_profile``) in a subprocess and the
table runs in subprocesses on those profiles, so this process keeps the test profile its session fixtures use.
"""

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from aiida.engine import WorkChain
from ase.build import bulk
from ase.io import write

from aiida_llpam.cli.runs import run_crystal

from .test_reference_archive import REFERENCE

REPO = Path(__file__).resolve().parents[2]
CRISTOBALITE = REPO / "fixtures" / "structures" / "cristobalite_P41212.cif"

#: run in a subprocess: import the archive into its own profile, print what the table must show (from the nodes)
IMPORT_AND_DESCRIBE = """
import json, sys
import numpy as np
from tests.aiida.test_reference_archive import import_into_own_profile
from aiida.manage import get_manager
from aiida_llpam.queries import finished_runs
newest = import_into_own_profile(__import__("pathlib").Path(sys.argv[1]), sys.argv[2])
runs = {}
for node in finished_runs():
    out = node.outputs
    run = {"uuid": node.uuid, "convergence": "convergence" in out, "acoustic": "acoustic" in out,
           "gamma_nl_zz_stored": "gamma_nl_zz" in out.gamma_nl.get_arraynames()}
    if "convergence" in out:
        run["gamma_nl_zz"] = out.convergence.get_array("convergence_gamma_nl_zz").tolist()
        run["gamma_m"] = out.convergence.get_array("convergence_gamma_m").tolist()
        run["converged"] = int(out.convergence.get_array("convergence_converged"))
    if "acoustic" in out:
        run["imaginary"] = int(out.acoustic.get_array("num_imaginary_modes"))
    runs[node.pk] = run
print(json.dumps({"profile": get_manager().get_profile().name, "newest": newest.pk, "runs": runs}))
"""


def _import(archive: Path, tag: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_AND_DESCRIBE, str(archive), tag],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(profile: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from aiida_llpam.cli import main; main()", "table", *args, "-p", profile],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def fast():
    return _import(REFERENCE / "quartz_fast.aiida", "table-fast")


@pytest.fixture(scope="module")
def production():
    return _import(REFERENCE / "quartz_production.aiida", "table-production")


def test_text_table_lists_every_finished_run(fast):
    out = table(fast["profile"])
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["PK", "formula", "space"] and "gamma^NL_zz" in lines[0] and "imag." in lines[0]
    rows = {int(line.split()[0]): line for line in lines[1:] if line.split() and line.split()[0].isdigit()}
    assert set(rows) == {int(pk) for pk in fast["runs"]}
    newest = fast["runs"][str(fast["newest"])]
    assert newest["convergence"] and newest["acoustic"]
    row = rows[fast["newest"]].split()
    assert row[1:6] == ["O6Si3", "P3_221", "(154)", "right", "fast"]
    gamma, change = newest["gamma_nl_zz"][-1], abs(newest["gamma_nl_zz"][-1] - newest["gamma_nl_zz"][-2])
    # SI values of 1e-17 and less: abs=0, since approx's default abs=1e-12 would accept anything
    assert row[6] == "300" and float(row[7]) == pytest.approx(gamma, rel=1e-4, abs=0)
    assert float(row[8]) == pytest.approx(change, rel=1e-2, abs=0)
    assert float(row[9]) == pytest.approx(newest["gamma_m"][-1], rel=1e-4, abs=0)
    assert row[11:] == ["yes" if newest["converged"] else "NO", str(newest["imaginary"])]
    # the run that made the DFPT predates the convergence and acoustic outputs: n/a, not a failure
    older = [pk for pk, run in fast["runs"].items() if not run["convergence"]]
    for pk in older:
        cells = rows[int(pk)].split()  # ... gamma^NL_zz +- gamma^M +- converged imag.
        assert cells[-3:] == ["n/a"] * 3 and cells[-5] == "n/a" and float(cells[-6]) > 0
    assert older
    assert "units: gamma^NL_zz J s K^-1 m^-2, gamma^M A/K" in out.stdout


@pytest.mark.parametrize("archive", ["fast", "production"])
def test_csv_and_json_carry_the_stored_values(archive, request):
    imported = request.getfixturevalue(archive)
    out = table(imported["profile"], "--format", "csv")
    assert out.returncode == 0, out.stderr
    rows = {int(row["pk"]): row for row in csv.DictReader(io.StringIO(out.stdout))}
    out = table(imported["profile"], "--format", "json")
    assert out.returncode == 0, out.stderr
    document = json.loads(out.stdout)
    assert document["units"]["gamma_nl_zz"] == "J s K^-1 m^-2" and document["units"]["gamma_m"] == "A/K"
    runs = {run["pk"]: run for run in document["runs"]}
    assert set(rows) == set(runs) == {int(pk) for pk in imported["runs"]}
    for pk, expected in imported["runs"].items():
        row, run = rows[int(pk)], runs[int(pk)]
        assert row["uuid"] == run["uuid"] == expected["uuid"]
        assert (row["space_group"], row["space_group_number"], row["protocol"]) == ("P3_221", "154", archive)
        assert run["space_group_number"] == 154 and run["protocol"] == archive and run["formula"] == "O6Si3"
        if expected["convergence"]:
            gamma = np.array(expected["gamma_nl_zz"])
            assert float(row["gamma_nl_zz (J s K^-1 m^-2)"]) == run["gamma_nl_zz"] == gamma[-1]
            assert run["gamma_nl_zz_uncertainty"] == pytest.approx(abs(gamma[-1] - gamma[-2]), rel=1e-12, abs=0)
            assert run["gamma_m"] == expected["gamma_m"][-1] and run["temperature_k"] == 300.0
            assert run["converged"] is bool(expected["converged"]) and row["converged"] == str(
                bool(expected["converged"])
            )
            assert run["imaginary_modes"] == expected["imaginary"] == int(row["imaginary_modes"])
            assert 1e-18 < run["gamma_nl_zz"] < 1e-16  # quartz: ~1.5e-17 J s K^-1 m^-2
        else:
            assert (
                run["converged"] is None and run["imaginary_modes"] is None and run["gamma_nl_zz_uncertainty"] is None
            )
            assert row["converged"] == row["imaginary_modes"] == row["gamma_nl_zz_uncertainty (J s K^-1 m^-2)"] == "n/a"
            assert abs(run["temperature_k"] - 300) < 5  # the nearest stored T
            # a run whose gamma_nl node is not of the current layout (the production archive's run that made the
            # DFPT, stored before the gamma^NL tensor) has none to show
            assert run["gamma_nl_zz"] > 0 if expected["gamma_nl_zz_stored"] else run["gamma_nl_zz"] is None


# ---- workflows/run_crystal.py --dry-run ------------------------------------------------------------------


def _count_nodes() -> int:
    from aiida import orm

    return orm.QueryBuilder().append(orm.Node).count()


@pytest.mark.qe  # the dry runs build with the set-up's codes, which need the QE binaries
def test_dry_run_on_cristobalite_prints_the_chirality_and_stores_nothing(llpam_profile, capsys):
    before = _count_nodes()
    builder = run_crystal(str(CRISTOBALITE), protocol="smoke", dry_run=True)
    out = capsys.readouterr().out
    assert _count_nodes() == before and not builder.structure.is_stored
    assert "space group: P4_12_12 (No. 92), point group 422" in out
    assert "Sohncke (chiral): yes" in out and "enantiomorphic partner: P4_32_12" in out
    assert "handedness: P4_12_12" in out and "tetragonal: unique axis already along z" in out
    assert "vanish by symmetry" not in out and "nothing stored" in out
    assert builder.symprec.value == 1e-3 and builder.protocol.value == "smoke"
    assert sorted(builder.scf.pw.pseudos) == ["O", "Si"] and "mirror" not in builder.metadata.description


@pytest.mark.qe  # the dry runs build with the set-up's codes, which need the QE binaries
def test_dfpt_flags_replace_the_protocols_settings(llpam_profile):
    """--kpoints, --qpoints, --ecutwfc and --ecutrho reach pw.x and ph.x and name themselves in the label; bad ones
    are refused before anything is read or stored."""
    si = str(REPO / "fixtures" / "structures" / "Si_diamond.cif")
    builder = run_crystal(
        si, protocol="fast", dry_run=True, kpoints=[8, 8, 8], qpoints=[4, 4, 4], ecutwfc=35.0, ecutrho=280.0
    )
    assert builder.scf.kpoints.get_kpoints_mesh()[0] == [8, 8, 8]
    assert builder.relax.base_relax.kpoints.get_kpoints_mesh()[0] == [8, 8, 8]
    assert builder.ph_main.qpoints.get_kpoints_mesh()[0] == [4, 4, 4]
    system = builder.scf.pw.parameters.get_dict()["SYSTEM"]
    assert (system["ecutwfc"], system["ecutrho"]) == (35.0, 280.0)
    assert builder.metadata.label.endswith("fast kpoints 8x8x8, qpoints 4x4x4, ecutwfc 35, ecutrho 280")
    default = run_crystal(si, protocol="fast", dry_run=True)
    assert default.scf.kpoints.get_kpoints_mesh()[0] == [2, 2, 2] and default.metadata.label.endswith("fast")
    for flags, message in (
        ({"kpoints": [8, 0, 8]}, "--kpoints takes three positive integers, got 8 0 8"),
        ({"ecutwfc": -1.0}, "--ecutwfc must be positive"),
        ({"ecutwfc": 40.0, "ecutrho": 120.0}, "--ecutrho 120 Ry is below 4 x --ecutwfc 40 Ry"),
    ):
        with pytest.raises(SystemExit, match=message):
            run_crystal(si, protocol="fast", dry_run=True, **flags)


@pytest.mark.qe  # the dry runs build with the set-up's codes, which need the QE binaries
def test_job_flags_reach_every_job_and_the_split_needs_a_daemon(llpam_profile, capsys):
    """--mpiprocs, --queue, --account and --walltime-min set the options of every QE job; the response job takes
    the queue, account and time limit but stays one process; --representations-per-job is refused without the
    per-q-point route of a submitted run."""
    jobs = {"mpiprocs": 8, "queue": "short", "account": "phys123", "walltime_min": 90}
    builder = run_crystal(str(CRISTOBALITE), protocol="smoke", dry_run=True, **jobs)
    for options in (
        builder.scf.pw.metadata.options,
        builder.ph_main.ph.metadata.options,
        builder.q2r.q2r.metadata.options,
    ):
        assert options["resources"] == {"num_machines": 1, "num_mpiprocs_per_machine": 8}
        assert (options["queue_name"], options["account"], options["max_wallclock_seconds"]) == (
            "short",
            "phys123",
            5400,
        )
    response = builder.response.metadata.options
    assert (response["queue_name"], response["account"], response["max_wallclock_seconds"]) == (
        "short",
        "phys123",
        5400,
    )
    assert "resources" not in response or response["resources"].get("num_mpiprocs_per_machine", 1) == 1
    with pytest.raises(SystemExit, match="--representations-per-job splits the jobs of the per-q-point route"):
        run_crystal(str(CRISTOBALITE), protocol="smoke", dry_run=True, representations_per_job=3)
    with pytest.raises(SystemExit, match="--mpiprocs must be at least 1, got 0"):
        run_crystal(str(CRISTOBALITE), protocol="smoke", dry_run=True, mpiprocs=0)


@pytest.mark.qe
def test_dry_run_other_enantiomer_records_the_original(llpam_profile, capsys):
    from aiida import orm
    from ase.io import read

    original = orm.StructureData(ase=read(CRISTOBALITE)).store()
    before = _count_nodes()
    builder = run_crystal(str(original.pk), enantiomer="other", symprec=1e-4, dry_run=True)
    out = capsys.readouterr().out
    assert _count_nodes() == before
    assert "mirror z -> -z of P4_12_12 (No. 92) -> P4_32_12 (No. 96)" in out and "space group: P4_32_12 (No. 96)" in out
    assert f"mirror z -> -z of StructureData {original.uuid}" in builder.metadata.description
    assert builder.symprec.value == 1e-4
    mirrored = builder.structure.get_ase()
    np.testing.assert_allclose(
        mirrored.get_scaled_positions()[:, 2], (-original.get_ase().get_scaled_positions()[:, 2]) % 1.0, atol=1e-8
    )


@pytest.mark.qe
def test_dry_run_on_silicon_says_the_response_vanishes(llpam_profile, capsys, tmp_path):
    write(tmp_path / "Si.vasp", bulk("Si", "diamond", a=5.43), format="vasp")
    before = _count_nodes()
    run_crystal(str(tmp_path / "Si.vasp"), dry_run=True)
    out = capsys.readouterr().out
    assert _count_nodes() == before
    assert (
        "space group: Fd-3m (No. 227)" in out and "Sohncke (chiral): no" in out and "handedness: none: achiral" in out
    )
    assert "response: achiral, centrosymmetric: gamma^NL and gamma^M vanish by symmetry" in out
    assert "cubic: orientation kept" in out


@pytest.mark.qe
@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda path: write(path, bulk("Ge", "diamond", a=5.66), format="vasp"),
            "refused: no pseudopotential for element Ge in the pseudo family llpam/LDA/debian",
        ),
        (lambda path: path.write_text("not a structure\n"), "refused: .*not a crystal structure ASE can read"),
    ],
)
def test_refused_before_anything_is_stored(llpam_profile, tmp_path, make, message):
    path = tmp_path / "input.vasp"
    make(path)
    before = _count_nodes()
    with pytest.raises(SystemExit, match=message):
        run_crystal(str(path), dry_run=True)
    assert _count_nodes() == before


@pytest.mark.qe
def test_verdi_run_entry_point(llpam_profile):
    """The script as users call it: `verdi run workflows/run_crystal.py ... --dry-run`."""
    from aiida.manage import get_manager

    out = subprocess.run(
        [
            "verdi",
            "-p",
            get_manager().get_profile().name,
            "run",
            str(REPO / "workflows" / "run_crystal.py"),
            str(CRISTOBALITE),
            "--enantiomer",
            "other",
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    assert "space group: P4_32_12 (No. 96)" in out.stdout and "nothing stored" in out.stdout


# ---- the run-with-progress machinery the scripts share (aiida_llpam.cli.launch) -----------------------


class TwoStepWorkChain(WorkChain):
    """A workchain with no code to run: returns its input doubled."""

    @classmethod
    def define(cls, spec):
        from aiida import orm

        super().define(spec)
        spec.input("x", valid_type=orm.Int)
        spec.output("doubled", valid_type=orm.Int)
        spec.outline(cls.double)

    def double(self):
        from aiida import orm
        from aiida.engine import calcfunction

        self.out("doubled", calcfunction(lambda x: orm.Int(2 * x.value))(self.inputs.x))


def test_run_with_progress_writes_the_pk_first_and_returns_the_node(bare_profile, tmp_path, capsys):
    from aiida import orm

    from aiida_llpam.cli.launch import print_outcome, run_with_progress

    builder = TwoStepWorkChain.get_builder()
    builder.x = orm.Int(21)
    node = run_with_progress(builder, quiet=False, pk_file=tmp_path / "pk", interval_s=0.01)
    assert node.is_finished_ok and node.outputs.doubled.value == 42
    assert (tmp_path / "pk").read_text() == f"{node.pk}\n"
    assert print_outcome(node)
    out = capsys.readouterr().out
    assert out.startswith(f"TwoStepWorkChain<{node.pk}> created\n")
    assert f"TwoStepWorkChain<{node.pk}> finished, exit status 0" in out and "doubled" in out
