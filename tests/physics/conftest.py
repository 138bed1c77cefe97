"""Force constants from the real QE runs stored in fixtures/dfpt (see fixtures/dfpt/README.md)."""

from pathlib import Path

import numpy as np
import pytest

from aiida_llpam.physics import build_phonopy, read_q2r

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "dfpt"
QUARTZ = FIXTURES / "quartz_q222"
SILICON = FIXTURES / "si_q222"


def read_matdyn_freq(path):
    """q points (2 pi/alat Cartesian) and frequencies (cm^-1) from a matdyn.x flfrq file."""
    lines = Path(path).read_text().splitlines()
    head = lines[0].replace(",", " ").replace("=", " ").split()
    nbnd, nks = int(head[head.index("nbnd") + 1]), int(head[head.index("nks") + 1])
    values = np.array(" ".join(lines[1:]).split(), dtype=float)
    values = values.reshape(nks, 3 + nbnd)
    return values[:, :3], values[:, 3:]


@pytest.fixture(scope="session")
def quartz_fc():
    return read_q2r(QUARTZ / "quartz.fc")


@pytest.fixture(scope="session")
def quartz_rigid_fc():
    return read_q2r(QUARTZ / "quartz_rigid.fc")


@pytest.fixture(scope="session")
def quartz(quartz_fc, quartz_rigid_fc):
    """Quartz with Gonze NAC: IFCs without dipole subtraction + eps/Z*."""
    return build_phonopy(quartz_fc, quartz_rigid_fc)


@pytest.fixture(scope="session")
def quartz_no_nac(quartz_fc):
    return build_phonopy(quartz_fc)


@pytest.fixture(scope="session")
def silicon():
    return build_phonopy(read_q2r(SILICON / "si.fc"))
