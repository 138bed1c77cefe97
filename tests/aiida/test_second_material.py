"""The second chiral material (issue #10): alpha-GeO2 in both enantiomers, from its committed archive.

fixtures/reference/GeO2_fast.aiida holds the right-handed run (PBE, fast protocol, its own DFPT), the
left-handed one made from the mirrored ph.x files, and the run that made the DFPT (README there).
"""

import numpy as np
import pytest

from .test_reference_archive import REFERENCE, cli, import_runs

ARCHIVE = REFERENCE / "GeO2_fast.aiida"


@pytest.fixture(scope="module")
def enantiomers():
    """(right, left) finished PamWorkChains of GeO2, in a profile that also holds the quartz production run."""
    import_runs(REFERENCE / "quartz_production.aiida", "side-by-side")
    runs = {
        node.outputs.symmetry["space_group_number"]: node
        for node in import_runs(ARCHIVE, "side-by-side")
        if node.is_finished_ok and "symmetry" in node.outputs and node.outputs.symmetry["formula"] == "Ge3O6"
    }
    return runs[154], runs[152]


def test_both_enantiomers_with_their_relation(enantiomers):
    right, left = enantiomers
    assert right.outputs.symmetry["handedness"] == "right" and left.outputs.symmetry["handedness"] == "left"
    assert left.base.extras.get("enantiomer_of") == {
        "structure_uuid": right.outputs.structure.uuid,
        "operation": "mirror z -> -z",
    }
    mirrored = left.inputs.dfpt.creator
    assert mirrored.process_label == "mirror_dfpt_z"
    from aiida_llpam.queries import dfpt_retrieved, run_settings

    assert mirrored.inputs.retrieved.uuid == dfpt_retrieved(right).uuid  # one ph.x run, both enantiomers
    settings = run_settings(right)
    assert (settings["ecutwfc_ry"], settings["ecutrho_ry"]) == (38.0, 151.0)  # the PBE family's cut-offs
    assert settings["relaxed"] and settings["protocol"] == "fast"


def test_gamma_nl_flips_with_the_enantiomer_and_chi_does_not(enantiomers):
    from aiida_llpam.calculations.nodes import read_output

    right, left = (read_output(node.outputs.gamma_nl) for node in enantiomers)
    assert np.abs(right["gamma_nl_zz"]).max() > 1e-20
    # exact but for the sum rules' least-squares solve (test_enantiomers.py): 1e-5 of the largest component
    np.testing.assert_allclose(
        left["gamma_nl"], -right["gamma_nl"], rtol=1e-4, atol=1e-5 * np.abs(right["gamma_nl"]).max()
    )
    chi_right, chi_left = (node.outputs.chi.get_array("chi_total") for node in enantiomers)
    np.testing.assert_allclose(chi_left, chi_right, rtol=1e-5)


def test_force_constants_are_aiida_phonopy_data(enantiomers):
    from aiida_phonopy.data import ForceConstantsData

    for node in enantiomers:
        fc = node.outputs.force_constants
        assert isinstance(fc, ForceConstantsData) and fc.symbols == ["Ge"] * 3 + ["O"] * 6
        phonon = fc.get_phonopy_instance()
        phonon.run_qpoints([[0.0, 0.0, 0.5]])
        assert phonon.qpoints.frequencies.min() > -1e-3  # THz: no imaginary mode at A


def test_show_figures_and_table_side_by_side_with_quartz(enantiomers, tmp_path):
    for node in enantiomers:
        out = cli("show", str(node.pk))
        assert out.returncode == 0, out.stderr
        assert "symmetry: chiral (Sohncke): gamma^NL allowed in xx, yy, zz (2 independent; xx = yy)" in out.stdout
        assert ", 0 imaginary modes" in out.stdout and "WARNING" not in out.stdout
        figures = cli("figures", str(node.pk), "-o", str(tmp_path / str(node.pk)))
        assert figures.returncode == 0, figures.stderr
        assert len(list((tmp_path / str(node.pk)).glob("*.png"))) == 12
    table = cli("table")
    assert table.returncode == 0, table.stderr
    rows = {line.split()[1]: line for line in table.stdout.splitlines()[1:] if line.split()[:1] != ["units:"]}
    assert {"O6Si3", "Ge3O6"} <= set(rows)
    handedness = sorted(line.split()[4] for line in table.stdout.splitlines() if "Ge3O6" in line)
    assert handedness == ["left", "right"]
