"""Third-order force constants and RTA linewidths with phono3py, on the DFPT harmonic model.

phono3py computes in phonopy's default units, whatever its ``calculator``: Angstrom, eV/Angstrom (forces),
eV/Angstrom^2 (fc2), eV/Angstrom^3 (fc3), AMU; its frequency factor and the unit conversion of its
ph-ph interaction assume them. So the DFPT force constants (QE units, bohr and Ry, the names of
``phonopy_force_constants.UNITS``) are converted on the way in, and pw.x forces, which
aiida-quantumespresso stores in eV/Angstrom, go in as they are. fc2 lives on the DFPT supercell (the q mesh,
or its unfolding), fc3 on its own, usually smaller, supercell: phono3py's ``phonon_supercell_matrix`` and
``supercell_matrix``. The frequencies of the RTA are then the response's (checked by :mod:`.lifetimes`).

The displacements are phono3py's own finite-difference set (``generate_displacements``), reduced by the
crystal's symmetry; ``cutoff_pair_distance`` (Angstrom) leaves out the second displacements of pairs
farther apart, whose fc3 elements are then zero (phono3py's standard truncation). Or random displacements
(every atom of every snapshot moved by the same distance in a random direction, optionally each snapshot also with
the opposite displacements), from which symfc fits fc2 and fc3 together by least squares in the symmetry-adapted
basis of the fc3 supercell; its ``cutoff`` zeroes the fc3 of every triplet with a pair farther apart. The fitted fc2
is discarded: the RTA keeps the DFPT fc2 on its own supercell (``phonon_supercell_matrix``). Each snapshot gives
3 N_atoms equations, so the fit needs at least (fc2 + fc3 basis size) / (3 N_atoms) of them (:func:`fit_size`).
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from pathlib import Path

import h5py
import numpy as np
from phono3py import Phono3py
from phonopy.physical_units import get_calculator_physical_units
from phonopy.structure.atoms import PhonopyAtoms

from .units import BOHR_ANGSTROM, RY_BOHR2_IN_EV_ANGSTROM2

__all__ = [
    "build_phono3py",
    "dfpt_harmonic_forces",
    "fc3_relative_difference",
    "displaced_supercells",
    "fit_shortfall",
    "fit_size",
    "kappa_rta",
    "produce_fc3",
    "produce_fc3_symfc",
    "random_supercells",
    "residual_forces_allowed",
    "snapshot_force_parts",
    "symmetrize_fc3",
    "zero_fc3_beyond",
]


def build_phono3py(arrays, symbols, fc3_supercell_matrix) -> Phono3py:
    """phono3py (Angstrom, eV) on the unit cell of a force-constants node's ``arrays`` (QE units) with its fc2
    and eps/Z* (Gonze NAC)."""
    cell = PhonopyAtoms(
        symbols=list(symbols),
        cell=np.asarray(arrays["lattice_bohr"], dtype=float) * BOHR_ANGSTROM,
        positions=np.asarray(arrays["positions_bohr"], dtype=float) * BOHR_ANGSTROM,
        masses=np.asarray(arrays["masses_amu"], dtype=float),
    )
    ph3 = Phono3py(
        cell,
        supercell_matrix=np.asarray(fc3_supercell_matrix, dtype=int),
        phonon_supercell_matrix=np.asarray(arrays["supercell_matrix"], dtype=int),
        primitive_matrix="P",
        log_level=0,
    )
    ph3.fc2 = np.asarray(arrays["force_constants"], dtype=float) * RY_BOHR2_IN_EV_ANGSTROM2
    if arrays.get("born_charges") is not None:
        ph3.nac_params = {
            "born": np.asarray(arrays["born_charges"], dtype=float),
            "dielectric": np.asarray(arrays["dielectric"], dtype=float),
            "factor": get_calculator_physical_units(None).nac_factor,  # phonopy's default units
            "method": "gonze",
        }
    return ph3


def displaced_supercells(ph3: Phono3py, distance_angstrom: float, cutoff_pair_distance_angstrom: float | None):
    """phono3py's displacement dataset and the displaced supercells to compute (None where the cutoff skips one).

    Returns (the dataset as phono3py's ``phono3py_disp.yaml`` text, [PhonopyAtoms (Angstrom) or None, ...]).
    """
    ph3.generate_displacements(distance=distance_angstrom, cutoff_pair_distance=cutoff_pair_distance_angstrom)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "phono3py_disp.yaml"
        ph3.save(path)
        return path.read_text(), list(ph3.supercells_with_displacements)


def residual_forces_allowed(ph3: Phono3py) -> bool:
    """Whether symmetry lets an atom of the undisplaced crystal feel a force (then a k mesh or cut-off other than
    the relaxation's leaves one): some atom's site symmetry leaves a vector invariant, i.e. the mean of its
    rotations, the projector onto the invariant vectors, is not zero. Diamond Si (-43m): no; quartz (sites 2 and
    1): yes."""
    symmetry = ph3.primitive_symmetry
    return any(np.trace(np.mean(symmetry.get_site_symmetry(atom), axis=0)) > 0.5 for atom in range(len(ph3.primitive)))


def random_supercells(
    ph3: Phono3py, number_of_snapshots: int, distance_angstrom: float, random_seed: int, plus_minus: bool
):
    """phono3py's random displacements: ``number_of_snapshots`` supercells in which every atom moves by
    ``distance_angstrom`` in a random direction (and with ``plus_minus`` each one's opposite too, which cancels the
    even orders in the fc3 fit), drawn with ``random_seed``. Returns what :func:`displaced_supercells` returns."""
    ph3.generate_displacements(
        distance=distance_angstrom,
        number_of_snapshots=int(number_of_snapshots),
        random_seed=int(random_seed),
        is_plusminus=bool(plus_minus),
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "phono3py_disp.yaml"
        ph3.save(path)
        return path.read_text(), list(ph3.supercells_with_displacements)


def fit_size(ph3: Phono3py, cutoff_angstrom: float | None) -> dict:
    """The unknowns of symfc's joint fit of fc2 and fc3 in the fc3 supercell (fc3 of triplets within
    ``cutoff_angstrom``; None: all) against the equations one snapshot gives (3 N_atoms forces): ``basis_fc2``,
    ``basis_fc3``, ``equations_per_snapshot`` and ``snapshots_needed`` (the smallest number that determines the
    fit; noise wants several times more). Builds symfc's basis: seconds for tens of atoms."""
    from phonopy.interface.symfc import SymfcFCSolver

    options = None if cutoff_angstrom is None else {"cutoff": {3: float(cutoff_angstrom)}}
    solver = SymfcFCSolver(ph3.supercell, symmetry=ph3.symmetry, options=options)
    # the basis itself, not symfc's estimate_basis_size (Si 2x2x2: estimated 3 + 48, built 8 + 49)
    sizes = {order: basis.basis_set.shape[1] for order, basis in solver.compute_basis_set(orders=[2, 3]).items()}
    equations = 3 * len(ph3.supercell)
    return {
        "basis_fc2": int(sizes[2]),
        "basis_fc3": int(sizes[3]),
        "equations_per_snapshot": equations,
        "snapshots_needed": math.ceil((sizes[2] + sizes[3]) / equations),
    }


def fit_shortfall(size: dict, snapshots: int, cutoff_angstrom: float | None, detail: str = "") -> str | None:
    """Why ``snapshots`` random snapshots cannot determine symfc's fit of :func:`fit_size` ``size``, with the
    counts (``detail`` follows "N snapshots", e.g. which ones failed), or None when they can."""
    if snapshots >= size["snapshots_needed"]:
        return None
    within = "all triplets" if cutoff_angstrom is None else f"triplets within {cutoff_angstrom} Angstrom"
    each = size["equations_per_snapshot"]
    return (
        f"{snapshots} snapshots{detail} give {snapshots * each} equations ({each} each) for "
        f"{size['basis_fc2'] + size['basis_fc3']} unknowns (symfc basis: fc2 {size['basis_fc2']}, fc3 "
        f"{size['basis_fc3']} for {within}): at least {size['snapshots_needed']} needed"
    )


def produce_fc3_symfc(
    ph3: Phono3py, displacements_angstrom: np.ndarray, forces_ev_angstrom: np.ndarray, cutoff_angstrom: float | None
) -> np.ndarray:
    """fc3 (eV/Angstrom^3, compact) fitted by symfc to snapshots ((n, n_atoms, 3) displacements and forces), fc2 and
    fc3 together, fc3 of triplets within ``cutoff_angstrom`` only. The DFPT fc2 of ``ph3`` stays (its
    ``phonon_supercell_matrix`` is set, so phono3py does not replace it with the fitted one)."""
    fc2 = ph3.fc2
    ph3.dataset = {
        "displacements": np.asarray(displacements_angstrom, dtype=float),
        "forces": np.asarray(forces_ev_angstrom, dtype=float),
    }
    options = None if cutoff_angstrom is None else f"cutoff={float(cutoff_angstrom)}"
    ph3.produce_fc3(fc_calculator="symfc", fc_calculator_options=options)
    assert ph3.fc2 is fc2, "phono3py replaced the DFPT fc2"
    return ph3.fc3


def dfpt_harmonic_forces(ph3: Phono3py, displacements_angstrom: np.ndarray) -> np.ndarray:
    """The forces (eV/Angstrom, (n, atoms, 3)) that the DFPT fc2 of ``ph3`` gives for displacements of its fc3
    supercell: fc2 (on the phonon supercell, a multiple of the fc3 one) folded onto the fc3 supercell, every image
    of an atom moving as the atom does. Against the odd part of the snapshots' forces it measures how well the
    supercell's pw.x (its k mesh above all) reproduces the DFPT's harmonic forces. ValueError when the phonon
    supercell is not a multiple of the fc3 supercell."""
    supercell, phonon = ph3.supercell, ph3.phonon_supercell
    # the phonon supercell's lattice vectors must be fc3-supercell lattice vectors, or its images do not fold
    multiple = np.asarray(ph3.phonon_supercell_matrix) @ np.linalg.inv(ph3.supercell_matrix)
    if not np.allclose(multiple, np.rint(multiple), rtol=0, atol=1e-8):
        raise ValueError(
            f"the phonon supercell of fc2 ({np.asarray(ph3.phonon_supercell_matrix).tolist()}) is not a multiple of "
            f"the fc3 supercell ({np.asarray(ph3.supercell_matrix).tolist()})"
        )
    lattice = np.asarray(supercell.cell)
    reduced = np.asarray(supercell.scaled_positions)

    def indices(positions):  # the fc3-supercell atom at each Cartesian position, modulo its lattice
        offset = (positions @ np.linalg.inv(lattice))[:, None, :] - reduced[None]
        offset -= np.rint(offset)
        return np.linalg.norm(offset @ lattice, axis=-1).argmin(axis=1)

    fc2 = np.asarray(ph3.fc2)
    if fc2.shape[0] == len(phonon):  # full fc2: the rows of the primitive atoms
        fc2 = fc2[ph3.phonon_primitive.p2s_map]
    displacements = np.asarray(displacements_angstrom, dtype=float)
    positions = np.asarray(supercell.positions)
    phonon_positions = np.asarray(phonon.positions)
    representative = ph3.primitive.s2p_map  # supercell index of each atom's primitive-cell atom
    row = {int(atom): k for k, atom in enumerate(ph3.primitive.p2s_map)}
    forces = np.zeros_like(displacements)
    for i in range(len(supercell)):
        # atom i is its primitive atom translated by this lattice vector; so are the partners of its fc2 row
        translation = positions[i] - positions[representative[i]]
        partners = indices(phonon_positions + translation)
        forces[:, i] = -np.einsum("jab,njb->na", fc2[row[int(representative[i])]], displacements[:, partners])
    return forces


def opposite_pairs(displacements_angstrom) -> list[tuple[int, int]]:
    """(i, j), i < j, of the snapshots ((n, atoms, 3) displacements) that are each other's opposite, to 1e-8 of
    the largest displacement."""
    flat = np.asarray(displacements_angstrom, dtype=float).reshape(len(displacements_angstrom), -1)
    scale = np.abs(flat).max()
    return [
        (i, j)
        for i in range(len(flat))
        for j in range(i + 1, len(flat))
        if np.abs(flat[i] + flat[j]).max() < 1e-8 * scale
    ]


def first_snapshots(displacements_angstrom, count: int) -> list[int]:
    """The indices of the first ``count`` drawn snapshots and of their opposites (:func:`opposite_pairs`), for a
    fit to fewer snapshots than were computed; ValueError unless ``count`` is fewer than were drawn."""
    pairs = opposite_pairs(displacements_angstrom)
    partner, opposites = dict(pairs), {j for _, j in pairs}
    drawn = [i for i in range(len(displacements_angstrom)) if i not in opposites]
    if not 0 < count < len(drawn):
        raise ValueError(f"the first {count} snapshots: the dataset has {len(drawn)} drawn, take 1 to {len(drawn) - 1}")
    chosen = drawn[:count]
    return sorted(chosen + [partner[i] for i in chosen if i in partner])


def force_mesh_differences(coarse_ev_angstrom, dense_ev_angstrom, pairs) -> dict:
    """How the snapshots' forces ((n, atoms, 3), residual forces already subtracted) on a coarse supercell k mesh
    differ from those on a denser one: the rms of the difference over the rms of the dense forces, for the whole
    force (``total``), for its odd part (F(u) - F(-u)) / 2 (``odd``: the harmonic forces) and for its even part
    (F(u) + F(-u)) / 2 over the snapshot ``pairs`` (i, j) (``even``: the fc3 signal, None without pairs), and
    ``even_to_odd`` of the dense forces."""
    coarse, dense = (np.asarray(f, dtype=float) for f in (coarse_ev_angstrom, dense_ev_angstrom))

    def rms(values):
        return float(np.sqrt(np.mean(np.sum(np.asarray(values) ** 2, axis=-1))))

    result = {"total": rms(coarse - dense) / rms(dense), "odd": None, "even": None, "even_to_odd": None}
    if pairs:
        first, second = (list(index) for index in zip(*pairs))
        odd = [0.5 * (f[first] - f[second]) for f in (coarse, dense)]
        even = [0.5 * (f[first] + f[second]) for f in (coarse, dense)]
        result |= {
            "odd": rms(odd[0] - odd[1]) / rms(odd[1]),
            "even": rms(even[0] - even[1]) / rms(even[1]),
            "even_to_odd": rms(even[1]) / rms(odd[1]),
        }
    return result


def snapshot_force_parts(ph3: Phono3py, displacements_angstrom: np.ndarray, forces_ev_angstrom: np.ndarray) -> dict:
    """How the snapshots' forces (residual forces already subtracted) split, for the record of a fit.

    Snapshots whose opposite is among them give the odd part (F(u) - F(-u)) / 2, harmonic to O(u^3), and the even
    part (F(u) + F(-u)) / 2, the fc3 signal to O(u^4); without opposites the whole force stands for the odd part.
    Returns ``pairs``, ``harmonic_misfit`` (rms of odd part minus :func:`dfpt_harmonic_forces` over rms of the odd
    part: the supercell pw.x against the DFPT, k mesh and cut-off alike; None where the phonon supercell is not a
    multiple of the fc3 one) and ``even_to_odd`` (rms of the even part over rms of the odd part; None without
    pairs)."""
    displacements = np.asarray(displacements_angstrom, dtype=float)
    forces = np.asarray(forces_ev_angstrom, dtype=float)
    pairs = opposite_pairs(displacements)
    try:
        harmonic = dfpt_harmonic_forces(ph3, displacements)
    except ValueError:  # the DFPT's supercell does not fold onto this one: no comparison
        harmonic = None

    def rms(values):
        return float(np.sqrt(np.mean(np.sum(np.asarray(values) ** 2, axis=-1))))

    def misfit(odd, index):
        return None if harmonic is None else rms(odd - harmonic[index]) / rms(odd)

    if pairs:
        first, second = (list(index) for index in zip(*pairs))
        odd = 0.5 * (forces[first] - forces[second])
        even = 0.5 * (forces[first] + forces[second])
        return {"pairs": len(pairs), "harmonic_misfit": misfit(odd, first), "even_to_odd": rms(even) / rms(odd)}
    return {"pairs": 0, "harmonic_misfit": misfit(forces, slice(None)), "even_to_odd": None}


def produce_fc3(ph3: Phono3py, forces_ev_angstrom: np.ndarray) -> np.ndarray:
    """fc3 (eV/Angstrom^3) from the forces of every supercell of the dataset ((n_all, n_atoms, 3); zeros for the
    skipped ones, which phono3py does not read), symmetrised as phono3py does by default."""
    ph3.forces = np.asarray(forces_ev_angstrom, dtype=float)
    ph3.produce_fc3()
    return ph3.fc3


def zero_fc3_beyond(ph3: Phono3py, fc3: np.ndarray, distance_angstrom: float) -> float:
    """Zero, in place, the fc3 (compact, of ``ph3``'s supercell) of every triplet with a pair of atoms farther apart
    than ``distance_angstrom`` (shortest periodic images; phono3py's ``cutoff_fc3_by_zero``); returns the fraction
    of the fc3 norm removed.

    symfc's cut-off keeps exactly these triplets, while phono3py's finite-difference cut-off drops only the second
    displacement of the pairs beyond it, and keeps the force on the third atom wherever it is. So two fc3 of one
    supercell made by the two routes hold different triplets; cut to the same ones they can be compared element by
    element and by the kappa they give. The cut breaks the translational sum rule of the triplets it touches, so it
    is a comparison of the routes, not a kappa to quote."""
    from phono3py.phonon3.fc3 import cutoff_fc3_by_zero

    before = fc3.copy()
    cutoff_fc3_by_zero(fc3, ph3.supercell, float(distance_angstrom), p2s_map=ph3.primitive.p2s_map)
    return _fraction_changed(before, fc3)


def symmetrize_fc3(ph3: Phono3py) -> float:
    """``ph3.fc3`` projected by symfc onto the force constants that obey the crystal's symmetry, index permutation
    and the acoustic sum rule (``Phono3py.symmetrize_fc3(use_symfc_projector=True)``), in place; returns the
    fraction of the fc3 norm it changed.

    phono3py's finite differences do not give the sum rule once pairs beyond a cut-off are left out (the force on
    every atom is kept, the second displacement is not), nor does a cut of any fc3 (:func:`zero_fc3_beyond`);
    symfc's fit obeys it already. A projection, not phono3py's default of three rounds of translational and
    permutation symmetrisation in turn, which leaves a cut fc3's sum rule violated (Si 2x2x2 cut at 2.5 A: 7e-4 of
    the largest element) and its kappa dependent on the order of the steps. Measured on Si 3x3x3 (finite
    differences, pairs within 4.0 A): the projection changes 0.4 % of the norm and raises kappa(300 K) from 100 to
    121 W/(m K), since a violated sum rule scatters the long-wavelength acoustic modes that carry the heat; 20 s."""
    before = ph3.fc3.copy()
    ph3.symmetrize_fc3(use_symfc_projector=True)
    return _fraction_changed(before, ph3.fc3)


def _fraction_changed(before: np.ndarray, after: np.ndarray) -> float:
    """|after - before| / |before| of an fc3 changed in one step (0 for a zero fc3, which no step changes)."""
    norm = np.linalg.norm(before)
    return float(np.linalg.norm(after - before) / norm) if norm > 0 else 0.0


def fc3_relative_difference(fc3: np.ndarray, reference: np.ndarray) -> float:
    """|fc3 - reference| / |reference| (Frobenius norms over every element, compact fc3 of one supercell);
    ValueError for two shapes (two supercells) or a zero reference."""
    fc3, reference = np.asarray(fc3, dtype=float), np.asarray(reference, dtype=float)
    if fc3.shape != reference.shape:
        raise ValueError(f"fc3 of shape {fc3.shape} against {reference.shape}: not of one supercell")
    norm = np.linalg.norm(reference)
    if norm == 0:
        raise ValueError("the reference fc3 is zero")
    return float(np.linalg.norm(fc3 - reference) / norm)


def kappa_rta(
    ph3: Phono3py,
    mesh,
    temperatures_k,
    every_grid_point: bool = False,
    sigma_thz: float | None = None,
    isotope: bool = False,
) -> bytes:
    """phono3py's RTA on a Gamma-centred ``mesh``: the bytes of the ``kappa-m*.hdf5`` it writes (linewidths per
    mode, Gamma in THz, on the irreducible grid points or, with ``every_grid_point``, on all of them), without its
    ``mode_kappa``: that is the product heat_capacity x gv_by_gv x tau per mode (over the cell volume and the mesh
    size), whose factors are all kept, and two thirds of the file (quartz on 12x12x8 at 61 temperatures: 9.6 MB
    with it, 3.6 MB without).

    The energy conservation is phono3py's tetrahedron method, or a Gaussian of width ``sigma_thz``. The
    tetrahedra of a grid point are not mapped onto each other by the point group, so on a coarse mesh the
    tetrahedron widths of two symmetry-equivalent points differ (by up to tens of % at 4x4x4): the irreducible
    run gives each star the width of its representative, as phono3py's own kappa does; a Gaussian is symmetric.

    ``isotope``: with the scattering by the natural isotope mix (Tamura's formula; phono3py's mass variances of
    the natural abundances), whose width the file holds apart (``gamma_isotope``, one per mode, independent of T)
    and :meth:`Lifetimes.from_kappa_hdf5` adds to the three-phonon one.
    """
    ph3.mesh_numbers = [int(n) for n in mesh]
    if sigma_thz is not None:
        ph3.sigmas = [float(sigma_thz)]
    ph3.init_phph_interaction()
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):  # phono3py writes into the cwd
        ph3.run_thermal_conductivity(
            temperatures=np.asarray(temperatures_k, dtype=float),
            is_isotope=isotope,
            is_kappa_star=not every_grid_point,
            write_kappa=True,
        )
        (path,) = Path(folder).glob("kappa-m*.hdf5")
        kept = path.with_suffix(".kept.hdf5")
        with h5py.File(path, "r") as source, h5py.File(kept, "w") as target:
            for name in source:
                if name != "mode_kappa":
                    source.copy(source[name], target, name=name)  # as phono3py wrote it (gzip)
        return kept.read_bytes()
