"""``workflows/screen.py``: a folder of structures screened through the daemon (issue #10, "many materials").

The unmarked tests check the listing of runs from a folder, the refusals and the broker check; they need no
profile and always run. The ``services`` test screens diamond Si (smoke protocol) through the daemon on SLURM.
"""

import shutil
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from .conftest import wait_until_terminated

REPO = Path(__file__).resolve().parents[2]
STRUCTURES = REPO / "fixtures" / "structures"
LDA_ELEMENTS = ["O", "Si"]  # llpam/LDA/debian (aiida_llpam.configure.PSEUDOS)


@pytest.fixture(scope="module")
def screen():
    from aiida_llpam.cli import screening

    return screening


@pytest.fixture
def folder(tmp_path):
    """Chiral quartz, achiral Si, GeO2 (no Ge in the LDA family), a text file, a copy of Si and a hidden file."""
    for name in ("quartz_P3221.cif", "Si_diamond.cif", "GeO2_P3221.cif"):
        shutil.copy(STRUCTURES / name, tmp_path / name)
    shutil.copy(STRUCTURES / "Si_diamond.cif", tmp_path / "silicon_copy.cif")
    (tmp_path / "notes.txt").write_text("not a structure\n")
    (tmp_path / ".hidden.cif").write_text("editor swap file\n")
    return tmp_path


# ------------------------------------------------------------------------------------------- pure (always run)


def test_list_files_sorted_without_hidden_ones(screen, folder):
    names = [path.name for path in screen.list_files(folder)]
    assert names == ["GeO2_P3221.cif", "Si_diamond.cif", "notes.txt", "quartz_P3221.cif", "silicon_copy.cif"]
    assert [path.name for path in screen.list_files(folder, "q*.cif")] == ["quartz_P3221.cif"]
    with pytest.raises(ValueError, match=r"no files matching '\*\.vasp'"):
        screen.list_files(folder, "*.vasp")
    with pytest.raises(ValueError, match="not a folder"):
        screen.list_files(folder / "notes.txt")


def test_chiral_gets_both_enantiomers_achiral_only_as_is_bad_files_are_refused(screen, folder):
    candidates, refused = screen.prepare(screen.list_files(folder), LDA_ELEMENTS, "llpam/LDA/debian")
    runs = {c.path.name: c.enantiomers for c in candidates}
    assert runs == {"Si_diamond.cif": ("as-is",), "quartz_P3221.cif": ("as-is", "other")}
    reasons = {path.name: reason for path, reason in refused}
    assert set(reasons) == {"GeO2_P3221.cif", "notes.txt", "silicon_copy.cif"}
    assert reasons["GeO2_P3221.cif"].startswith("no pseudopotential for element Ge in the pseudo family llpam/LDA/")
    assert reasons["notes.txt"].startswith("not a crystal structure ASE can read")
    assert reasons["silicon_copy.cif"] == "the same file as Si_diamond.cif (identical bytes): screened once"

    lines = {c.path.name: screen.candidate_line(c) for c in candidates}
    assert lines["Si_diamond.cif"] == (
        "Si_diamond.cif: Si2 Fd-3m (No. 227), achiral; as-is only (achiral: its mirror image is the same crystal)"
    )
    assert lines["quartz_P3221.cif"] == (
        "quartz_P3221.cif: O6Si3 P3_221 (No. 154), right; as-is and other (mirror z -> -z)"
    )

    keys = screen.run_keys(candidates, "smoke", "llpam/LDA/debian")
    assert [(key[1], key[2], key[3]) for key in keys] == [("as-is", "smoke", "llpam/LDA/debian")] + [
        (enantiomer, "smoke", "llpam/LDA/debian") for enantiomer in ("as-is", "other")
    ]
    assert len(set(keys)) == 3 and len(screen.EXTRA_KEYS) == len(keys[0])


def test_enantiomers_as_is_never_mirrors(screen, folder):
    candidates, _ = screen.prepare(screen.list_files(folder, "q*"), LDA_ELEMENTS, "llpam/LDA/debian", "as-is")
    (quartz,) = candidates
    assert quartz.enantiomers == ("as-is",)
    assert screen.candidate_line(quartz).endswith("as-is only (--enantiomers as-is)")


