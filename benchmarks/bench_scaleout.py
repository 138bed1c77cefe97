"""The same DFPT three ways, through the daemon on SLURM, and bare: what splitting the DFPT into jobs costs and gains.

    verdi -p llpam-daemon run benchmarks/bench_scaleout.py [--crystal si|quartz] [--mpiprocs 2] [--single-mpiprocs 1]

Needs the daemon profile (`python deploy/services.py up`, docs/scaleout.md). ``--crystal si`` (default): diamond Si
(fixtures/structures/Si_diamond.cif) at the smoke protocol's cut-offs, k 6x6x6, q 4x4x4; ``--crystal quartz``: the
fast protocol on the experimental cell. On one scf (pw.x through the daemon on SLURM) it runs, one after the other
so that they do not share the cores:

1. the single-job route: PhBaseWorkChain, one ph.x job with ``--single-mpiprocs`` MPI processes (default
   ``--mpiprocs``, the machine's cores);
2. the per-q-point route: PhQpointsWorkChain, one job per irreducible q point with one MPI process each, so that
   SLURM runs ``--mpiprocs`` of them at a time on the same cores;
3. the per-representation route: the same with ``split_representations``, one job per group of
   ``--representations-per-job`` representations, the electric field at Gamma first, one gathering run per q point;
4. unless ``--no-bare``: route 1's ph.x input run with ``mpirun`` in a copy of the scf directory, without AiiDA.

Prints the wall times measured in this run and their ratios, the time each job spends in AiiDA and SLURM outside
ph.x (CalcJob node life minus the job's run time in SLURM's own record) and, from the stored jobs' ph.x CPU times,
each route's core time, the core time it adds to the single job and its wall time on 1, 6 and enough nodes (the
critical path). Timings are never asserted.
"""

import argparse
import heapq
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import submit
from aiida.plugins import WorkflowFactory
from ase.io import read

import aiida_llpam
from aiida_llpam.calculations.ph import PH_PROCESS_TYPES
from aiida_llpam.calculations.ph_gather import split_job
from aiida_llpam.configure import SLURM_COMPUTER, mpirun_command
from aiida_llpam.workflows.pam import PamWorkChain
from aiida_llpam.workflows.pam_inputs import dfpt_inputs

# `verdi run` does not set __file__ to this script: find the repository next to the (editable) package
REPO = Path(aiida_llpam.__file__).resolve().parents[1]
STRUCTURES = REPO / "fixtures" / "structures"
#: --crystal -> (structure file, protocol, the k and q mesh (n x n x n) that replace the protocol's)
CRYSTALS = {
    "si": (STRUCTURES / "Si_diamond.cif", "smoke", {"kpoints": 6, "qpoints": 4}),
    # the experimental cell, not the vc-relaxed one the main job uses: this times ph.x, it makes no physics
    "quartz": (STRUCTURES / "quartz_P3221.cif", "fast", {}),
}
ROUTES = ("single job", "per q point", "per representation")
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


def waits_for(label: str, other: str) -> bool:
    """Whether the DFPT job ``label`` starts only after the job ``other`` has ended, as PhQpointsWorkChain runs
    them: every q job and setup after the listing job ``ph_init``; then the split route in barriers, every group of
    representations after every setup and every gathering run after every group. The single job waits for none."""
    if label in ("ph", "ph_init") or label == other:
        return False
    if other == "ph_init":
        return True
    mine, theirs = split_job(label), split_job(other)
    stage = {"setup": 0, "irr": 1, "gather": 2}
    return mine is not None and theirs is not None and stage[theirs[1]] < stage[mine[1]]


def schedule_s(jobs: dict[str, float], slots: int) -> float:
    """Wall time of the DFPT jobs ``{call label: seconds}`` on ``slots`` job slots (a node of the measured machine
    holds cores / processes-per-job of them): a job starts when every job it :func:`waits_for` has ended, longest
    first among those ready, on the slot that frees first. With enough slots this is the critical path."""
    ended: dict[str, float] = {}
    free = [0.0] * slots  # a heap of the times the slots become free
    waiting = dict(jobs)
    while waiting:
        ready = {
            label: max((end for done, end in ended.items() if waits_for(label, done)), default=0.0)
            for label in waiting
            if not any(waits_for(label, other) for other in waiting)
        }
        slot = heapq.heappop(free)
        label = min(ready, key=lambda name: (max(ready[name], slot), -waiting[name]))
        ended[label] = max(ready[label], slot) + waiting.pop(label)
        heapq.heappush(free, ended[label])
    return max(ended.values())


#: ph.x's last timing line, e.g. "PHONON       :  20m28.01s CPU  25m17.40s WALL" (rank 0's clocks)
PHONON_CLOCKS = re.compile(r"PHONON\s*:\s*(.+?)\s+CPU\s+(.+?)\s+WALL")


def qe_seconds(text: str) -> float:
    """Seconds of a QE clock reading such as "1h 5m", "20m28.01s" or "12.34s"."""
    units = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
    return sum(float(value) * units[unit] for value, unit in re.findall(r"([\d.]+)\s*([dhms])", text))


