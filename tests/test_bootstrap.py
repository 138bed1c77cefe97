"""``scripts/bootstrap.sh``: sourced by hand it leaves the caller's shell options alone and returns a failure instead
of closing the shell; sourced by the strict run_*.sh scripts they stay strict.

The script runs on a copy of itself in a fake repository whose virtualenv and Debian packages are already "there"
(stub executables), so nothing is installed.
"""

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

BOOTSTRAP = Path(__file__).resolve().parents[1] / "scripts" / "bootstrap.sh"
OPTIONS = 'for o in errexit nounset pipefail; do shopt -qo $o && printf "%s on " $o || printf "%s off " $o; done; echo'


@pytest.fixture
def repo(tmp_path):
    """A repository with bootstrap.sh, an installed virtualenv (stamp up to date) and stubs of everything it checks."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(BOOTSTRAP, tmp_path / "scripts" / "bootstrap.sh")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name, code in [
        ("python", 0),
        *[(exe, 0) for exe in ("pw.x", "ph.x", "q2r.x", "matdyn.x", "mpirun", "dot")],
        ("dpkg", 0),
        ("apt-get", 1),
        ("sudo", 1),
    ]:
        stub = (venv_bin if name == "python" else stubs) / name
        stub.write_text(f"#!/bin/sh\nexit {code}\n")
        stub.chmod(0o755)
    digest = hashlib.sha256((tmp_path / "pyproject.toml").read_bytes()).hexdigest()
    (tmp_path / ".venv" / ".llpam-installed").write_text(digest + "\n")
    return tmp_path


def shell(repo, script):
    path = f"{repo / 'stubs'}:/usr/bin:/bin"
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=repo,
        env={"PATH": path, "HOME": str(repo)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result


def test_sourced_by_hand_the_shell_options_are_the_callers(repo):
    result = shell(repo, f"set +euo pipefail; {OPTIONS}; source scripts/bootstrap.sh; {OPTIONS}; echo PATH=$PATH")
    before, after = result.stdout.splitlines()[:2]
    assert result.returncode == 0, result.stderr
    assert after == before == "errexit off nounset off pipefail off "
    assert f"PATH={repo / '.venv' / 'bin'}:" in result.stdout


def test_sourced_by_a_strict_script_it_stays_strict(repo):
    result = shell(repo, f"set -euo pipefail; source scripts/bootstrap.sh; {OPTIONS}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "errexit on nounset on pipefail on "


def test_a_failure_returns_its_status_and_the_shell_goes_on(repo):
    (repo / "stubs" / "dpkg").write_text("#!/bin/sh\nexit 1\n")  # libopenblas0 missing: apt-get (a failing stub) runs
    result = shell(repo, f"source scripts/bootstrap.sh; echo status=$?; {OPTIONS}")
    assert "status=1" in result.stdout and "[bootstrap] failed" in result.stderr
    # the caller's shell is neither closed nor made strict
    assert result.stdout.splitlines()[-1] == "errexit off nounset off pipefail off "


def test_a_strict_caller_stops_at_the_failure_with_its_status(repo):
    (repo / "stubs" / "dpkg").write_text("#!/bin/sh\nexit 1\n")
    result = shell(repo, "set -euo pipefail; source scripts/bootstrap.sh; echo reached")
    assert result.returncode == 1 and "reached" not in result.stdout and "[bootstrap] failed" in result.stderr
