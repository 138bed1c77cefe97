"""aiida_llpam.structures without an AiiDA profile: loading, refusals, orientation, mirror images."""

from pathlib import Path

import numpy as np
import pytest
import spglib
from ase import Atoms
from ase.build import bulk
from ase.io import read, write
from ase.spacegroup import crystal

from aiida_llpam.structures import (
    StructureError,
    check_pseudopotentials,
    handedness_label,
    load_structure,
    mirror_z,
    orient_unique_axis,
    read_structure_file,
    symmetry_of,
)

STRUCTURES = Path(__file__).resolve().parents[2] / "fixtures" / "structures"
QUARTZ = STRUCTURES / "quartz_P3221.cif"
CRISTOBALITE = STRUCTURES / "cristobalite_P41212.cif"


def fesi_b20() -> Atoms:
    """B20 FeSi, P2_13 (No. 198): a Sohncke group without an enantiomorphic partner."""
    return crystal(["Fe", "Si"], basis=[(0.1358,) * 3, (0.844,) * 3], spacegroup=198, cellpar=[4.489] * 3 + [90] * 3)


def random_rotation(seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))  # proper


def sorted_distances(atoms: Atoms) -> np.ndarray:
    return np.sort(atoms.get_all_distances(mic=True).ravel())


def high_order_axes(atoms: Atoms) -> list[np.ndarray]:
    """Cartesian unit axes of the 3-, 4- and 6-fold rotations (proper parts) of the crystal's space group."""
    lattice = atoms.cell[:]
    dataset = spglib.get_symmetry_dataset((lattice, atoms.get_scaled_positions(), atoms.numbers), symprec=1e-3)
    axes = []
    for w in dataset.rotations:
        proper = np.linalg.det(w) * w
        if round(np.trace(proper)) in (0, 1, 2):
            cartesian = lattice.T @ proper @ np.linalg.inv(lattice.T)  # r' = R r for Cartesian column vectors
            values, vectors = np.linalg.eig(cartesian)
            axis = np.real(vectors[:, np.argmin(np.abs(values - 1))])
            axes.append(axis / np.linalg.norm(axis))
    return axes


# ---- loading ----------------------------------------------------------------------------------------------


def test_reads_cif_and_other_formats(tmp_path):
    quartz = read_structure_file(QUARTZ)
    assert len(quartz) == 9 and quartz.get_chemical_formula() == "O6Si3" and quartz.pbc.all()
    write(tmp_path / "POSCAR", quartz, format="vasp")
    poscar, uuid = load_structure(tmp_path / "POSCAR")
    assert uuid is None
    np.testing.assert_allclose(poscar.cell[:], quartz.cell[:], rtol=1e-5, atol=1e-8)  # Angstrom
    np.testing.assert_allclose(poscar.positions, quartz.positions, rtol=1e-5, atol=1e-8)
    assert symmetry_of(poscar)["space_group_number"] == 154