#: what a ph.x that stops after its set-up (the listing job, a setup) prints last of its clock
CPU_SO_FAR = re.compile(r"total cpu time spent up to now is\s+([\d.]+) secs")


def ph_cpu_s(calc) -> float:
    """ph.x's own CPU seconds of one process: the job's length on cores it has to itself, which, unlike its wall
    time, does not grow when other programs share the cores (as they did here). From its last PHONON line; a ph.x
    that stops after its set-up prints none, then its last "cpu time spent up to now", else SLURM's run time."""
    text = calc.outputs.retrieved.base.repository.get_object_content(calc.get_option("output_filename"), mode="r")
    if clocks := PHONON_CLOCKS.findall(text):
        return qe_seconds(clocks[-1][0])
    if so_far := CPU_SO_FAR.findall(text):
        return float(so_far[-1])
    return slurm_run_s(calc)


def route_jobs(dfpt) -> dict[str, tuple[float, int]]:
    """{call label: (ph.x CPU seconds per process, MPI processes)} of a stored DFPT's ph.x jobs (:func:`ph_cpu_s`);
    a job that was restarted counts with every attempt (their core time is spent)."""
    jobs = {}
    calls = (LinkType.CALL_WORK, LinkType.CALL_CALC)
    children = [link.node for link in dfpt.base.links.get_outgoing(link_type=calls).all()]
    for child in children:
        calcs = [child] if isinstance(child, orm.CalcJobNode) else calcjobs(child)
        calcs = [calc for calc in calcs if calc.process_type in PH_PROCESS_TYPES]
        if not calcs:
            continue
        label = child.base.links.get_incoming(link_type=calls).one().link_label
        label = label if label.startswith(("ph_init", "ph_q", "q")) else "ph"  # the single job's iteration_0<n>
        resources = calcs[0].get_option("resources")
        procs = resources.get("num_mpiprocs_per_machine") or calcs[0].computer.get_default_mpiprocs_per_machine()
        seconds = jobs.get(label, (0.0, procs))[0] + sum(map(ph_cpu_s, calcs))
        jobs[label] = (seconds, procs)
    return jobs


