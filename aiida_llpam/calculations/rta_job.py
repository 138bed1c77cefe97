"""The process a Phono3pyRtaCalculation runs: fc2 + displacement dataset + supercell forces in, fc3 and the RTA out.

    python -m aiida_llpam.calculations.rta_job force_constants.npz dataset.json forces.npz parameters.json

Plain numpy, phono3py and the physics package: no AiiDA profile is needed where it runs (a cluster node).

* ``force_constants.npz``: the arrays of a force-constants node (QE units) and its ``symbols``, as the response
  job reads them (:func:`aiida_llpam.calculations.functions.phonopy_force_constants.write_force_constants`).
* ``dataset.json``: phono3py's displacement dataset (Angstrom; ``phono3py_supercells``).
* ``forces.npz``: one array per computed supercell, ``supercell_0001``, ... numbered as the dataset (the pairs
  beyond a cut-off missing), (atoms, 3) in eV/Angstrom. For random snapshots, those whose forces are missing (their
  scf failed) are left out of the fit, which is refused if the rest cannot determine it; ``supercell_0000``, the
  forces of the undisplaced supercell, is subtracted from every snapshot before the fit (:data:`REFERENCE`; needed
  unless symmetry forbids forces on the atoms at rest).
* ``parameters.json``: ``supercell_matrix`` (fc3), ``mesh`` and ``temperatures_k``, optionally ``fc3_method``
  (``finite``: phono3py's finite differences; ``random``: symfc's fit), ``cutoff_pair_distance_angstrom``
  (symfc's fc3 cut-off; the finite dataset holds its own) and ``fitted_snapshots`` (random: fit only the first
  this many snapshots, with their opposites where the dataset has them: kappa's convergence in the number of
  snapshots), ``isotope`` (true: the scattering by the natural isotope mix too, :func:`kappa_rta`),
  ``triplets_within_angstrom`` (the fc3 made, by either method, then zeroed on every triplet with a pair farther
  apart, :func:`zero_fc3_beyond`: two routes compared on the triplets both hold) and ``symmetrize_fc3`` (true:
  symfc's projection of the fc3 made and cut onto its symmetry and sum rules, :func:`symmetrize_fc3`)
  (:func:`rta_settings`).

It writes, in the working directory, ``fc3.hdf5`` (phono3py's layout, eV/Angstrom^3, compact),
``kappa-m<mesh>.hdf5`` (phono3py's RTA on the Gamma-centred mesh, irreducible points) and ``rta.json`` (what was
run, written last). A refusal of the inputs prints a line starting with :data:`REFUSED` (exit status 2), a failure
inside phono3py one starting with :data:`FAILED` and its traceback on stderr (exit status 3); then there is no
``rta.json``.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import traceback

import numpy as np

from aiida_llpam.physics.third_order import (
    build_phono3py,
    first_snapshots,
    fit_shortfall,
    fit_size,
    kappa_rta,
    produce_fc3,
    produce_fc3_symfc,
    residual_forces_allowed,
    snapshot_force_parts,
    symmetrize_fc3,
    zero_fc3_beyond,
)

#: the line that tells the parser the inputs were refused (a missing force, a bad mesh, ...)
REFUSED = "REFUSED: "
#: the line that tells the parser phono3py itself failed
FAILED = "PHONO3PY FAILED: "
FC3_FILE = "fc3.hdf5"
SUMMARY_FILE = "rta.json"
#: the undisplaced supercell of a random dataset, whose forces are subtracted from every snapshot's: on another k
#: mesh than the relaxation's, or a loosely relaxed cell, they are not zero unless inversion puts them there, and
#: symfc's fit, which has no constant term, would read them as fc3 (of order 1e-2 eV/A in a 0.03 A snapshot)
REFERENCE = "supercell_0000"
#: the keys of parameters.json
KEYS = ("supercell_matrix", "mesh", "temperatures_k")
#: its optional keys
OPTIONAL_KEYS = (
    "fc3_method",
    "cutoff_pair_distance_angstrom",
    "fitted_snapshots",
    "isotope",
    "triplets_within_angstrom",
    "symmetrize_fc3",
)
#: how fc3 is made from the forces: phono3py's finite differences, or symfc's fit to random snapshots
FC3_METHODS = ("finite", "random")


class Phono3pyError(RuntimeError):
    """phono3py raised while building the model, making fc3 or running the RTA."""


def kappa_filename(mesh) -> str:
    """phono3py's name of the kappa file of a mesh: ``kappa-m444.hdf5``, ``kappa-m12128.hdf5``."""
    return f"kappa-m{''.join(str(int(n)) for n in mesh)}.hdf5"


