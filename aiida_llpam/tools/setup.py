"""Idempotent set-up of the embedded AiiDA environment for aiida-llpam.

One profile on ``core.sqlite_dos`` storage with no broker (``verdi run`` works;
``submit`` and the daemon need a broker: see docs/workflow.md for the
scale-out path), a localhost computer, codes for Debian's QE binaries and a
pseudopotential family made from Debian's LDA pseudopotentials.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

PROFILE = "llpam"
COMPUTER = "localhost"
PSEUDO_FAMILY = "llpam/LDA/debian"
PSEUDO_DIR = Path("/usr/share/espresso/pseudo")
#: Debian's LDA pseudopotentials used for quartz (and the Si control)
PSEUDOS = {"Si": "Si.pz-vbc.UPF", "O": "O.pz-rrkjus.UPF"}
#: code label -> (executable, plugin); the response runs in this Python, which has aiida-llpam installed
CODES = {
    "pw": ("pw.x", "quantumespresso.pw"),
    "ph": ("ph.x", "quantumespresso.ph"),
    "q2r": ("q2r.x", "quantumespresso.q2r"),
    "llpam-response": (sys.executable, "llpam.response"),
}
#: what a step did: made the thing, changed an option of an existing one, or found it as asked
CREATED, CHANGED, EXISTS = "created", "changed", "exists"
#: seconds; at 0.1 s the engine takes a core from ph.x on a 2-core machine (measured 1.5x slower)
MINIMUM_JOB_POLL_INTERVAL = 5.0
#: seconds; without a broker a parent learns that a child finished only by polling (default 60 s per level)
RUNNER_POLL_INTERVAL = 2


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


def mpirun_command(nprocs_placeholder: str = "{tot_num_mpiprocs}") -> list[str]:
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    return ["mpirun", *(["--allow-run-as-root"] if root else []), "-np", nprocs_placeholder]


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
        if mpiprocs is not None and computer.get_default_mpiprocs_per_machine() != mpiprocs:
            computer.set_default_mpiprocs_per_machine(mpiprocs)
            return computer, CHANGED
        return computer, EXISTS
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


def ensure_codes(computer) -> dict[str, tuple[object, str]]:
    """InstalledCode for pw.x, ph.x, q2r.x and the response job on ``computer``; label ``<name>@<computer>``.

    An existing code must run the same executable with the same plugin (codes cannot be changed once stored).
    """
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    result = {}
    for name, (program, plugin) in CODES.items():
        label = f"{name}@{computer.label}"
        executable = shutil.which(program)
        if executable is None:
            raise SetupError(f"{program} is not on PATH: install Debian's quantum-espresso (scripts/bootstrap.sh does)")
        try:
            code = orm.load_code(label)
        except NotExistent:
            code = None
        if code is not None:
            found = (str(code.filepath_executable), code.default_calc_job_plugin)
            if found != (executable, plugin):
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
            description=f"aiida-llpam response job ({executable})" if name == "llpam-response" else f"Debian quantum-espresso {program}",
            prepend_text="export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1",
        ).store()
        result[name] = (code, CREATED)
    return result


def ensure_pseudo_family(label: str = PSEUDO_FAMILY):
    """A plain aiida-pseudo family of UpfData from Debian's LDA files; return (family, created)."""
    from aiida import orm
    from aiida_pseudo.data.pseudo import UpfData
    from aiida_pseudo.groups.family import PseudoPotentialFamily

    existing = orm.QueryBuilder().append(PseudoPotentialFamily, filters={"label": label}).first()
    if existing:
        return existing[0], EXISTS
    missing = [f for f in PSEUDOS.values() if not (PSEUDO_DIR / f).is_file()]
    if missing:
        raise SetupError(f"pseudopotentials {missing} not found in {PSEUDO_DIR}: install Debian's quantum-espresso")
    with tempfile.TemporaryDirectory() as tmp:
        for filename in PSEUDOS.values():
            shutil.copy(PSEUDO_DIR / filename, tmp)
        family = PseudoPotentialFamily.create_from_folder(
            Path(tmp), label, description="Debian quantum-espresso LDA: " + ", ".join(PSEUDOS.values()), pseudo_type=UpfData
        )
    return family, CREATED


def setup_all(profile: str = PROFILE, mpiprocs: int | None = None) -> list[tuple[str, str]]:
    """Run every step; return (what, status) pairs for the report (status: created, changed or exists)."""
    steps = []
    name, status = ensure_profile(profile)
    steps.append((f"profile {name} (core.sqlite_dos, no broker)", status))
    computer, status = ensure_computer(mpiprocs=mpiprocs)
    procs = computer.get_default_mpiprocs_per_machine()
    steps.append((f"computer {computer.label} ({procs} MPI processes; mpirun: {' '.join(computer.get_mpirun_command())})", status))
    for code, status in ensure_codes(computer).values():
        steps.append((f"code {code.full_label} -> {code.filepath_executable}", status))
    family, status = ensure_pseudo_family()
    steps.append((f"pseudo family {family.label} ({', '.join(PSEUDOS.values())})", status))
    return steps
