"""`aiida-llpam setup`: what it creates, and that a second run changes nothing."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.qe  # the codes of the set-up are QE's binaries, which must be on PATH


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
    for name in ("pw", "ph", "q2r"):
        assert orm.load_code(f"{name}@localhost").filepath_executable.name == f"{name}.x"
    from aiida_pseudo.groups.family import PseudoPotentialFamily

    family = orm.load_group("llpam/LDA/debian")
    assert isinstance(family, PseudoPotentialFamily)
    assert sorted(p.filename for p in family.nodes) == ["O.pz-rrkjus.UPF", "Si.pz-vbc.UPF"]


def test_second_setup_changes_nothing(llpam_profile):
    out = subprocess.run(
        [sys.executable, "-c", "from aiida_llpam.cli import main; main()", "setup", "--profile", "llpam-tests"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "created" not in out.stdout and "changed" not in out.stdout
    assert "Nothing to do" in out.stdout


def _setup(*args):
    return subprocess.run(
        [sys.executable, "-c", "from aiida_llpam.cli import main; main()", "setup", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_setup_reports_a_changed_option_and_checks_codes(llpam_profile):
    from aiida import orm

    computer = orm.load_computer("localhost")
    before = computer.get_default_mpiprocs_per_machine()
    other = 1 if before != 1 else 2
    out = _setup("-p", "llpam-tests", "--mpiprocs", str(other))
    assert out.returncode == 0, out.stderr
    assert f"changed  computer localhost ({other} MPI processes" in out.stdout and "created" not in out.stdout
    out = _setup("-p", "llpam-tests", "--mpiprocs", str(before))
    assert out.returncode == 0 and "changed  computer" in out.stdout


def test_setup_refuses_a_code_that_runs_something_else(llpam_profile, tmp_path):
    from aiida import orm

    from aiida_llpam.configure import SetupError, ensure_codes

    fake = tmp_path / "pw.x"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    os.environ["PATH"], path = f"{tmp_path}:{os.environ['PATH']}", os.environ["PATH"]
    try:
        with pytest.raises(SetupError, match="code pw@localhost runs .*/usr/bin/pw.x"):
            ensure_codes(orm.load_computer("localhost"))
    finally:
        os.environ["PATH"] = path
