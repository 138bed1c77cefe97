"""The ph.x restart path keeps nmix_ph <= 5 (QE 6.7), driven step by step as aiida-quantumespresso tests its
handlers."""

import pytest


@pytest.fixture
def ph_workchain(bare_profile, aiida_code_installed):
    """A PhBaseWorkChain after setup with one failed PhCalculation (ERROR_CONVERGENCE_NOT_REACHED) as its child.

    Nothing runs: a ph code whose executable is never called is enough (no QE binary needed)."""
    from aiida import orm
    from aiida.common import LinkType
    from aiida.engine.utils import instantiate_process
    from aiida.manage import get_manager
    from aiida.plugins import CalculationFactory

    from aiida_llpam.workflows.ph_base import PhBaseWorkChain

    ph_code = aiida_code_installed(
        label="ph", default_calc_job_plugin="quantumespresso.ph", filepath_executable="/bin/true"
    )
    parent = orm.RemoteData(computer=ph_code.computer, remote_path="/tmp").store()
    qpoints = orm.KpointsData()
    qpoints.set_kpoints_mesh([1, 1, 1])
    inputs = {
        "ph": {
            "code": ph_code,
            "parent_folder": parent,
            "parameters": orm.Dict({"INPUTPH": {"nmix_ph": 4}}),
            "metadata": {"options": {"resources": {"num_machines": 1}}},
        },
        "qpoints": qpoints,
    }
    process = instantiate_process(get_manager().get_runner(), PhBaseWorkChain, **inputs)
    process.setup()
    process.validate_parameters()

    failed = orm.CalcJobNode(computer=ph_code.computer, process_type="aiida.calculations:quantumespresso.ph")
    failed.set_process_state("finished")
    failed.set_exit_status(CalculationFactory("quantumespresso.ph").exit_codes.ERROR_CONVERGENCE_NOT_REACHED.status)
    failed.base.links.add_incoming(parent, LinkType.INPUT_CALC, "parent_folder")
    failed.store()
    orm.RemoteData(computer=ph_code.computer, remote_path="/tmp").store().base.links.add_incoming(
        failed, LinkType.CREATE, "remote_folder"
    )
    return process, failed


def test_convergence_handler_never_exceeds_qe67_nmix(ph_workchain):
    from aiida_llpam.workflows.ph_base import MAX_NMIX_PH

    process, failed = ph_workchain
    inputph = process.ctx.inputs.parameters["INPUTPH"]
    report = process.handle_convergence_not_reached(failed)
    assert report.do_break and inputph["nmix_ph"] == MAX_NMIX_PH == 5
    assert process.ctx.restart_calc is failed
    # the second failure: alpha_mix is reduced (aiida-quantumespresso's strategy) and nmix_ph stays at 5
    report = process.handle_convergence_not_reached(failed)
    assert report.do_break and inputph["nmix_ph"] == 5
    assert inputph["alpha_mix(1)"] == pytest.approx(0.35)
    process.handle_convergence_not_reached(failed)
    assert inputph["nmix_ph"] == 5 and inputph["alpha_mix(1)"] == pytest.approx(0.175)


def _excepted(computer, exception: str):
    from aiida import orm

    node = orm.CalcJobNode(computer=computer, process_type="aiida.calculations:llpam.ph")
    node.set_process_state("excepted")
    node.set_exception(exception)
    return node.store()


@pytest.mark.parametrize(
    ("exception", "lost"),
    [
        # what aiida-core 2.9's launcher stores when a stopping worker cannot subscribe the process any more
        ("Traceback (most recent call last):\n ...\nkiwipy.exceptions.CommunicatorClosed\n", True),
        ("Traceback (most recent call last):\n ...\nKeyError: 'INPUTPH'\n", False),
    ],
)
def test_a_calculation_lost_by_a_stopping_worker_is_launched_again(ph_workchain, exception, lost):
    """Only an exception of the daemon worker's shutdown is retried; an exception of the calculation aborts."""
    from aiida_llpam.workflows.relaunch import lost_to_worker_shutdown

    process, failed = ph_workchain
    node = _excepted(failed.computer, exception)
    assert lost_to_worker_shutdown(node) is lost
    assert not lost_to_worker_shutdown(failed)  # finished (failed) calculations are the handlers' business
    process.ctx.children, process.ctx.iteration = [node], 1
    result = process.inspect_process()
    if lost:
        assert result is None and not process.ctx.is_finished  # the loop launches the same inputs again
    else:
        assert result == process.exit_codes.ERROR_SUB_PROCESS_EXCEPTED
