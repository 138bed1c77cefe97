"""The same DFPT three ways, through the daemon on SLURM and bare: what q points in parallel, AiiDA and SLURM cost.

    verdi -p llpam-daemon run benchmarks/bench_scaleout.py [--kpoints 6] [--qpoints 4] [--mpiprocs 2]

Needs the daemon profile (`python deploy/services.py up`, docs/scaleout.md). Diamond Si
(fixtures/structures/Si_diamond.cif) at the smoke protocol's cut-offs, with a k mesh and a q mesh that make each q
point take seconds to a minute. On one scf (pw.x through the daemon on SLURM) it runs, one after the other so that
they do not share the cores:

1. the single-job route: PhBaseWorkChain, one ph.x job with ``--mpiprocs`` MPI processes;
2. the per-q-point route: PhQpointsWorkChain, one job per irreducible q point with one MPI process each, so that
   SLURM runs ``--mpiprocs`` of them at a time on the same cores;
3. bare QE: route 1's ph.x input run with ``mpirun -np <mpiprocs> ph.x`` in a copy of the scf directory.

Prints the wall times measured in this run and their ratios: per-q vs single job, AiiDA vs bare QE, the time each
job spends in AiiDA and SLURM outside ph.x (CalcJob node life minus the job's run time in SLURM's own record), and
what the per-q route would take on N nodes (its critical path is the slowest q point). Timings are never asserted.
"""

import argparse
import heapq
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from aiida import orm
from aiida.engine import submit
from aiida.plugins import WorkflowFactory
from ase.io import read

import aiida_llpam
from aiida_llpam.configure import SLURM_COMPUTER, mpirun_command
from aiida_llpam.workflows.pam import PamWorkChain
from aiida_llpam.workflows.pam_inputs import dfpt_inputs

# `verdi run` does not set __file__ to this script: find the repository next to the (editable) package
REPO = Path(aiida_llpam.__file__).resolve().parents[1]
SILICON = REPO / "fixtures" / "structures" / "Si_diamond.cif"
sys.path.insert(0, str(REPO))  # the host set-up deploy/ (not part of the package) reads SLURM's job record
from deploy.slurm import jobcomp_records


def wait(node, timeout_s=7200):
    """Wait for a submitted process; stop the benchmark if it fails."""
    deadline = time.monotonic() + timeout_s
    while not node.is_terminated:
        if time.monotonic() > deadline:
            raise SystemExit(f"{node.process_label}<{node.pk}> not done after {timeout_s} s")
        time.sleep(2)
    if not node.is_finished_ok:
        raise SystemExit(f"{node.process_label}<{node.pk}> failed: {node.exit_status} {node.exit_message}")
    return node


def life_s(node) -> float:
    return (node.mtime - node.ctime).total_seconds()


def slurm_record(calc) -> dict[str, datetime]:
    """Submit, start and end time of the job in SLURM's record (1 s resolution)."""
    (record,) = [r for r in jobcomp_records(calc.get_job_id()) if r["WorkDir"] == calc.get_remote_workdir()]
    return {key: datetime.fromisoformat(record[key]) for key in ("SubmitTime", "StartTime", "EndTime")}


def slurm_run_s(calc) -> float:
    """The job's run time in SLURM's record."""
    record = slurm_record(calc)
    return (record["EndTime"] - record["StartTime"]).total_seconds()


def slurm_queue_s(calc) -> float:
    """Time the job waited in SLURM's queue for free cores (submit to start)."""
    record = slurm_record(calc)
    return (record["StartTime"] - record["SubmitTime"]).total_seconds()


def calcjobs(node):
    return [n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)]


def makespan_s(durations: list[float], nodes: int) -> float:
    """Wall time of independent jobs on ``nodes`` identical nodes, longest first to the least loaded node."""
    loads = [0.0] * nodes
    for duration in sorted(durations, reverse=True):
        heapq.heapreplace(loads, loads[0] + duration)
    return max(loads)


