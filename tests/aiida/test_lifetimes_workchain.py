"""LifetimesWorkChain on diamond Si with the real QE binaries: phono3py's supercells -> pw.x forces -> fc3 -> RTA
on the DFPT fc2 -> the lifetimes node, every file a node; its irreducible linewidths unfold onto a full-mesh RTA."""

import io

import h5py
import numpy as np
import pytest

pytestmark = pytest.mark.qe

MESH = [4, 4, 4]
TEMPERATURES = [100.0, 300.0, 600.0]


@pytest.fixture(scope="module")
def lifetimes_run(silicon_run):
    from aiida.engine import run_get_node

    from aiida_llpam.workflows.lifetimes import LifetimesWorkChain

    # the primitive cell as fc3 supercell: the smallest honest setting, one job at a time on the 2 cores
    parameters = {"supercell_matrix": [1, 1, 1], "mesh": MESH, "temperatures_k": TEMPERATURES, "max_concurrent": 1}
    builder = LifetimesWorkChain.get_builder_from_pam(silicon_run, parameters)
    _, node = run_get_node(builder)
    return node


def test_every_step_is_a_node_with_provenance(lifetimes_run, silicon_run):
    from aiida import orm

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
