"""New PamWorkChain runs from a structure: what ``workflows/run_quartz.py`` and ``workflows/run_crystal.py`` do.

Each script parses its arguments and calls one function here (:func:`run_quartz`, :func:`run_crystal`), which
tests call with keyword arguments. The launcher decides from the environment, the builder is the same in any
profile: where a run is submitted to a daemon, one ph.x job per q point (``parallelize_qpoints``), said so by
:func:`daemon_qpoint_jobs`. Refusals end the process with the reason (``sys.exit``), as the scripts always did.
"""

from __future__ import annotations

import sys
from pathlib import Path

from aiida import orm
from aiida.common.exceptions import NotExistent
from ase.io import read

from aiida_llpam.configure import SLURM_COMPUTER
from aiida_llpam.physics.symmetry import response_symmetry_text
from aiida_llpam.structures import (
    MIRROR_OPERATION,
    StructureError,
    check_pseudopotentials,
    family_elements,
    handedness_label,
    load_structure,
    mark_enantiomer,
    mirror_z,
    orient_unique_axis,
    symmetry_of,
)
from aiida_llpam.workflows.crystal import pam_builder
from aiida_llpam.workflows.pam import PamWorkChain
from aiida_llpam.workflows.protocols import UNPHYSICAL_PROTOCOLS

from .figures import write_figures
from .launch import daemon_unavailable_reason, launch, print_outcome, profile_has_broker, run_with_progress

#: fixtures/structures of the source tree (the package is installed editable)
STRUCTURES = Path(__file__).resolve().parents[2] / "fixtures" / "structures"
#: the structure files of alpha-quartz's enantiomers (after Donnay & Le Page 1978)
QUARTZ_ENANTIOMERS = {"right": "quartz_P3221.cif", "left": "quartz_P3121.cif"}
#: run_crystal.py's --enantiomer: the structure as given, or its mirror image z -> -z
CRYSTAL_ENANTIOMERS = ("as-is", "other")
#: the launcher's choice of PamWorkChain's parallelize_qpoints, as printed
QPOINT_JOBS = {
    True: "one ph.x job per q point (the daemon runs them side by side)",
    False: "one ph.x job for all q points",
}
#: why --figures and --submit do not go together
FIGURES_NEED_THE_RUN = (
    "--figures needs the finished run: with --submit, write them later with `aiida-llpam figures PK -o DIR`"
)


def check_protocol(protocol: str) -> None:
    """Exit naming the available protocols when ``protocol`` is not one of PamWorkChain's."""
    available = PamWorkChain.get_available_protocols()
    if protocol not in available:
        sys.exit(f"unknown protocol {protocol!r}: choose from {', '.join(available)}")


def unphysical_note(protocol: str) -> str | None:
    """The NOTE printed for a protocol whose numbers are not physics (smoke), else None."""
    if protocol not in UNPHYSICAL_PROTOCOLS:
        return None
    return f"NOTE: {UNPHYSICAL_PROTOCOLS[protocol]}: it tests the machinery (use --protocol fast or production)"


def load_codes(computer: str, names=("pw", "ph", "q2r")) -> list:
    """The codes ``name@computer`` (NotExistent when one is missing)."""
    return [orm.load_code(f"{name}@{computer}") for name in names]


def default_computer(submit: bool) -> str:
    """localhost, or for a submitted run the SLURM computer of the services' profile when this profile has it."""
    if submit:
        try:
            return orm.load_computer(SLURM_COMPUTER).label
        except NotExistent:
            pass
    return "localhost"


def daemon_qpoint_jobs() -> bool:
    """The launcher's ``parallelize_qpoints`` for a run it submits: one ph.x job per q point where a daemon runs
    them side by side (the profile has a broker), else one job for all q points. Printed.

    A run in this interpreter keeps the builder's default, one ph.x job: its q jobs would queue one after another.
    """
    parallel = profile_has_broker()
    print(QPOINT_JOBS[parallel])
    return parallel


def add_job_arguments(parser) -> None:
    """The flags that fit a run's jobs to a cluster: resources per job, the partition and account, the split."""
    group = parser.add_argument_group("jobs (each pw.x, ph.x, q2r.x and response job)")
    group.add_argument("--mpiprocs", type=int, help="MPI processes per job, on one node (default: the computer's)")
    group.add_argument("--queue", help="the scheduler's queue (SLURM partition)")
    group.add_argument("--account", help="the scheduler's account to charge (SLURM --account)")
    group.add_argument("--walltime-min", type=float, help="wall-time limit of each job, minutes")
    group.add_argument(
        "--representations-per-job",
        type=int,
        help="with --submit: split each q point into ph.x jobs of this many irreducible representations",
    )


