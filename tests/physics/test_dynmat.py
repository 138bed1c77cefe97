"""Removing the dielectric block from a real ph.x Gamma dyn file."""

import pytest

from aiida_llpam.physics.dynmat import has_dielectric_block, strip_dielectric_block
from aiida_llpam.physics.q2r import read_q2r

from .conftest import QUARTZ


def test_strip_real_gamma_file():
    text = (QUARTZ / "quartz.dyn1").read_text()
    assert has_dielectric_block(text)
    stripped = strip_dielectric_block(text)
    assert not has_dielectric_block(stripped)
    assert "Effective Charges" not in stripped
    assert "Diagonalizing the dynamical matrix" in stripped
    # the dynamical matrix itself is untouched
    matrix = text[: text.index("Dielectric Tensor")].rsplit("\n", 1)[0]
    assert stripped.startswith(matrix) and len(stripped) < len(text)
    assert strip_dielectric_block(stripped) == stripped


def test_other_q_files_have_no_block():
    assert not has_dielectric_block((QUARTZ / "quartz.dyn2").read_text())


def test_q2r_on_stripped_and_original_files():
    """The fixture's two q2r.x runs: lrigid F on the stripped set, T with eps/Z* on the original."""
    assert not read_q2r(QUARTZ / "quartz.fc", read_ifc=False).is_dipole_subtracted
    assert read_q2r(QUARTZ / "quartz_rigid.fc", read_ifc=False).is_dipole_subtracted


def test_not_a_dyn_file():
    with pytest.raises(ValueError, match="not a ph.x dynamical-matrix file"):
        strip_dielectric_block("hello")
