"""LifetimesWorkChain on diamond Si with the real QE binaries: phono3py's supercells -> pw.x forces -> fc3 and RTA
(the job Phono3pyRtaCalculation) on the DFPT fc2 -> the lifetimes node, every file a node; its irreducible
linewidths unfold onto a full-mesh RTA. The refusals of the job's entry point (rta_job.py) without AiiDA or QE."""

import io
import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

MESH = [4, 4, 4]
TEMPERATURES = [100.0, 300.0, 600.0]


@pytest.fixture(scope="module")
def lifetimes_run(silicon_run):  # silicon_run runs QE: every test that uses it is marked qe
    from aiida.engine import run_get_node

    from aiida_llpam.workflows.lifetimes import LifetimesWorkChain

    # the primitive cell as fc3 supercell: the smallest honest setting, one job at a time on the 2 cores
    parameters = {"supercell_matrix": [1, 1, 1], "mesh": MESH, "temperatures_k": TEMPERATURES, "max_concurrent": 1}
    builder = LifetimesWorkChain.get_builder_from_pam(silicon_run, parameters)
    _, node = run_get_node(builder)
    return node


@pytest.mark.qe
def test_every_step_is_a_node_with_provenance(lifetimes_run, silicon_run):
    from aiida import orm

    from aiida_llpam.calculations.rta import Phono3pyRtaCalculation

    node = lifetimes_run
    assert node.is_finished_ok, node.exit_message
    dataset = node.outputs.dataset.get_dict()
    n_supercells = len(dataset["first_atoms"]) + sum(len(f.get("second_atoms", [])) for f in dataset["first_atoms"])
    forces = [c for c in node.called if c.process_label == "PwBaseWorkChain"]
    assert len(forces) == n_supercells > 1
    assert all(c.is_finished_ok for c in forces)
    # the forces came from the DFPT's own scf settings (pseudopotentials, cut-offs), with forces switched on
    scf = next(link.node for link in silicon_run.base.links.get_outgoing(link_label_filter="scf").all())
    ours = forces[0].inputs.pw.parameters.get_dict()
    assert ours["SYSTEM"]["ecutwfc"] == scf.inputs.pw.parameters["SYSTEM"]["ecutwfc"] and ours["CONTROL"]["tprnfor"]
    assert forces[0].inputs.pw.pseudos["Si"].uuid == scf.inputs.pw.pseudos["Si"].uuid
    # files as nodes: the dataset's yaml, fc3.hdf5, kappa-m444.hdf5; the lifetimes made from the kappa file
    assert node.outputs.disp_yaml.filename == "phono3py_disp.yaml"
    assert node.outputs.kappa.filename == "kappa-m444.hdf5"
    with node.outputs.fc3.open(mode="rb") as handle, h5py.File(handle) as fc3:
        assert fc3["fc3"].shape == (2, 2, 2, 3, 3, 3)  # compact: primitive x supercell x supercell
    assert node.outputs.lifetimes.creator.inputs.kappa.uuid == node.outputs.kappa.uuid
    assert isinstance(node.outputs.lifetimes.creator, orm.CalcFunctionNode)
    # fc3 and the RTA ran as a job (no daemon worker waits for them): its retrieved files, its outputs, its inputs
    (rta,) = [c for c in node.called if c.process_type == "aiida.calculations:llpam.rta"]
    assert isinstance(rta, orm.CalcJobNode) and rta.process_class is Phono3pyRtaCalculation and rta.is_finished_ok
    retrieved = set(rta.outputs.retrieved.base.repository.list_object_names())
    assert {"fc3.hdf5", "kappa-m444.hdf5", "rta.json", "aiida.out"} <= retrieved
    assert node.outputs.fc3.creator.uuid == rta.uuid and node.outputs.kappa.creator.uuid == rta.uuid
    assert rta.inputs.dataset.uuid == node.outputs.dataset.uuid
    assert rta.inputs.force_constants.uuid == silicon_run.outputs.force_constants.uuid
    assert {f.uuid for f in rta.inputs.forces.values()} == {c.outputs.output_trajectory.uuid for c in forces}
    summary = rta.outputs.summary.get_dict()
    assert summary["mesh"] == MESH and summary["temperatures_k"] == TEMPERATURES
    assert summary["supercells_with_forces"] == n_supercells and summary["fc3_shape"] == [2, 2, 2, 3, 3, 3]


@pytest.mark.qe
def test_linewidths_are_physical(lifetimes_run):
    lifetimes = lifetimes_run.outputs.lifetimes
    gamma = lifetimes.get_array("gamma_thz")  # (T, q, band)
    frequencies = lifetimes.get_array("frequencies_thz")
    assert gamma.shape == (3, *frequencies.shape)
    optical = frequencies > 1.0
    assert np.all(gamma[:, optical] > 0)
    # three-phonon widths grow with T (the occupations); above the Debye scale nearly linearly
    assert np.all(gamma[2][optical] > gamma[1][optical]) and np.all(gamma[1][optical] > gamma[0][optical])
    ratio = np.median(gamma[2][optical] / gamma[1][optical])
    assert 1.6 < ratio < 2.2, ratio