@pytest.mark.parametrize(
    "content, name, message",
    [
        (None, "missing.cif", "no such file"),
        ("hello, not a crystal\n", "notes.txt", "not a crystal structure ASE can read"),
        ("data_x\n_cell_length_a 3\n", "broken.cif", "not a crystal structure ASE can read"),
        ("2\nwater fragment\nO 0 0 0\nH 0 0 0.96\n", "molecule.xyz", "no 3-D periodic cell"),
    ],
)
def test_refuses_what_is_not_a_structure(tmp_path, content, name, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(StructureError, match=message) as info:
        load_structure(path)
    assert name in str(info.value)


def test_refuses_a_directory(tmp_path):
    with pytest.raises(StructureError, match="not a file"):
        read_structure_file(tmp_path)


def _disordered_cif(tmp_path, rows: str) -> Path:
    path = tmp_path / "disordered.cif"
    path.write_text(f"""data_rocksalt
_cell_length_a 5.64
_cell_length_b 5.64
_cell_length_c 5.64
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
{rows}""")
    return path


def test_refuses_partial_occupancy(tmp_path):
    path = _disordered_cif(tmp_path, "Na1 Na 0 0 0 1.0\nCl1 Cl 0.5 0.5 0.5 0.5\n")
    with pytest.raises(StructureError, match=r"disordered structure, site 2 \(Cl\) has occupancy 0.5"):
        read_structure_file(path)


def test_refuses_mixed_occupancy(tmp_path):
    path = _disordered_cif(tmp_path, "Na1 Na 0 0 0 0.7\nK1 K 0 0 0 0.3\nCl1 Cl 0.5 0.5 0.5 1.0\n")
    with pytest.raises(
        StructureError, match=r"disordered structure, site 1 is shared by (Na 0.7, K 0.3|K 0.3, Na 0.7)"
    ):
        read_structure_file(path)


def test_ordered_cif_with_occupancy_column_is_accepted(tmp_path):
    atoms = read_structure_file(_disordered_cif(tmp_path, "Na1 Na 0 0 0 1.0\nCl1 Cl 0.5 0.5 0.5 1.0\n"))
    assert atoms.get_chemical_formula() == "ClNa"


def test_refuses_overlapping_atoms_and_names_the_pair(tmp_path):
    quartz = read(QUARTZ)
    extra = quartz.copy()
    extra.info.pop("occupancy", None)  # read from a CIF: per-site occupancies, which the appended atom lacks
    extra.append("O")
    extra.positions[-1] = quartz.positions[0] + [0.0, 0.2, 0.1]
    write(tmp_path / "overlap.cif", extra)
    with pytest.raises(StructureError, match=r"overlapping atoms, Si1 and O10 are 0\.224 A apart \(less than 0\.5 A\)"):
        read_structure_file(tmp_path / "overlap.cif")
    # a cell shorter than the threshold: an atom overlaps its own image
    with pytest.raises(StructureError, match="Si1 and its periodic image are 0.400 A apart"):
        load_structure(_write(tmp_path, Atoms("Si", cell=[0.4, 5, 5], pbc=True)))
    read_structure_file(QUARTZ, min_distance=1.5)  # shortest Si-O is 1.6 A: accepted
    with pytest.raises(StructureError, match="less than 1.7 A"):
        read_structure_file(QUARTZ, min_distance=1.7)


def _write(tmp_path, atoms: Atoms) -> Path:
    path = tmp_path / "structure.vasp"
    write(path, atoms, format="vasp")
    return path


def test_refuses_element_without_pseudopotential():
    check_pseudopotentials(["Si", "O", "O"], ["O", "Si"], "llpam/LDA/debian")
    with pytest.raises(
        StructureError, match=r"no pseudopotential for element Ge in the pseudo family llpam/LDA/debian"
    ):
        check_pseudopotentials(["Ge", "O"], ["O", "Si"], "llpam/LDA/debian")
    with pytest.raises(StructureError, match=r"elements Fe, Ge in the pseudo family X"):
        check_pseudopotentials(["Ge", "Fe", "O"], ["O"], "X")


def test_stored_structure_needs_an_identifier_that_exists(tmp_path):
    with pytest.raises(StructureError, match="no such file"):
        load_structure(tmp_path / "quartz")  # neither a file nor a PK/UUID


# ---- orientation -----------------------------------------------------------------------------------------


def test_tetragonal_cell_with_c_along_x_is_turned_to_c_along_z():
    given = read(CRISTOBALITE)
    a, c = given.cell.lengths()[0], given.cell.lengths()[2]
    turned = Atoms(
        given.symbols,
        cell=[[c, 0, 0], [0, a, 0], [0, 0, a]],
        scaled_positions=given.get_scaled_positions()[:, [2, 0, 1]],
        pbc=True,
    )
    assert symmetry_of(turned)["space_group_number"] == 92
    assert not any(abs(axis[2]) > 0.99 for axis in high_order_axes(turned))  # the 4-fold axis is along x
    oriented, orientation = orient_unique_axis(turned)
    assert orientation.changed and "unique axis is c (old a)" in orientation.note
    np.testing.assert_allclose(oriented.cell[:], np.diag([a, a, c]), atol=1e-10)
    assert all(abs(abs(axis[2]) - 1) < 1e-8 for axis in high_order_axes(oriented))
    assert symmetry_of(oriented)["space_group_number"] == 92  # a rotation: same enantiomer
    np.testing.assert_allclose(sorted_distances(oriented), sorted_distances(turned), atol=1e-8)


@pytest.mark.parametrize("seed", [1, 2])
def test_rotated_quartz_goes_back_to_c_along_z_a_along_x(seed):
    quartz = read(QUARTZ)
    rotated = quartz.copy()
    rotated.set_cell(quartz.cell[:] @ random_rotation(seed).T, scale_atoms=True)
    oriented, orientation = orient_unique_axis(rotated)
    assert orientation.changed and "rotated" in orientation.note
    np.testing.assert_allclose(oriented.cell[:], quartz.cell[:], atol=1e-9)
    np.testing.assert_allclose(oriented.positions, quartz.positions, atol=1e-9)
    assert symmetry_of(oriented)["space_group_number"] == 154


def test_rhombohedral_cell_gets_its_threefold_axis_along_z():
    """R32 (No. 155) in the primitive rhombohedral cell: the axis a + b + c is no lattice vector."""
    atoms = crystal(
        ["Al", "O"],
        basis=[(0, 0, 0.35), (0.3, 0, 0.25)],
        spacegroup=155,
        cellpar=[4.76, 4.76, 12.99, 90, 90, 120],
        primitive_cell=True,
    )
    atoms.set_cell(atoms.cell[:] @ random_rotation(3).T, scale_atoms=True)
    assert symmetry_of(atoms)["space_group_number"] == 155 and len(atoms) == 8
    oriented, _ = orient_unique_axis(atoms)
    assert all(abs(abs(axis[2]) - 1) < 1e-8 for axis in high_order_axes(oriented))
    assert np.linalg.det(oriented.cell[:]) > 0
    np.testing.assert_allclose(sorted_distances(oriented), sorted_distances(atoms), atol=1e-8)


def test_left_handed_cell_is_made_right_handed_without_mirroring():
    quartz = read(QUARTZ)
    left = Atoms(
        quartz.symbols,
        cell=quartz.cell[:][[1, 0, 2]],
        scaled_positions=quartz.get_scaled_positions()[:, [1, 0, 2]],
        pbc=True,
    )
    assert np.linalg.det(left.cell[:]) < 0
    oriented, orientation = orient_unique_axis(left)
    assert "right-handed" in orientation.note and np.linalg.det(oriented.cell[:]) > 0
    assert symmetry_of(oriented)["space_group_number"] == 154


def test_aligned_uniaxial_structure_is_untouched():
    quartz = read(QUARTZ)
    oriented, orientation = orient_unique_axis(quartz)
    assert not orientation.changed and orientation.note == "trigonal: unique axis already along z"
    assert np.array_equal(oriented.cell[:], quartz.cell[:]) and np.array_equal(oriented.positions, quartz.positions)


def test_cubic_keeps_its_orientation():
    for atoms in (bulk("Si", "diamond", a=5.43), fesi_b20()):
        oriented, orientation = orient_unique_axis(atoms)
        assert not orientation.changed and "cubic: orientation kept" in orientation.note
        assert np.array_equal(oriented.cell[:], atoms.cell[:]) and np.array_equal(oriented.positions, atoms.positions)


# ---- mirror images ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, before, after",
    [
        (QUARTZ, (154, "P3_221"), (152, "P3_121")),
        (STRUCTURES / "quartz_P3121.cif", (152, "P3_121"), (154, "P3_221")),
        (CRISTOBALITE, (92, "P4_12_12"), (96, "P4_32_12")),
    ],
)
def test_mirror_gives_the_enantiomorphic_partner(path, before, after):
    atoms = read_structure_file(path)
    info = symmetry_of(atoms)
    assert (info["space_group_number"], info["space_group"]) == before and info["enantiomorphic_partner"] == after[1]
    mirrored = mirror_z(atoms)
    mirrored_info = symmetry_of(mirrored)
    assert (mirrored_info["space_group_number"], mirrored_info["space_group"]) == after and mirrored_info["sohncke"]
    np.testing.assert_allclose(mirrored.cell[:], atoms.cell[:], atol=1e-12)  # c along z: the lattice is kept
    assert np.linalg.det(mirrored.cell[:]) > 0
    np.testing.assert_allclose(sorted_distances(mirrored), sorted_distances(atoms), atol=1e-8)
    twice = mirror_z(mirrored)
    np.testing.assert_allclose(twice.get_scaled_positions(), atoms.get_scaled_positions(), atol=1e-12)


