"""Screening a folder of structures through the daemon: what ``workflows/screen.py`` does (docs/crystals.md).

One PamWorkChain per structure file and enantiomer, submitted with aiida-submission-controller into a group
(:class:`ScreenController`), at most ``max_concurrent`` active at a time; a run is identified by the extras
EXTRA_KEYS, so screening again never submits a run twice. The folder's listing and checks (:func:`list_files`,
:func:`prepare`) need no profile; :func:`screen` is the whole script: checks, a batch (or, with ``wait``, batches
until every run has finished) and the state of every run. Refusals end the process with "refused: ..."
(``sys.exit``).
"""

import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from aiida import orm
from aiida.common.exceptions import NotExistent
from aiida.manage import get_manager
from aiida_submission_controller import BaseSubmissionController
from ase import Atoms
from pydantic import PrivateAttr

from aiida_llpam.configure import DAEMON_PROFILE, SLURM_COMPUTER
from aiida_llpam.daemon_profile import DEPLOY_COMMAND
from aiida_llpam.structures import (
    Orientation,
    StructureError,
    check_pseudopotentials,
    family_elements,
    handedness_label,
    mark_enantiomer,
    mirror_z,
    orient_unique_axis,
    read_structure_file,
    symmetry_of,
)
from aiida_llpam.workflows.crystal import pam_builder
from aiida_llpam.workflows.pam import PamWorkChain
from aiida_llpam.workflows.protocols import UNPHYSICAL_PROTOCOLS

from .launch import daemon_unavailable_reason, profile_has_broker
from .runs import check_protocol, daemon_qpoint_jobs

ENANTIOMER_CHOICES = ("both", "as-is")
#: the extras that identify one run in the group, in the order of the controller's key tuples
EXTRA_KEYS = ("screen_sha256", "screen_enantiomer", "screen_protocol", "screen_pseudo_family")
#: where a profile without a broker is sent; docs/scaleout.md describes the set-up
SERVICES_HINT = (
    f"set up the services and the daemon profile as root with `{DEPLOY_COMMAND}` (docs/scaleout.md), "
    f"then run this script with `verdi -p {DAEMON_PROFILE} run`"
)


@dataclass(frozen=True)
class Candidate:
    """A structure file that passed the checks, oriented as it will run (before any mirror)."""

    path: Path
    sha256: str
    atoms: Atoms
    orientation: Orientation
    symmetry: dict
    enantiomers: tuple[str, ...]


# ---- the folder: which runs, which files are refused (no profile needed) -----------------------------------


def list_files(folder: Path, pattern: str = "*") -> list[Path]:
    """The files in ``folder`` matching ``pattern``, sorted, hidden ones left out; ValueError naming the problem."""
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder")
    files = sorted(path for path in folder.glob(pattern) if path.is_file() and not path.name.startswith("."))
    if not files:
        raise ValueError(f"{folder}: no files matching {pattern!r}")
    return files


def _reason(exc: Exception, path: Path) -> str:
    """The refusal message without the path in front (the report names the file already)."""
    return str(exc).removeprefix(f"{path}: ")


def prepare(files, available_elements, family: str, enantiomers: str = "both", symprec: float = 1e-3):
    """(candidates, refused): the files that can run, and (file, reason) for each one that cannot.

    ``available_elements`` are the elements of the pseudo family ``family``. With ``enantiomers`` "both" a
    Sohncke crystal runs as-is and mirrored, an achiral one as-is only (its mirror image is the same crystal).
    A file with the same bytes as an earlier one is refused: it would be the same runs.
    """
    candidates, refused, seen = [], [], {}
    for path in files:
        try:
            atoms = read_structure_file(path)
            check_pseudopotentials(atoms.get_chemical_symbols(), available_elements, family)
            oriented, orientation = orient_unique_axis(atoms, symprec)
            info = symmetry_of(oriented, symprec)
        except (StructureError, ValueError) as exc:
            refused.append((path, _reason(exc, path)))
            continue
        sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        if sha256 in seen:
            refused.append((path, f"the same file as {seen[sha256].name} (identical bytes): screened once"))
            continue
        seen[sha256] = path
        both = enantiomers == "both" and info["sohncke"]
        runs = ("as-is", "other") if both else ("as-is",)
        candidates.append(Candidate(path, sha256, oriented, orientation, info, runs))
    return candidates, refused