def dft_settings(kpoints=None, qpoints=None, ecutwfc: float | None = None, ecutrho: float | None = None) -> dict:
    """The DFPT settings given on the command line, checked; exits naming a bad one."""
    settings = {}
    for name, mesh in (("kpoints", kpoints), ("qpoints", qpoints)):
        if mesh is not None:
            if len(mesh) != 3 or any(int(n) != n or n < 1 for n in mesh):
                sys.exit(f"--{name} takes three positive integers, got {' '.join(map(str, mesh))}")
            settings[name] = [int(n) for n in mesh]
    for name, value in (("ecutwfc", ecutwfc), ("ecutrho", ecutrho)):
        if value is not None:
            if value <= 0:
                sys.exit(f"--{name} must be positive (Ry), got {value:g}")
            settings[name] = float(value)
    if ecutwfc is not None and ecutrho is not None and ecutrho < 4 * ecutwfc:
        sys.exit(f"--ecutrho {ecutrho:g} Ry is below 4 x --ecutwfc {ecutwfc:g} Ry, which pw.x needs at least")
    return settings


def job_options(
    mpiprocs: int | None = None, queue: str | None = None, account: str | None = None, walltime_min: float | None = None
) -> dict | None:
    """The CalcJob options the flags of :func:`add_job_arguments` ask for (None: the protocol's)."""
    options = {}
    if mpiprocs is not None:
        if mpiprocs < 1:
            sys.exit(f"--mpiprocs must be at least 1, got {mpiprocs}")
        options["resources"] = {"num_machines": 1, "num_mpiprocs_per_machine": mpiprocs}
    if queue:
        options["queue_name"] = queue
    if account:
        options["account"] = account
    if walltime_min is not None:
        if walltime_min <= 0:
            sys.exit(f"--walltime-min must be positive, got {walltime_min}")
        options["max_wallclock_seconds"] = int(walltime_min * 60)
    return options or None


def split_representations(builder, parallel: bool, representations_per_job: int | None) -> None:
    """Set the split of each q point into jobs of ``representations_per_job`` representations; exits when the run
    has no per-q-point route to split (not submitted to a daemon)."""
    if representations_per_job is None:
        return
    if representations_per_job < 1:
        sys.exit(f"--representations-per-job must be at least 1, got {representations_per_job}")
    if not parallel:
        sys.exit(
            "--representations-per-job splits the jobs of the per-q-point route: it needs --submit to a profile "
            "with a daemon (python deploy/services.py up)"
        )
    builder.representations_per_job = orm.Int(representations_per_job)


def check_submission(submit: bool, figures: Path | None) -> None:
    """Exit before anything is stored when a submission cannot go ahead (figures asked for, no daemon)."""
    if submit and figures:
        sys.exit(FIGURES_NEED_THE_RUN)
    if submit and (reason := daemon_unavailable_reason()):
        sys.exit(f"cannot submit: {reason}")


def print_figures(node, figures: Path | None) -> None:
    """Write the figure panels of a finished run to ``figures`` (if given) and print their paths."""
    if figures:
        for path in write_figures(node, figures):
            print(f"  figure {path}")


def run_quartz(
    protocol: str = "fast",
    enantiomer: str = "right",
    computer: str | None = None,
    pk_file: Path | None = None,
    figures: Path | None = None,
    quiet: bool = False,
    submit: bool = False,
    representations_per_job: int | None = None,
    **jobs,
) -> orm.ProcessNode:
    """PamWorkChain on alpha-quartz (``enantiomer`` right: P3_221, left: P3_121) with ``protocol``: run here with
    progress lines (then its outputs, the figures), or ``submit`` it to the daemon and return at once.

    ``computer`` defaults to :func:`default_computer`; ``jobs``: the keywords of :func:`job_options`. Exits with the
    reason when refused or when the run failed.
    """
    check_submission(submit, figures)
    check_protocol(protocol)
    structure = orm.StructureData(ase=read(STRUCTURES / QUARTZ_ENANTIOMERS[enantiomer]))
    codes = load_codes(computer or default_computer(submit))
    parallel = daemon_qpoint_jobs() if submit else False
    builder = PamWorkChain.get_builder_from_protocol(
        *codes, structure, protocol=protocol, parallelize_qpoints=parallel, options=job_options(**jobs)
    )
    split_representations(builder, parallel, representations_per_job)
    builder.metadata.label = f"alpha-quartz {enantiomer} {protocol}"
    node = launch(builder, submit=submit, quiet=quiet, pk_file=pk_file)
    if submit:
        return node
    if note := unphysical_note(protocol):
        print(note)
    print_figures(node, figures)
    return node


def symmetry_lines(info: dict) -> list[str]:
    """What spglib says about the structure that will run, for people."""
    partner = info["enantiomorphic_partner"] or ("none (both enantiomers share the group)" if info["sohncke"] else "-")
    lines = [
        f"structure: {info['formula']}, {info['crystal_system']}",
        (
            f"space group: {info['space_group']} (No. {info['space_group_number']}), point group {info['point_group']} "
            f"(spglib, symprec {info['symprec_angstrom']:g} A)"
        ),
        f"Sohncke (chiral): {'yes' if info['sohncke'] else 'no'}",
        f"enantiomorphic partner: {partner}",
        f"handedness: {handedness_label(info)}",
    ]
    lines.append(f"response: {response_symmetry_text(info)}")
    if not info["gamma_nl_allowed"] or not info["gamma_m_allowed"]:
        lines.append("the run goes ahead as a control: expect zero within numerical noise where symmetry says so")
    return lines


