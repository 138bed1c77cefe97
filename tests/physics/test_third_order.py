"""fc3 in a supercell two ways on a model crystal with known forces: phono3py's finite differences and symfc's fit to
random snapshots (aiida_llpam.physics.third_order), on diamond Si with a Morse potential between nearest neighbours."""

import numpy as np
import pytest

from aiida_llpam.physics.third_order import (
    build_phono3py,
    fc3_relative_difference,
    fit_size,
    produce_fc3,
    produce_fc3_symfc,
    random_supercells,
    symmetrize_fc3,
    zero_fc3_beyond,
)

ALAT_BOHR = 10.26
#: Morse depth (eV), range (1/Angstrom): a bond of the stiffness and anharmonicity of Si-Si
DEPTH_EV, RANGE_PER_ANGSTROM = 2.3, 1.5


def si_arrays(supercell=(2, 2, 2)):
    """The arrays of a force-constants node for diamond Si with a zero fc2 on ``supercell`` (no NAC)."""
    natom = 2 * int(np.prod(supercell))
    return {
        "lattice_bohr": ALAT_BOHR / 2 * np.array([[-1.0, 0, 1], [0, 1, 1], [-1, 1, 0]]),
        "positions_bohr": ALAT_BOHR / 4 * np.array([[0.0, 0, 0], [1, 1, 1]]),
        "masses_amu": np.array([28.0855, 28.0855]),
        "supercell_matrix": np.diag(supercell),
        "force_constants": np.zeros((natom, natom, 3, 3)),
    }


class MorseBonds:
    """Forces (eV/Angstrom) of Morse bonds between the nearest neighbours of the perfect supercell."""

    def __init__(self, supercell):
        self.lattice = np.asarray(supercell.cell)
        positions = np.asarray(supercell.positions)
        vectors = self._minimum_image(positions[None, :] - positions[:, None])
        distances = np.linalg.norm(vectors, axis=-1)
        np.fill_diagonal(distances, np.inf)
        self.r0 = distances.min()
        self.pairs = np.argwhere(np.triu(distances < 1.01 * self.r0))
        self.bonds0 = vectors[self.pairs[:, 0], self.pairs[:, 1]]

    def _minimum_image(self, vectors):
        fractional = vectors @ np.linalg.inv(self.lattice)
        return (fractional - np.rint(fractional)) @ self.lattice

    def forces(self, displacements):
        i, j = self.pairs.T
        bonds = self.bonds0 + displacements[j] - displacements[i]
        r = np.linalg.norm(bonds, axis=-1)
        decay = np.exp(-RANGE_PER_ANGSTROM * (r - self.r0))
        dv_dr = 2 * DEPTH_EV * RANGE_PER_ANGSTROM * decay * (1 - decay)
        pull = (dv_dr / r)[:, None] * bonds  # on i towards j when stretched
        forces = np.zeros_like(displacements)
        np.add.at(forces, i, pull)
        np.add.at(forces, j, -pull)
        return forces


@pytest.fixture(scope="module")
def both_routes():
    arrays = si_arrays()
    finite = build_phono3py(arrays, ["Si", "Si"], np.diag([2, 2, 2]))
    model = MorseBonds(finite.supercell)
    finite.generate_displacements(distance=0.03)
    reference = np.asarray(finite.supercell.positions)
    table = np.array(
        [model.forces(np.asarray(cell.positions) - reference) for cell in finite.supercells_with_displacements]
    )
    fc3_finite = produce_fc3(finite, table)

    random = build_phono3py(arrays, ["Si", "Si"], np.diag([2, 2, 2]))
    dfpt_fc2 = np.full_like(random.fc2, 0.25)  # stands for the DFPT's: the fit must leave it alone
    random.fc2 = dfpt_fc2
    random_supercells(random, 4, 0.03, random_seed=11, plus_minus=True)
    displacements = np.asarray(random.dataset["displacements"])
    forces = np.array([model.forces(d) for d in displacements])
    fc3_random = produce_fc3_symfc(random, displacements, forces, None)
    return fc3_finite, fc3_random, random, dfpt_fc2