def rta_settings(parameters: dict) -> dict:
    """The RTA settings checked and normalised (3x3 fc3 supercell matrix, mesh, temperatures in K); ValueError
    naming the first bad key."""
    unknown = sorted(set(parameters) - set(KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: unknown; known: {', '.join(KEYS + OPTIONAL_KEYS)}")
    missing = [key for key in KEYS if key not in parameters]
    if missing:
        raise ValueError(f"{', '.join(missing)}: missing")
    matrix = np.asarray(parameters["supercell_matrix"])
    if matrix.shape == (3,):
        matrix = np.diag(matrix)
    if matrix.shape != (3, 3) or not np.issubdtype(matrix.dtype, np.integer) or round(abs(np.linalg.det(matrix))) < 1:
        raise ValueError(
            f"supercell_matrix: three integers or a 3x3 integer matrix of nonzero determinant, "
            f"got {parameters['supercell_matrix']}"
        )
    mesh = parameters["mesh"]
    if not (
        isinstance(mesh, (list, tuple))
        and len(mesh) == 3
        and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in mesh)
    ):
        raise ValueError(f"mesh: three positive integers, got {mesh!r}")
    temperatures = np.asarray(parameters["temperatures_k"], dtype=float).ravel()
    if temperatures.size == 0 or not np.all(np.isfinite(temperatures)) or np.any(temperatures <= 0):
        raise ValueError(f"temperatures_k: positive temperatures, got {parameters['temperatures_k']!r}")
    settings = {"supercell_matrix": matrix.tolist(), "mesh": list(mesh), "temperatures_k": temperatures.tolist()}
    method = parameters.get("fc3_method", "finite")
    if method not in FC3_METHODS:
        raise ValueError(f"fc3_method: one of {', '.join(FC3_METHODS)}, got {method!r}")
    settings["fc3_method"] = method
    cutoff = parameters.get("cutoff_pair_distance_angstrom")
    if cutoff is not None:
        settings["cutoff_pair_distance_angstrom"] = positive_angstrom(cutoff, "cutoff_pair_distance_angstrom")
    fitted = parameters.get("fitted_snapshots")
    if fitted is not None:
        if method != "random" or isinstance(fitted, bool) or not isinstance(fitted, int) or fitted < 1:
            raise ValueError(f"fitted_snapshots: a positive integer, with fc3_method random, got {fitted!r}")
        settings["fitted_snapshots"] = fitted
    for flag in ("isotope", "symmetrize_fc3"):
        value = parameters.get(flag, False)
        if not isinstance(value, bool):
            raise ValueError(f"{flag}: true or false, got {value!r}")
        if value:  # absent when false: the parameters of the runs made before it existed stay what they were
            settings[flag] = True
    within = parameters.get("triplets_within_angstrom")
    if within is not None:
        settings["triplets_within_angstrom"] = positive_angstrom(within, "triplets_within_angstrom")
    return settings


def positive_angstrom(value, key: str) -> float:
    """``value`` as a length in Angstrom; ValueError naming ``key`` unless it is a positive finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (np.isfinite(value) and value > 0):
        raise ValueError(f"{key}: a positive number of Angstrom, got {value!r}")
    return float(value)


@contextlib.contextmanager
def phono3py_step(name: str):
    """Any exception inside as a :class:`Phono3pyError` naming the step (not a refusal: the inputs were checked)."""
    try:
        yield
    except Exception as exc:
        raise Phono3pyError(f"{name}: {type(exc).__name__}: {exc}") from exc


def forces_table(cells: list, natom: int, forces) -> np.ndarray:
    """The forces of every supercell of the dataset, (n_all, natom, 3) eV/Angstrom, zeros for the skipped ones
    (``None`` in ``cells``, which phono3py does not read); ValueError for a missing or misshapen one."""
    table = np.zeros((len(cells), natom, 3))
    for index, cell in enumerate(cells, start=1):
        if cell is None:
            continue
        label = f"supercell_{index:04d}"
        if label not in forces:
            raise ValueError(f"forces: none for {label} of the dataset")
        values = np.asarray(forces[label], dtype=float)
        if values.shape != (natom, 3):
            raise ValueError(f"forces: {label} has shape {values.shape}, the supercell has {natom} atoms")
        table[index - 1] = values
    extra = sorted(set(forces) - {f"supercell_{i:04d}" for i, cell in enumerate(cells, start=1) if cell is not None})
    if extra:
        raise ValueError(f"forces: {', '.join(extra)} not in the dataset")
    return table


def snapshots_table(
    displacements, natom: int, forces, reference_needed: bool = True
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """The random snapshots that have forces: their labels, displacements and forces less the undisplaced
    supercell's (:data:`REFERENCE`), each (n, natom, 3) in Angstrom and eV/Angstrom, and those residual forces
    (natom, 3; zero where symmetry forbids them: ``reference_needed`` false); ValueError for a label outside the
    dataset, a misshapen array or a needed reference missing."""
    displacements = np.asarray(displacements, dtype=float)
    known = {f"supercell_{i:04d}": i - 1 for i in range(1, len(displacements) + 1)}
    extra = sorted(set(forces) - set(known) - {REFERENCE})
    if extra:
        raise ValueError(f"forces: {', '.join(extra)} not in the dataset")
    for label in forces:
        if np.shape(forces[label]) != (natom, 3):
            raise ValueError(f"forces: {label} has shape {np.shape(forces[label])}, the supercell has {natom} atoms")
    if REFERENCE in forces:
        residual = np.asarray(forces[REFERENCE], dtype=float)
    elif reference_needed:
        raise ValueError(
            f"forces: none for {REFERENCE}, the undisplaced supercell (its residual forces are subtracted)"
        )
    else:
        residual = np.zeros((natom, 3))
    labels = sorted(set(forces) - {REFERENCE})
    table = np.array([np.asarray(forces[label], dtype=float) for label in labels]).reshape(-1, natom, 3)
    return labels, displacements[[known[label] for label in labels]].reshape(-1, natom, 3), table - residual, residual


def run(force_constants_path: str, dataset_path: str, forces_path: str, parameters_path: str) -> dict:
    """fc3.hdf5, kappa-m<mesh>.hdf5 and rta.json in the working directory; returns the summary (rta.json)."""
    from phono3py import __version__ as phono3py_version
    from phono3py.file_IO import write_fc3_to_hdf5

    with open(parameters_path) as handle:
        settings = rta_settings(json.load(handle))
    with open(dataset_path) as handle:
        dataset = json.load(handle)
    data = np.load(force_constants_path)
    with np.load(forces_path) as handle:
        forces = {label: handle[label] for label in handle.files}
    random = settings["fc3_method"] == "random"
    cutoff = settings.get("cutoff_pair_distance_angstrom")
    if random and "displacements" not in dataset:
        raise ValueError("dataset: fc3_method random needs a dataset of random snapshots ('displacements')")
    if not random and "first_atoms" not in dataset:
        raise ValueError("dataset: fc3_method finite needs phono3py's finite-displacement dataset ('first_atoms')")
    with phono3py_step("the phono3py model (fc2, eps/Z*, dataset)"):
        ph3 = build_phono3py(data, [str(s) for s in data["symbols"]], settings["supercell_matrix"])
        natom = len(ph3.supercell)
        if not random:
            ph3.dataset = dataset
            cells = list(ph3.supercells_with_displacements)
    fit = {}
    if random:
        indices = range(len(dataset["displacements"]))
        if "fitted_snapshots" in settings:
            indices = first_snapshots(dataset["displacements"], settings["fitted_snapshots"])
        every = [f"supercell_{i + 1:04d}" for i in indices]
        labels, displacements, table, residual = snapshots_table(
            dataset["displacements"], natom, forces, residual_forces_allowed(ph3)
        )
        keep = [index for index, label in enumerate(labels) if label in every]
        labels, displacements, table = [labels[i] for i in keep], displacements[keep], table[keep]
        with phono3py_step("symfc's basis size"):
            fit = fit_size(ph3, cutoff)
        detail = f" with forces (of {len(every)})"
        if shortfall := fit_shortfall(fit, len(labels), cutoff, detail):
            raise ValueError(f"forces: {shortfall}")
        fit["snapshots_left_out"] = sorted(set(every) - set(labels))  # their scf failed: never fitted
        # how much was subtracted (eV/Angstrom per atom)
        norms = np.linalg.norm(residual, axis=1)
        fit["residual_force_max_ev_angstrom"] = float(norms.max())
        fit["residual_force_rms_ev_angstrom"] = float(np.sqrt(np.mean(norms**2)))
        with phono3py_step("the snapshots' harmonic and anharmonic parts"):
            fit |= snapshot_force_parts(ph3, displacements, table)
        cells = dataset["displacements"]
    else:
        table = forces_table(cells, natom, forces)
        labels = sorted(forces)
    start = time.perf_counter()
    with phono3py_step("fc3"):
        fc3 = produce_fc3_symfc(ph3, displacements, table, cutoff) if random else produce_fc3(ph3, table)
        if "triplets_within_angstrom" in settings:  # in place: fc3 is ph3.fc3, which the RTA takes
            fit["fc3_norm_fraction_zeroed"] = zero_fc3_beyond(ph3, fc3, settings["triplets_within_angstrom"])
        if settings.get("symmetrize_fc3"):
            fit["fc3_norm_fraction_symmetrized"] = symmetrize_fc3(ph3)
            fc3 = ph3.fc3
        write_fc3_to_hdf5(fc3, filename=FC3_FILE, p2s_map=ph3.primitive.p2s_map)
    print(f"fc3 {fc3.shape} from {len(labels)} supercells ({settings['fc3_method']})", flush=True)
    middle = time.perf_counter()
    with phono3py_step("RTA"):
        kappa = kappa_rta(ph3, settings["mesh"], settings["temperatures_k"], isotope=settings.get("isotope", False))
    end = time.perf_counter()
    kappa_file = kappa_filename(settings["mesh"])
    with open(kappa_file, "wb") as handle:
        handle.write(kappa)
    print(f"RTA on {'x'.join(map(str, settings['mesh']))}: {kappa_file}", flush=True)
    summary = {
        **settings,
        "phonon_supercell_matrix": np.asarray(data["supercell_matrix"], dtype=int).tolist(),
        "supercells_with_forces": len(labels),
        "supercells_in_dataset": len(cells),
        "fc3_shape": list(fc3.shape),
        **fit,
        "fc3_file": FC3_FILE,
        "kappa_file": kappa_file,
        "seconds_fc3": round(middle - start, 3),
        "seconds_rta": round(end - middle, 3),
        "phono3py_version": phono3py_version,
    }
    with open(SUMMARY_FILE, "w") as handle:
        json.dump(summary, handle, indent=1)
    return summary


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 1
    try:
        run(*argv)
    except ValueError as exc:  # the job's own checks of its inputs: the message names the problem
        print(f"{REFUSED}{exc}", flush=True)
        return 2
    except Phono3pyError as exc:
        traceback.print_exc()
        print(f"{FAILED}{exc}", flush=True)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