def test_mirror_of_the_committed_right_quartz_is_the_committed_left_one():
    mirrored = mirror_z(read(QUARTZ))
    left = read(STRUCTURES / "quartz_P3121.cif")
    np.testing.assert_allclose(mirrored.get_scaled_positions(), left.get_scaled_positions(), atol=1e-6)


def test_mirror_keeps_a_general_lattice_right_handed():
    quartz = read(QUARTZ)
    tilted = quartz.copy()
    tilted.set_cell(quartz.cell[:] @ random_rotation(4).T, scale_atoms=True)
    mirrored = mirror_z(tilted)
    assert np.linalg.det(mirrored.cell[:]) == pytest.approx(np.linalg.det(tilted.cell[:]))
    assert symmetry_of(mirrored)["space_group_number"] == 152
    np.testing.assert_allclose(sorted_distances(mirrored), sorted_distances(tilted), atol=1e-8)


def _superposable(first: Atoms, second: Atoms) -> bool:
    """Is ``second`` a proper rotation (of the cube) plus a translation of ``first``? Both cubic, same cell."""
    from itertools import permutations, product

    a = first.get_scaled_positions()
    b = second.get_scaled_positions()
    for perm in permutations(range(3)):
        for signs in product((1, -1), repeat=3):
            rotation = np.eye(3)[list(perm)] * np.array(signs)[:, None]
            if np.linalg.det(rotation) < 0:
                continue
            moved = a @ rotation.T
            for shift in b[0] - moved[first.numbers == second.numbers[0]]:
                image = (moved + shift) % 1.0
                distance = np.abs((image[:, None, :] - b[None, :, :] + 0.5) % 1.0 - 0.5).max(axis=2)
                same = distance < 1e-6
                if np.all(np.any(same & (first.numbers[:, None] == second.numbers[None, :]), axis=1)):
                    return True
    return False