def bare_ph_s(ph_calc, mpiprocs: int) -> float:
    """Run ``ph_calc``'s own input file in a copy of its scf directory, as its job script does (the computer's
    prepend text, e.g. one OpenBLAS thread per process, then mpirun) but without AiiDA and SLURM; wall seconds."""
    scf_dir = Path(ph_calc.inputs.parent_folder.get_remote_path())
    with tempfile.TemporaryDirectory(prefix="llpam-bench-") as tmp:
        work = Path(tmp)
        for name in ("out", "pseudo"):
            shutil.copytree(scf_dir / name, work / name)
        (work / "DYN_MAT").mkdir()
        (work / "aiida.in").write_text(ph_calc.base.repository.get_object_content("aiida.in", mode="r"))
        command = " ".join([*mpirun_command(str(mpiprocs)), "ph.x", "-in", "aiida.in", "> aiida.out"])
        script = f"{ph_calc.computer.get_prepend_text()}\n{command}\n"
        start = time.perf_counter()
        subprocess.run(["bash", "-c", script], cwd=work, check=True)
        elapsed = time.perf_counter() - start
        if "JOB DONE" not in (work / "aiida.out").read_text():
            raise SystemExit(f"bare ph.x did not finish: see {work / 'aiida.out'}")
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kpoints", type=int, default=6, help="scf k mesh n x n x n (default 6)")
    parser.add_argument("--qpoints", type=int, default=4, help="ph.x q mesh n x n x n (default 4)")
    parser.add_argument("--mpiprocs", type=int, default=2, help="cores used by each route (default 2)")
    parser.add_argument("--computer", default=SLURM_COMPUTER)
    args = parser.parse_args()

    structure = orm.StructureData(ase=read(SILICON))
    codes = [orm.load_code(f"{name}@{args.computer}") for name in ("pw", "ph", "q2r")]
    overrides = {"kpoints": [args.kpoints] * 3, "ph_main": {"qpoints": [args.qpoints] * 3}}

    def builder(mpiprocs):
        options = {
            "resources": {"num_machines": 1, "num_mpiprocs_per_machine": mpiprocs},
            "max_wallclock_seconds": 7200,
        }
        return PamWorkChain.get_builder_from_protocol(
            *codes, structure, protocol="smoke", overrides=overrides, options=options
        )

    wide = builder(args.mpiprocs)
    scf_inputs = {**wide.scf, "pw": {**wide.scf.pw, "structure": structure}}
    scf = wait(submit(WorkflowFactory("quantumespresso.pw.base"), **scf_inputs))
    parent = scf.outputs.remote_folder
    print(
        f"Si, smoke cut-offs, k {args.kpoints}^3, q {args.qpoints}^3 on {args.computer}; scf PwBaseWorkChain<{scf.pk}>"
    )

    process, inputs = dfpt_inputs(wide.ph_main, parent, parallelize_qpoints=False)
    single = wait(submit(process, **inputs))
    (single_calc,) = calcjobs(single)
    print(f"single job : PhBaseWorkChain<{single.pk}>     {life_s(single):7.1f} s  ({args.mpiprocs} MPI processes)")

    process, inputs = dfpt_inputs(builder(1).ph_main, parent, parallelize_qpoints=True)
    per_q = wait(submit(process, **inputs))
    jobs = calcjobs(per_q)
    n_qpoints = per_q.outputs.output_parameters["number_of_qpoints"]
    print(
        f"per q point: PhQpointsWorkChain<{per_q.pk}>  {life_s(per_q):7.1f} s  "
        f"({n_qpoints} q jobs + 1 listing job, 1 MPI process each, {args.mpiprocs} at a time)"
    )

    bare = bare_ph_s(single_calc, args.mpiprocs)
    print(f"bare QE    : mpirun -np {args.mpiprocs} ph.x       {bare:7.1f} s  (route 1's input, no AiiDA, no SLURM)")

    print("\nratios measured in this run")
    print(f"  single job / per q point (same {args.mpiprocs} cores)        {life_s(single) / life_s(per_q):6.2f}")
    print(f"  AiiDA + SLURM / bare, single job (workchain)     {life_s(single) / bare:6.2f}")
    print(f"  AiiDA + SLURM / bare, its CalcJob alone          {life_s(single_calc) / bare:6.2f}")
    all_jobs = [single_calc, *jobs]
    # a CalcJob's life = upload + SLURM queue (waiting for free cores) + run + the poll that sees it end + retrieve
    overheads = [life_s(job) - slurm_run_s(job) - slurm_queue_s(job) for job in all_jobs]
    mean = sum(overheads) / len(overheads)
    print(
        f"  per job outside ph.x and the queue (upload, poll, retrieve, parse): mean {mean:.1f} s, "
        f"min {min(overheads):.1f} s, max {max(overheads):.1f} s over {len(overheads)} jobs"
    )
    queued = [slurm_queue_s(job) for job in jobs]
    print(f"  per-q jobs waiting in SLURM's queue for a free core: mean {sum(queued) / len(queued):.0f} s")

    q_runs = [slurm_run_s(job) for job in jobs if job.inputs.parameters["INPUTPH"].get("start_irr") != 0]
    listing = [slurm_run_s(job) for job in jobs if job.inputs.parameters["INPUTPH"].get("start_irr") == 0]
    print(
        f"\nper-q jobs in SLURM's record: {len(q_runs)} q points, {min(q_runs):.0f}-{max(q_runs):.0f} s each "
        f"(1 MPI process), listing job {sum(listing):.0f} s"
    )
    print("estimate on N nodes, each running one q job at a time (listing + longest-first schedule + mean overhead):")
    for nodes in sorted({1, 2, 4, len(q_runs)}):
        estimate = sum(listing) + makespan_s(q_runs, nodes) + 2 * mean
        print(f"  N = {nodes:2d}: {estimate:7.1f} s")
    print(f"  critical path (N >= {len(q_runs)}): the slowest q point, {max(q_runs):.0f} s")


if __name__ == "__main__":
    main()