def test_the_key_is_the_files_bytes_not_its_name(screen, folder, tmp_path_factory):
    renamed = tmp_path_factory.mktemp("renamed") / "si.cif"
    shutil.copy(folder / "Si_diamond.cif", renamed)
    (first,), _ = screen.prepare([folder / "Si_diamond.cif"], LDA_ELEMENTS, "llpam/LDA/debian")
    (second,), _ = screen.prepare([renamed], LDA_ELEMENTS, "llpam/LDA/debian")
    assert first.sha256 == second.sha256


def test_a_profile_without_broker_is_refused(screen):
    embedded = SimpleNamespace(name="llpam", process_control_backend=None)
    message = screen.broker_refusal(embedded)
    assert message.startswith("profile llpam has no broker") and "python deploy/services.py up" in message
    assert "docs/scaleout.md" in message
    assert "no AiiDA profile loaded" in screen.broker_refusal(None)
    assert screen.broker_refusal(SimpleNamespace(name="llpam-daemon", process_control_backend="core.rabbitmq")) is None


def _node(pk, terminated, ok=False, exit_status=None, message="", state="finished"):
    return SimpleNamespace(
        pk=pk,
        process_label="PamWorkChain",
        is_terminated=terminated,
        is_finished_ok=ok,
        exit_status=exit_status,
        exit_message=message,
        process_state=SimpleNamespace(value=state),
    )


def test_status_of_each_run_and_how_to_retry_the_failed_ones(screen, capsys):
    names = {"a": "quartz.cif", "b": "Si.cif", "c": "GeO2.cif"}
    keys = [("a", "as-is"), ("a", "other"), ("b", "as-is"), ("c", "as-is"), ("c", "other")]
    runs = {
        ("a", "as-is"): _node(5, True, ok=True),
        ("a", "other"): _node(9, True, exit_status=402, message="ph.x"),
        ("b", "as-is"): _node(12, True, state="excepted"),
        ("c", "as-is"): _node(20, False),
    }
    screen.print_runs(keys, runs, names, "llpam/screen/fast", {("c", "other"): "ValueError: no code"})
    assert capsys.readouterr().out.splitlines() == [
        "  quartz.cif as-is  PamWorkChain<5> finished ok",
        "  quartz.cif other  PamWorkChain<9> failed (exit status 402: ph.x)",
        "  Si.cif as-is      PamWorkChain<12> failed (excepted)",
        "  GeO2.cif as-is    PamWorkChain<20> running",
        "  GeO2.cif other    could not submit: ValueError: no code",
        "failed runs are not submitted again; to retry: verdi group remove-nodes -G llpam/screen/fast 9 12, "
        "then screen again",
    ]
    tally = screen.counts(keys[:4], runs)
    assert tally == {"finished ok": 1, "failed": 2, "running": 1, "to submit": 0}
    assert screen.counts_line(tally) == "1 finished ok, 2 failed, 1 running, 0 to submit (of 4)"


# -------------------------------------------------------------------------------------- services (root, opt-in)


@pytest.mark.services
@pytest.mark.qe
def test_screen_runs_silicon_through_the_daemon_and_skips_it_the_second_time(daemon_profile, screen, tmp_path, capsys):
    """Si smoke (2 atoms, q at Gamma; about a minute through SLURM); the broken file is reported on each pass."""
    from aiida import orm
    from aiida.common.links import LinkType

    from aiida_llpam.configure import SLURM_COMPUTER

    shutil.copy(STRUCTURES / "Si_diamond.cif", tmp_path / "Si_diamond.cif")
    (tmp_path / "broken.cif").write_text("data_broken\n_cell_length_a 3.0\n")
    group = f"llpam/screen/test-{uuid.uuid4().hex[:8]}"
    args = {
        "folder": tmp_path,
        "protocol": "smoke",
        "pseudo_family": "llpam/LDA/debian",
        "max_concurrent": 1,
        "computer": SLURM_COMPUTER,
        "group": group,
    }

    before = orm.QueryBuilder().append(orm.Node).count()
    dry = screen.screen(**args, dry_run=True)
    out = capsys.readouterr().out
    assert orm.QueryBuilder().append(orm.Node).count() == before and not dry["submitted"]
    assert f"group {group} does not exist yet; would submit now: Si_diamond.cif as-is" in out

    first = screen.screen(**args)
    out = capsys.readouterr().out
    assert [path.name for path, _ in first["refused"]] == ["broken.cif"] and "refused broken.cif: " in out
    (node,) = first["submitted"].values()
    assert f"submitted Si_diamond.cif as-is: PamWorkChain<{node.pk}>" in out
    assert node.label == "Si2 Fd-3m as-is smoke" and "from " + str(tmp_path / "Si_diamond.cif") in node.description
    assert node.base.extras.get("screen_enantiomer") == "as-is" and "enantiomer_of" not in node.base.extras.all
    assert node.pk in [n.pk for n in orm.load_group(group).nodes]

    wait_until_terminated(node, timeout=1500)
    failed = [
        (n.process_label, n.exit_status, n.exception or n.exit_message)
        for n in [node, *node.called_descendants]
        if n.is_terminated and not n.is_finished_ok
    ]
    assert node.is_finished_ok, failed
    calcjobs = [n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)]
    assert calcjobs and all(c.computer.label == SLURM_COMPUTER and c.get_job_id() for c in calcjobs)
    structure = node.base.links.get_incoming(link_type=LinkType.INPUT_WORK, link_label_filter="structure").one().node
    assert structure.get_formula() == "Si2" and "Si_diamond.cif, oriented: cubic" in structure.description

    second = screen.screen(**args, wait=True, poll=1)
    out = capsys.readouterr().out
    assert second["submitted"] == {} and [path.name for path, _ in second["refused"]] == ["broken.cif"]
    assert "runs: 1 finished ok, 0 failed, 0 running, 0 to submit (of 1)" in out
    assert f"Si_diamond.cif as-is  PamWorkChain<{node.pk}> finished ok" in out
    assert len(orm.load_group(group).nodes) == 1


