"""`workflows/run_quartz.py --submit` on the embedded profile: refused before anything is stored, with the fix."""

import pytest

from ..conftest import load_workflow_script


@pytest.fixture(scope="module")
def run_quartz():
    return load_workflow_script("run_quartz")


def _workchains():
    from aiida import orm

    return orm.QueryBuilder().append(orm.WorkChainNode).count()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "has no broker"),
        (["--figures", "figs"], "`aiida-llpam figures PK -o DIR`"),
    ],
)
def test_submit_is_refused_on_the_embedded_profile(llpam_profile, run_quartz, extra, message):
    before = _workchains()
    with pytest.raises(SystemExit) as exit_info:
        run_quartz.main(["--submit", "--protocol", "smoke", *extra])
    assert message in str(exit_info.value.code)
    if not extra:
        assert "aiida-llpam setup --services" in exit_info.value.code
    assert _workchains() == before


def test_submit_takes_the_slurm_computer_when_the_profile_has_one(llpam_profile, run_quartz):
    from aiida import orm

    from aiida_llpam.configure import SLURM_COMPUTER

    assert run_quartz.default_computer(submit=True) == "localhost"
    computer = orm.Computer(label=SLURM_COMPUTER, hostname="localhost", transport_type="core.local",
                            scheduler_type="core.slurm", workdir="/tmp").store()  # fmt: skip
    try:
        assert run_quartz.default_computer(submit=True) == SLURM_COMPUTER
        assert run_quartz.default_computer(submit=False) == "localhost"  # running in-process stays on localhost
    finally:
        orm.Computer.collection.delete(computer.pk)
