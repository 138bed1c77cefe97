"""Throw-away AiiDA profiles (sqlite_dos, no broker) in the private AIIDA_PATH.

``bare_profile``: aiida-core's test profile (``aiida.tools.pytest_fixtures``) with no code and no QE, for tests
that build provenance by hand; ``aiida_localhost`` and ``aiida_code_installed`` add a computer and codes to it.
``llpam_profile``: the profile set up as users do (``aiida-llpam setup``), whose codes need the QE binaries on
PATH; tests that use it are marked ``qe``.
"""

import os
from pathlib import Path

import pytest
from aiida.tools.pytest_fixtures import (  # noqa: F401  aiida-core's fixtures, found by pytest here
    aiida_code,
    aiida_code_installed,
    aiida_computer,
    aiida_computer_local,
    aiida_localhost,
    aiida_profile_factory,
)

REPO = Path(__file__).resolve().parents[2]
PROFILE = "llpam-tests"
BARE_PROFILE = "llpam-tests-bare"


@pytest.fixture(scope="session")
def _bare_profile(aiida_profile_factory):  # noqa: F811  (the fixture imported above, as pytest passes it)
    from aiida.manage.configuration import get_config

    # in the private config of tests/conftest.py, beside llpam_profile's (not aiida-core's autouse aiida_config,
    # which would move every test, tests/services included, to another AIIDA_PATH)
    with aiida_profile_factory(get_config(create=True), name=BARE_PROFILE) as profile:
        yield profile


@pytest.fixture
def bare_profile(_bare_profile):
    """aiida-core's test profile (sqlite_dos, no broker, no code), loaded for this test.

    Loading it closes the storage of the profile loaded before: pytest_collection_modifyitems below runs the tests
    that use it before those of llpam_profile, whose session fixtures hold nodes."""
    from aiida import load_profile

    load_profile(_bare_profile.name, allow_switch=True)
    return _bare_profile


@pytest.fixture(scope="session")
def llpam_profile():
    assert "llpam-tests" in os.environ["AIIDA_PATH"] or "tmp" in os.environ["AIIDA_PATH"], (
        "tests need a private AIIDA_PATH"
    )
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
        *codes,
        structure,
        protocol="smoke",
        overrides={"ph_main": {"qpoints": [2, 2, 2]}},
        parallelize_qpoints=parallelize_qpoints,
    )
    _, node = run_get_node(builder)
    return node


@pytest.fixture(scope="session")
def silicon_run(codes):
    """The Si run with one ph.x job (about a minute)."""
    return run_silicon(codes, parallelize_qpoints=False)


def pytest_collection_modifyitems(items):
    """Run the tests of this folder that do not use llpam_profile first: they switch AiiDA profiles (the reference
    archives, bare_profile), which closes the storage that the session fixtures above (codes, structures, the smoke
    run) hold nodes of. The order of everything else is kept."""
    items.sort(key=lambda item: 0 if _switches_profile(item) else 1)


def _switches_profile(item) -> bool:
    return item.nodeid.startswith("tests/aiida/") and "llpam_profile" not in getattr(item, "fixturenames", ())