@pytest.mark.qe
def test_irreducible_linewidths_unfold_onto_a_full_mesh_rta(lifetimes_run, silicon_run):
    """phono3py's RTA on every grid point (no kappa star) against its RTA on the irreducible points, unfolded by the
    response's star matching, both from the stored fc3. A Gaussian of 0.1 THz, not the tetrahedron method, whose
    widths at symmetry-equivalent points differ on a coarse mesh (physics.third_order.kappa_rta)."""
    from phono3py.file_IO import read_fc3_from_hdf5

    from aiida_llpam.calculations.functions.phonopy_force_constants import stored_arrays
    from aiida_llpam.physics.lifetimes import Lifetimes
    from aiida_llpam.physics.third_order import build_phono3py, kappa_rta

    fc_node = silicon_run.outputs.force_constants

    def rta(every_grid_point):
        ph3 = build_phono3py(stored_arrays(fc_node), fc_node.base.attributes.get("symbols"), np.eye(3, dtype=int))
        with lifetimes_run.outputs.fc3.open(mode="rb") as handle:
            ph3.fc3 = read_fc3_from_hdf5(handle)
        kappa = kappa_rta(ph3, MESH, TEMPERATURES, every_grid_point=every_grid_point, sigma_thz=0.1)
        return ph3, Lifetimes.from_kappa_hdf5(io.BytesIO(kappa))

    ph3, irreducible = rta(False)
    _, full = rta(True)
    assert len(full.qpoints) == np.prod(MESH) > len(irreducible.qpoints)
    rotations = ph3.primitive_symmetry.pointgroup_operations
    unfolded = irreducible.linewidths_on(full.qpoints, MESH, rotations, TEMPERATURES, full.frequencies_thz)
    direct = np.moveaxis(full.gamma_thz, 0, -1)
    # to 3.3e-3 at most (measured): the full run's own spread inside a star (two star members unfold to the same
    # width but differ there), as an fc3 from finite displacements in a 2-atom cell is symmetric only to that
    # level. The widths of different stars differ by factors, so a point unfolded from a wrong star would be far off.
    np.testing.assert_allclose(unfolded, direct, rtol=1e-2, atol=1e-9)
    # without the point group most points belong to no stored star: the matching is what places them
    with pytest.raises(ValueError, match="is in no stored star"):
        irreducible.linewidths_on(full.qpoints, MESH, np.eye(3, dtype=int)[None], TEMPERATURES)
    assert np.ptp(direct[1:, 2, 1]) > 0.5 * direct[1:, 2, 1].max()  # LA widths over the zone (not Gamma)
    # and the stored file is phono3py's tetrahedron run on the irreducible points, read as the response reads it
    stored = Lifetimes.from_kappa_hdf5(io.BytesIO(lifetimes_run.outputs.kappa.get_content(mode="rb")))
    np.testing.assert_allclose(stored.qpoints, irreducible.qpoints)
    np.testing.assert_allclose(stored.frequencies_thz, irreducible.frequencies_thz, atol=1e-9)


@pytest.mark.qe
def test_a_missing_force_ends_the_job_with_the_refusal(lifetimes_run, silicon_run):
    """The job's refusal line reaches its exit code through the parser; nothing is stored."""
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_llpam.calculations.rta import Phono3pyRtaCalculation

    rta = next(c for c in lifetimes_run.called if c.process_type == "aiida.calculations:llpam.rta")
    forces = dict(rta.inputs.forces.items())
    dropped = sorted(forces)[-1]
    forces.pop(dropped)
    _, node = run_get_node(
        Phono3pyRtaCalculation,
        code=rta.inputs.code,
        force_constants=silicon_run.outputs.force_constants,
        dataset=rta.inputs.dataset,
        parameters=orm.Dict(rta.inputs.parameters.get_dict()),
        forces=forces,
    )
    assert node.exit_status == Phono3pyRtaCalculation.exit_codes.ERROR_INPUTS_REFUSED.status
    assert f"forces: none for {dropped} of the dataset" in node.exit_message
    assert not {"fc3", "kappa", "summary"} & set(node.outputs)


