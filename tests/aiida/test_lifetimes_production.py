"""The quartz supercell lifetimes' fc3 fit and RTA run again from the stored forces (marker ``production``).

    bash scripts/run_tests.sh -m production tests/aiida/test_lifetimes_production.py

The `llpam.rta` job of fixtures/lifetimes/quartz_supercell_lifetimes.aiida (its README) made again on this
machine from its own inputs: symfc's fit of fc3 to the 97 stored force sets, then phono3py's RTA on 16x16x12 at
17 temperatures; about 11 min on 2 cores. The new linewidths and kappa must reproduce the committed ones: the
fit and the RTA are deterministic up to the order of OpenMP sums.
"""

import io
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.production, pytest.mark.qe]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def test_the_supercell_rta_is_reproduced_from_its_stored_forces(llpam_profile):
    from aiida import orm
    from aiida.engine import run_get_node
    from aiida.tools.archive import import_archive

    from aiida_llpam.physics.lifetimes import Lifetimes, read_kappa
    from aiida_llpam.queries import response_lifetimes

    import_archive(FIXTURES / "lifetimes" / "quartz_supercell_lifetimes.aiida")
    runs = orm.QueryBuilder().append(orm.WorkChainNode, filters={"process_type": "aiida.workflows:llpam.pam"})
    (response,) = [run for run in runs.all(flat=True) if "lifetimes" in run.inputs.response]
    _, stored = response_lifetimes(response)
    builder = stored.creator.get_builder_restart()
    builder.code = orm.load_code("llpam-response@localhost")
    builder.metadata.options.resources = {"num_machines": 1, "num_mpiprocs_per_machine": 2}
    _, job = run_get_node(builder)
    assert job.is_finished_ok, job.exit_message

    def read(kappa):
        content = kappa.get_content(mode="rb")
        return Lifetimes.from_kappa_hdf5(io.BytesIO(content)), read_kappa(io.BytesIO(content)).kappa_w_mk

    (ours, kappa), (theirs, kappa_stored) = read(job.outputs.kappa), read(stored)
    np.testing.assert_allclose(ours.gamma_thz, theirs.gamma_thz, rtol=1e-3, atol=1e-6 * theirs.gamma_thz.max())
    np.testing.assert_allclose(kappa, kappa_stored, rtol=1e-3, atol=1e-6 * np.abs(kappa_stored).max())
