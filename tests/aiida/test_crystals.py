"""Any crystal (issue #10): the PBE family and its cut-offs, and the achiral control (diamond Si, real QE)."""

import subprocess
import sys

import numpy as np
import pytest

from .conftest import REPO


def test_pbe_family_is_pbe_only_and_records_the_files_cut_offs(bare_profile):
    from aiida_pseudo.groups.family import CutoffsPseudoPotentialFamily

    from aiida_llpam.configure import PBE_FAMILY, PSEUDO_DIR, ensure_pseudo_family, upf_header

    family, _ = ensure_pseudo_family(PBE_FAMILY)  # Debian's files; no code needed
    assert isinstance(family, CutoffsPseudoPotentialFamily)
    assert {"Ge", "O", "Si"} <= set(family.elements)
    for pseudo in family.nodes:
        header = upf_header(PSEUDO_DIR / pseudo.filename)
        assert header["functional"] == "PBE", pseudo.filename
    # GeO2: the largest over Ge (17/69 Ry) and O (38/151 Ry), as the files' headers suggest
    assert family.get_recommended_cutoffs(elements=("Ge", "O"), unit="Ry") == (38.0, 151.0)


def test_upf_header_reads_both_header_styles_and_names_other_functionals():
    from aiida_llpam.configure import PSEUDO_DIR, upf_header

    assert upf_header(PSEUDO_DIR / "Ge.pbe-kjpaw.UPF") == {"functional": "PBE", "ecutwfc_ry": 17.0, "ecutrho_ry": 69.0}
    assert upf_header(PSEUDO_DIR / "Si.pz-vbc.UPF") == {"functional": "LDA", "ecutwfc_ry": None, "ecutrho_ry": None}
    assert upf_header(PSEUDO_DIR / "O.pbesol-n-kjpaw_psl.0.1.UPF")["functional"] == "SLA PW PSX PSC"  # PBEsol: not ours


@pytest.mark.qe  # the codes of the builder
def test_protocol_takes_cut_offs_from_a_family_that_records_them(codes, llpam_profile):
    from aiida import orm
    from ase.io import read

    from aiida_llpam.workflows.pam import PamWorkChain

    geo2 = orm.StructureData(ase=read(REPO / "fixtures" / "structures" / "GeO2_P3221.cif"))
    system = lambda b: b.scf.pw.parameters.get_dict()["SYSTEM"]  # noqa: E731
    builder = PamWorkChain.get_builder_from_protocol(
        *codes, geo2, protocol="fast", overrides={"pseudo_family": "llpam/PBE/debian"}
    )
    assert (system(builder)["ecutwfc"], system(builder)["ecutrho"]) == (38.0, 151.0)
    assert builder.scf.pw.pseudos["Ge"].filename == "Ge.pbe-kjpaw.UPF"
    builder = PamWorkChain.get_builder_from_protocol(
        *codes, geo2, protocol="fast", overrides={"pseudo_family": "llpam/PBE/debian", "ecutwfc": 50.0}
    )
    assert (system(builder)["ecutwfc"], system(builder)["ecutrho"]) == (50.0, 151.0)  # an override wins
    with pytest.raises(ValueError, match="no pseudopotential for Ge in the pseudo family llpam/LDA/debian"):
        PamWorkChain.get_builder_from_protocol(*codes, geo2, protocol="fast")
    quartz = orm.StructureData(ase=read(REPO / "fixtures" / "structures" / "quartz_P3221.cif"))
    builder = PamWorkChain.get_builder_from_protocol(*codes, quartz, protocol="fast")  # LDA: records none
    assert (system(builder)["ecutwfc"], system(builder)["ecutrho"]) == (30, 240)


def _largest_subspace_l(node) -> float:
    """Largest |l^z| (hbar) of a degenerate subspace on the stored mesh: the trace over the subspace, which is what
    is defined (a degenerate pair's per-mode values depend on the basis, e.g. +-1 for circular modes)."""
    from aiida_llpam.physics.degeneracy import subspace_labels

    modes = node.outputs.mesh_modes
    frequencies, l_z = modes.get_array("mesh_frequencies_thz"), modes.get_array("mesh_l_z_hbar")
    labels = subspace_labels(frequencies)
    traces = np.zeros(labels.shape)
    np.add.at(traces, (np.arange(len(labels))[:, None].repeat(labels.shape[1], axis=1), labels), l_z)
    return float(np.abs(traces).max())


@pytest.mark.qe
def test_achiral_silicon_runs_and_its_response_vanishes(silicon_run, smoke_run):
    """Inversion with time reversal makes l^z zero at every k and in every degenerate subspace (not only in the
    sum); quartz's is not."""
    from aiida.cmdline.utils.common import get_workchain_report

    from aiida_llpam.calculations.nodes import read_output

    assert silicon_run.is_finished_ok, silicon_run.exit_message
    symmetry = silicon_run.outputs.symmetry.get_dict()
    assert (symmetry["space_group_number"], symmetry["sohncke"], symmetry["centrosymmetric"]) == (227, False, True)
    assert symmetry["gamma_nl_form"]["independent"] == 0 and not symmetry["gamma_m_allowed"]
    assert "achiral, centrosymmetric: gamma^NL and gamma^M vanish by symmetry" in get_workchain_report(
        silicon_run, "REPORT"
    )

    l_si, l_quartz = _largest_subspace_l(silicon_run), _largest_subspace_l(smoke_run)
    assert l_quartz > 0.05 and l_si < 1e-8 * l_quartz
    gamma_si = np.abs(read_output(silicon_run.outputs.gamma_nl)["gamma_nl"]).max()
    gamma_quartz = np.abs(read_output(smoke_run.outputs.gamma_nl)["gamma_nl_zz"]).max()
    assert gamma_quartz > 0 and gamma_si < 1e-8 * gamma_quartz
    assert (
        np.abs(read_output(silicon_run.outputs.magnetization)["gamma_m"]).max()
        < 1e-8 * np.abs(read_output(smoke_run.outputs.magnetization)["gamma_m"]).max()
    )


@pytest.mark.qe
def test_show_and_table_say_the_silicon_response_is_zero_by_symmetry(silicon_run):
    from aiida.manage import get_manager

    from aiida_llpam.cli.table import ZERO_BY_SYMMETRY, run_row

    profile = get_manager().get_profile().name
    shown = subprocess.run(
        [sys.executable, "-c", "from aiida_llpam.cli import main; main()", "show", str(silicon_run.pk), "-p", profile],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert shown.returncode == 0, shown.stderr
    assert "symmetry: achiral, centrosymmetric: gamma^NL and gamma^M vanish by symmetry" in shown.stdout
    row = run_row(silicon_run, 300.0)
    assert row["zero_by_symmetry"] == ["gamma_nl_zz", "gamma_m"] and row["handedness"] == "achiral"
    listed = subprocess.run(
        [sys.executable, "-c", "from aiida_llpam.cli import main; main()", "table", "-p", profile],
        capture_output=True,
        text=True,
        timeout=600,
    )
    line = next(line for line in listed.stdout.splitlines() if line.split()[:1] == [str(silicon_run.pk)])
    assert line.count(ZERO_BY_SYMMETRY) == 2
