"""Idempotent set-up of the embedded AiiDA environment for aiida-llpam.

One profile on ``core.sqlite_dos`` storage with no broker (``verdi run`` works;
``submit`` and the daemon need a broker: see docs/workflow.md for the
scale-out path), a localhost computer, codes for Debian's QE binaries and two
pseudopotential families made from Debian's files, one functional each: LDA
(quartz, Si) and PBE (every element Debian has a PBE file for that records its
suggested cut-offs; the family stores them, so protocols can use them).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

PROFILE = "llpam"
COMPUTER = "localhost"
#: the profile on PostgreSQL + RabbitMQ that a daemon runs, and its SLURM computer (docs/scaleout.md)
DAEMON_PROFILE = "llpam-daemon"
SLURM_COMPUTER = "localhost-slurm"
PSEUDO_FAMILY = "llpam/LDA/debian"
PSEUDO_DIR = Path("/usr/share/espresso/pseudo")
#: Debian's LDA pseudopotentials used for quartz (and the Si control); their headers suggest no cut-offs
PSEUDOS = {"Si": "Si.pz-vbc.UPF", "O": "O.pz-rrkjus.UPF"}
PBE_FAMILY = "llpam/PBE/debian"
#: Debian's PBE files, one per element, each with suggested cut-offs in its header (fully relativistic ones
#: and files without suggested cut-offs are left out); alpha-GeO2 uses Ge and O
PBE_PSEUDOS = {
    "B": "B.pbe-n-kjpaw_psl.1.0.0.UPF",
    "C": "C.pbe-n-kjpaw_psl.0.1.UPF",
    "Cr": "Cr.pbe-spn-kjpaw_psl.1.0.0.UPF",
    "Cu": "Cu.pbe-kjpaw.UPF",
    "Fe": "Fe.pbe-spn-rrkjus_psl.0.2.1.UPF",
    "Ge": "Ge.pbe-kjpaw.UPF",
    "H": "H.pbe-kjpaw.UPF",
    "I": "I.pbe-n-kjpaw_psl.1.0.0.UPF",
    "N": "N.pbe-n-kjpaw_psl.1.0.0.UPF",
    "Ni": "Ni.pbe-spn-kjpaw_psl.1.0.0.UPF",
    "O": "O.pbe-kjpaw.UPF",
    "Si": "Si.pbe-nl-rrkjus_psl.1.0.0.UPF",
}
#: label -> (functional, files); every file's header must name that functional
PSEUDO_FAMILIES = {PSEUDO_FAMILY: ("LDA", PSEUDOS), PBE_FAMILY: ("PBE", PBE_PSEUDOS)}
#: QE's functional names in UPF headers (short or four-part) -> the family's functional
FUNCTIONALS = {"SLA PZ NOGX NOGC": "LDA", "PZ": "LDA", "SLA PW PBX PBC": "PBE", "SLA PW PBE PBE": "PBE", "PBE": "PBE"}
#: code label -> (executable, plugin); the response runs in this Python, which has aiida-llpam installed, and
#: aiida-phonopy's PhonopyCalculation (which takes our force constants) runs the phonopy script beside it
CODES = {
    "pw": ("pw.x", "quantumespresso.pw"),
    "ph": ("ph.x", "quantumespresso.ph"),
    "q2r": ("q2r.x", "quantumespresso.q2r"),
    "llpam-response": (sys.executable, "llpam.response"),
    "phonopy": (str(Path(sys.executable).parent / "phonopy"), "phonopy.phonopy"),
}
CODE_DESCRIPTIONS = {
    "llpam-response": "aiida-llpam response job ({executable})",
    "phonopy": "phonopy for aiida-phonopy's PhonopyCalculation ({executable})",
}
#: what a step did: made the thing, changed an option of an existing one, or found it as asked
CREATED, CHANGED, EXISTS = "created", "changed", "exists"
#: and for services and daemons (here and in deploy/): found running, stopped by the step, found not running
RUNNING, STOPPED, NOT_RUNNING = "running", "stopped", "not running"
#: Open MPI 4.1 (Debian 12) MCA parameters of the codes' mpirun, all ranks on one node: the ranks talk through shared
#: memory (``vader``) and ``self`` only, so no rank opens the ``tcp`` BTL's listening socket; mpirun's out-of-band
#: channel uses loopback. mpirun still binds its out-of-band listener to every address (docs/scaleout.md)
MPI_ONE_NODE_MCA = (("btl", "self,vader"), ("oob_tcp_if_include", "lo"))
#: Open MPI binds each job's ranks to cores counted from core 0, each mpirun on its own: two one-process jobs side by
#: side (the direct scheduler's, the daemon's) then share core 0 while core 1 idles (measured: two ph.x at half a core
#: each). Unbound, the kernel spreads them.
MPI_BINDING = ("--bind-to", "none")
#: seconds; at 0.1 s the engine takes a core from ph.x on a 2-core machine (measured 1.5x slower)
MINIMUM_JOB_POLL_INTERVAL = 5.0
#: seconds; without a broker a parent learns that a child finished only by polling (default 60 s per level)
RUNNER_POLL_INTERVAL = 2


class Step(NamedTuple):
    """What a step did, a ``(what, status)`` pair as :func:`setup_all` returns them; deploy/ reports with it too."""

    description: str
    status: str


class SetupError(RuntimeError):
    """Something the set-up needs is missing (a QE binary, a pseudopotential)."""


def ensure_profile(name: str = PROFILE) -> tuple[str, str]:
    """Create (if needed) and load the profile; return (name, status)."""
    from aiida import load_profile
    from aiida.manage.configuration import create_profile, get_config

    config = get_config(create=True)
    status = CREATED if name not in config.profile_names else EXISTS
    if status == CREATED:
        storage = Path(config.dirpath) / "repository" / f"sqlite_dos_{name}"
        create_profile(
            config,
            storage_backend="core.sqlite_dos",
            storage_config={"filepath": str(storage)},
            broker_backend=None,
            name=name,
            email="aiida-llpam@localhost",
            first_name="aiida-llpam",
            last_name="user",
            institution="aiida-llpam",
        )
        if config.default_profile_name is None:
            config.set_default_profile(name)
    if config.get_option("runner.poll.interval", scope=name) != RUNNER_POLL_INTERVAL:
        config.set_option("runner.poll.interval", RUNNER_POLL_INTERVAL, scope=name)
        status = status if status == CREATED else CHANGED
    config.store()
    load_profile(name, allow_switch=True)
    return name, status


def mpirun_command(nprocs_placeholder: str = "{tot_num_mpiprocs}", as_root: bool | None = None) -> list[str]:
    """Open MPI's mpirun for one node (:data:`MPI_ONE_NODE_MCA`, :data:`MPI_BINDING`); ``--allow-run-as-root`` when
    the jobs run as root (default: when this process does, as the jobs of a local computer do)."""
    if as_root is None:
        as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    mca = [arg for name, value in MPI_ONE_NODE_MCA for arg in ("--mca", name, value)]
    return ["mpirun", *(["--allow-run-as-root"] if as_root else []), *mca, *MPI_BINDING, "-np", nprocs_placeholder]


def ensure_mpirun_command(computer, command: list[str]) -> bool:
    """Give the stored ``computer`` the mpirun ``command`` (an older set-up's lacks the MCA parameters); whether it
    changed."""
    if list(computer.get_mpirun_command()) == command:
        return False
    computer.set_mpirun_command(command)
    return True


def ensure_computer(label: str = COMPUTER, mpiprocs: int | None = None):
    """The localhost computer (core.local, core.direct); return (computer, status).

    An existing computer must be a local one; its default MPI processes are set to ``mpiprocs`` when asked.
    """
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    try:
        computer = orm.load_computer(label)
    except NotExistent:
        computer = None
    if computer is not None:
        if (computer.transport_type, computer.scheduler_type) != ("core.local", "core.direct"):
            raise SetupError(
                f"computer {label} exists with {computer.transport_type} + {computer.scheduler_type}, not core.local + "
                "core.direct: use another profile (-p) or remove it (verdi computer delete)"
            )
        changed = ensure_mpirun_command(computer, mpirun_command())
        if mpiprocs is not None and computer.get_default_mpiprocs_per_machine() != mpiprocs:
            computer.set_default_mpiprocs_per_machine(mpiprocs)
            changed = True
        return computer, CHANGED if changed else EXISTS
    computer = new_local_computer(label, "core.direct", "this machine (aiida-llpam set-up)", "llpam-work")
    computer.set_default_mpiprocs_per_machine(mpiprocs or min(os.cpu_count() or 1, 2))
    return computer, CREATED


def new_local_computer(label: str, scheduler_type: str, description: str, workdir_name: str):
    """A stored, configured ``core.local`` computer on this machine; work directories under the AiiDA config folder."""
    from aiida import orm
    from aiida.manage.configuration import get_config

    computer = orm.Computer(
        label=label,
        hostname="localhost",
        description=description,
        transport_type="core.local",
        scheduler_type=scheduler_type,
        workdir=str(Path(get_config().dirpath) / workdir_name),
    ).store()
    computer.set_mpirun_command(mpirun_command())
    computer.set_minimum_job_poll_interval(MINIMUM_JOB_POLL_INTERVAL)
    computer.configure(safe_interval=0.0)
    return computer


def same_program(stored: str, found: str) -> bool:
    """Whether two executable paths run the same program: equal, or two names in one directory for one file (a
    venv's ``python`` and ``python3``; resolving the links would leave the venv, so the directory must match)."""
    if stored == found:
        return True
    try:
        return Path(stored).parent == Path(found).parent and os.path.samefile(stored, found)
    except OSError:
        return False


def ensure_codes(computer, names=None, remote: dict[str, str] | None = None) -> dict[str, tuple[object, str]]:
    """InstalledCode for pw.x, ph.x, q2r.x, the response job and phonopy (or the ``names`` of :data:`CODES`) on
    ``computer``; label ``<name>@<computer>``. ``remote`` maps a name to its executable's absolute path on the
    computer, for programs that are not this machine's (e.g. the Python of a venv on a cluster); it is not checked
    here (the job finds out, or ``verdi code test``).

    An existing code must run the same executable with the same plugin (codes cannot be changed once stored).
    """
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    result = {}
    for name, (program, plugin) in CODES.items():
        if names is not None and name not in names:
            continue
        label = f"{name}@{computer.label}"
        on_computer = (remote or {}).get(name)  # a path on the computer: compared as written, never looked up here
        executable = on_computer or shutil.which(program)
        if executable is None:
            raise SetupError(
                f"{program} is not on PATH: install Debian's quantum-espresso and aiida-llpam's Python "
                "dependencies (scripts/bootstrap.sh does both)"
            )
        try:
            code = orm.load_code(label)
        except NotExistent:
            code = None
        if code is not None:
            found = (str(code.filepath_executable), code.default_calc_job_plugin)
            same = found[0] == executable if on_computer else same_program(found[0], executable)
            if found[1] != plugin or not same:
                raise SetupError(
                    f"code {label} runs {found[0]} ({found[1]}), not {executable} ({plugin}): "
                    "remove it (verdi code delete) or use another profile (-p)"
                )
            result[name] = (code, EXISTS)
            continue
        code = orm.InstalledCode(
            label=name,
            computer=computer,
            filepath_executable=executable,
            default_calc_job_plugin=plugin,
            description=CODE_DESCRIPTIONS.get(name, f"Debian quantum-espresso {program}").format(executable=executable),
            prepend_text="export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1",
        ).store()
        result[name] = (code, CREATED)
    return result


def upf_header(path: Path) -> dict:
    """Functional (LDA, PBE or QE's own words) and suggested cut-offs (Ry, None when the header gives none)."""
    text = path.read_text(errors="replace")[:20000]
    found = re.search(r'functional="\s*([^"]*?)\s*"', text) or re.search(r"(?im)^\s*Functional:\s*(.*?)\s*$", text)
    name = " ".join(found.group(1).split()) if found else "unknown"
    cutoffs = [
        re.search(rf"Suggested minimum cutoff for {what}:\s*([0-9.]+)", text)
        for what in ("wavefunctions", "charge density")
    ]
    wfc, rho = (float(match.group(1)) if match else 0.0 for match in cutoffs)
    return {"functional": FUNCTIONALS.get(name, name), "ecutwfc_ry": wfc or None, "ecutrho_ry": rho or None}


def ensure_pseudo_family(label: str = PSEUDO_FAMILY):
    """An aiida-pseudo family of UpfData from Debian's files (``PSEUDO_FAMILIES``); return (family, status).

    Refuses a file whose header names another functional than the family's. When every file suggests
    cut-offs the family is a ``CutoffsPseudoPotentialFamily`` holding them (stringency ``normal``).
    """
    from aiida import orm
    from aiida_pseudo.data.pseudo import UpfData
    from aiida_pseudo.groups.family import CutoffsPseudoPotentialFamily, PseudoPotentialFamily

    functional, files = PSEUDO_FAMILIES[label]
    existing = orm.QueryBuilder().append(PseudoPotentialFamily, filters={"label": label}).first()
    if existing:
        return existing[0], EXISTS
    missing = [f for f in files.values() if not (PSEUDO_DIR / f).is_file()]
    if missing:
        raise SetupError(f"pseudopotentials {missing} not found in {PSEUDO_DIR}: install Debian's quantum-espresso")
    headers = {element: upf_header(PSEUDO_DIR / filename) for element, filename in files.items()}
    wrong = {files[e]: h["functional"] for e, h in headers.items() if h["functional"] != functional}
    if wrong:
        raise SetupError(f"family {label} is {functional} only, but these files say otherwise: {wrong}")
    cutoffs = {e: {"cutoff_wfc": h["ecutwfc_ry"], "cutoff_rho": h["ecutrho_ry"]} for e, h in headers.items()}
    recorded = all(c["cutoff_wfc"] and c["cutoff_rho"] for c in cutoffs.values())
    cls = CutoffsPseudoPotentialFamily if recorded else PseudoPotentialFamily
    with tempfile.TemporaryDirectory() as tmp:
        for filename in files.values():
            shutil.copy(PSEUDO_DIR / filename, tmp)
        family = cls.create_from_folder(
            Path(tmp),
            label,
            description=f"Debian quantum-espresso {functional}: " + ", ".join(files.values()),
            pseudo_type=UpfData,
        )
    if recorded:
        family.set_cutoffs(cutoffs, "normal", unit="Ry")
    return family, CREATED


def setup_all(profile: str = PROFILE, mpiprocs: int | None = None) -> list[tuple[str, str]]:
    """Run every step; return (what, status) pairs for the report (status: created, changed or exists)."""
    steps = []
    name, status = ensure_profile(profile)
    steps.append((f"profile {name} (core.sqlite_dos, no broker)", status))
    computer, status = ensure_computer(mpiprocs=mpiprocs)
    procs = computer.get_default_mpiprocs_per_machine()
    steps.append(
        (
            f"computer {computer.label} ({procs} MPI processes; mpirun: {' '.join(computer.get_mpirun_command())})",
            status,
        )
    )
    for code, status in ensure_codes(computer).values():
        steps.append((f"code {code.full_label} -> {code.filepath_executable}", status))
    for label in PSEUDO_FAMILIES:
        family, status = ensure_pseudo_family(label)
        steps.append((f"pseudo family {family.label} ({', '.join(sorted(family.elements))})", status))
    return steps


def python_code(computer_label: str, code=None, job: str = "the response job"):
    """The code of a Python job of this package (response, fc3 + RTA): ``code`` (a code or its label) if given,
    else ``llpam-response@<computer_label>``, which ``aiida-llpam setup`` makes; ValueError naming it if missing."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    if code is not None:
        return orm.load_code(code) if isinstance(code, str) else code
    label = f"llpam-response@{computer_label}"
    try:
        return orm.load_code(label)
    except NotExistent:
        raise ValueError(f"no code {label} for {job}: run `aiida-llpam setup`") from None
