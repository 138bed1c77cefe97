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
from aiida_llpam.calculations.rta_job import OPTIONAL_KEYS as RTA_OPTIONAL_KEYS
from aiida_llpam.calculations.rta_job import REFERENCE, positive_angstrom, rta_settings
from aiida_llpam.physics.settings import grid
from aiida_llpam.physics.third_order import fit_shortfall

from .relaunch import RelaunchesLostJobs

PwBaseWorkChain = WorkflowFactory("quantumespresso.pw.base")

#: phono3py's default displacement (Angstrom)
DEFAULT_DISPLACEMENT_ANGSTROM = 0.03


def _positive_integer(parameters: dict, key: str) -> int | None:
    value = parameters.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{key}: a positive integer, got {value!r}")
    return value


def normalised_parameters(parameters: dict) -> dict:
    """The settings with defaults and a 3x3 supercell matrix; ValueError naming the first bad key.

    Keys: ``supercell_matrix`` (three integers, a diagonal, or 3x3) of the fc3 supercell (default the primitive
    cell; the fc2 keeps the DFPT's own supercell), ``mesh`` (the response's k mesh, Gamma-centred),
    ``temperatures_k`` (a list or a {start, stop, num} grid), and optionally:

    * ``fc3_method``: ``finite`` (default; phono3py's symmetry-reduced pairs of displacements, finite differences)
      or ``random`` (random snapshots fitted by symfc);
    * ``displacement_distance_angstrom`` (default 0.03): the finite displacement, or the distance every atom of a
      random snapshot moves;
    * ``cutoff_pair_distance_angstrom``: fc3 is zero for pairs farther apart (finite: phono3py leaves out their
      second displacements; random: symfc's cut-off of the fitted triplets, default every triplet of the
      supercell). A fit cut short of fc3 that the forces hold puts it into the triplets it keeps: Si 3x3x3 at
      Gamma, cut at 5.0 A, kappa(300 K) scattered over 120-132 W/(m K) with the snapshots, 120.5-121.2 fitted to
      every triplet, as the finite route (120.8); converge it with ``rerun_rta.py --cutoff-pair-angstrom``;
    * ``number_of_snapshots`` (random, required), ``random_seed`` (random; default drawn and stored),
      ``plus_minus`` (random, default true: each snapshot also with the opposite displacements, twice the pw.x runs);
    * ``supercell_kpoints``: the k mesh of the supercells' scf (three positive integers; default the DFPT scf's
      mesh divided by the diagonal of ``supercell_matrix``, rounded up: the same k density);
    * ``gamma_tricks`` (default false; needs ``supercell_kpoints`` [1, 1, 1]): pw.x's Gamma tricks, real
      wavefunctions at half the cost (measured on quartz 2x2x2; the smoke Si 2x2x2 scf did not converge with them);
    * ``max_concurrent`` (force jobs running at once; default all);
    * ``isotope`` (default false): the RTA with the scattering by the natural isotope mix too;
    * ``symmetrize_fc3`` (default true): symfc's projection of fc3 onto its symmetry and sum rules before the
      RTA. Finite differences with a pair cut-off violate the acoustic sum rule without it (Si 3x3x3, pairs within
      4.0 A: kappa(300 K) 100 instead of 121 W/(m K)); symfc's fit satisfies it already.
    """
    known = {
        "supercell_matrix",
        "mesh",
        "temperatures_k",
        "fc3_method",
        "displacement_distance_angstrom",
        "cutoff_pair_distance_angstrom",
        "number_of_snapshots",
        "random_seed",
        "plus_minus",
        "supercell_kpoints",
        "gamma_tricks",
        "max_concurrent",
        "isotope",
        "symmetrize_fc3",
    }
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: unknown; known: {', '.join(sorted(known))}")
    # the fc3 supercell, the mesh and the temperatures as the RTA job takes them (one check for both)
    rta = {key: parameters[key] for key in RTA_KEYS + RTA_OPTIONAL_KEYS if key in parameters}
    rta.setdefault("supercell_matrix", [1, 1, 1])
    rta.setdefault("symmetrize_fc3", True)
    if "temperatures_k" in rta:
        rta["temperatures_k"] = grid(rta["temperatures_k"], "temperatures_k").tolist()
    settings = rta_settings(rta)
    settings["displacement_distance_angstrom"] = positive_angstrom(
        parameters.get("displacement_distance_angstrom", DEFAULT_DISPLACEMENT_ANGSTROM),
        "displacement_distance_angstrom",
    )
    random_keys = ("number_of_snapshots", "random_seed", "plus_minus")
    if settings["fc3_method"] == "random":
        if "number_of_snapshots" not in parameters:
            raise ValueError("number_of_snapshots: missing (fc3_method random)")
        settings["number_of_snapshots"] = _positive_integer(parameters, "number_of_snapshots")
        seed = parameters.get("random_seed")
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
                raise ValueError(f"random_seed: an integer in [0, 2**32), got {seed!r}")
            settings["random_seed"] = seed
        plus_minus = parameters.get("plus_minus", True)
        if not isinstance(plus_minus, bool):
            raise ValueError(f"plus_minus: true or false, got {plus_minus!r}")
        settings["plus_minus"] = plus_minus
    else:
        given = [key for key in random_keys if key in parameters]
        if given:
            raise ValueError(f"{', '.join(given)}: only for fc3_method random")
    kpoints = parameters.get("supercell_kpoints")
    if kpoints is not None:
        if not (
            isinstance(kpoints, (list, tuple))
            and len(kpoints) == 3
            and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in kpoints)
        ):
            raise ValueError(f"supercell_kpoints: three positive integers, got {kpoints!r}")
        settings["supercell_kpoints"] = list(kpoints)
    tricks = parameters.get("gamma_tricks", False)
    if not isinstance(tricks, bool):
        raise ValueError(f"gamma_tricks: true or false, got {tricks!r}")
    if tricks:
        if settings.get("supercell_kpoints") != [1, 1, 1]:
            raise ValueError("gamma_tricks: only with supercell_kpoints [1, 1, 1]")
        settings["gamma_tricks"] = True
    concurrent = _positive_integer(parameters, "max_concurrent")
    if concurrent is not None:
        settings["max_concurrent"] = concurrent
    return settings


