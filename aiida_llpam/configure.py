"""Idempotent set-up of the embedded AiiDA environment for aiida-llpam.

One profile on ``core.sqlite_dos`` storage with no broker (``verdi run`` works;
``submit`` and the daemon need a broker: see docs/workflow.md for the
scale-out path), a localhost computer, codes for Debian's QE binaries and two
pseudopotential families made from Debian's files, one functional each: LDA
(quartz, Si) and PBE (every element Debian has a PBE file for that records its
suggested cut-offs; the family stores them, so protocols can use them).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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
    """InstalledCode for pw.x, ph.x, q2r.x, the response job and phonopy on ``computer``; label ``<name>@<computer>``.

    An existing code must run the same executable with the same plugin (codes cannot be changed once stored).
    """
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    result = {}
    for name, (program, plugin) in CODES.items():
        label = f"{name}@{computer.label}"
        executable = shutil.which(program)
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


# ----------------------------------------------------------------------------------- the daemon profile (scale-out)
# As `verdi presto`, this part detects PostgreSQL and RabbitMQ and never installs or starts them: the host's set-up,
# DEPLOY_COMMAND (deploy/, outside this package), leaves a database role and a broker user, passwords in STATE_DIR.

#: the command that provisions the host (PostgreSQL, RabbitMQ, SLURM) and then runs ensure_daemon_profile
DEPLOY_COMMAND = "python deploy/services.py up"
#: root-only directory where the host set-up keeps the passwords it made
STATE_DIR = Path("/var/lib/aiida-llpam")
DB_USER = BROKER_USER = "aiida_llpam"
PG_HOST, PG_PORT = "127.0.0.1", 5432
BROKER_HOST, BROKER_PORT = "127.0.0.1", 5672
#: seconds for the daemon's calls, stopping included (``daemon.timeout``): with AiiDA's 2 s `verdi daemon stop`
#: prints FAILED while workers busy with jobs on a loaded 2-core machine are still shutting down
DAEMON_TIMEOUT_S = 180


def password_file(service: str, user: str) -> Path:
    """Where the host set-up keeps the password of ``user`` for ``service`` (``postgres`` or ``rabbitmq``)."""
    return STATE_DIR / f"{service}-{user}.password"


def database_name(profile: str = DAEMON_PROFILE) -> str:
    """The database of ``profile``; named with a hash of the AiiDA config directory, which holds the file repository:
    a user's ~/.aiida and a test's AIIDA_PATH with a profile of the same name must not share one database."""
    from aiida.manage.configuration.settings import AiiDAConfigDir

    digest = hashlib.sha1(str(AiiDAConfigDir.get()).encode()).hexdigest()[:8]
    return re.sub(r"[^a-z0-9_]", "_", f"aiida_{profile}_{digest}".lower())


@contextmanager
def setup_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for a set-up; fail at once if another set-up holds it."""
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise SetupError(f"another set-up is running (pid {holder}, lock {path}): wait for it to finish") from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield


def detect_services(profile: str, user: str = DB_USER) -> tuple[dict, dict]:
    """(storage_config, broker_config) of ``profile``: the stored passwords, checked by connecting to both."""
    import psycopg
    from aiida.brokers.rabbitmq.defaults import detect_rabbitmq_config

    fix = f"run `{DEPLOY_COMMAND}` as root first (docs/scaleout.md)"
    files = {service: password_file(service, user) for service in ("postgres", "rabbitmq")}
    if not all(os.access(path, os.R_OK) for path in files.values()):
        raise SetupError(f"cannot read {' and '.join(map(str, files.values()))} (not root, or no host set-up): {fix}")
    stored = {service: path.read_text().strip() for service, path in files.items()}
    storage = {
        "database_engine": "postgresql_psycopg",
        "database_hostname": PG_HOST,
        "database_port": PG_PORT,
        "database_username": user,
        "database_password": stored["postgres"],
        "database_name": database_name(profile),
    }
    try:
        psycopg.connect(
            host=PG_HOST,
            port=PG_PORT,
            user=user,
            password=stored["postgres"],
            dbname=storage["database_name"],
            connect_timeout=10,
        ).close()
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1]
        raise SetupError(f"database {storage['database_name']} on {PG_HOST}:{PG_PORT}: {reason}: {fix}") from None
    try:
        broker = detect_rabbitmq_config(username=user, password=stored["rabbitmq"], host=BROKER_HOST, port=BROKER_PORT)
    except ConnectionError:
        raise SetupError(f"RabbitMQ does not accept {user} on {BROKER_HOST}:{BROKER_PORT}: {fix}") from None
    return storage, broker