def test_random_snapshots_fit_the_finite_difference_fc3(both_routes):
    fc3_finite, fc3_random, _, _ = both_routes
    assert fc3_finite.shape == fc3_random.shape == (2, 16, 16, 3, 3, 3)
    scale = np.abs(fc3_finite).max()
    # eV/A^3: the bond's third derivative -6 D a^3 = -46.6 is the largest element (along the bond)
    np.testing.assert_allclose(scale, 6 * DEPTH_EV * RANGE_PER_ANGSTROM**3, rtol=2e-2)
    # both are the model's fc3: finite differences to O(u^2) in the 0.03 A step, the fit by least squares to 8 x 48
    # equations; measured: 2.0e-3 of the largest element (without the opposite snapshots, 2 snapshots: 1.5e-2)
    np.testing.assert_allclose(fc3_random, fc3_finite, rtol=0, atol=1e-2 * scale)


def test_the_fit_keeps_the_dfpt_fc2(both_routes):
    _, _, random, dfpt_fc2 = both_routes
    np.testing.assert_array_equal(random.fc2, dfpt_fc2)


def test_the_fc3_cut_to_triplets_within_a_distance_keeps_them_as_they_were(both_routes):
    """zero_fc3_beyond at 3.0 A (between the 2.35 A first and the 3.84 A second neighbours of Si): the triplets whose
    three pairs (shortest images, computed here over the 27 nearest cells) are all first neighbours or one atom stay
    as they were, every other one is zero, and the fraction of the norm removed is what they held."""
    fc3_finite, _, ph3, _ = both_routes
    positions, lattice = np.asarray(ph3.supercell.positions), np.asarray(ph3.supercell.cell)
    images = np.array([[a, b, c] for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)]) @ lattice
    vectors = positions[None, :, None] - positions[:, None, None] + images[None, None]
    distances = np.linalg.norm(vectors, axis=-1).min(axis=-1)
    assert sorted(set(np.round(distances[0], 2)))[:3] == [0.0, 2.35, 3.84]
    within = distances <= 3.0
    kept = np.array([within[atom][:, None] & within[atom][None, :] & within for atom in ph3.primitive.p2s_map])
    fc3 = fc3_finite.copy()
    zeroed = zero_fc3_beyond(ph3, fc3, 3.0)
    np.testing.assert_array_equal(fc3[kept], fc3_finite[kept])
    assert not fc3[~kept].any()
    scale = np.linalg.norm(fc3_finite)
    # phono3py's finite differences, symmetrised, leave a little (not zero) beyond one bond of the Morse crystal
    assert 0 < zeroed == pytest.approx(np.linalg.norm(fc3_finite[~kept]) / scale, rel=1e-12)
    # what the cut removed is what the two differ by
    assert fc3_relative_difference(fc3, fc3_finite) == pytest.approx(zeroed, rel=1e-12)
    # a cut beyond every pair of the supercell changes nothing
    fc3 = fc3_finite.copy()
    assert zero_fc3_beyond(ph3, fc3, distances.max() + 0.1) == 0.0
    np.testing.assert_array_equal(fc3, fc3_finite)


def test_the_symmetrisation_gives_a_cut_fc3_the_acoustic_sum_rule_back(both_routes):
    """A cut breaks the sum over the third atom; phono3py's symmetrisation (symmetrize_fc3) restores it on the scale
    of fc3, and changes symfc's fit, which obeys it already, by rounding only."""
    fc3_finite, fc3_random, ph3, _ = both_routes
    scale = np.abs(fc3_finite).max()
    ph3.fc3 = fc3_random.copy()
    assert symmetrize_fc3(ph3) < 1e-8
    ph3.fc3 = fc3_finite.copy()
    zero_fc3_beyond(ph3, ph3.fc3, 3.0)
    assert np.abs(ph3.fc3.sum(axis=2)).max() > 1e-3 * scale  # measured: 2.0e-3
    changed = symmetrize_fc3(ph3)
    assert 1e-3 < changed < 0.1  # measured: 4.1e-3 of the norm
    np.testing.assert_allclose(ph3.fc3.sum(axis=2), 0.0, atol=1e-10 * scale)


def test_fc3_of_two_supercells_or_a_zero_reference_are_not_compared(both_routes):
    fc3_finite = both_routes[0]
    with pytest.raises(ValueError, match=r"fc3 of shape \(2, 16, 16, 3, 3, 3\) against \(2, 2, 2, 3, 3, 3\)"):
        fc3_relative_difference(fc3_finite, np.ones((2, 2, 2, 3, 3, 3)))
    with pytest.raises(ValueError, match="the reference fc3 is zero"):
        fc3_relative_difference(fc3_finite, np.zeros_like(fc3_finite))