def run_keys(candidates, protocol: str, family: str) -> list[tuple[str, str, str, str]]:
    """The controller's key of every run, in the order of EXTRA_KEYS."""
    return [(c.sha256, enantiomer, protocol, family) for c in candidates for enantiomer in c.enantiomers]


def candidate_line(candidate: Candidate) -> str:
    """One line per accepted file: what it is and which runs it gets."""
    info = candidate.symmetry
    what = (
        f"{info['formula']} {info['space_group']} (No. {info['space_group_number']}), "
        f"{handedness_label(info, short=True)}"
    )
    if candidate.enantiomers == ("as-is", "other"):
        runs = "as-is and other (mirror z -> -z)"
    elif info["sohncke"]:
        runs = "as-is only (--enantiomers as-is)"
    else:
        runs = "as-is only (achiral: its mirror image is the same crystal)"
    return f"{candidate.path.name}: {what}; {runs}"


def broker_refusal(profile) -> str | None:
    """Why ``profile`` cannot screen (no broker, so nothing can be submitted to a daemon); None when it can."""
    if profile is None:
        return f"no AiiDA profile loaded: run with `verdi -p PROFILE run`; {SERVICES_HINT}"
    if not profile_has_broker(profile):
        return (
            f"profile {profile.name} has no broker (an embedded profile runs everything in one process), so "
            f"nothing can be submitted to a daemon: {SERVICES_HINT}"
        )
    return None


class ScreenController(BaseSubmissionController):
    """Submits the runs of ``candidates`` into the group, at most ``max_concurrent`` active at a time.

    ``parallelize_qpoints``: the launcher's choice for every run (:func:`screen` sets it from the profile).
    """

    unique_extra_keys: tuple = EXTRA_KEYS
    candidates: dict  # sha256 -> Candidate
    protocol: str
    pseudo_family: str
    symprec: float
    computer: str
    parallelize_qpoints: bool = False
    #: oriented structures made in this process, so that an as-is run and its mirror image share one
    _oriented: dict = PrivateAttr(default_factory=dict)
    #: key -> the original StructureData of a mirror image built in this process, for its enantiomer_of extra
    _originals: dict = PrivateAttr(default_factory=dict)
    #: key -> why making its builder failed (the controller only logs that and goes on); not tried again
    _errors: dict = PrivateAttr(default_factory=dict)

    @property
    def errors(self) -> dict:
        return self._errors

    def get_all_extras_to_submit(self):
        return set(run_keys(self.candidates.values(), self.protocol, self.pseudo_family)) - set(self.errors)

    def _oriented_structure(self, candidate: Candidate):
        if candidate.sha256 not in self._oriented:
            node = orm.StructureData(ase=candidate.atoms)
            node.label = f"{candidate.symmetry['formula']} {candidate.symmetry['space_group']}"
            node.description = f"{candidate.path}, oriented: {candidate.orientation.note}"
            self._oriented[candidate.sha256] = node
        return self._oriented[candidate.sha256]

    def _original(self, key):
        """The structure of the as-is run of ``key``'s file when it is in the group, else the oriented file."""
        as_is = self.get_all_submitted_processes().get((key[0], "as-is", *key[2:]))
        if as_is is not None:
            return as_is.inputs.structure
        return self._oriented_structure(self.candidates[key[0]]).store()

    def get_inputs_and_processclass_from_extras(self, extras_values):
        key = tuple(extras_values)
        candidate = self.candidates[key[0]]
        try:
            codes = [orm.load_code(f"{name}@{self.computer}") for name in ("pw", "ph", "q2r")]
            args = (key[1], self.protocol, self.pseudo_family, self.symprec, str(candidate.path))
            if key[1] == "as-is":
                builder = pam_builder(codes, self._oriented_structure(candidate), candidate.symmetry, *args)
            else:
                mirrored = mirror_z(candidate.atoms)
                original = self._original(key)
                info = symmetry_of(mirrored, self.symprec)
                builder = pam_builder(codes, orm.StructureData(ase=mirrored), info, *args, original=original)
                self._originals[key] = original
            builder.parallelize_qpoints = orm.Bool(self.parallelize_qpoints)
        except Exception as exc:
            self._errors[key] = f"{exc.__class__.__name__}: {exc}"
            raise
        return builder

    def submit_batch(self) -> dict:
        """Submit what the free slots allow (as-is before other); record the mirror images' originals."""
        submitted = self.submit_new_batch(sort=True)
        for key, node in submitted.items():
            if key in self._originals:
                original = self._originals[key]
                mark_enantiomer(node, original)
        return submitted

    def runs(self) -> dict:
        """key -> ProcessNode of this screen's runs that are in the group."""
        wanted = self.get_all_extras_to_submit()
        return {key: node for key, node in self.get_all_submitted_processes().items() if key in wanted}

    def next_batch(self) -> list:
        """The keys that a batch would submit now (the controller's dry run, which mis-slices with no free slot)."""
        return list(self.submit_new_batch(dry_run=True, sort=True)) if self.num_available_slots else []


