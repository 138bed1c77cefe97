"""`workflows/run_quartz.py --submit` and `workflows/run_crystal.py --submit` (aiida_llpam.cli.runs) on the embedded
profile: refused before anything is stored, with the fix; and the launcher's choice of one ph.x job per q point."""

from pathlib import Path

import pytest

from aiida_llpam.cli.runs import QPOINT_JOBS, daemon_qpoint_jobs, default_computer, run_crystal, run_quartz

CRISTOBALITE = Path(__file__).resolve().parents[2] / "fixtures" / "structures" / "cristobalite_P41212.cif"


def _workchains():
    from aiida import orm

    return orm.QueryBuilder().append(orm.WorkChainNode).count()


@pytest.mark.qe  # the codes of `aiida-llpam setup` need the QE binaries on PATH
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({}, "has no broker"),
        ({"figures": Path("figs")}, "`aiida-llpam figures PK -o DIR`"),
    ],
)
def test_submit_is_refused_on_the_embedded_profile(llpam_profile, extra, message):
    before = _workchains()
    with pytest.raises(SystemExit) as exit_info:
        run_quartz(submit=True, protocol="smoke", **extra)
    assert message in str(exit_info.value.code)
    if not extra:
        assert "python deploy/services.py up" in exit_info.value.code
    assert _workchains() == before


@pytest.mark.qe  # the codes of `aiida-llpam setup` need the QE binaries on PATH
def test_run_crystal_submit_is_refused_on_the_embedded_profile(llpam_profile):
    before = _workchains()
    with pytest.raises(SystemExit, match="cannot submit: profile .* has no broker"):
        run_crystal(str(CRISTOBALITE), protocol="smoke", submit=True)
    with pytest.raises(SystemExit, match="`aiida-llpam figures PK -o DIR`"):
        run_crystal(str(CRISTOBALITE), submit=True, figures=Path("figs"))
    assert _workchains() == before


@pytest.mark.qe  # the codes of `aiida-llpam setup` need the QE binaries on PATH
def test_submit_takes_the_slurm_computer_when_the_profile_has_one(llpam_profile):
    from aiida import orm

    from aiida_llpam.configure import SLURM_COMPUTER

    assert default_computer(submit=True) == "localhost"
    computer = orm.Computer(
        label=SLURM_COMPUTER,
        hostname="localhost",
        transport_type="core.local",
        scheduler_type="core.slurm",
        workdir="/tmp",
    ).store()
    try:
        assert default_computer(submit=True) == SLURM_COMPUTER
        assert default_computer(submit=False) == "localhost"  # running in-process stays on localhost
    finally:
        orm.Computer.collection.delete(computer.pk)


def test_q_points_side_by_side_only_where_a_daemon_runs_them(bare_profile, monkeypatch, capsys):
    """The builder is the same in any profile; the launcher chooses parallelize_qpoints from the broker, and says so."""
    assert daemon_qpoint_jobs() is False  # the embedded profile has no broker
    assert capsys.readouterr().out == f"{QPOINT_JOBS[False]}\n"
    monkeypatch.setattr("aiida_llpam.cli.runs.profile_has_broker", lambda: True)
    assert daemon_qpoint_jobs() is True
    assert capsys.readouterr().out == "one ph.x job per q point (the daemon runs them side by side)\n"
