"""A non-hexagonal chiral crystal (alpha-cristobalite, P4_12_12, tetragonal) through PamWorkChain on the smoke protocol.

Marked ``extended`` (`-m extended`): about 8 minutes on 2 cores for a 12-atom Gamma DFPT with eps/Z*, while the
default run already takes other crystals through the whole workchain with real QE (quartz, Si, both enantiomers)
and from archives (GeO2), and must leave room for the scale-out tests.
"""

import numpy as np
import pytest

from .conftest import REPO

pytestmark = [pytest.mark.qe, pytest.mark.extended]


@pytest.fixture(scope="module")
def cristobalite_run(codes):
    from aiida import orm
    from aiida.engine import run_get_node
    from ase.io import read

    from aiida_llpam.workflows.pam import PamWorkChain

    structure = orm.StructureData(ase=read(REPO / "fixtures" / "structures" / "cristobalite_P41212.cif"))
    builder = PamWorkChain.get_builder_from_protocol(*codes, structure, protocol="smoke")
    _, node = run_get_node(builder)
    return node


def test_tetragonal_chiral_crystal_runs_to_its_outputs(cristobalite_run):
    from aiida_llpam.quantities import OUTPUTS

    node = cristobalite_run
    assert node.is_finished_ok, node.exit_message
    for name in (n for n, o in OUTPUTS.items() if not o.optional):
        assert name in node.outputs, name
    symmetry = node.outputs.symmetry.get_dict()
    assert symmetry["space_group_number"] == 92 and symmetry["point_group"] == "422" and symmetry["sohncke"]
    assert symmetry["enantiomorphic_partner"] == "P4_32_12"
    # point group 422: gamma^NL diagonal with xx = yy (a chiral crystal: nonzero)
    gamma = node.outputs.gamma_nl.get_array("gamma_nl")
    np.testing.assert_allclose(gamma[:, 0, 0], gamma[:, 1, 1], rtol=1e-4, atol=1e-12 * np.abs(gamma).max())
    assert np.abs(gamma[:, 2, 2]).max() > 0
    dispersion = node.outputs.dispersion
    assert dispersion.base.attributes.get("lattice").startswith("seekpath")
    labels = [label for _, label in dispersion.base.attributes.get("labels")]
    assert labels[0] == "Gamma" and "Z" in labels and "M" in labels
