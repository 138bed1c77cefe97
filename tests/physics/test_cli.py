"""The profile-free CLI: `aiida-llpam modes` and `aiida-llpam response` as users run them."""

import json
import subprocess
import sys

import numpy as np
import pytest

from aiida_llpam.physics import compute_response
from aiida_llpam.physics.sum_rules import enforce_rotational_invariance

from .conftest import QUARTZ

FC = str(QUARTZ / "quartz.fc")
NAC = str(QUARTZ / "quartz_rigid.fc")


def run(*args):
    return subprocess.run(
        [sys.executable, "-c", "from aiida_llpam.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_modes_json():
    out = run("modes", "--fc", FC, "--nac-fc", NAC, "--q", "0 0 0.091", "--q", "0.1 0.2 0.3", "--json")
    assert out.returncode == 0, out.stderr
    records = json.loads(out.stdout)
    assert [r["q"] for r in records] == [[0, 0, 0.091], [0.1, 0.2, 0.3]]
    for r in records:
        assert set(r) == {"q", "frequencies_thz", "l_z_hbar", "group_velocity_z_m_s"}
        assert len(r["frequencies_thz"]) == 27 and np.all(np.diff(r["frequencies_thz"]) >= 0)
        assert abs(sum(r["l_z_hbar"])) < 1e-8
    # the lowest branch along Gamma-A of a chiral crystal is strongly circular
    assert abs(records[0]["l_z_hbar"][0]) > 0.5


def test_modes_table():
    out = run("modes", "--fc", FC, "--q", "0 0 0.25")
    assert out.returncode == 0, out.stderr
    assert "l_z (hbar)" in out.stdout and len(out.stdout.splitlines()) == 2 + 27


def test_response_json_matches_engine(quartz):
    out = run(
        "response",
        "--fc",
        FC,
        "--nac-fc",
        NAC,
        "--mesh",
        "4",
        "4",
        "4",
        "-T",
        "100",
        "-T",
        "300",
        "-r",
        "20e-9",
        "-r",
        "1e-12",
        "--tau",
        "1e-11",
        "--grad-t",
        "1e4",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    for key in (
        "gamma_nl",
        "chi_diagonal",
        "chi_offdiagonal_interband",
        "chi_offdiagonal_pair",
        "chi_zero_point",
        "r_paper_m",
        "gamma_ll",
        "eta",
        "eta_paper",
        "pam_density_bare",
        "pam_density_total",
        "gamma_m",
        "magnetization_bare",
        "chi_ml_total",
        "magnetization_total",
    ):
        assert key in data and key in data["units"], key
    assert data["settings"]["temperatures_k"] == [100.0, 300.0] and data["settings"]["radii_m"] == [20e-9, 1e-12]
    assert np.array(data["gamma_ll"]).shape == (2, 2)
    assert np.array(data["gamma_nl"]).shape == (2, 3, 3)
    # the command applies the rotational sum rules unless --no-sum-rules, and so must the reference (an atol of
    # 1e-8 hid a 3 % difference in chi_diagonal when the reference left them out)
    ref = compute_response(enforce_rotational_invariance(quartz)[0], (4, 4, 4), [100, 300], [20e-9, 1e-12], 1e-11, 1e4)
    # JSON keeps every digit: to rounding, with atol 1e-12 of the largest value (kg/m and J s K^-1 m^-2 are ~1e-17)
    for actual, desired in ((data["chi_diagonal"], ref.chi_diagonal), (data["gamma_nl"], ref.gamma_nl)):
        np.testing.assert_allclose(actual, desired, rtol=1e-12, atol=1e-12 * np.abs(desired).max())
    assert data["eta_paper"][1][1] is None  # gamma_LL > 1 at r = 1 pm: the paper's eta is null, never negative
    assert 0 < data["eta"][1][1] < 1  # the free sample's eta stays in (0, 1]


@pytest.mark.parametrize(
    "args, message",
    [
        (["modes", "--fc", "/nonexistent.fc", "--q", "0 0 0"], "no such file"),
        (["modes", "--fc", __file__, "--q", "0 0 0"], "not a q2r.x force-constant file"),
        (["modes", "--fc", NAC, "--q", "0 0 0"], "dipole"),
        (["modes", "--fc", FC, "--q", "0 0"], "three numbers"),
        (
            [
                "response",
                "--fc",
                FC,
                "--mesh",
                "0",
                "4",
                "4",
                "-T",
                "300",
                "-r",
                "1e-8",
                "--tau",
                "1e-11",
                "--grad-t",
                "1",
            ],
            "mesh",
        ),
        (
            [
                "response",
                "--fc",
                FC,
                "--mesh",
                "4",
                "4",
                "4",
                "-T",
                "-5",
                "-r",
                "1e-8",
                "--tau",
                "1e-11",
                "--grad-t",
                "1",
            ],
            "temperature",
        ),
        (
            [
                "response",
                "--fc",
                FC,
                "--mesh",
                "4",
                "4",
                "4",
                "-T",
                "300",
                "-r",
                "0",
                "--tau",
                "1e-11",
                "--grad-t",
                "1",
            ],
            "radius",
        ),
        (
            ["response", "--fc", FC, "--mesh", "4", "4", "4", "-T", "300", "-r", "1e-8", "--tau", "0", "--grad-t", "1"],
            "tau",
        ),
        (
            [
                "response",
                "--fc",
                FC,
                "--mesh",
                "1000",
                "1000",
                "1000",
                "-T",
                "300",
                "-r",
                "1e-8",
                "--tau",
                "1e-11",
                "--grad-t",
                "1",
            ],
            "1e+09 k points",
        ),
    ],
)
def test_bad_input_is_one_line_error(args, message):
    out = run(*args)
    assert out.returncode != 0
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], out.stderr


def test_modes_apply_the_workflows_sum_rules_unless_told_not_to():
    """Next to Gamma along c the ASR-only model of the fixture has its imaginary TA pocket (THEORY 8)."""
    lowest = {}
    for flag in ("--sum-rules", "--no-sum-rules"):
        out = run("modes", "--fc", FC, "--nac-fc", NAC, "--q", "0 0 0.01", "--json", flag)
        assert out.returncode == 0, out.stderr
        lowest[flag] = json.loads(out.stdout)[0]["frequencies_thz"][0]
    assert lowest["--no-sum-rules"] < -0.05 < 0 < lowest["--sum-rules"]
