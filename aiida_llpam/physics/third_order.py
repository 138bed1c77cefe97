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

import numpy as np
from phono3py import Phono3py
from phonopy.physical_units import get_calculator_physical_units
from phonopy.structure.atoms import PhonopyAtoms

from .units import BOHR_ANGSTROM, RY_BOHR2_IN_EV_ANGSTROM2

__all__ = [
    "build_phono3py",
    "displaced_supercells",
    "fit_shortfall",
    "fit_size",
    "kappa_rta",
    "produce_fc3",
    "produce_fc3_symfc",
    "random_supercells",
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


def produce_fc3(ph3: Phono3py, forces_ev_angstrom: np.ndarray) -> np.ndarray:
    """fc3 (eV/Angstrom^3) from the forces of every supercell of the dataset ((n_all, n_atoms, 3); zeros for the
    skipped ones, which phono3py does not read), symmetrised as phono3py does by default."""
    ph3.forces = np.asarray(forces_ev_angstrom, dtype=float)
    ph3.produce_fc3()
    return ph3.fc3


def kappa_rta(
    ph3: Phono3py, mesh, temperatures_k, every_grid_point: bool = False, sigma_thz: float | None = None
) -> bytes:
    """phono3py's RTA on a Gamma-centred ``mesh``: the bytes of the ``kappa-m*.hdf5`` it writes (linewidths per
    mode, Gamma in THz, on the irreducible grid points or, with ``every_grid_point``, on all of them).

    The energy conservation is phono3py's tetrahedron method, or a Gaussian of width ``sigma_thz``. The
    tetrahedra of a grid point are not mapped onto each other by the point group, so on a coarse mesh the
    tetrahedron widths of two symmetry-equivalent points differ (by up to tens of % at 4x4x4): the irreducible
    run gives each star the width of its representative, as phono3py's own kappa does; a Gaussian is symmetric.
    """
    ph3.mesh_numbers = [int(n) for n in mesh]
    if sigma_thz is not None:
        ph3.sigmas = [float(sigma_thz)]
    ph3.init_phph_interaction()
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):  # phono3py writes into the cwd
        ph3.run_thermal_conductivity(
            temperatures=np.asarray(temperatures_k, dtype=float), is_kappa_star=not every_grid_point, write_kappa=True
        )
        (path,) = Path(folder).glob("kappa-m*.hdf5")
        return path.read_bytes()
