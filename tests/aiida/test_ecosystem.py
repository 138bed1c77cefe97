"""Our force constants are aiida-phonopy's ForceConstantsData: phonopy objects and aiida-phonopy's own calculation
take them as they are and give our frequencies (issue #10, ecosystem-native data)."""

import numpy as np
import pytest

pytestmark = pytest.mark.qe  # the smoke run (real pw.x, ph.x, q2r.x)

#: fractional q: a general point, a zone-boundary point, and one next to Gamma where the NAC term matters
QPOINTS = [[0.1, 0.2, 0.3], [0.5, 0.0, 0.0], [0.0, 0.0, 0.01]]


@pytest.fixture(scope="module")
def force_constants(smoke_run):
    return smoke_run.outputs.force_constants


def _ours(node):
    from aiida_llpam.calculations.functions.phonopy_force_constants import phonopy_from_node

    phonon = phonopy_from_node(node)
    phonon.run_qpoints(QPOINTS)
    return phonon


def test_output_is_aiida_phonopy_force_constants_data_in_its_units(force_constants, smoke_run):
    from aiida_phonopy.data import ForceConstantsData

    assert isinstance(force_constants, ForceConstantsData) and force_constants.has_nac_parameters()
    np.testing.assert_allclose(force_constants.cell, smoke_run.outputs.structure.cell, atol=1e-5)  # Angstrom
    assert force_constants.symbols == ["Si"] * 3 + ["O"] * 6
    assert force_constants.base.attributes.get("units")["force_constants"] == "eV/Angstrom^2"
    # the stored IFCs are ours (Ry/bohr^2) times 13.6057 / 0.529177^2 = 48.59
    ours = _ours(force_constants).force_constants
    np.testing.assert_allclose(force_constants.force_constants, ours * 13.605693 / 0.529177**2, rtol=1e-5, atol=1e-9)


def test_get_phonopy_instance_gives_our_frequencies(force_constants):
    """aiida-phonopy's phonopy object (eV, Angstrom, its NAC factor) against ours (Ry, bohr, QE's), NAC included."""
    theirs = force_constants.get_phonopy_instance()
    theirs.run_qpoints(QPOINTS)
    ours = _ours(force_constants).qpoints.frequencies
    assert np.abs(ours).max() > 1.0  # THz: a real spectrum, not zeros
    np.testing.assert_allclose(theirs.qpoints.frequencies, ours, atol=1e-6)


def test_phonopy_calculation_of_aiida_phonopy_takes_our_node(force_constants):
    """aiida-phonopy's PhonopyCalculation runs the phonopy script on our node (real run, a few seconds)."""
    from aiida import orm
    from aiida.engine import run_get_node
    from aiida.plugins import CalculationFactory

    builder = CalculationFactory("phonopy.phonopy").get_builder()
    builder.code = orm.load_code("phonopy@localhost")
    builder.force_constants = force_constants
    builder.parameters = orm.Dict({"QPOINTS": [x for q in QPOINTS for x in q]})  # written as one flat list
    builder.metadata.options.resources = {"num_machines": 1, "num_mpiprocs_per_machine": 1}
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    np.testing.assert_allclose(results["qpoints"].get_bands(), _ours(force_constants).qpoints.frequencies, atol=1e-5)
