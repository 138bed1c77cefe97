"""The quartz lifetimes demonstration rerun from the production reference archive (marker ``production``).

    bash scripts/run_tests.sh -m production tests/aiida/test_lifetimes_production.py

The run behind the kappa file of fixtures/lifetimes/ (its README), made again: 207 pw.x force jobs (the
primitive cell, pairs up to 2 Angstrom), fc3 and phono3py's RTA on 12x12x8, then the response with the
lifetimes; about 80 min on 2 cores. The new kappa file must reproduce the committed one: the same inputs,
pw.x converged to 1e-12 Ry.
"""

import io
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.production, pytest.mark.qe]

REPO = Path(__file__).resolve().parents[2]


def test_quartz_lifetimes_reproduce_the_fixture(codes, tmp_path):
    from aiida import orm
    from aiida.tools.archive import import_archive

    from aiida_llpam.physics.lifetimes import Lifetimes

    import_archive(REPO / "fixtures" / "reference" / "quartz_production.aiida")
    runs = orm.QueryBuilder().append(orm.WorkChainNode, filters={"process_type": "aiida.workflows:llpam.pam"})
    finished = [run for run in runs.all(flat=True) if run.is_finished_ok and "dfpt" in run.inputs]
    pam = max(finished, key=lambda n: n.ctime)

    from aiida_llpam.cli.lifetimes import run_lifetimes

    pks = tmp_path / "pks"  # workflows/run_lifetimes.py PK --cutoff-pair-angstrom 2.0 --mesh 12 12 8 --pk-file F
    run_lifetimes(str(pam.pk), cutoff_pair_angstrom=2.0, mesh=[12, 12, 8], pk_file=pks)
    lifetimes_pk, run_pk = (int(line) for line in pks.read_text().split())
    lifetimes = orm.load_node(lifetimes_pk)
    assert lifetimes.is_finished_ok and orm.load_node(run_pk).is_finished_ok
    assert lifetimes.outputs.kappa.creator.process_type == "aiida.calculations:llpam.rta"  # a job, not in a worker
    ours = Lifetimes.from_kappa_hdf5(io.BytesIO(lifetimes.outputs.kappa.get_content(mode="rb")))
    fixture = Lifetimes.from_kappa_hdf5(REPO / "fixtures" / "lifetimes" / lifetimes.outputs.kappa.filename)
    np.testing.assert_allclose(ours.gamma_thz, fixture.gamma_thz, rtol=1e-3, atol=1e-6)