def _ensure_daemon_profile_entry(name: str, storage: dict, broker: dict) -> Step:
    """The profile on ``core.psql_dos`` + ``core.rabbitmq``; an existing one gets the current credentials."""
    from aiida.manage.configuration import create_profile, get_config

    config = get_config(create=True)
    what = f"profile {name} (core.psql_dos, core.rabbitmq as {broker['broker_username']})"
    if name not in config.profile_names:
        repository = (Path(config.dirpath) / "repository" / f"psql_dos_{name}").as_uri()
        create_profile(
            config,
            name=name,
            storage_backend="core.psql_dos",
            storage_config={**storage, "repository_uri": repository},
            broker_backend="core.rabbitmq",
            broker_config=broker,
            email="aiida-llpam@localhost",
            first_name="aiida-llpam",
            last_name="daemon",
            institution="aiida-llpam",
        )
        config.store()
        return Step(f"{what}: created", CREATED)
    profile = config.get_profile(name)
    if profile.storage_backend != "core.psql_dos":
        raise SetupError(f"profile {name} exists with storage {profile.storage_backend}: choose another daemon profile")
    old_storage, old_broker = profile.storage_config, profile.process_control_config or {}
    changed = [
        what
        for what, new, old in (("database", storage, old_storage), ("broker", broker, old_broker))
        if any(old.get(key) != value for key, value in new.items())
    ]
    if not changed:
        return Step(f"{what}: exists", EXISTS)
    profile.set_storage("core.psql_dos", {**old_storage, **storage})
    profile.set_process_controller("core.rabbitmq", {**old_broker, **broker})
    config.update_profile(profile)
    config.store()
    return Step(f"{what}: {' and '.join(changed)} credentials updated", CHANGED)


def ensure_daemon_options(name: str, workers: int) -> Step:
    """The RabbitMQ version warning off (deploy/ disables the consumer timeout it is about), ``daemon.timeout`` long
    enough to stop busy workers, ``workers`` as the number `verdi daemon start` starts."""
    from aiida.manage.configuration import get_config

    config = get_config()
    wanted = {"warnings.rabbitmq_version": False, "daemon.timeout": DAEMON_TIMEOUT_S, "daemon.default_workers": workers}
    different = {key: value for key, value in wanted.items() if config.get_option(key, scope=name) != value}
    for key, value in different.items():
        config.set_option(key, value, scope=name)
    if different:
        config.store()
    return Step(f"profile {name} options {different or wanted}", CHANGED if different else EXISTS)


