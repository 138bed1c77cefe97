"""The codes' mpirun leaves one-process jobs free to run on any core (aiida_llpam.configure.MPI_BINDING): Open MPI's
default binding puts every job's rank 0 on core 0, so two ph.x side by side shared one core of two."""

import os
import shutil
import subprocess
import sys

import pytest

from aiida_llpam.configure import MPI_BINDING, mpirun_command

pytestmark = pytest.mark.skipif(shutil.which("mpirun") is None, reason="needs Open MPI's mpirun (Debian: openmpi-bin)")

AFFINITY = "import os; print(sorted(os.sched_getaffinity(0)))"


def _rank_affinity(command: list[str]) -> str:
    out = subprocess.run([*command, sys.executable, "-c", AFFINITY], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="binding is only visible with two cores or more")
def test_a_one_process_job_may_use_every_core():
    every = str(sorted(os.sched_getaffinity(0)))
    assert _rank_affinity(mpirun_command("1")) == every
    # the control: Open MPI's default binding, which the command must undo, pins the rank to one core
    default = [arg for arg in mpirun_command("1") if arg not in MPI_BINDING]
    assert _rank_affinity(default) != every