# ---- the state of the runs, for people ---------------------------------------------------------------------


def run_state(node) -> str:
    if node is None:
        return "to submit"
    if not node.is_terminated:
        return "running"
    return "finished ok" if node.is_finished_ok else "failed"


def state_line(node) -> str:
    if node is None:
        return "to submit"
    state = run_state(node)
    if state == "failed":
        # an excepted or killed process has no exit status
        how = f"exit status {node.exit_status}" if node.exit_status is not None else node.process_state.value
        return f"{node.process_label}<{node.pk}> failed ({how}{': ' + node.exit_message if node.exit_message else ''})"
    return f"{node.process_label}<{node.pk}> {state}"


def counts(keys, runs: dict) -> dict:
    tally = {"finished ok": 0, "failed": 0, "running": 0, "to submit": 0}
    for key in keys:
        tally[run_state(runs.get(key))] += 1
    return tally


def counts_line(tally: dict) -> str:
    return ", ".join(f"{number} {state}" for state, number in tally.items()) + f" (of {sum(tally.values())})"


def print_runs(keys, runs: dict, names: dict, group: str, errors: dict | None = None) -> None:
    """One line per run: file, enantiomer, state; how to retry the failed ones."""
    errors = errors or {}
    width = max(len(f"{names[key[0]]} {key[1]}") for key in keys)
    for key in keys:
        state = f"could not submit: {errors[key]}" if key in errors else state_line(runs.get(key))
        print(f"  {names[key[0]] + ' ' + key[1]:{width}}  {state}")
    failed = [runs[key].pk for key in keys if run_state(runs.get(key)) == "failed"]
    if failed:
        print(
            f"failed runs are not submitted again; to retry: verdi group remove-nodes -G {group} "
            f"{' '.join(map(str, failed))}, then screen again"
        )


# ---- the screen ----------------------------------------------------------------------------------------------


def _check_codes(computer: str, profile) -> None:
    """Exit naming the codes of a screen run that ``computer`` lacks."""
    missing = []
    for name in ("pw", "ph", "q2r", "llpam-response"):
        try:
            orm.load_code(f"{name}@{computer}")
        except NotExistent:
            missing.append(f"{name}@{computer}")
    if missing:
        sys.exit(
            f"refused: no code {', '.join(missing)} in profile {profile.name}: the daemon profile's set-up "
            f"makes them on {SLURM_COMPUTER} (docs/scaleout.md), or give --computer"
        )


def _submit(controller: ScreenController, keys, label, wait: bool, poll: float, outcome: dict) -> list:
    """Submit batches (one, or with ``wait`` until every run has finished), printing what happens; the keys that
    could be submitted."""
    reported, last = set(), None
    while True:
        batch = controller.submit_batch()
        for key, node in batch.items():
            print(f"submitted {label(key)}: {node.process_label}<{node.pk}>", flush=True)
        outcome["submitted"].update(batch)
        for key in set(controller.errors) - reported:
            print(f"could not submit {label(key)}: {controller.errors[key]}", flush=True)
            reported.add(key)
        submittable = [key for key in keys if key not in controller.errors]
        tally = counts(submittable, controller.runs())
        if not wait or tally["running"] + tally["to submit"] == 0:
            return submittable
        if tally != last:
            print(f"{time.strftime('%H:%M:%S')} {counts_line(tally)}", flush=True)
            last = tally
        time.sleep(poll)


