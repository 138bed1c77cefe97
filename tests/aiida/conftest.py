"""A throw-away AiiDA profile (sqlite_dos, no broker) in the private AIIDA_PATH, set up as users do."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROFILE = "llpam-tests"


@pytest.fixture(scope="session")
def llpam_profile():
    assert "llpam-tests" in os.environ["AIIDA_PATH"] or "tmp" in os.environ["AIIDA_PATH"], "tests need a private AIIDA_PATH"
    from aiida_llpam.configure import setup_all

    steps = setup_all(PROFILE)
    return steps


@pytest.fixture(scope="session")
def quartz_structure(llpam_profile):
    from aiida import orm
    from ase.io import read

    return orm.StructureData(ase=read(REPO / "fixtures" / "structures" / "quartz_P3221.cif"))


@pytest.fixture(scope="session")
def codes(llpam_profile):
    from aiida import orm

    return [orm.load_code(f"{name}@localhost") for name in ("pw", "ph", "q2r")]


#: a nested override of the smoke run, which must reach the PwCalculation (protocol test)
SCF_OVERRIDE = {"scf": {"pw": {"parameters": {"ELECTRONS": {"mixing_beta": 0.55}}}}}


@pytest.fixture(scope="session")
def smoke_run(codes, quartz_structure):
    """The smoke protocol end-to-end with the real QE binaries (about 2-3 minutes on 2 cores)."""
    from aiida.engine import run_get_node

    from aiida_llpam.workflows.pam import PamWorkChain

    builder = PamWorkChain.get_builder_from_protocol(*codes, quartz_structure, protocol="smoke", overrides=SCF_OVERRIDE)
    _, node = run_get_node(builder)
    return node


def run_silicon(codes, parallelize_qpoints: bool):
    """Diamond Si through the whole workchain with real QE: smoke settings, but a q mesh of 2x2x2 (4 irreducible
    points in this cell), as one ph.x job or one job per q point (side by side in this process)."""
    from aiida import orm
    from aiida.engine import run_get_node
    from ase.io import read

    from aiida_llpam.workflows.pam import PamWorkChain

    structure = orm.StructureData(ase=read(REPO / "fixtures" / "structures" / "Si_diamond.cif"))
    builder = PamWorkChain.get_builder_from_protocol(
        *codes, structure, protocol="smoke", overrides={"ph_main": {"qpoints": [2, 2, 2]}},
        parallelize_qpoints=parallelize_qpoints,
    )  # fmt: skip
    _, node = run_get_node(builder)
    return node


@pytest.fixture(scope="session")
def silicon_run(codes):
    """The Si run with one ph.x job (about a minute)."""
    return run_silicon(codes, parallelize_qpoints=False)


def pytest_collection_modifyitems(items):
    """Run the reference-archive tests first: they switch AiiDA profiles, which closes the storage that the
    session fixtures above (codes, structures, the smoke run) hold nodes of."""
    switching = ("tests/aiida/test_reference_archive.py", "tests/aiida/test_second_material.py",
                 "tests/aiida/test_lifetimes_archive.py")  # fmt: skip
    items.sort(key=lambda item: 0 if item.nodeid.startswith(switching) else 1)