def ensure_slurm_computer(label: str = SLURM_COMPUTER) -> Step:
    """The computer of the one-node SLURM cluster deploy/ sets up (``core.local``, ``core.slurm``)."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    try:
        computer = orm.load_computer(label)
    except NotExistent:
        computer = new_local_computer(label, "core.slurm", "this machine's one-node SLURM cluster", "llpam-slurm-work")
        computer.set_default_mpiprocs_per_machine(os.cpu_count() or 1)
        return Step(f"computer {label} (core.local, core.slurm, mpirun: {' '.join(mpirun_command())})", CREATED)
    if computer.get_minimum_job_poll_interval() != MINIMUM_JOB_POLL_INTERVAL:
        computer.set_minimum_job_poll_interval(MINIMUM_JOB_POLL_INTERVAL)
        return Step(f"computer {label}: minimum job poll interval set to {MINIMUM_JOB_POLL_INTERVAL} s", CHANGED)
    return Step(f"computer {label}: exists", EXISTS)


def broker_start_time() -> float | None:
    """When the local RabbitMQ node started (epoch seconds, from its ``beam.smp ... -s rabbit boot``), or None."""
    import psutil

    for process in psutil.process_iter(["name", "cmdline", "create_time"]):
        args = process.info["cmdline"] or []
        if process.info["name"] == "beam.smp" and "-s rabbit boot" in " ".join(args):
            return process.info["create_time"]
    return None


def broker_restarted_under(worker_start_times: list[float], broker_started: float | None) -> bool:
    """Whether the broker started after a running worker: the worker reconnected by itself, and RabbitMQ may hand
    the tasks it holds to another worker too, so that a process runs twice (aiida-core #4595)."""
    return broker_started is not None and any(started < broker_started for started in worker_start_times)


def ensure_daemon(name: str, workers: int, restart_because: str | None = None) -> Step:
    """The daemon of ``name`` running with ``workers`` workers; running workers are restarted (AiiDA's own
    ``restart_daemon``) when ``restart_because`` says so or when the broker restarted under them."""
    from aiida.engine.daemon.client import get_daemon_client

    client = get_daemon_client(name)
    if not client.is_daemon_running:
        client.start_daemon(number_workers=workers)
        return Step(f"daemon of {name}: started with {workers} workers", CHANGED)
    started = [info["create_time"] for info in client.get_worker_info().get("info", {}).values()]
    if restart_because is None and broker_restarted_under(started, broker_start_time()):
        restart_because = "RabbitMQ restarted under them: aiida-core #4595, a process could run twice"
    if restart_because:
        client.restart_daemon(wait=True)
    current = client.get_number_of_workers()
    if current < workers:
        client.increase_workers(workers - current, wait=True)
    elif current > workers:
        client.decrease_workers(current - workers, wait=True)
    if restart_because or current != workers:
        restarted = f"workers restarted ({restart_because}), " if restart_because else f"{current} -> "
        return Step(f"daemon of {name}: {restarted}{workers} workers", CHANGED)
    return Step(f"daemon of {name}: running with {workers} workers", RUNNING)


def ensure_daemon_profile(name: str = DAEMON_PROFILE, workers: int = 2) -> list[Step]:
    """Profile ``name`` on the running PostgreSQL + RabbitMQ (:func:`detect_services`) with computer
    ``localhost-slurm``, the QE codes, the pseudo families and a running daemon of ``workers`` workers.

    Loads the profile; the daemon's workers inherit this process's environment, AIIDA_PATH included. Of two calls at
    once for one config directory the second fails at once (:func:`setup_lock`).
    """
    if name == PROFILE:
        raise SetupError(f"{PROFILE} is the embedded sqlite profile: the daemon profile needs another name")
    from aiida import load_profile, orm
    from aiida.manage.configuration import get_config

    with setup_lock(Path(get_config(create=True).dirpath) / "llpam-setup.lock"):
        storage, broker = detect_services(name)
        steps = [_ensure_daemon_profile_entry(name, storage, broker), ensure_daemon_options(name, workers)]
        load_profile(name, allow_switch=True)
        steps.append(ensure_slurm_computer(SLURM_COMPUTER))
        codes = ensure_codes(orm.load_computer(SLURM_COMPUTER)).values()
        steps.extend(Step(f"code {code.full_label} -> {code.filepath_executable}", status) for code, status in codes)
        for label in PSEUDO_FAMILIES:
            family, status = ensure_pseudo_family(label)
            steps.append(Step(f"pseudo family {family.label}", status))
        steps.append(ensure_daemon(name, workers, "new credentials" if steps[0].status == CHANGED else None))
    return steps


def stop_daemon(name: str = DAEMON_PROFILE) -> Step:
    """Stop the daemon of profile ``name`` in the current AiiDA config directory, if it has one running."""
    from aiida.engine.daemon.client import get_daemon_client
    from aiida.manage.configuration import get_config

    if name not in get_config(create=True).profile_names:
        return Step(f"daemon of {name}: no such profile", NOT_RUNNING)
    client = get_daemon_client(name)
    if not client.is_daemon_running:
        return Step(f"daemon of {name}: not running", NOT_RUNNING)
    client.stop_daemon(wait=True, timeout=DAEMON_TIMEOUT_S)
    return Step(f"daemon of {name}: stopped", STOPPED)


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
