"""The RTA jobs of finished lifetimes: what ``workflows/rerun_rta.py``, ``compare_fc3.py`` and
``check_supercell_kpoints.py`` do.

:func:`rerun_rta` the fc3 + RTA job of a LifetimesWorkChain again on another mesh, cut-off, number of snapshots,
fc2 or scattering, :func:`compare_fc3` two fc3 of one supercell and their kappa, :func:`check_supercell_kpoints`
the supercell forces on a denser k mesh. The new nodes link back to the stored ones. Each runs in this interpreter
and ends the process with the reason (``sys.exit``) when refused or when the run failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from aiida import orm
from aiida.engine import run_get_node

from aiida_llpam.calculations.functions import fc3_comparison
from aiida_llpam.calculations.rta_job import rta_settings

from .redo import load_force_constants, outcome_line


def _other_crystal(first: orm.ArrayData, second: orm.ArrayData) -> str | None:
    """How the crystal of one force-constants node differs from another's (cell, atoms, masses, to 1e-6 bohr or
    amu), or None when it is the same."""
    from aiida_llpam.calculations.functions.phonopy_force_constants import stored_arrays

    a, b = stored_arrays(first), stored_arrays(second)
    for name in ("lattice_bohr", "positions_bohr", "masses_amu"):
        if a[name].shape != b[name].shape or not np.allclose(a[name], b[name], rtol=0, atol=1e-6):
            return f"another {name.split('_')[0]}"
    return None


def load_lifetimes(identifier: str) -> orm.WorkChainNode:
    """The LifetimesWorkChain ``identifier`` (PK or UUID), finished or not; exits when it is another node."""
    node = orm.load_node(identifier)
    if not (isinstance(node, orm.WorkChainNode) and node.process_label == "LifetimesWorkChain"):
        sys.exit(f"{identifier}: not a LifetimesWorkChain")
    return node


def _last_rta(lifetimes: orm.WorkChainNode) -> orm.CalcJobNode | None:
    """The last fc3 + RTA job the LifetimesWorkChain ``lifetimes`` submitted (the one whose kappa and lifetimes it
    returns), or None before it submitted one."""
    jobs = lifetimes.base.links.get_outgoing(link_label_filter="rta").all()
    return jobs[-1].node if jobs else None


def rerun_rta(
    pk: str,
    mesh=None,
    cores: int | None = None,
    cutoff_pair_angstrom: float | None = None,
    fitted_snapshots: int | None = None,
    force_constants: str | None = None,
    isotope: bool | None = None,
    triplets_within_angstrom: float | None = None,
    symmetrize: bool | None = None,
) -> orm.CalcJobNode:
    """The fc3 + RTA job of the LifetimesWorkChain ``pk`` again, on another ``mesh`` (default its own) or, for
    random snapshots, with symfc's fc3 fitted to triplets within ``cutoff_pair_angstrom`` or to the first
    ``fitted_snapshots`` snapshots (and their opposites): the same forces and temperatures (the convergence of kappa
    and of the lifetimes in the mesh, the cut-off and the snapshots). ``force_constants`` (a PamWorkChain or its
    force-constants node, of the same crystal) replaces the fc2 and eps/Z*: what the harmonic model does to kappa
    with the same fc3. ``isotope`` true: with the scattering by the natural isotope mix too (what it adds to the
    three-phonon widths, and takes from kappa); false: without it; None: as the job was.
    ``triplets_within_angstrom``: the fc3, of either route, zeroed on every triplet with a pair farther apart
    (:func:`~aiida_llpam.physics.third_order.zero_fc3_beyond`): kappa of the triplets that a finite-displacement and
    a random route both hold (:func:`compare_fc3`). ``symmetrize``: with (true) or without (false) symfc's
    projection of the fc3 made and cut onto its symmetry and sum rules (None: as the job was). ``cores``: its
    OpenMP threads (default the computer's processes per machine). Returns the job; exits when it failed or is
    refused."""
    from aiida_llpam.calculations.rta import Phono3pyRtaCalculation

    node = load_lifetimes(pk)
    rta = _last_rta(node)
    if rta is None:
        sys.exit(f"{pk}: its fc3 + RTA job has not been submitted yet")
    parameters = rta.inputs.parameters.get_dict()
    if mesh is not None:
        parameters["mesh"] = [int(n) for n in mesh]
    refit = {"cutoff_pair_distance_angstrom": cutoff_pair_angstrom, "fitted_snapshots": fitted_snapshots}
    refit = {key: value for key, value in refit.items() if value is not None}
    if refit and parameters.get("fc3_method", "finite") != "random":
        sys.exit(
            f"{pk}: its supercells are finite displacements, generated for their own cut-off; "
            "only a fit to random snapshots takes another cut-off or fewer snapshots"
        )
    parameters |= refit
    for flag, value in (("isotope", isotope), ("symmetrize_fc3", symmetrize)):
        if value is not None:  # true, or absent as rta_settings stores false
            parameters.pop(flag, None)
            if value:
                parameters[flag] = True
    if triplets_within_angstrom is not None:
        parameters["triplets_within_angstrom"] = triplets_within_angstrom
    fc2 = rta.inputs.force_constants
    if force_constants is not None:
        fc2, _ = load_force_constants(force_constants)
        if difference := _other_crystal(fc2, rta.inputs.force_constants):
            sys.exit(f"{force_constants}: {difference} than the fc2 the forces of {pk} were fitted with")
    if parameters == rta.inputs.parameters.get_dict() and fc2.uuid == rta.inputs.force_constants.uuid:
        sys.exit(
            f"{pk}: give another --mesh, --cutoff-pair-angstrom, --snapshots, --force-constants, --isotope, "
            "--triplets-within-angstrom or --symmetrize-fc3 than its RTA's"
        )
    builder = Phono3pyRtaCalculation.get_builder()
    builder.code = rta.inputs.code
    builder.force_constants = fc2
    builder.dataset = rta.inputs.dataset
    builder.forces = dict(rta.inputs.forces.items())
    builder.parameters = orm.Dict(parameters)
    cores = cores or rta.inputs.code.computer.get_default_mpiprocs_per_machine() or 1
    builder.metadata.options.resources = {"num_machines": 1, "num_mpiprocs_per_machine": cores}
    setting = "x".join(map(str, parameters["mesh"]))
    if "cutoff_pair_distance_angstrom" in parameters:  # symfc's triplets, or the finite dataset's displaced pairs
        within = "fc3" if parameters.get("fc3_method") == "random" else "displaced pairs"
        setting += f", {within} within {parameters['cutoff_pair_distance_angstrom']:g} Angstrom"
    if "fitted_snapshots" in parameters:
        setting += f", the first {parameters['fitted_snapshots']} snapshots"
    if fc2.uuid != rta.inputs.force_constants.uuid:
        setting += f", fc2 {fc2.__class__.__name__}<{fc2.uuid}>"
    if parameters.get("isotope"):
        setting += ", natural isotopes"
    if "triplets_within_angstrom" in parameters:
        setting += f", fc3 zeroed on triplets beyond {parameters['triplets_within_angstrom']:g} Angstrom"
    if parameters.get("symmetrize_fc3"):
        setting += ", fc3 symmetrised"
    builder.metadata.label = f"RTA of LifetimesWorkChain<{node.uuid}> on {setting}"
    _, job = run_get_node(builder)
    if not job.is_finished_ok:
        sys.exit(f"{job.process_label}<{job.pk}> failed: {job.exit_message}")
    summary = job.outputs.summary
    print(
        f"{job.process_label}<{job.pk}> on {setting}: "
        f"fc3 {summary['seconds_fc3']:.0f} s, RTA {summary['seconds_rta']:.0f} s, "
        f"kappa file SinglefileData<{job.outputs.kappa.pk}>"
    )
    return job


def finished_rta(identifier: str, also: str = "") -> orm.CalcJobNode:
    """The finished RTA job ``identifier``, or the last of the finished LifetimesWorkChain ``identifier`` (the one
    whose kappa and lifetimes it returned); exits naming what it is not (and ``also``, what else the caller
    takes)."""
    node = orm.load_node(identifier)
    if isinstance(node, orm.WorkChainNode) and node.process_label == "LifetimesWorkChain":
        if not node.is_finished_ok:
            sys.exit(f"{identifier}: {outcome_line(node)}, not finished ok")
        return _last_rta(node)
    if not (isinstance(node, orm.CalcJobNode) and node.process_label == "Phono3pyRtaCalculation"):
        sys.exit(f"{identifier}: neither a LifetimesWorkChain nor an RTA job{also}")
    if not node.is_finished_ok:
        sys.exit(f"{identifier}: {outcome_line(node)}, not finished ok")
    return node


def compare_fc3(pk: str, reference_pk: str) -> orm.Dict:
    """The fc3 and kappa of the finished RTA job (or LifetimesWorkChain) ``pk`` against those of ``reference_pk``,
    of the same crystal and fc3 supercell on the same mesh: the Dict of ``fc3_comparison``, returned and printed
    (kappa at the temperature nearest 300 K). E.g. symfc's fit to random snapshots against phono3py's finite
    differences, both cut to the triplets they both hold (:func:`rerun_rta` ``triplets_within_angstrom``). Exits
    naming what differs."""
    job, reference = finished_rta(pk), finished_rta(reference_pk)
    if difference := _other_crystal(job.inputs.force_constants, reference.inputs.force_constants):
        sys.exit(f"{pk}: {difference} than {reference_pk}")
    ours, theirs = (rta_settings(node.inputs.parameters.get_dict()) for node in (job, reference))
    for key in ("supercell_matrix", "mesh", "isotope"):  # kappa of one supercell, mesh and scattering
        if ours.get(key, False) != theirs.get(key, False):
            sys.exit(f"{pk}: {key} {ours.get(key, False)} against {theirs.get(key, False)} of {reference_pk}")
    comparison, calc = fc3_comparison.run_get_node(
        job.outputs.fc3, job.outputs.kappa, reference.outputs.fc3, reference.outputs.kappa
    )
    if not calc.is_finished_ok:
        sys.exit(f"fc3_comparison<{calc.pk}>: {calc.exit_message}")
    c = comparison.get_dict()
    at = int(np.argmin(np.abs(np.asarray(c["temperatures_k"]) - 300.0)))
    kappa = ", ".join(
        f"{direction} {c[f'{direction}_w_mk'][at]:.4g} against {c[f'reference_{direction}_w_mk'][at]:.4g} "
        f"({c[f'ratio_{direction}'][at] - 1:+.1%})"
        for direction in ("perpendicular", "parallel")
    )
    print(f"RTA<{job.pk}> ({job.label}) against RTA<{reference.pk}> ({reference.label}), Dict<{comparison.pk}>:")
    print(f"  fc3 differs by {c['fc3_relative_difference']:.2%} of the reference's norm")
    print(f"  kappa({c['temperatures_k'][at]:g} K) in W/(m K), c-axis z: {kappa}")
    return comparison


def check_supercell_kpoints(
    pk: str, kpoints, snapshots: int = 1, mpiprocs: int | None = None, pk_file: Path | None = None
) -> orm.Dict:
    """The supercell forces of the LifetimesWorkChain ``pk`` (random snapshots) against the same supercells on the
    Gamma-centred ``kpoints`` mesh: the first ``snapshots`` snapshots, their opposites and the undisplaced
    supercell, each a PwBaseWorkChain with the run's own inputs but that mesh (no Gamma tricks), ``mpiprocs``
    processes each (default the run's). The comparison is the Dict of ``supercell_kpoints_check``; returned and
    printed. Exits when the run is not one of random snapshots, or a pw.x run failed."""
    from aiida_llpam.calculations.functions import supercell_kpoints_check
    from aiida_llpam.calculations.rta_job import REFERENCE
    from aiida_llpam.physics.third_order import first_snapshots

    node = load_lifetimes(pk)
    dataset = node.outputs.dataset if "dataset" in node.outputs else None
    if dataset is None or "displacements" not in dataset.get_dict():
        sys.exit(f"{pk}: no dataset of random snapshots (the check compares snapshots and their opposites)")
    try:
        indices = first_snapshots(dataset["displacements"], snapshots)
    except ValueError as exc:
        sys.exit(f"{pk}: {exc}")
    jobs = {link.link_label: link.node for link in node.base.links.get_outgoing(node_class=orm.WorkChainNode).all()}
    labels = [f"supercell_{i + 1:04d}" for i in indices] + ([REFERENCE] if REFERENCE in jobs else [])
    missing = [label for label in labels if label not in jobs or not jobs[label].is_finished_ok]
    if missing:
        sys.exit(f"{pk}: no finished pw.x run for {', '.join(missing)}")
    mesh = orm.KpointsData()
    mesh.set_kpoints_mesh([int(n) for n in kpoints])
    forces = {}
    for label in labels:
        builder = jobs[label].get_builder_restart()
        builder.kpoints = mesh
        if "settings" in builder.pw:  # Gamma tricks only hold at Gamma alone
            settings = {k: v for k, v in builder.pw.settings.get_dict().items() if k != "GAMMA_ONLY"}
            if settings:
                builder.pw.settings = orm.Dict(settings)
            else:
                del builder.pw["settings"]
        if mpiprocs:
            builder.pw.metadata.options.resources = {"num_machines": 1, "num_mpiprocs_per_machine": mpiprocs}
        builder.metadata.label = f"{label} of LifetimesWorkChain<{node.uuid}> on k {'x'.join(map(str, kpoints))}"
        _, job = run_get_node(builder)
        print(f"{label}: {outcome_line(job)}")
        if not job.is_finished_ok:
            sys.exit(f"{label}: pw.x on the denser mesh failed: {job.exit_message}")
        forces[f"coarse_{label}"] = jobs[label].outputs.output_trajectory
        forces[f"dense_{label}"] = job.outputs.output_trajectory
    result, calc = supercell_kpoints_check.run_get_node(dataset, **forces)
    if not calc.is_finished_ok:
        sys.exit(f"supercell_kpoints_check<{calc.pk}>: {calc.exit_message}")
    r = result.get_dict()
    parts = ", ".join(f"{name} {r[name]:.2%}" for name in ("total", "odd", "even") if r[name] is not None)
    print(
        f"supercell forces on k {'x'.join(map(str, kpoints))} against the run's (Dict<{result.pk}>), rms difference "
        f"over rms: {parts}; the even part (fc3 signal) is {r['even_to_odd']:.1%} of the odd part"
        if r["even_to_odd"] is not None
        else f"supercell forces on k {'x'.join(map(str, kpoints))} (Dict<{result.pk}>): {parts}"
    )
    if pk_file:
        Path(pk_file).write_text(f"{result.pk}\n")
    return result