def _synthetic_inputs(folder, forces_of=None):
    """The four input files of rta_job for Si with a zero fc2 (no NAC): enough for its checks, not for physics.
    ``forces_of``: the labels to write forces for (default every supercell of the dataset)."""
    from aiida_llpam.physics.third_order import build_phono3py

    alat = 10.26  # bohr
    arrays = {
        "lattice_bohr": alat / 2 * np.array([[-1.0, 0, 1], [0, 1, 1], [-1, 1, 0]]),
        "positions_bohr": alat / 4 * np.array([[0.0, 0, 0], [1, 1, 1]]),
        "masses_amu": np.array([28.0855, 28.0855]),
        "supercell_matrix": np.eye(3, dtype=int),
        "force_constants": np.zeros((2, 2, 3, 3)),
    }
    ph3 = build_phono3py(arrays, ["Si", "Si"], np.eye(3, dtype=int))
    ph3.generate_displacements(distance=0.03)
    cells = ph3.supercells_with_displacements
    labels = [f"supercell_{i:04d}" for i, cell in enumerate(cells, start=1) if cell is not None]
    np.savez(folder / "force_constants.npz", symbols=np.array(["Si", "Si"]), **arrays)
    (folder / "dataset.json").write_text(json.dumps(ph3.dataset, default=lambda a: np.asarray(a).tolist()))
    np.savez(folder / "forces.npz", **{label: np.zeros((2, 3)) for label in (forces_of or labels)})
    return labels


@pytest.mark.parametrize(
    ("parameters", "forces_of", "message"),
    [
        (
            {"supercell_matrix": [1, 1, 1], "mesh": [4, 4, 4], "temperatures_k": [300.0]},
            ["supercell_0001"],
            "forces: none for supercell_0002 of the dataset",
        ),
        (
            {"supercell_matrix": [1, 1, 1], "mesh": [4, 4, 4], "temperatures_k": [300.0]},
            ["supercell_9999"],
            "forces: none for supercell_0001",
        ),
        (
            {"supercell_matrix": [1, 1, 1], "mesh": [4, 4], "temperatures_k": [300.0]},
            None,
            "mesh: three positive integers",
        ),
        (
            {"supercell_matrix": [1, 1, 1], "mesh": [4, 4, 4], "temperatures_k": [300.0], "sigma": 0.1},
            None,
            "sigma: unknown",
        ),
    ],
)
def test_the_job_refuses_bad_inputs_with_a_reason(tmp_path, parameters, forces_of, message):
    """rta_job.py as the job runs it (its own Python, no AiiDA): a REFUSED line, exit status 2, no outputs."""
    from aiida_llpam.calculations.rta_job import REFUSED

    _synthetic_inputs(tmp_path, forces_of)
    (tmp_path / "parameters.json").write_text(json.dumps(parameters))
    command = [
        sys.executable,
        "-m",
        "aiida_llpam.calculations.rta_job",
        "force_constants.npz",
        "dataset.json",
        "forces.npz",
        "parameters.json",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.returncode == 2, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith(REFUSED)]
    assert message in line
    assert not {"fc3.hdf5", "kappa-m444.hdf5", "rta.json"} & {path.name for path in tmp_path.iterdir()}


def test_the_rta_job_imports_no_aiida():
    """The entry point runs where no AiiDA profile is: importing it loads no aiida module."""
    code = "import sys, aiida_llpam.calculations.rta_job; print(any(m.split('.')[0] == 'aiida' for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.qe
@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"mesh": [4, 4, 4], "temperatures_k": [300.0]}, "supercell_matrix: missing"),
        (
            {"supercell_matrix": [1, 1, 0], "mesh": [4, 4, 4], "temperatures_k": [300.0]},
            "supercell_matrix: three integers",
        ),
        ({"supercell_matrix": [1, 1, 1], "mesh": [4, 4], "temperatures_k": [300.0]}, "mesh: three positive integers"),
        ({"supercell_matrix": [1, 1, 1], "mesh": [4, 4, 4], "temperatures_k": [-5.0]}, "temperatures_k: positive"),
        (
            {
                "supercell_matrix": [1, 1, 1],
                "mesh": [4, 4, 4],
                "temperatures_k": [300.0],
                "cutoff_pair_distance_angstrom": 0,
            },
            "cutoff_pair_distance_angstrom: a positive number of Angstrom",
        ),
        (
            {"supercell_matrix": [1, 1, 1], "mesh": [4, 4, 4], "temperatures_k": [300.0], "max_concurrent": 0},
            "max_concurrent: a positive integer",
        ),
        ({"supercell_matrix": [1, 1, 1], "mesh": [4, 4, 4], "temperatures_k": [300.0], "sigma": 0.1}, "sigma: unknown"),
    ],
)
def test_bad_parameters_are_refused_before_anything_runs(silicon_run, parameters, message):
    from aiida.engine import run_get_node

    from aiida_llpam.workflows.lifetimes import LifetimesWorkChain

    with pytest.raises(ValueError, match="parameters") as error:  # the builder validates as the input is set
        run_get_node(LifetimesWorkChain.get_builder_from_pam(silicon_run, parameters))
    assert message in str(error.value)
