"""A q mesh put together from dyn files: which stars the real quartz q 2x2x2 files cover, and what a denser mesh
lacks (aiida_llpam.physics.mesh_cover)."""

import dataclasses

import numpy as np
import pytest

from aiida_llpam.physics.dynmat import read_dynamical_matrices
from aiida_llpam.physics.mesh_cover import cover_mesh, irreducible_representatives

from .conftest import QUARTZ


@pytest.fixture(scope="module")
def quartz_files():
    return [read_dynamical_matrices((QUARTZ / f"quartz.dyn{i}").read_text()) for i in range(1, 5)]


def _cell(dyn, text):
    """(lattice, scaled positions, species numbers) from a dyn file's header."""
    lines = text.split("\n")
    start = lines.index("Basis vectors")
    ntyp, nat = (int(w) for w in lines[2].split()[:2])
    species = [int(lines[start + 4 + ntyp + atom].split()[1]) for atom in range(nat)]
    return dyn.lattice_alat, dyn.positions_alat @ np.linalg.inv(dyn.lattice_alat), species


def test_the_run_covers_its_own_mesh_with_gamma_first(quartz_files):
    cover = cover_mesh([2, 2, 2], quartz_files[::-1])  # Gamma's file given last
    assert cover.complete and cover.duplicates == [] and cover.off_mesh == []
    assert cover.chosen[0] == 3  # the Gamma file, where q2r.x wants it
    assert sorted(cover.chosen) == [0, 1, 2, 3]


def test_a_star_given_twice_is_taken_once(quartz_files):
    cover = cover_mesh([2, 2, 2], quartz_files + [quartz_files[2]])
    assert cover.complete and cover.duplicates == [4] and sorted(cover.chosen) == [0, 1, 2, 3]


def test_a_denser_mesh_lists_the_stars_it_lacks(quartz_files):
    text = (QUARTZ / "quartz.dyn1").read_text()
    cover = cover_mesh([4, 4, 2], quartz_files)
    assert not cover.complete
    assert len(cover.missing) == 4 * 4 * 2 - 2 * 2 * 2  # every point off the coarse mesh, and only those
    assert not (cover.missing[:, :2] % 2 == 0).all(axis=1).any()
    missing = irreducible_representatives(cover.missing, [4, 4, 2], *_cell(quartz_files[0], text))
    # 4x4x2 has 8 irreducible points in quartz (P3_x21, time reversal), 2x2x2 has 4: four single-q runs fill it
    assert len(missing) == 4
    assert np.all(np.abs(missing * [4, 4, 2] - np.rint(missing * [4, 4, 2])) < 1e-12)
    assert np.all((np.rint(missing[:, :2] * 4) % 2 != 0).any(axis=1))  # none of them on the coarse mesh


def test_files_off_the_mesh_are_left_out(quartz_files):
    shifted = dataclasses.replace(quartz_files[2], q_2pi_alat=quartz_files[2].q_2pi_alat * 0.5)
    cover = cover_mesh([2, 2, 2], quartz_files + [shifted])
    assert cover.off_mesh == [4] and cover.complete


def test_files_of_another_crystal_are_refused(quartz_files):
    strained = dataclasses.replace(quartz_files[1], lattice_alat=quartz_files[1].lattice_alat * 1.01)
    with pytest.raises(ValueError, match="dyn file 1 describes another crystal than dyn file 0"):
        cover_mesh([2, 2, 2], [quartz_files[0], strained])


def test_a_partial_overlap_is_refused(quartz_files):
    star = quartz_files[2]
    assert len(star.q_2pi_alat) == 3
    part = dataclasses.replace(star, q_2pi_alat=star.q_2pi_alat[:1], phi_ry_bohr2=star.phi_ry_bohr2[:1])
    with pytest.raises(ValueError, match="shares some q points"):
        cover_mesh([2, 2, 2], [part, star])


@pytest.mark.parametrize("mesh", [[2, 2], [0, 2, 2]])
def test_bad_mesh(quartz_files, mesh):
    with pytest.raises(ValueError, match="three positive integers"):
        cover_mesh(mesh, quartz_files)
