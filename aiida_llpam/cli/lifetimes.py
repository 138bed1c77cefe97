"""The lifetimes' runs from a finished PamWorkChain: what ``workflows/run_lifetimes.py``, ``rerun_rta.py``,
``compare_kappa.py``, ``compare_fc3.py`` and ``check_supercell_kpoints.py`` do.

:func:`run_lifetimes` phono3py's mode-resolved lifetimes (LifetimesWorkChain) and the response with them,
:func:`compare_kappa` their thermal conductivity against measured values, :func:`rerun_rta` the fc3 + RTA job
again on another mesh, cut-off, number of snapshots or fc2, :func:`compare_fc3` two fc3 of one supercell and their
kappa, :func:`check_supercell_kpoints` the supercell forces on a denser k mesh. The new nodes link back to the
stored ones. Each runs in this interpreter and ends the process with the reason (``sys.exit``) when refused or when
the run failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from aiida import orm
from aiida.engine import run_get_node

from aiida_llpam.calculations.functions import fc3_comparison, kappa_comparison
from aiida_llpam.calculations.rta_job import rta_settings
from aiida_llpam.physics.lifetimes import check_measured_inside, measured_diffusivity
from aiida_llpam.physics.settings import ResponseSettings
from aiida_llpam.queries import dfpt_retrieved, dfpt_structure
from aiida_llpam.workflows.lifetimes import LifetimesWorkChain
from aiida_llpam.workflows.pam import PamWorkChain

from .figures import write_lifetimes_figure
from .redo import load_force_constants, outcome_line, pam_workchain
from .results import REFUSED_EXTRA, comparison_lines
from .runs import default_computer, load_codes

#: the keys of a JSON file of measured thermal conductivity (optionally also "diffusivity": measured exponents of
#: D ~ T^-n, physics.lifetimes.kappa_against_measured)
MEASURED_KEYS = ("source", "temperatures_k", "perpendicular_w_mk", "parallel_w_mk")


def run_lifetimes(
    pk: str,
    supercell=(1, 1, 1),
    cutoff_pair_angstrom: float | None = None,
    fc3_method: str = "finite",
    snapshots: int | None = None,
    seed: int | None = None,
    supercell_kpoints=None,
    gamma_tricks: bool = False,
    mesh=None,
    max_concurrent: int = 2,
    mpiprocs: int = 1,
    computer: str | None = None,
    protocol: str | None = None,
    pk_file: Path | None = None,
    figure: Path | None = None,
    measured: Path | None = None,
    rta_cores: int | None = None,
    submit: bool = False,
    lifetimes_pk: str | None = None,
    temperatures: list[float] | None = None,
) -> tuple[orm.WorkChainNode, orm.WorkChainNode | None]:
    """Mode-resolved lifetimes of the finished PamWorkChain ``pk`` and its response with them (THEORY.md section 4).

    1. LifetimesWorkChain: the displaced supercells of the unit cell x ``supercell`` (``fc3_method`` finite:
       phono3py's pairs, those beyond ``cutoff_pair_angstrom`` left out; random: ``snapshots`` random snapshots
       and their opposites drawn with ``seed``, fitted by symfc with that cut-off), on a k mesh
       ``supercell_kpoints`` (default the DFPT's divided by the supercell; with ``gamma_tricks`` a Gamma-only
       one runs with pw.x's Gamma tricks), one pw.x force job each
       (``max_concurrent`` at a time, ``mpiprocs`` each), fc3 and the RTA on ``mesh`` (default 8x8x6) at
       ``protocol``'s temperatures (or ``temperatures``, K: fewer make smaller kappa and lifetimes nodes), with
       ``rta_cores`` OpenMP threads (default the computer's processes per machine).
    2. A PamWorkChain on the same DFPT whose response on ``mesh`` takes the lifetimes.

    The response takes the run's own sum rules, direct-point fit and protocol (default: the run's; another is
    refused), so that it and the RTA share one fc2, checked after it has run.

    ``submit``: hand step 1 to the daemon and return (lifetimes, None) at once (computer default: the services'
    SLURM one where the profile has it); ``lifetimes_pk``: a finished LifetimesWorkChain of this run's force
    constants (one submitted before) instead of step 1, whose mesh, temperatures and computer the response takes
    (the arguments of step 1 are not used). Returns (lifetimes, response run); exits when either failed or is
    refused. ``figure``: the lifetimes figure. ``measured``: a JSON file of measured kappa (:func:`compare_kappa`),
    compared with the RTA's as soon as it has run.
    """
    from .launch import launch

    measured_values = _measured(measured) if measured else None
    pam = pam_workchain(pk, finished=True)
    if submit and lifetimes_pk:
        sys.exit("--submit starts the lifetimes, --lifetimes continues from finished ones: give one")
    if submit and (measured or figure):
        sys.exit("--measured and --figure go with --lifetimes, once the submitted lifetimes have finished")
    run_protocol = pam.inputs.protocol.value if "protocol" in pam.inputs else None
    if protocol and run_protocol and protocol != run_protocol:
        sys.exit(f"--protocol {protocol}: PamWorkChain<{pam.pk}> ran with {run_protocol}, which gives its fc2")
    protocol = protocol or run_protocol or "production"
    found = _finished_lifetimes(lifetimes_pk, pam) if lifetimes_pk else None
    if found is not None:
        if mesh is not None and list(mesh) != list(found.inputs.parameters["mesh"]):
            sys.exit(f"--mesh {' '.join(map(str, mesh))}: the lifetimes are on {found.inputs.parameters['mesh']}")
        mesh = found.inputs.parameters["mesh"]
        computer = computer or found.inputs.rta.code.computer.label
    mesh = list(mesh or (8, 8, 6))
    computer = computer or default_computer(submit)
    codes = load_codes(computer)
    retrieved = dfpt_retrieved(pam)
    response_builder = PamWorkChain.get_builder_from_protocol(
        *codes, dfpt_structure(retrieved), protocol=protocol, dfpt=retrieved
    )
    if "sum_rules" in pam.inputs:  # the run's own node: the shared input shows in the provenance
        response_builder.sum_rules = pam.inputs.sum_rules
    if "fit_direct" in pam.inputs:
        response_builder.fit_direct = dict(pam.inputs.fit_direct)
    response = response_builder.response.parameters.get_dict()
    if temperatures:
        response["temperatures_k"] = sorted({float(t) for t in temperatures})
    try:
        settings = ResponseSettings.from_mapping(response)
    except ValueError as exc:
        sys.exit(f"--temperatures: {exc}")
    temperatures = sorted({*settings.temperatures_k.tolist(), float(response["bz_temperature_k"])})
    if measured_values is not None:
        try:  # refused here, not after the force jobs: the comparison would refuse them
            check_measured_inside(temperatures, measured_values.get_dict())
        except ValueError as exc:
            sys.exit(f"--measured: {exc}")
    if found is not None:
        ran_at = found.inputs.parameters["temperatures_k"]
        if len(ran_at) != len(temperatures) or not np.allclose(ran_at, temperatures, rtol=1e-9, atol=0):
            sys.exit(
                f"LifetimesWorkChain<{found.pk}> ran at other temperatures than protocol {protocol}'s response "
                f"({len(ran_at)} against {len(temperatures)})"
            )
    if found is not None:
        lifetimes = found
    else:
        parameters = {
            "supercell_matrix": list(supercell),
            "mesh": mesh,
            "max_concurrent": max_concurrent,
            "temperatures_k": temperatures,
        }
        if cutoff_pair_angstrom:
            parameters["cutoff_pair_distance_angstrom"] = cutoff_pair_angstrom
        if fc3_method == "random":
            parameters |= {"fc3_method": "random", "number_of_snapshots": snapshots}
            if seed is not None:
                parameters["random_seed"] = seed
        if supercell_kpoints:
            parameters["supercell_kpoints"] = list(supercell_kpoints)
        if gamma_tricks:
            parameters["gamma_tricks"] = True
        # small jobs: two single-process ones side by side hide each other's AiiDA overhead (upload, poll, retrieve)
        options = {
            "resources": {"num_machines": 1, "num_mpiprocs_per_machine": mpiprocs},
            "max_wallclock_seconds": 3600,
        }
        builder = LifetimesWorkChain.get_builder_from_pam(pam, parameters, pw_code=codes[0], options=options)
        cores = rta_cores or codes[0].computer.get_default_mpiprocs_per_machine() or 1
        builder.rta.metadata.options.resources = {"num_machines": 1, "num_mpiprocs_per_machine": cores}
        builder.metadata.label = f"lifetimes of PamWorkChain<{pam.uuid}>"
        if submit:
            from aiida.manage import get_manager

            lifetimes = launch(builder, submit=True, pk_file=pk_file)
            print(
                f"when it has finished: verdi -p {get_manager().get_profile().name} run workflows/run_lifetimes.py "
                f"{pam.pk} --lifetimes {lifetimes.pk} [--measured M.json] [--figure F.png]"
            )
            return lifetimes, None
        _, lifetimes = run_get_node(builder)
        print(outcome_line(lifetimes))
        if not lifetimes.is_finished_ok:
            sys.exit(f"the lifetimes failed: {lifetimes.exit_message}")
    if measured_values is not None:
        _compare(lifetimes.outputs.kappa, measured_values)

    # the response on the lifetimes' mesh: one mesh, no convergence sequence (the constant-tau k-mesh error of
    # this mesh is the original run's convergence table)
    response = {key: value for key, value in response.items() if not key.startswith("convergence_")}
    response["mesh"] = mesh
    response_builder.response.parameters = orm.Dict(response)
    response_builder.response.lifetimes = lifetimes.outputs.lifetimes
    response_builder.metadata.label = f"{pam.label} (response with mode-resolved lifetimes)".strip()
    response_builder.metadata.description = (
        f"DFPT of PamWorkChain<{pam.uuid}>, lifetimes of LifetimesWorkChain<{lifetimes.uuid}>"
    )
    _, node = run_get_node(response_builder)
    print(outcome_line(node))
    if not node.is_finished_ok:
        sys.exit(f"the response failed: {node.exit_message}")
    fc2 = lifetimes.inputs.force_constants
    if difference := _force_constants_difference(node.outputs.force_constants, fc2):
        refusal = f"its force constants differ from the RTA's fc2 ({fc2.__class__.__name__}<{fc2.pk}>): {difference}"
        node.base.extras.set(REFUSED_EXTRA, refusal)
        sys.exit(f"the response PamWorkChain<{node.pk}> is not the lifetimes' phonons: {refusal}")
    if pk_file:
        Path(pk_file).write_text(f"{lifetimes.pk}\n{node.pk}\n")
    out = node.outputs.lifetimes_response
    temperatures = out.get_array("temperatures_k")
    it = int(np.argmin(np.abs(temperatures - 300.0)))
    constant = node.outputs.gamma_nl.get_array("gamma_nl_zz")[it]
    print(
        f"gamma^NL_zz({temperatures[it]:g} K): constant tau {constant:.4g}, "
        f"mode-resolved {out.get_array('gamma_nl_zz_tau_modes')[it]:.4g} J s K^-1 m^-2; "
        f"effective tau {out.get_array('tau_effective_nl_s')[it]:.4g} s"
    )
    print(f"aiida-llpam show {node.pk}")
    if figure:
        write_lifetimes_figure(node, figure)
        print(f"  figure {figure}")
    return lifetimes, node


def _force_constants_difference(first: orm.ArrayData, second: orm.ArrayData, relative: float = 1e-8) -> str | None:
    """How two force-constants nodes differ (cell, masses, IFCs, eps/Z*): the first array whose largest deviation
    exceeds ``relative`` of its largest element, with that deviation; None when they hold the same arrays."""
    from aiida_llpam.calculations.functions.phonopy_force_constants import stored_arrays

    a, b = stored_arrays(first), stored_arrays(second)
    if sorted(a) != sorted(b):
        return f"arrays {sorted(a)} against {sorted(b)}"
    for name in sorted(a):
        x, y = a[name], b[name]
        if x is None or y is None:
            if x is not y:
                return f"{name} in one only"
            continue
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if x.shape != y.shape:
            return f"{name} of shape {x.shape} against {y.shape}"
        scale = max(np.abs(x).max(initial=0), np.abs(y).max(initial=0))
        deviation = np.abs(x - y).max(initial=0)
        if deviation > relative * scale:
            return f"{name} by up to {deviation / scale:.2g} of its largest element"
    return None


def _other_crystal(first: orm.ArrayData, second: orm.ArrayData) -> str | None:
    """How the crystal of one force-constants node differs from another's (cell, atoms, masses, to 1e-6 bohr or
    amu), or None when it is the same."""
    from aiida_llpam.calculations.functions.phonopy_force_constants import stored_arrays

    a, b = stored_arrays(first), stored_arrays(second)
    for name in ("lattice_bohr", "positions_bohr", "masses_amu"):
        if a[name].shape != b[name].shape or not np.allclose(a[name], b[name], rtol=0, atol=1e-6):
            return f"another {name.split('_')[0]}"
    return None


def _finished_lifetimes(identifier: str, pam: orm.WorkChainNode) -> orm.WorkChainNode:
    """The finished LifetimesWorkChain ``identifier`` made on the force constants of ``pam``; exits naming what it
    is not."""
    node = orm.load_node(identifier)
    if not (isinstance(node, orm.WorkChainNode) and node.process_label == "LifetimesWorkChain"):
        sys.exit(f"{identifier}: not a LifetimesWorkChain")
    if not node.is_finished_ok:
        sys.exit(f"{identifier}: {outcome_line(node)}, not finished ok")
    fc = node.inputs.force_constants
    if fc.uuid != pam.outputs.force_constants.uuid:
        sys.exit(
            f"LifetimesWorkChain<{node.pk}> took {fc.__class__.__name__}<{fc.pk}>, not the force constants of "
            f"PamWorkChain<{pam.pk}>"
        )
    return node


def _measured(path: Path) -> orm.Dict:
    """The measured kappa of a JSON file, checked (exits naming what is wrong)."""
    import json

    try:
        values = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        sys.exit(f"{path}: {exc}")
    missing = [key for key in MEASURED_KEYS if key not in values]
    if missing:
        sys.exit(f"{path}: no {', '.join(missing)} (needs {', '.join(MEASURED_KEYS)})")
    if "diffusivity" in values:
        try:
            measured_diffusivity(values["diffusivity"])
        except ValueError as exc:
            sys.exit(f"{path}: {exc}")
    return orm.Dict({key: values[key] for key in (*MEASURED_KEYS, "diffusivity") if key in values})


def _compare(kappa: orm.SinglefileData, measured: orm.Dict) -> orm.Dict:
    comparison, calc = kappa_comparison.run_get_node(kappa, measured)
    if not calc.is_finished_ok:
        sys.exit(f"kappa_comparison<{calc.pk}>: {calc.exit_message}")
    print(f"kappa of {kappa.filename}:")
    print("\n".join(comparison_lines(comparison)))
    return comparison


def compare_kappa(pk: str, measured: Path) -> orm.Dict:
    """The thermal conductivity of the lifetimes that the finished run ``pk`` (a PamWorkChain whose response took
    mode-resolved lifetimes, a LifetimesWorkChain, or an RTA job such as :func:`rerun_rta` makes) computed, against
    the measured values of the JSON file
    ``measured``: ``source`` (the literature), ``temperatures_k``, ``perpendicular_w_mk`` and ``parallel_w_mk``
    (to the c axis, which is z). Stored as a Dict (``kappa_comparison``) that ``aiida-llpam show`` prints."""
    from aiida_llpam.queries import response_lifetimes

    node = orm.load_node(pk)
    if isinstance(node, orm.WorkChainNode) and node.process_label == "LifetimesWorkChain" and node.is_finished_ok:
        kappa = node.outputs.kappa
    elif isinstance(node, orm.WorkChainNode) and node.process_label == "PamWorkChain" and response_lifetimes(node):
        _, kappa = response_lifetimes(node)
    elif isinstance(node, orm.CalcJobNode) and node.process_label == "Phono3pyRtaCalculation" and node.is_finished_ok:
        kappa = node.outputs.kappa
    else:
        sys.exit(
            f"{pk}: neither a finished LifetimesWorkChain or RTA job nor a PamWorkChain whose response took lifetimes"
        )
    return _compare(kappa, _measured(measured))


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

    node = orm.load_node(pk)
    if not (isinstance(node, orm.WorkChainNode) and node.process_label == "LifetimesWorkChain"):
        sys.exit(f"{pk}: not a LifetimesWorkChain")
    jobs = [link.node for link in node.base.links.get_outgoing(link_label_filter="rta").all()]
    if not jobs:
        sys.exit(f"{pk}: its fc3 + RTA job has not been submitted yet")
    rta = jobs[-1]
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


def _finished_rta(identifier: str) -> orm.CalcJobNode:
    """The finished RTA job ``identifier``, or that of the finished LifetimesWorkChain ``identifier``; exits naming
    what it is not."""
    node = orm.load_node(identifier)
    if isinstance(node, orm.WorkChainNode) and node.process_label == "LifetimesWorkChain":
        if not node.is_finished_ok:
            sys.exit(f"{identifier}: {outcome_line(node)}, not finished ok")
        return node.base.links.get_outgoing(link_label_filter="rta").all()[-1].node
    if not (isinstance(node, orm.CalcJobNode) and node.process_label == "Phono3pyRtaCalculation"):
        sys.exit(f"{identifier}: neither a LifetimesWorkChain nor an RTA job")
    if not node.is_finished_ok:
        sys.exit(f"{identifier}: {outcome_line(node)}, not finished ok")
    return node


def compare_fc3(pk: str, reference_pk: str) -> orm.Dict:
    """The fc3 and kappa of the finished RTA job (or LifetimesWorkChain) ``pk`` against those of ``reference_pk``,
    of the same crystal and fc3 supercell on the same mesh: the Dict of ``fc3_comparison``, returned and printed
    (kappa at the temperature nearest 300 K). E.g. symfc's fit to random snapshots against phono3py's finite
    differences, both cut to the triplets they both hold (:func:`rerun_rta` ``triplets_within_angstrom``). Exits
    naming what differs."""
    job, reference = _finished_rta(pk), _finished_rta(reference_pk)
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

    node = orm.load_node(pk)
    if not (isinstance(node, orm.WorkChainNode) and node.process_label == "LifetimesWorkChain"):
        sys.exit(f"{pk}: not a LifetimesWorkChain")
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
