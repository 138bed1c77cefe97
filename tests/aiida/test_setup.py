"""`aiida-llpam setup`: what it creates, and that a second run changes nothing."""

import os
import subprocess
import sys


def test_setup_creates_everything_once(llpam_profile):
    from aiida import orm
    from aiida.manage import get_manager

    profile = get_manager().get_profile()
    assert profile.storage_backend == "core.sqlite_dos"
    assert profile.process_control_backend is None  # no broker
    computer = orm.load_computer("localhost")
    assert computer.get_minimum_job_poll_interval() >= 2.0
    mpirun = computer.get_mpirun_command()
    assert ("--allow-run-as-root" in mpirun) == (os.geteuid() == 0)
    for name in ("pw", "ph", "q2r", "matdyn"):
        assert orm.load_code(f"{name}@localhost").filepath_executable.name == f"{name}.x"
    from aiida_pseudo.groups.family import PseudoPotentialFamily

    family = orm.load_group("llpam/LDA/debian")
    assert isinstance(family, PseudoPotentialFamily)
    assert sorted(p.filename for p in family.nodes) == ["O.pz-rrkjus.UPF", "Si.pz-vbc.UPF"]


def test_second_setup_changes_nothing(llpam_profile):
    out = subprocess.run(
        [sys.executable, "-c", "from aiida_llpam.cli import main; main()", "setup", "--profile", "llpam-tests"],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "created" not in out.stdout
    assert "Nothing to do" in out.stdout