def test_group_without_partner_gives_the_other_enantiomer_in_the_same_group():
    fesi = fesi_b20()
    info = symmetry_of(fesi)
    assert info["space_group_number"] == 198 and info["sohncke"] and info["enantiomorphic_partner"] is None
    mirrored = mirror_z(fesi)
    assert symmetry_of(mirrored)["space_group_number"] == 198
    assert _superposable(fesi, fesi)  # the check finds the identity
    assert not _superposable(fesi, mirrored)  # no proper motion maps the mirror image onto the crystal
    silicon = bulk("Si", "diamond", a=5.43, cubic=True)
    assert _superposable(silicon, mirror_z(silicon))  # achiral: the mirror image is the same crystal
    assert "not named by symmetry" in handedness_label(info) and handedness_label(info, short=True) == "chiral"


def test_handedness_labels():
    assert handedness_label(symmetry_of(read(QUARTZ))).startswith("right (Donnay & Le Page")
    assert handedness_label(symmetry_of(read(STRUCTURES / "quartz_P3121.cif")), short=True) == "left"
    cristobalite = symmetry_of(read(CRISTOBALITE))
    assert handedness_label(cristobalite, short=True) == "P4_12_12" and "P4_32_12" in handedness_label(cristobalite)
    silicon = symmetry_of(bulk("Si", "diamond", a=5.43))
    assert not silicon["sohncke"] and handedness_label(silicon, short=True) == "achiral"


# ---- which components of gamma^NL and gamma^M the point group allows ---------------------------------------


def _form(atoms):
    from aiida_llpam.physics.symmetry import analyse_symmetry

    return analyse_symmetry(atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers, 1e-3)


