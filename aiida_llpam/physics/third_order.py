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
farther apart, whose fc3 elements are then zero (phono3py's standard truncation).
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import numpy as np
from phono3py import Phono3py
from phonopy.physical_units import get_calculator_physical_units
from phonopy.structure.atoms import PhonopyAtoms

from .units import BOHR_ANGSTROM, RY_BOHR2_IN_EV_ANGSTROM2

__all__ = ["build_phono3py", "displaced_supercells", "kappa_rta", "produce_fc3"]


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
