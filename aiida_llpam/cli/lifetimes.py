"""The lifetimes' runs from a finished PamWorkChain: what ``workflows/run_lifetimes.py`` and ``compare_kappa.py``
do (the RTA jobs made again or compared: :mod:`.rta`).

:func:`run_lifetimes` phono3py's mode-resolved lifetimes (LifetimesWorkChain) and the response with them,
:func:`compare_kappa` their thermal conductivity against measured values. The new nodes link back to the stored
ones. Each runs in this interpreter and ends the process with the reason (``sys.exit``) when refused or when the run
failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from aiida import orm
from aiida.engine import run_get_node

from aiida_llpam.calculations.functions import kappa_comparison
from aiida_llpam.physics.lifetimes import check_measured_inside, measured_diffusivity
from aiida_llpam.physics.settings import ResponseSettings
from aiida_llpam.queries import dfpt_retrieved, dfpt_structure
from aiida_llpam.workflows.lifetimes import LifetimesWorkChain
from aiida_llpam.workflows.pam import PamWorkChain

from .figures import write_lifetimes_figure
from .redo import outcome_line, pam_workchain
from .results import REFUSED_EXTRA, comparison_lines
from .rta import finished_rta, load_lifetimes
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
    displacement_angstrom: float | None = None,
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
       and their opposites drawn with ``seed``, fitted by symfc with that cut-off), every displacement
       ``displacement_angstrom`` long (default the workchain's, 0.03 A), on a k mesh
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
        if displacement_angstrom is not None:
            parameters["displacement_distance_angstrom"] = displacement_angstrom
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


def _finished_lifetimes(identifier: str, pam: orm.WorkChainNode) -> orm.WorkChainNode:
    """The finished LifetimesWorkChain ``identifier`` made on the force constants of ``pam``; exits naming what it
    is not."""
    node = load_lifetimes(identifier)
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
    mode-resolved lifetimes, a LifetimesWorkChain, or an RTA job such as :func:`.rta.rerun_rta` makes) computed, against
    the measured values of the JSON file
    ``measured``: ``source`` (the literature), ``temperatures_k``, ``perpendicular_w_mk`` and ``parallel_w_mk``
    (to the c axis, which is z). Stored as a Dict (``kappa_comparison``) that ``aiida-llpam show`` prints."""
    from aiida_llpam.queries import response_lifetimes

    node = orm.load_node(pk)
    if isinstance(node, orm.WorkChainNode) and node.process_label == "PamWorkChain":
        found = response_lifetimes(node)  # one query: (lifetimes, kappa file) or None
        if found is None:
            sys.exit(f"{pk}: a PamWorkChain whose response took no mode-resolved lifetimes")
        _, kappa = found
    else:
        kappa = finished_rta(pk, also=" nor a PamWorkChain").outputs.kappa
    return _compare(kappa, _measured(measured))