@pytest.mark.parametrize(
    "atoms, independent, diagonal, relations, gamma_m",
    [
        (read(STRUCTURES / "quartz_P3221.cif"), 2, True, ["xx = yy"], True),  # 32: THEORY.md section 4
        (read(STRUCTURES / "GeO2_P3221.cif"), 2, True, ["xx = yy"], True),
        (read(STRUCTURES / "cristobalite_P41212.cif"), 2, True, ["xx = yy"], True),  # 422
        (
            crystal(["Fe", "Si"], basis=[(0.1358,) * 3, (0.844,) * 3], spacegroup=198, cellpar=[4.48] * 3 + [90] * 3),
            1,
            True,
            ["xx = yy", "xx = zz", "yy = zz"],
            True,
        ),  # B20 FeSi, 23: isotropic, gamma^NL_zz is a third of the trace
        (bulk("Si", "diamond", a=5.431), 0, False, [], False),  # m-3m: inversion
        (
            crystal(["Ga", "As"], basis=[(0, 0, 0), (0.25,) * 3], spacegroup=216, cellpar=[5.65] * 3 + [90] * 3),
            0,
            False,
            [],
            False,
        ),  # -43m: not gyrotropic
        (
            crystal(
                ["Zn", "O"],
                basis=[(1 / 3, 2 / 3, 0), (1 / 3, 2 / 3, 0.38)],
                spacegroup=186,
                cellpar=[3.25, 3.25, 5.2, 90, 90, 120],
            ),
            1,
            False,
            ["xy = - yx"],
            False,
        ),  # 6mm: achiral, yet allowed
    ],
)
def test_gamma_nl_form_follows_the_point_group(atoms, independent, diagonal, relations, gamma_m):
    info = _form(atoms)
    form = info["gamma_nl_form"]
    allowed = np.array(form["allowed"])
    assert form["independent"] == independent and form["relations"] == relations
    assert info["gamma_m_allowed"] == gamma_m == bool(allowed[2, 2])
    assert info["gamma_nl_allowed"] == (independent > 0)
    if diagonal:
        assert np.array_equal(allowed, np.eye(3, dtype=bool))


def test_projected_tensor_is_invariant_and_flips_with_the_enantiomer():
    """det(R) R g R^T = g for the group average of a random tensor; the mirror image's form is the same."""
    from aiida_llpam.physics.symmetry import axial_tensor_form, cartesian_rotations

    atoms = read(STRUCTURES / "quartz_P3221.cif")
    dataset = spglib.get_symmetry_dataset((atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers), symprec=1e-3)
    rotations = cartesian_rotations(atoms.cell[:], dataset.rotations)
    products = np.einsum("nij,nkj->nik", rotations, rotations)
    np.testing.assert_allclose(products, np.broadcast_to(np.eye(3), products.shape), rtol=0, atol=1e-8)  # orthogonal
    tensor = np.random.default_rng(3).normal(size=(3, 3))
    average = np.mean([np.linalg.det(r) * r @ tensor @ r.T for r in rotations], axis=0)
    for r in rotations:
        np.testing.assert_allclose(np.linalg.det(r) * r @ average @ r.T, average, atol=1e-12)
    np.testing.assert_allclose(average[0, 0], average[1, 1], rtol=1e-5, atol=1e-12)  # an O(1) random tensor
    assert abs(average[0, 1]) < 1e-12
    other = read(STRUCTURES / "quartz_P3121.cif")
    assert _form(other)["gamma_nl_form"] == axial_tensor_form(rotations)


def test_response_symmetry_text_for_people():
    from aiida_llpam.physics.symmetry import response_symmetry_text

    assert response_symmetry_text(_form(read(STRUCTURES / "quartz_P3221.cif"))) == (
        "chiral (Sohncke): gamma^NL allowed in xx, yy, zz (2 independent; xx = yy)"
    )
    assert response_symmetry_text(_form(bulk("Si", "diamond", a=5.431))) == (
        "achiral, centrosymmetric: gamma^NL and gamma^M vanish by symmetry"
    )
    polar = crystal(
        ["Zn", "O"],
        basis=[(1 / 3, 2 / 3, 0), (1 / 3, 2 / 3, 0.38)],
        spacegroup=186,
        cellpar=[3.25, 3.25, 5.2, 90, 90, 120],
    )
    assert response_symmetry_text(_form(polar)).endswith("; gamma^NL_zz and gamma^M vanish by symmetry")
    # a record made before the form was stored
    assert response_symmetry_text({"sohncke": False}) == "achiral: gamma^NL and gamma^M vanish by symmetry"
