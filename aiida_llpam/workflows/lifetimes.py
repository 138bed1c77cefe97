"""Mode-resolved phonon lifetimes from first principles: phono3py's fc3 from pw.x forces, its RTA on the DFPT fc2."""

from __future__ import annotations

import math

import numpy as np
from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, while_
from aiida.plugins import WorkflowFactory

from aiida_llpam.calculations.functions import lifetimes_from_kappa
from aiida_llpam.calculations.functions.phono3py_supercells import phono3py_supercells
from aiida_llpam.calculations.rta import Phono3pyRtaCalculation
from aiida_llpam.calculations.rta_job import KEYS as RTA_KEYS
from aiida_llpam.calculations.rta_job import rta_settings
from aiida_llpam.physics.settings import grid

from .relaunch import RelaunchesLostJobs

PwBaseWorkChain = WorkflowFactory("quantumespresso.pw.base")

#: phono3py's default displacement (Angstrom)
DEFAULT_DISPLACEMENT_ANGSTROM = 0.03


def normalised_parameters(parameters: dict) -> dict:
    """The settings with defaults and a 3x3 supercell matrix; ValueError naming the first bad key.

    Keys: ``supercell_matrix`` (three integers, a diagonal, or 3x3) of the fc3 supercell, ``mesh`` (the
    response's k mesh, Gamma-centred), ``temperatures_k`` (a list or a {start, stop, num} grid),
    optionally ``displacement_distance_angstrom`` (default 0.03), ``cutoff_pair_distance_angstrom`` (pairs
    farther apart get no second displacement and zero fc3) and ``max_concurrent`` (force jobs running at
    once; default all).
    """
    known = {
        "supercell_matrix",
        "mesh",
        "temperatures_k",
        "displacement_distance_angstrom",
        "cutoff_pair_distance_angstrom",
        "max_concurrent",
    }
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: unknown; known: {', '.join(sorted(known))}")
    # the fc3 supercell, the mesh and the temperatures as the RTA job takes them (one check for both)
    rta = {key: parameters[key] for key in RTA_KEYS if key in parameters}
    if "temperatures_k" in rta:
        rta["temperatures_k"] = grid(rta["temperatures_k"], "temperatures_k").tolist()
    settings = rta_settings(rta)
    for key, default in (
        ("displacement_distance_angstrom", DEFAULT_DISPLACEMENT_ANGSTROM),
        ("cutoff_pair_distance_angstrom", None),
    ):
        value = parameters.get(key, default)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
            raise ValueError(f"{key}: a positive number of Angstrom, got {value!r}")
        settings[key] = float(value)
    concurrent = parameters.get("max_concurrent")
    if concurrent is not None:
        if isinstance(concurrent, bool) or not isinstance(concurrent, int) or concurrent < 1:
            raise ValueError(f"max_concurrent: a positive integer, got {concurrent!r}")
        settings["max_concurrent"] = concurrent
    return settings