class LifetimesWorkChain(RelaunchesLostJobs, WorkChain):
    """phono3py's lifetimes tau_ks(T) = 1/(4 pi Gamma_ks) on the response mesh, from QE, for the PAM sums.

    1. ``phono3py_supercells``: the displaced fc3 supercells, each a StructureData, with the dataset and
       ``phono3py_disp.yaml``: phono3py's finite displacements (symmetry-reduced, optional pair cut-off) or random
       snapshots (then also the size of symfc's fit; too few snapshots to determine it end the run here).
    2. One aiida-quantumespresso PwBaseWorkChain per supercell (forces; its own restarts), all submitted at
       once or ``max_concurrent`` at a time; random snapshots also the undisplaced supercell (where symmetry allows
       its atoms a force), whose residual forces the fit subtracts. A failed finite displacement (or undisplaced
       supercell) ends the run; a failed random snapshot is left out of the fit (reported), as long as the others
       determine it.
    3. ``Phono3pyRtaCalculation`` (a job, ``llpam.rta``): fc3 from the forces (finite differences, or symfc's
       fit), then phono3py's RTA on the DFPT fc2 (on its own supercell) with eps/Z* (the response's own harmonic
       model) on ``mesh``: ``fc3.hdf5`` and ``kappa-m*.hdf5``.
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
            help="supercell_matrix (fc3; default the primitive cell), mesh, temperatures_k, and optionally "
            "fc3_method (finite or random), displacement_distance_angstrom, cutoff_pair_distance_angstrom, "
            "number_of_snapshots, random_seed, plus_minus (random), supercell_kpoints, gamma_tricks, max_concurrent, "
            "isotope (see normalised_parameters).",
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
        spec.output(
            "fit_size",
            valid_type=orm.Dict,
            required=False,
            help="Random snapshots: symfc's basis sizes of fc2 and fc3, equations per snapshot, snapshots needed.",
        )
        spec.output("fc3", valid_type=orm.SinglefileData, help="phono3py's fc3.hdf5 (eV/Angstrom^3, compact).")
        spec.output("kappa", valid_type=orm.SinglefileData, help="phono3py's kappa-m*.hdf5 of the RTA.")
        spec.output("lifetimes", valid_type=orm.ArrayData, help="Linewidths for the response (lifetimes_from_kappa).")
        spec.exit_code(401, "ERROR_FORCES", message="pw.x failed for supercell(s) {labels}.")
        spec.exit_code(402, "ERROR_RTA", message="The fc3 + RTA job {job} failed: {message}")
        spec.exit_code(403, "ERROR_LIFETIMES", message="The kappa file gave no lifetimes: {message}")
        spec.exit_code(404, "ERROR_TOO_FEW_SNAPSHOTS", message="Too few random snapshots for the fit: {message}")

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
        random = self.ctx.settings["fc3_method"] == "random"
        if random and "random_seed" not in self.ctx.settings:  # drawn once, stored in the calcfunction's input
            self.ctx.settings["random_seed"] = int(np.random.SeedSequence().entropy % 2**32)
        outputs = phono3py_supercells(
            self.inputs.force_constants, orm.Dict(self.ctx.settings), metadata={"call_link_label": "supercells"}
        )
        self.out("dataset", outputs.pop("dataset"))
        self.out("disp_yaml", outputs.pop("disp_yaml"))
        if random:
            self.out("fit_size", outputs.pop("fit_size"))
        self.ctx.supercells = {label: node.uuid for label, node in outputs.items()}
        self.ctx.pending = sorted(self.ctx.supercells)
        if random:
            snapshots = self._snapshot_count()
            reference = (
                f" and the undisplaced supercell ({REFERENCE}, its residual forces are subtracted)"
                if REFERENCE in self.ctx.supercells
                else " (no residual force on an atom at rest: symmetry forbids it)"
            )
            self.report(
                f"{snapshots} random snapshots{reference} to compute (seed {self.ctx.settings['random_seed']}); the "
                f"fit needs at least {self.outputs['fit_size']['snapshots_needed']}"
            )
            return self._refuse_too_few(snapshots, [])
        total = len(self.outputs["dataset"]["first_atoms"]) + sum(
            len(first.get("second_atoms", [])) for first in self.outputs["dataset"]["first_atoms"]
        )
        self.report(
            f"{len(self.ctx.supercells)} displaced supercells to compute ({total - len(self.ctx.supercells)} "
            "pairs beyond the cut-off skipped)"
        )
        return None

    def _snapshot_count(self) -> int:
        """The random snapshots among the supercells to compute (not the undisplaced one)."""
        return len(self.ctx.supercells) - (REFERENCE in self.ctx.supercells)

    def _refuse_too_few(self, usable: int, failed: list):
        """ERROR_TOO_FEW_SNAPSHOTS unless ``usable`` snapshots determine symfc's fit (the job checks again)."""
        detail = f" ({len(failed)} failed: {', '.join(failed)})" if failed else ""
        cutoff = self.ctx.settings.get("cutoff_pair_distance_angstrom")
        if shortfall := fit_shortfall(self.outputs["fit_size"].get_dict(), usable, cutoff, detail):
            return self.exit_codes.ERROR_TOO_FEW_SNAPSHOTS.format(message=shortfall)
        return None

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
        if "supercell_kpoints" in self.ctx.settings:  # the supercell's own mesh, Gamma-centred
            kpoints = orm.KpointsData()
            kpoints.set_kpoints_mesh(self.ctx.settings["supercell_kpoints"])
            inputs.kpoints = kpoints
        elif "kpoints" in inputs:  # an explicit mesh of the unit cell: the same k density in the supercell
            mesh, offset = inputs.kpoints.get_kpoints_mesh()
            diagonal = np.diag(self.ctx.settings["supercell_matrix"])
            kpoints = orm.KpointsData()
            kpoints.set_kpoints_mesh([max(1, math.ceil(m / n)) for m, n in zip(mesh, diagonal)], offset)
            inputs.kpoints = kpoints
        if self.ctx.settings.get("gamma_tricks"):  # real wavefunctions: half the cost, same forces
            settings = inputs.pw.settings.get_dict() if "settings" in inputs.pw else {}
            inputs.pw.settings = orm.Dict(settings | {"GAMMA_ONLY": True})
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
        if failed and self.ctx.settings["fc3_method"] == "random" and REFERENCE not in failed:
            # a failed snapshot is never fitted; the rest may determine the fit
            new = [label for label in failed if label not in self.ctx.get("left_out", [])]
            self.ctx.left_out = failed
            if new:
                self.report(f"pw.x failed for snapshot(s) {', '.join(new)}: left out of the fit")
            return self._refuse_too_few(self._snapshot_count() - len(failed), failed)
        if failed:
            return self.exit_codes.ERROR_FORCES.format(labels=", ".join(failed))
        return None

    def submit_rta(self) -> orm.CalcJobNode:
        """Submit the fc3 + RTA job on the forces of every supercell (the node; it goes to ``ctx.rta``)."""
        inputs = AttributeDict(self.exposed_inputs(Phono3pyRtaCalculation, namespace="rta"))
        inputs.force_constants = self.inputs.force_constants
        inputs.dataset = self.outputs["dataset"]
        keys = RTA_KEYS + RTA_OPTIONAL_KEYS
        inputs.parameters = orm.Dict({key: self.ctx.settings[key] for key in keys if key in self.ctx.settings})
        inputs.forces = {  # a failed snapshot is never fitted (a failed finite displacement ended the run)
            label: self.ctx[label].outputs.output_trajectory
            for label in self.ctx.supercells
            if self.ctx[label].is_finished_ok
        }
        inputs.metadata.call_link_label = "rta"
        node = self.submit(Phono3pyRtaCalculation, **inputs)
        self.report(
            f"launching {node.process_label}<{node.pk}>: fc3 from {len(inputs.forces)} supercells "
            f"({self.ctx.settings['fc3_method']}), RTA on "
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