@pytest.mark.services
# the fake submit leaves the builders' other inputs unstored, which SQLAlchemy notices at the next query
@pytest.mark.filterwarnings("ignore:Object of type <DbNode> not in session")
def test_mirror_image_records_the_as_is_runs_structure(daemon_profile, screen, tmp_path, monkeypatch):
    """Quartz gets an as-is run and its mirror image, the latter pointing at the former's structure.

    ``submit`` is replaced by a stored node with the builder's structure as input: what is checked is what the
    controller builds and records, in seconds, not another DFPT.
    """
    from aiida import engine, orm
    from aiida.common.links import LinkType

    from aiida_llpam.configure import SLURM_COMPUTER
    from aiida_llpam.structures import symmetry_of

    builders = []

    def fake_submit(builder):
        builders.append(builder)
        node = orm.WorkflowNode()
        node.base.links.add_incoming(builder.structure.store(), LinkType.INPUT_WORK, "structure")
        return node.store()

    monkeypatch.setattr(engine, "submit", fake_submit)
    shutil.copy(STRUCTURES / "quartz_P3221.cif", tmp_path / "quartz_P3221.cif")
    candidates, _ = screen.prepare([tmp_path / "quartz_P3221.cif"], LDA_ELEMENTS, "llpam/LDA/debian")
    group = orm.Group(label=f"llpam/screen/test-{uuid.uuid4().hex[:8]}").store()
    controller = screen.ScreenController(
        group_label=group.label,
        max_concurrent=2,
        candidates={c.sha256: c for c in candidates},
        protocol="smoke",
        pseudo_family="llpam/LDA/debian",
        symprec=1e-3,
        computer=SLURM_COMPUTER,
    )
    submitted = controller.submit_batch()
    assert controller.errors == {} and [key[1] for key in submitted] == ["as-is", "other"]
    as_is, other = builders
    original = as_is.structure
    assert as_is.metadata.label == "O6Si3 P3_221 as-is smoke" and "enantiomer" not in as_is.metadata.description
    assert other.metadata.label == "O6Si3 P3_121 other smoke"
    assert other.metadata.description.endswith(f"; enantiomer: mirror z -> -z of StructureData {original.uuid}")
    assert other.structure.description == f"mirror z -> -z of StructureData {original.uuid}"
    assert symmetry_of(other.structure.get_ase())["space_group_number"] == 152
    nodes = dict(zip(("as-is", "other"), submitted.values()))
    assert "enantiomer_of" not in nodes["as-is"].base.extras.all
    record = {"structure_uuid": original.uuid, "operation": "mirror z -> -z"}
    assert nodes["other"].base.extras.get("enantiomer_of") == record
    assert nodes["other"].base.extras.get("screen_sha256") == candidates[0].sha256
    # both are still active (unsealed): no free slot, and nothing left to submit anyway
    assert controller.submit_batch() == {} and controller.next_batch() == []