def _crystal_structures(structure: str, enantiomer: str, family: str, symprec: float):
    """(atoms to run, their symmetry, the source named in descriptions, the original of a mirror image or None):
    the checks, orientation and mirror of run_crystal.py, printed; exits with "refused: ..." on a bad structure."""
    try:
        atoms, source_uuid = load_structure(structure)
        check_pseudopotentials(atoms.get_chemical_symbols(), family_elements(family), family)
        oriented, orientation = orient_unique_axis(atoms, symprec)
        run_atoms = mirror_z(oriented) if enantiomer == "other" else oriented
        info = symmetry_of(run_atoms, symprec)
    except (StructureError, ValueError) as exc:
        sys.exit(f"refused: {exc}")

    source = f"StructureData {source_uuid}" if source_uuid else str(structure)
    print(f"read {source}: {len(atoms)} atoms; {orientation.note}")
    original = None
    if enantiomer == "other":
        before = symmetry_of(oriented, symprec)
        print(
            f"enantiomer other: {MIRROR_OPERATION} of {before['space_group']} (No. {before['space_group_number']}) "
            f"-> {info['space_group']} (No. {info['space_group_number']})"
        )
        if source_uuid and not orientation.changed:
            original = orm.load_node(source_uuid)
        else:
            original = orm.StructureData(ase=oriented)
            original.label = f"{before['formula']} {before['space_group']} (original of a mirrored run)"
            original.description = f"{source}, oriented: {orientation.note}"
    for line in symmetry_lines(info):
        print(line)
    return run_atoms, info, source, original


def run_crystal(
    structure: str,
    protocol: str = "fast",
    enantiomer: str = "as-is",
    pseudo_family: str | None = None,
    symprec: float = 1e-3,
    computer: str | None = None,
    pk_file: Path | None = None,
    figures: Path | None = None,
    quiet: bool = False,
    dry_run: bool = False,
    submit: bool = False,
    representations_per_job: int | None = None,
    kpoints=None,
    qpoints=None,
    ecutwfc: float | None = None,
    ecutrho: float | None = None,
    **jobs,
):
    """PamWorkChain on any crystal: ``structure`` is a file ASE reads or a StructureData PK/UUID.

    ``kpoints``, ``qpoints`` (meshes), ``ecutwfc``, ``ecutrho`` (Ry): the protocol's DFPT settings replaced for this
    crystal (a cubic crystal of two atoms needs denser meshes than quartz's 3x3x3 and 3x3x2).

    Checked, oriented and (``enantiomer`` "other") mirrored as aiida_llpam.structures does, with its symmetry
    printed. ``dry_run``: returns the builder, nothing stored. Otherwise runs it here like :func:`run_quartz` or
    ``submit`` s it to the daemon (``computer`` then defaults to the SLURM computer where the profile has it);
    returns the process node. A mirror image's run carries the extra ``enantiomer_of``. ``jobs``: the keywords of
    :func:`job_options`. Exits when refused.
    """
    check_submission(submit and not dry_run, figures)
    check_protocol(protocol)
    if symprec <= 0:
        sys.exit(f"--symprec must be positive, got {symprec}")
    settings = dft_settings(kpoints, qpoints, ecutwfc, ecutrho)
    family = pseudo_family or PamWorkChain.get_protocol_inputs(protocol)["pseudo_family"]
    run_atoms, info, source, original = _crystal_structures(structure, enantiomer, family, symprec)

    computer = computer or default_computer(submit)
    try:
        codes = load_codes(computer)
    except NotExistent as exc:
        sys.exit(f"{exc}: run `aiida-llpam setup` (or give --computer)")
    builder = pam_builder(
        codes,
        orm.StructureData(ase=run_atoms),
        info,
        enantiomer,
        protocol,
        family,
        symprec,
        source,
        original,
        options=job_options(**jobs),
        settings=settings,
    )
    print(f"pseudo family {family}, protocol {protocol}, computer {computer}")
    if note := unphysical_note(protocol):
        print(note)
    if submit:
        builder.parallelize_qpoints = orm.Bool(daemon_qpoint_jobs())
    split_representations(builder, submit and builder.parallelize_qpoints.value, representations_per_job)
    if dry_run:
        print("dry run: structure checked and builder made; nothing stored, nothing run")
        return builder

    if original is not None and not original.is_stored:
        original.store()
    if submit:
        node = launch(builder, submit=True, pk_file=pk_file)
    else:
        node = run_with_progress(builder, quiet=quiet, pk_file=pk_file)
    if original is not None:
        mark_enantiomer(node, original)
    if submit:
        return node
    if not print_outcome(node):
        sys.exit(f"the workchain failed: {node.exit_message}")
    if not info["gamma_m_allowed"]:
        print(f"{response_symmetry_text(info)}: the stored values there are numerical noise")
    print_figures(node, figures)
    return node