def test_fit_size_counts_symfc_basis():
    """Si 2x2x2: 8 fc2 and 49 fc3 basis functions, 48 equations a snapshot, so two snapshots at least; a cut-off of
    3 A (nearest neighbours only) shrinks the fc3 basis."""
    ph3 = build_phono3py(si_arrays(), ["Si", "Si"], np.diag([2, 2, 2]))
    assert fit_size(ph3, None) == {"basis_fc2": 8, "basis_fc3": 49, "equations_per_snapshot": 48, "snapshots_needed": 2}
    cut = fit_size(ph3, 3.0)
    assert cut["basis_fc2"] == 8 and cut["basis_fc3"] < 49 and cut["snapshots_needed"] == 1


def test_residual_forces_of_the_undisplaced_supercell_are_subtracted_before_the_fit(both_routes):
    """A force field the undisplaced supercell already feels (here 0.03 eV/A per atom, about what a relaxation to
    the usual 1e-3 Ry/bohr leaves) is no displacement's doing: symfc's fit has no constant term and reads it as
    fc3. The job's snapshot table subtracts the undisplaced supercell's forces, which gives back the fc3 without
    them. (In diamond Si symmetry forbids such a field, so the fit projects part of this random one out; where
    symmetry allows it, as in quartz, all of it is fitted.)"""
    from aiida_llpam.calculations.rta_job import REFERENCE, snapshots_table

    fc3_finite, _, _, _ = both_routes
    arrays = si_arrays()
    ph3 = build_phono3py(arrays, ["Si", "Si"], np.diag([2, 2, 2]))
    model = MorseBonds(ph3.supercell)
    random_supercells(ph3, 4, 0.03, random_seed=11, plus_minus=True)
    displacements = np.asarray(ph3.dataset["displacements"])
    residual = np.random.default_rng(5).normal(scale=0.03 / np.sqrt(3), size=(16, 3))
    forces = {f"supercell_{i:04d}": model.forces(d) + residual for i, d in enumerate(displacements, start=1)}
    scale = np.abs(fc3_finite).max()

    _, fitted_displacements, table, subtracted = snapshots_table(displacements, 16, forces | {REFERENCE: residual})
    np.testing.assert_array_equal(subtracted, residual)
    with pytest.raises(ValueError, match="none for supercell_0000, the undisplaced supercell"):
        snapshots_table(displacements, 16, forces)  # needed unless symmetry forbids the field (below)
    fc3 = produce_fc3_symfc(ph3, fitted_displacements, table, None)
    np.testing.assert_allclose(fc3, fc3_finite, rtol=0, atol=1e-2 * scale)

    # the same forces fitted as they are: the residual field leaks into fc3 (measured: 0.16 of the largest element)
    raw = build_phono3py(arrays, ["Si", "Si"], np.diag([2, 2, 2]))
    raw.fc2 = ph3.fc2
    leaked = produce_fc3_symfc(raw, displacements, np.array(list(forces.values())), None)
    assert np.abs(leaked - fc3_finite).max() > 0.08 * scale


def _morse_fc2(ph3, step=1e-3):
    """Compact fc2 (eV/A^2) of the Morse model on the phonon supercell of ``ph3``, by central differences."""
    phonon = ph3.phonon_supercell
    model = MorseBonds(phonon)
    p2s = ph3.phonon_primitive.p2s_map
    fc2 = np.zeros((len(p2s), len(phonon), 3, 3))
    for row, atom in enumerate(p2s):
        for alpha in range(3):
            u = np.zeros((len(phonon), 3))
            u[atom, alpha] = step
            fc2[row, :, alpha, :] = -(model.forces(u) - model.forces(-u)) / (2 * step)
    return fc2


