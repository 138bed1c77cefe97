"""Si: symfc's fc3 from random snapshots against phono3py's finite differences on one 3x3x3 supercell, and
against experiment (marker ``production``; about 3 h on 2 cores).

    bash scripts/run_tests.sh -m production tests/aiida/test_lifetimes_silicon_production.py

What docs/lifetimes.md ("Si on a converged DFPT") reports, made again here on localhost:

* the production Si DFPT (LDA, k 8x8x8, q 4x4x4), as ``run_crystal.py fixtures/structures/Si_diamond.cif
  --protocol production --kpoints 8 8 8 --qpoints 4 4 4`` runs it (about 45 min);
* the two routes on the same supercell with the same pw.x settings (k at Gamma only in the 54 atoms, so that the
  supercells take minutes, not hours): 16 random snapshots and their opposites (seed 1206, 32 pw.x runs) fitted to
  every triplet of the supercell, against the 57 finite-displacement supercells of the pairs within 4.0 A (the
  third atom anywhere), both projected onto the sum rules, compared (``compare_fc3``);
* against experiment: 4 snapshots and their opposites (seed 1204) with k 2x2x2 in the supercell, fitted to every
  triplet (8 pw.x runs of about 10 min each).
"""

from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.production, pytest.mark.qe]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
#: the same supercell and RTA mesh for every run
COMMON = {
    "supercell_matrix": [3, 3, 3],
    "mesh": [19, 19, 19],
    "temperatures_k": [100.0, 200.0, 300.0, 400.0],
    "max_concurrent": 2,
}
#: the routes compared (at Gamma; the random fit to every triplet, no cut-off) and the run against experiment
ROUTES = {
    "random": {"fc3_method": "random", "number_of_snapshots": 16, "random_seed": 1206, "supercell_kpoints": [1, 1, 1]},
    "finite": {"cutoff_pair_distance_angstrom": 4.0, "supercell_kpoints": [1, 1, 1]},
}
EXPERIMENT = {"fc3_method": "random", "number_of_snapshots": 4, "random_seed": 1204, "supercell_kpoints": [2, 2, 2]}
#: the two routes on one supercell: "within a few %" (issue #21). Measured 2026-12-05 on the daemon profile:
#: +0.4 % (121.2 against 120.8 W/(m K)), the fc3 1.7 % apart
RTOL_ROUTES = 0.03
#: three-phonon RTA of an LDA fc3 against natural Si, whose isotopes lower it by a few %: within 20 %
RTOL_EXPERIMENT = 0.2


def _kappa_300(kappa_file) -> float:
    """kappa(300 K) in W/(m K) of a cubic crystal's kappa file: the mean of xx, yy, zz, which must agree."""
    from aiida_llpam.physics.lifetimes import read_kappa

    with kappa_file.open(mode="rb") as handle:
        rta = read_kappa(handle)
    diagonal = np.array([np.interp(300.0, rta.temperatures_k, rta.kappa_w_mk[:, i]) for i in range(3)])
    np.testing.assert_allclose(diagonal, diagonal.mean(), rtol=1e-3, atol=0)
    return float(diagonal.mean())


@pytest.fixture(scope="module")
def silicon(llpam_profile):
    """The random and the finite LifetimesWorkChain at Gamma, and the random one with k 2x2x2, on the DFPT."""
    from aiida.engine import run_get_node

    from aiida_llpam.cli.runs import run_crystal
    from aiida_llpam.workflows.lifetimes import LifetimesWorkChain

    dfpt = run_crystal(
        str(FIXTURES / "structures" / "Si_diamond.cif"), protocol="production", kpoints=[8, 8, 8], qpoints=[4, 4, 4]
    )
    assert dfpt.is_finished_ok, dfpt.exit_message
    options = {"resources": {"num_machines": 1, "num_mpiprocs_per_machine": 1}, "max_wallclock_seconds": 3600}
    runs = {}
    for route, parameters in (ROUTES | {"random_k222": EXPERIMENT}).items():
        builder = LifetimesWorkChain.get_builder_from_pam(dfpt, COMMON | parameters, options=options)
        builder.rta.metadata.options.resources = {"num_machines": 1, "num_mpiprocs_per_machine": 2}
        _, runs[route] = run_get_node(builder)
        assert runs[route].is_finished_ok, runs[route].exit_message
    return runs


@pytest.fixture(scope="module")
def routes(silicon):
    """The random fit against the finite differences (compare_fc3): the Dict of fc3_comparison."""
    from aiida_llpam.cli.rta import compare_fc3

    return compare_fc3(str(silicon["random"].pk), str(silicon["finite"].pk))


def test_random_and_finite_fc3_agree(routes):
    """symfc's fit to every triplet and phono3py's finite differences of the pairs within 4.0 A, both projected onto
    the sum rules, differ by a few % of the norm (measured: 1.7 %; most of it in the triplets beyond 3 A, where the
    elements are 1/60 of the first neighbours')."""
    assert routes["fc3_relative_difference"] < 0.03


def test_random_and_finite_fc3_agree_on_kappa(routes):
    """kappa(300 K) of the two routes on one supercell, the issue's "within a few %" (measured: 121.2 against
    120.8 W/(m K))."""
    at = routes["temperatures_k"].index(300.0)
    ratio = routes["ratio_perpendicular"][at]
    assert ratio == pytest.approx(routes["ratio_parallel"][at], rel=1e-3)  # cubic
    assert ratio == pytest.approx(1.0, abs=RTOL_ROUTES)


def test_the_random_fc3_against_experiment(silicon):
    """kappa(300 K) of the random snapshots with k 2x2x2 in the supercell, fitted to every triplet, against natural
    Si (about 150 W/(m K), fixtures/lifetimes/kappa_measured_silicon.json; measured 127.3, 0.85)."""
    import json

    measured = json.loads((FIXTURES / "lifetimes" / "kappa_measured_silicon.json").read_text())
    kappa = _kappa_300(silicon["random_k222"].outputs.kappa)
    assert kappa == pytest.approx(measured["perpendicular_w_mk"][0], rel=RTOL_EXPERIMENT)