class LifetimesWorkChain(RelaunchesLostJobs, WorkChain):
    """phono3py's lifetimes tau_ks(T) = 1/(4 pi Gamma_ks) on the response mesh, from QE, for the PAM sums.

    1. ``phono3py_supercells``: phono3py's displaced supercells for fc3 (its own API, symmetry-reduced, optional
       pair cut-off), each a StructureData, with the dataset and ``phono3py_disp.yaml``.
    2. One aiida-quantumespresso PwBaseWorkChain per supercell (forces; its own restarts), all submitted at
       once or ``max_concurrent`` at a time.
    3. ``Phono3pyRtaCalculation`` (a job, ``llpam.rta``): fc3 from the forces, then phono3py's RTA on the DFPT
       fc2 with eps/Z* (the response's own harmonic model) on ``mesh``: ``fc3.hdf5`` and ``kappa-m*.hdf5``.
    4. ``lifetimes_from_kappa``: the lifetimes node the response takes (``PamResponseCalculation.lifetimes``).
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input(
            "force_constants",
            valid_type=orm.ArrayData,
            help="The DFPT force constants and eps/Z* (PamWorkChain output force_constants): phono3py's fc2.",
        )
        spec.input(
            "parameters",
            valid_type=orm.Dict,
            validator=cls.validate_parameters,
            help="supercell_matrix, mesh, temperatures_k, and optionally displacement_distance_angstrom, "
            "cutoff_pair_distance_angstrom, max_concurrent (see normalised_parameters).",
        )
        spec.expose_inputs(
            PwBaseWorkChain,
            namespace="pw",
            exclude=("pw.structure", "clean_workdir"),
            namespace_options={"help": "pw.x for the supercell forces: the DFPT's scf settings."},
        )
        spec.expose_inputs(
            Phono3pyRtaCalculation,
            namespace="rta",
            exclude=("force_constants", "dataset", "parameters", "forces"),
            namespace_options={"help": "The fc3 + RTA job: its code (a Python with aiida-llpam) and options."},
        )
        spec.outline(
            cls.make_supercells,
            while_(cls.forces_to_run)(cls.run_forces, while_(cls.jobs_lost)(cls.relaunch_lost), cls.inspect_forces),
            cls.run_rta,
            while_(cls.jobs_lost)(cls.relaunch_lost),
            cls.inspect_rta,
        )
        spec.output("dataset", valid_type=orm.Dict, help="phono3py's displacement dataset (Angstrom).")
        spec.output("disp_yaml", valid_type=orm.SinglefileData, help="phono3py_disp.yaml of the dataset.")
        spec.output("fc3", valid_type=orm.SinglefileData, help="phono3py's fc3.hdf5 (eV/Angstrom^3, compact).")
        spec.output("kappa", valid_type=orm.SinglefileData, help="phono3py's kappa-m*.hdf5 of the RTA.")
        spec.output("lifetimes", valid_type=orm.ArrayData, help="Linewidths for the response (lifetimes_from_kappa).")
        spec.exit_code(401, "ERROR_FORCES", message="pw.x failed for supercell(s) {labels}.")
        spec.exit_code(402, "ERROR_RTA", message="The fc3 + RTA job {job} failed: {message}")
        spec.exit_code(403, "ERROR_LIFETIMES", message="The kappa file gave no lifetimes: {message}")

    @classmethod
    def get_builder_from_pam(
        cls, pam: orm.WorkChainNode, parameters: dict, pw_code=None, options: dict | None = None, rta_code=None
    ):
        """A builder for the force constants of a finished PamWorkChain ``pam``.

        The supercell forces take the settings of the scf that the DFPT perturbed (pseudopotentials, cut-offs,
        k mesh, convergence; found through the dynamical matrices, so also for a run that reused a DFPT), so
        that fc3 and fc2 come from one electronic structure. ``pw_code`` and ``options`` replace that scf's
        code and scheduler options (e.g. for a run imported from an archive). ``rta_code`` (the Python of the
        fc3 + RTA job) defaults to ``llpam-response@<computer of the pw code>``, made by ``aiida-llpam setup``;
        ValueError if there is none.
        """
        from aiida_llpam.configure import python_code
        from aiida_llpam.queries import dfpt_retrieved, dfpt_scf_calculation

        scf = dfpt_scf_calculation(dfpt_retrieved(pam))
        if options is None:
            options = {key: scf.get_option(key) for key in ("resources", "max_wallclock_seconds", "withmpi")}
        pw_code = orm.load_code(pw_code) if isinstance(pw_code, str) else pw_code or scf.inputs.code
        builder = cls.get_builder()
        builder.force_constants = pam.outputs.force_constants
        builder.parameters = orm.Dict(parameters)
        builder.rta.code = python_code(pw_code.computer.label, rta_code, "the fc3 + RTA job")
        builder.pw = {
            "pw": {
                "code": pw_code,
                "parameters": scf.inputs.parameters,
                "pseudos": {kind: scf.inputs.pseudos[kind] for kind in scf.inputs.pseudos},
                "metadata": {"options": options},
            },
            "kpoints": scf.inputs.kpoints,
        }
        return builder

    @classmethod
    def validate_parameters(cls, node, _):
        try:
            normalised_parameters(node.get_dict())
        except ValueError as exc:
            return f"parameters.{exc}"
        return None

    def make_supercells(self):
        self.ctx.settings = normalised_parameters(self.inputs.parameters.get_dict())
        outputs = phono3py_supercells(
            self.inputs.force_constants, orm.Dict(self.ctx.settings), metadata={"call_link_label": "supercells"}
        )
        self.out("dataset", outputs.pop("dataset"))
        self.out("disp_yaml", outputs.pop("disp_yaml"))
        self.ctx.supercells = {label: node.uuid for label, node in outputs.items()}
        self.ctx.pending = sorted(self.ctx.supercells)
        total = len(self.outputs["dataset"]["first_atoms"]) + sum(
            len(first.get("second_atoms", [])) for first in self.outputs["dataset"]["first_atoms"]
        )
        self.report(
            f"{len(self.ctx.supercells)} displaced supercells to compute ({total - len(self.ctx.supercells)} "
            "pairs beyond the cut-off skipped)"
        )

    def forces_to_run(self) -> bool:
        return bool(self.ctx.pending)

    def submit_forces(self, label: str):
        return self.submit(PwBaseWorkChain, **self._pw_inputs(label))

    def _pw_inputs(self, label: str) -> AttributeDict:
        inputs = AttributeDict(self.exposed_inputs(PwBaseWorkChain, namespace="pw"))
        inputs.pw.structure = orm.load_node(self.ctx.supercells[label])
        parameters = inputs.pw.parameters.get_dict()
        parameters.setdefault("CONTROL", {}).update(calculation="scf", tprnfor=True)
        inputs.pw.parameters = orm.Dict(parameters)
        if "kpoints" in inputs:  # an explicit mesh of the unit cell: the same k density in the supercell
            mesh, offset = inputs.kpoints.get_kpoints_mesh()
            diagonal = np.diag(self.ctx.settings["supercell_matrix"])
            kpoints = orm.KpointsData()
            kpoints.set_kpoints_mesh([max(1, math.ceil(m / n)) for m, n in zip(mesh, diagonal)], offset)
            inputs.kpoints = kpoints
        inputs.metadata.call_link_label = label
        return inputs

    def run_forces(self):
        size = self.ctx.settings.get("max_concurrent") or len(self.ctx.pending)
        batch, self.ctx.pending = self.ctx.pending[:size], self.ctx.pending[size:]
        running = {label: self.launch_job(label, "submit_forces", label) for label in batch}
        done = len(self.ctx.supercells) - len(self.ctx.pending) - len(batch)
        self.report(
            f"launching {len(batch)} PwBaseWorkChain (supercells {done + 1}-{done + len(batch)} of "
            f"{len(self.ctx.supercells)})"
        )
        return ToContext(**running)

    def inspect_forces(self):
        labels = [label for label in self.ctx.supercells if label in self.ctx and label not in self.ctx.pending]
        failed = [label for label in labels if not self.ctx[label].is_finished_ok]
        if failed:
            return self.exit_codes.ERROR_FORCES.format(labels=", ".join(failed))
        return None

    def submit_rta(self) -> orm.CalcJobNode:
        """Submit the fc3 + RTA job on the forces of every supercell (the node; it goes to ``ctx.rta``)."""
        inputs = AttributeDict(self.exposed_inputs(Phono3pyRtaCalculation, namespace="rta"))
        inputs.force_constants = self.inputs.force_constants
        inputs.dataset = self.outputs["dataset"]
        inputs.parameters = orm.Dict({key: self.ctx.settings[key] for key in RTA_KEYS})
        inputs.forces = {label: self.ctx[label].outputs.output_trajectory for label in self.ctx.supercells}
        inputs.metadata.call_link_label = "rta"
        node = self.submit(Phono3pyRtaCalculation, **inputs)
        self.report(
            f"launching {node.process_label}<{node.pk}>: fc3 from {len(inputs.forces)} supercells, RTA on "
            f"{'x'.join(map(str, self.ctx.settings['mesh']))}"
        )
        return node

    def run_rta(self):
        return ToContext(rta=self.launch_job("rta", "submit_rta"))

    def inspect_rta(self):
        rta = self.ctx.rta
        if not rta.is_finished_ok:
            message = rta.exit_message or f"{rta.process_state.value}, exit status {rta.exit_status}"
            return self.exit_codes.ERROR_RTA.format(job=f"{rta.process_label}<{rta.pk}>", message=message)
        lifetimes, node = lifetimes_from_kappa.run_get_node(
            rta.outputs.kappa, metadata={"call_link_label": "lifetimes"}
        )
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_LIFETIMES.format(message=node.exit_message)
        self.out("fc3", rta.outputs.fc3)
        self.out("kappa", rta.outputs.kappa)
        self.out("lifetimes", lifetimes)
        summary = rta.outputs.summary
        tau = 1.0 / (4 * np.pi * np.max(lifetimes.get_array("gamma_thz")))
        self.report(
            f"lifetimes on the {'x'.join(map(str, self.ctx.settings['mesh']))} mesh (fc3 "
            f"{summary['seconds_fc3']:.1f} s, RTA {summary['seconds_rta']:.1f} s); shortest tau {tau:.3g} ps "
            "(highest T)"
        )
        return None