def test_the_dfpt_fc2_folded_onto_the_fc3_supercell_gives_its_harmonic_forces():
    """fc2 on a 4x4x4 phonon supercell, displacements of the 2x2x2 fc3 supercell: the folded fc2 gives the model's
    forces but for their anharmonic part (measured: 5.9 % of their rms at 0.03 A). The odd part of opposite
    snapshots is harmonic but for the quartic term (measured misfit 2.6e-3), and their even part is that
    anharmonic signal (measured 6.0 % of the odd part)."""
    from aiida_llpam.physics.third_order import dfpt_harmonic_forces, snapshot_force_parts

    ph3 = build_phono3py(si_arrays((4, 4, 4)), ["Si", "Si"], np.diag([2, 2, 2]))
    ph3.fc2 = _morse_fc2(ph3)
    model = MorseBonds(ph3.supercell)
    random_supercells(ph3, 3, 0.03, random_seed=2, plus_minus=True)
    displacements = np.asarray(ph3.dataset["displacements"])
    forces = np.array([model.forces(d) for d in displacements])
    harmonic = dfpt_harmonic_forces(ph3, displacements)
    rms = np.sqrt(np.mean(np.sum(forces**2, axis=-1)))
    misfit = np.sqrt(np.mean(np.sum((harmonic - forces) ** 2, axis=-1))) / rms
    assert 0.03 < misfit < 0.1

    parts = snapshot_force_parts(ph3, displacements, forces)
    assert parts["pairs"] == 3 and parts["harmonic_misfit"] < 1e-2
    assert parts["even_to_odd"] == pytest.approx(misfit, rel=0.05)
    # a wrong fc2 shows: twice the stiffness is a misfit of 1
    ph3.fc2 = 2 * ph3.fc2
    assert snapshot_force_parts(ph3, displacements, forces)["harmonic_misfit"] == pytest.approx(1.0, rel=1e-2)


def test_harmonic_forces_need_a_phonon_supercell_that_the_fc3_one_divides():
    from aiida_llpam.physics.third_order import dfpt_harmonic_forces, snapshot_force_parts

    ph3 = build_phono3py(si_arrays((3, 3, 3)), ["Si", "Si"], np.diag([2, 2, 2]))
    with pytest.raises(ValueError, match="not a multiple of the fc3 supercell"):
        dfpt_harmonic_forces(ph3, np.zeros((1, 16, 3)))
    # the record of a fit then says nothing of it, and the fit goes on
    displacements = np.full((1, 16, 3), 0.01)
    parts = snapshot_force_parts(ph3, displacements, np.ones((1, 16, 3)))
    assert parts == {"pairs": 0, "harmonic_misfit": None, "even_to_odd": None}


def test_residual_forces_are_allowed_where_a_site_symmetry_keeps_a_vector(quartz_fc):
    """Diamond Si (site symmetry -43m) feels no force at rest, by symmetry, so no undisplaced supercell is computed
    (its Gamma-only scf need not even converge: a degenerate level at the gap); quartz (sites 2 and 1) does."""
    from aiida_llpam.calculations.rta_job import snapshots_table
    from aiida_llpam.physics.third_order import residual_forces_allowed

    assert not residual_forces_allowed(build_phono3py(si_arrays(), ["Si", "Si"], np.diag([2, 2, 2])))
    quartz = {
        "lattice_bohr": quartz_fc.lattice_bohr,
        "positions_bohr": quartz_fc.positions_bohr,
        "masses_amu": quartz_fc.masses_amu,
        "supercell_matrix": np.eye(3, dtype=int),
        "force_constants": np.zeros((9, 9, 3, 3)),
    }
    assert residual_forces_allowed(build_phono3py(quartz, quartz_fc.symbols, np.eye(3, dtype=int)))
    # without the field there is nothing to subtract
    _, _, table, residual = snapshots_table(np.ones((1, 16, 3)), 16, {"supercell_0001": np.ones((16, 3))}, False)
    np.testing.assert_array_equal(residual, 0.0)
    np.testing.assert_array_equal(table, 1.0)


def test_force_differences_split_into_harmonic_and_fc3_parts():
    """A coarse k mesh that scales only the harmonic forces by 1 % leaves the even part (the fc3 signal) alone."""
    from aiida_llpam.physics.third_order import force_mesh_differences

    rng = np.random.default_rng(3)
    harmonic, even = rng.normal(size=(2, 5, 3)), 0.05 * rng.normal(size=(2, 5, 3))
    dense = np.concatenate([harmonic + even, -harmonic + even])  # snapshots 0, 1 and their opposites 2, 3
    coarse = np.concatenate([1.01 * harmonic + even, -1.01 * harmonic + even])
    r = force_mesh_differences(coarse, dense, [(0, 2), (1, 3)])
    assert r["odd"] == pytest.approx(0.01, rel=1e-12) and r["even"] == pytest.approx(0.0, abs=1e-14)
    rms = np.sqrt(np.mean(np.sum(harmonic**2, axis=-1)))
    assert r["even_to_odd"] == pytest.approx(np.sqrt(np.mean(np.sum(even**2, axis=-1))) / rms, rel=1e-12)
    assert force_mesh_differences(coarse, dense, [])["even"] is None