def screen(
    folder: Path,
    pattern: str = "*",
    protocol: str = "fast",
    enantiomers: str = "both",
    pseudo_family: str | None = None,
    symprec: float = 1e-3,
    max_concurrent: int = 2,
    group: str | None = None,
    computer: str = SLURM_COMPUTER,
    wait: bool = False,
    poll: float = 30.0,
    dry_run: bool = False,
) -> dict:
    """Screen the files of ``folder`` matching ``pattern``: one PamWorkChain per file and enantiomer (``enantiomers``
    "both": a chiral crystal also mirrored), submitted into ``group`` (default llpam/screen/<protocol>), at most
    ``max_concurrent`` active; with ``wait`` until every run has finished (checked every ``poll`` s). ``dry_run``:
    what is done, running and would be submitted now, nothing stored.

    Returns {"refused": [(file, reason)], "keys": every run's key, "submitted": {key: node} of this call, "runs":
    {key: node} in the group, "errors": {key: why its builder could not be made}}. Exits with "refused: ..." on a
    profile without broker, an unknown protocol, a bad argument, a missing folder, family or code.
    """
    check_protocol(protocol)
    for name, value in (("--symprec", symprec), ("--max-concurrent", max_concurrent), ("--poll", poll)):
        if value <= 0:
            sys.exit(f"{name} must be positive, got {value}")
    profile = get_manager().get_profile()
    refusal = broker_refusal(profile)
    if refusal:
        sys.exit(f"refused: {refusal}")
    family = pseudo_family or PamWorkChain.get_protocol_inputs(protocol)["pseudo_family"]
    group_label = group or f"llpam/screen/{protocol}"
    try:
        files = list_files(Path(folder), pattern)
        elements = family_elements(family)
    except ValueError as exc:  # StructureError is one
        sys.exit(f"refused: {exc}")
    _check_codes(computer, profile)

    print(
        f"screen {folder} ({len(files)} files), protocol {protocol}, pseudo family {family}, "
        f"group {group_label}, computer {computer}, profile {profile.name}"
    )
    if protocol in UNPHYSICAL_PROTOCOLS:
        print(f"NOTE: {UNPHYSICAL_PROTOCOLS[protocol]}: it tests the machinery")
    parallelize_qpoints = daemon_qpoint_jobs()
    candidates, refused = prepare(files, elements, family, enantiomers, symprec)
    for path, reason in refused:
        print(f"refused {path.name}: {reason}")
    for candidate in candidates:
        print(candidate_line(candidate))
    keys = run_keys(candidates, protocol, family)
    # what the tests and a calling script look at: the refused files, every run's key, and by key the runs
    # submitted by this call, the runs in the group and the runs whose builder could not be made
    outcome = {"refused": refused, "keys": keys, "submitted": {}, "runs": {}, "errors": {}}
    if not keys:
        print("nothing to run: every file was refused")
        return outcome
    names = {c.sha256: c.path.name for c in candidates}

    def label(key) -> str:
        return f"{names[key[0]]} {key[1]}"

    try:
        orm.Group.collection.get(label=group_label)
    except NotExistent:
        if dry_run:
            # the controller needs its group to exist; none means nothing was screened into it yet
            now = sorted(keys)[:max_concurrent]
            print(f"group {group_label} does not exist yet; would submit now: {', '.join(map(label, now))}")
            print_runs(keys, {}, names, group_label)
            print("dry run: nothing stored, nothing submitted")
            return outcome
        orm.Group(label=group_label, description=f"aiida-llpam screen runs ({protocol})").store()
    controller = ScreenController(
        group_label=group_label,
        max_concurrent=max_concurrent,
        candidates={c.sha256: c for c in candidates},
        protocol=protocol,
        pseudo_family=family,
        symprec=symprec,
        computer=computer,
        parallelize_qpoints=parallelize_qpoints,
    )
    if dry_run:
        now = controller.next_batch()
        print(
            f"{controller.num_active_slots} active of max {max_concurrent}; would submit now: "
            + (", ".join(map(label, now)) or "nothing")
        )
        outcome["runs"] = controller.runs()
        print_runs(keys, outcome["runs"], names, group_label)
        print("dry run: nothing stored, nothing submitted")
        return outcome

    if daemon_unavailable_reason():  # the profile has a broker (checked above): its daemon is not running
        if wait:
            sys.exit(
                f"refused: the daemon of profile {profile.name} is not running, so --wait would never end "
                f"(verdi -p {profile.name} daemon start)"
            )
        print(
            f"WARNING: the daemon of profile {profile.name} is not running: the submitted runs wait for "
            f"`verdi -p {profile.name} daemon start`"
        )

    submittable = _submit(controller, keys, label, wait, poll, outcome)
    outcome.update(runs=controller.runs(), errors=controller.errors)
    print(
        f"runs: {counts_line(counts(submittable, outcome['runs']))}; max {max_concurrent} concurrent"
        + (f"; {len(controller.errors)} could not be submitted" if controller.errors else "")
    )
    print_runs(keys, outcome["runs"], names, group_label, controller.errors)
    return outcome