def report_routes(routes: dict[str, object], cores_per_node: int, nodes: tuple[int, ...] = (1, 6)):
    """Print, for each stored route, its jobs' total core time, the core time it adds to the single job, the wall time
    it took here and what it would take on ``nodes`` nodes of ``cores_per_node`` cores and on enough nodes (its
    critical path), all from the stored job times."""
    table = {name: route_jobs(node) for name, node in routes.items()}
    core = {name: sum(s * procs for s, procs in jobs.values()) for name, jobs in table.items()}
    widest = max(len(jobs) for jobs in table.values())
    print(f"\nfrom the stored jobs' ph.x CPU times, a node = {cores_per_node} cores as here:")
    header = "".join(f"{f'{n} node' + ('s' if n > 1 else ''):>11}" for n in (*nodes, widest))
    print(f"  {'route':<20}{'jobs':>5}{'core-h':>9}{'added':>8}{'here':>9}{header}   (wall, min)")
    for name, jobs in table.items():
        procs = max(p for _, p in jobs.values())
        durations = {label: s for label, (s, _) in jobs.items()}
        walls = [schedule_s(durations, n * max(1, cores_per_node // procs)) for n in (*nodes, widest)]
        added = core[name] / core["single job"] - 1 if "single job" in core else float("nan")
        print(
            f"  {name:<20}{len(jobs):>5}{core[name] / 3600:>9.2f}{added:>+8.0%}{life_s(routes[name]) / 60:>9.1f}"
            + "".join(f"{w / 60:>11.1f}" for w in walls)
        )
    print("  ('added': core time beyond the single job's: each job's start-up, wavefunction reading and, per q")
    print(f"  point, the bands; 'here': the workchain's life on this {cores_per_node}-core machine, queue included;")
    print(f"  the last column is the critical path, {widest} nodes or more)")


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
    parser.add_argument("--crystal", choices=sorted(CRYSTALS), default="si", help="si (default) or quartz")
    parser.add_argument("--kpoints", type=int, help="scf k mesh n x n x n (default: Si 6, quartz the protocol's)")
    parser.add_argument("--qpoints", type=int, help="ph.x q mesh n x n x n (default: Si 4, quartz the protocol's)")
    parser.add_argument("--mpiprocs", type=int, default=2, help="cores of the machine, used by each route (default 2)")
    parser.add_argument(
        "--single-mpiprocs",
        type=int,
        help="MPI processes of route 1 (default --mpiprocs); 1 makes its CPU time the core-time reference, free of "
        "the busy-waiting that MPI ranks count as CPU time",
    )
    parser.add_argument("--representations-per-job", type=int, default=3, help="route 3's group size (default 3)")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare ph.x run")
    parser.add_argument(
        "--stored",
        type=int,
        nargs=3,
        metavar=("SINGLE", "PER_Q", "SPLIT"),
        help="PKs of the three routes' DFPT workchains of an earlier run: report only",
    )
    parser.add_argument(
        "--scf", type=int, metavar="PK", help="a finished scf PwBaseWorkChain of these settings to reuse"
    )
    parser.add_argument(
        "--single", type=int, metavar="PK", help="with --scf: its single-job DFPT (PhBaseWorkChain), to reuse"
    )
    parser.add_argument("--computer", default=SLURM_COMPUTER)
    args = parser.parse_args()

    if args.stored:
        routes = dict(zip(ROUTES, (orm.load_node(pk) for pk in args.stored)))
        report_routes(routes, args.mpiprocs)
        return

    structure_file, protocol, defaults = CRYSTALS[args.crystal]
    structure = orm.StructureData(ase=read(structure_file))
    codes = [orm.load_code(f"{name}@{args.computer}") for name in ("pw", "ph", "q2r")]
    overrides = {}
    kpoints, qpoints = args.kpoints or defaults.get("kpoints"), args.qpoints or defaults.get("qpoints")
    if kpoints:
        overrides["kpoints"] = [kpoints] * 3
    if qpoints:
        overrides["ph_main"] = {"qpoints": [qpoints] * 3}

    def builder(mpiprocs):
        options = {
            "resources": {"num_machines": 1, "num_mpiprocs_per_machine": mpiprocs},
            "max_wallclock_seconds": 7200,
        }
        return PamWorkChain.get_builder_from_protocol(
            *codes, structure, protocol=protocol, overrides=overrides, options=options
        )

    single_procs = args.single_mpiprocs or args.mpiprocs
    wide = builder(args.mpiprocs)
    scf_inputs = {**wide.scf, "pw": {**wide.scf.pw, "structure": structure}}
    scf = wait(
        orm.load_node(args.scf) if args.scf else submit(WorkflowFactory("quantumespresso.pw.base"), **scf_inputs)
    )
    parent = scf.outputs.remote_folder
    mesh = wide.ph_main.qpoints.get_kpoints_mesh()[0]
    print(
        f"{args.crystal}, {protocol} protocol, q {mesh} on {args.computer}; scf PwBaseWorkChain<{scf.pk}>", flush=True
    )

    process, inputs = dfpt_inputs(builder(single_procs).ph_main, parent, parallelize_qpoints=False)
    single = wait(orm.load_node(args.single) if args.single else submit(process, **inputs))
    (single_calc,) = calcjobs(single)
    print(f"single job : PhBaseWorkChain<{single.pk}>     {life_s(single):7.1f} s  ({single_procs} MPI processes)")

    process, inputs = dfpt_inputs(builder(1).ph_main, parent, parallelize_qpoints=True)
    per_q = wait(submit(process, **inputs))
    jobs = calcjobs(per_q)
    n_qpoints = per_q.outputs.output_parameters["number_of_qpoints"]
    print(
        f"per q point: PhQpointsWorkChain<{per_q.pk}>  {life_s(per_q):7.1f} s  "
        f"({n_qpoints} q jobs + 1 listing job, 1 MPI process each, {args.mpiprocs} at a time)",
        flush=True,
    )

    process, inputs = dfpt_inputs(
        builder(1).ph_main, parent, parallelize_qpoints=True, representations_per_job=args.representations_per_job
    )
    split = wait(submit(process, **inputs))
    print(
        f"per repr.  : PhQpointsWorkChain<{split.pk}>  {life_s(split):7.1f} s  "
        f"({len(calcjobs(split))} jobs, {args.representations_per_job} representations each, 1 MPI process each)",
        flush=True,
    )

    print("\nratios measured in this run")
    cores = (
        f"{single_procs} of {args.mpiprocs} cores" if single_procs != args.mpiprocs else f"same {args.mpiprocs} cores"
    )
    print(f"  single job / per q point ({cores})        {life_s(single) / life_s(per_q):6.2f}")
    print(f"  single job / per representation ({cores}) {life_s(single) / life_s(split):6.2f}")
    if not args.no_bare:
        bare = bare_ph_s(single_calc, single_procs)
        print(f"  bare QE: mpirun -np {single_procs} ph.x, route 1's input, no AiiDA, no SLURM: {bare:.1f} s")
        print(f"  AiiDA + SLURM / bare, single job (workchain)     {life_s(single) / bare:6.2f}")
        print(f"  AiiDA + SLURM / bare, its CalcJob alone          {life_s(single_calc) / bare:6.2f}")
    all_jobs = [single_calc, *jobs, *calcjobs(split)]
    # a CalcJob's life = upload + SLURM queue (waiting for free cores) + run + the poll that sees it end + retrieve
    overheads = [life_s(job) - slurm_run_s(job) - slurm_queue_s(job) for job in all_jobs]
    print(
        f"  per job outside ph.x and the queue (upload, poll, retrieve, parse): mean "
        f"{sum(overheads) / len(overheads):.1f} s, min {min(overheads):.1f} s, max {max(overheads):.1f} s over "
        f"{len(overheads)} jobs"
    )
    report_routes(dict(zip(ROUTES, (single, per_q, split))), args.mpiprocs)
    print(f"\nreport again from the stored runs: --stored {single.pk} {per_q.pk} {split.pk}")


if __name__ == "__main__":
    main()
