"""PamWorkChain: crystal structure -> QE DFPT -> force constants -> PAM response, with full provenance."""

from __future__ import annotations

import math

import numpy as np
from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, if_
from aiida.plugins import WorkflowFactory
from aiida_quantumespresso.common.types import ElectronicType, RelaxType
from aiida_quantumespresso.workflows.protocols.utils import ProtocolMixin, recursive_merge

from aiida_llpam.calculations.functions import (
    pam_response,
    phonopy_force_constants,
    strip_dielectric_block_from_folder,
)

PwBaseWorkChain = WorkflowFactory("quantumespresso.pw.base")
PwRelaxWorkChain = WorkflowFactory("quantumespresso.pw.relax")
PhBaseWorkChain = WorkflowFactory("quantumespresso.ph.base")
Q2rBaseWorkChain = WorkflowFactory("quantumespresso.q2r.base")

RESPONSE_OUTPUTS = (
    "dispersion", "gamma_a", "trajectory", "gamma_nl", "chi", "gamma_ll", "eta",
    "critical_radius", "pam_density", "bz_contributions", "settings",
)  # fmt: skip
REQUIRED_RESPONSE_KEYS = (
    "temperatures_k", "radii_nm", "tau_s", "grad_t_k_m", "mesh", "frequency_cutoff_thz", "bz_temperature_k",
    "path_points_per_segment", "trajectory_q", "trajectory_branch",
)  # fmt: skip


def _grid_values(spec) -> list[float]:
    if isinstance(spec, dict):
        return [float(spec.get("start", math.nan)), float(spec.get("stop", math.nan))] + list(spec.get("extra", []))
    return list(spec)


def validate_response(node: orm.Dict, _) -> str | None:
    """Every response setting present and physical (checked before anything runs)."""
    p = node.get_dict()
    missing = [key for key in REQUIRED_RESPONSE_KEYS if key not in p]
    if missing:
        return f"response: missing {', '.join(missing)}"
    for key in ("temperatures_k", "radii_nm"):
        try:
            values = [float(v) for v in _grid_values(p[key])]
        except (TypeError, ValueError):
            return f"response.{key}: not a list of numbers or a {{start, stop, num}} grid"
        if not values or not all(math.isfinite(v) and v > 0 for v in values):
            return f"response.{key}: every value must be > 0, got {p[key]}"
        if isinstance(p[key], dict) and int(p[key].get("num", 0)) < 1:
            return f"response.{key}: num must be >= 1"
    for key in ("tau_s", "frequency_cutoff_thz", "bz_temperature_k"):
        if not (isinstance(p[key], (int, float)) and math.isfinite(p[key]) and p[key] > 0):
            return f"response.{key}: must be > 0, got {p[key]}"
    if not (isinstance(p["grad_t_k_m"], (int, float)) and math.isfinite(p["grad_t_k_m"])):
        return f"response.grad_t_k_m: must be a finite number, got {p['grad_t_k_m']}"
    mesh = p["mesh"]
    if not (isinstance(mesh, list) and len(mesh) == 3 and all(isinstance(n, int) and n > 0 for n in mesh)):
        return f"response.mesh: must be three positive integers, got {mesh}"
    return None


def validate_inputs(inputs, _) -> str | None:
    """Cross-checks: a pseudo for every kind, a q mesh (not a list) for ph.x."""
    structure = inputs["structure"]
    pseudos = inputs["scf"]["pw"].get("pseudos", {})
    missing = sorted(set(structure.get_kind_names()) - set(pseudos))
    if missing:
        return f"scf.pw.pseudos: no pseudopotential for {', '.join(missing)}"
    qpoints = inputs["ph_main"].get("qpoints")
    if qpoints is not None:
        try:
            mesh, _ = qpoints.get_kpoints_mesh()
        except AttributeError:
            return "ph_main.qpoints: must be a mesh (ph.x ldisp), not a list of q points"
        if min(mesh) < 1:
            return f"ph_main.qpoints: mesh must be positive, got {mesh}"
    return None


class PamWorkChain(ProtocolMixin, WorkChain):
    """Alpha-quartz (or any insulator) from QE DFPT to phonon angular-momentum response nodes.

    Outline: optional vc-relax (PwRelaxWorkChain) -> scf (PwBaseWorkChain) ->
    DFPT on a q mesh with eps/Z* (PhBaseWorkChain) -> q2r.x twice
    (Q2rBaseWorkChain: on ph.x's dyn files, which carry eps/Z* and give
    dipole-subtracted IFCs, and on a copy without the dielectric block, which
    gives the full IFCs phonopy needs) -> force constants for phonopy ->
    response sums (aiida_llpam.physics).
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("structure", valid_type=orm.StructureData, help="The crystal (c along z for the paper's path).")
        spec.input(
            "enantiomer",
            valid_type=orm.Str,
            required=False,
            help="Label of the enantiomer (e.g. right / P3_221), copied into the settings output.",
        )
        spec.input(
            "clean_workdir",
            valid_type=orm.Bool,
            default=lambda: orm.Bool(False),
            help="Clean the remote work directories of all calculations at the end.",
        )
        spec.expose_inputs(
            PwRelaxWorkChain,
            namespace="relax",
            exclude=("structure", "clean_workdir", "base_init_relax"),
            namespace_options={"required": False, "populate_defaults": False, "help": "vc-relax first, if given."},
        )
        spec.expose_inputs(
            PwBaseWorkChain,
            namespace="scf",
            exclude=("clean_workdir", "pw.structure", "pw.parent_folder"),
            namespace_options={"help": "The scf before DFPT (insulator: fixed occupations)."},
        )
        spec.expose_inputs(
            PhBaseWorkChain,
            namespace="ph_main",
            exclude=("clean_workdir", "ph.parent_folder"),
            namespace_options={"help": "DFPT on a q mesh with epsil (eps and Born charges)."},
        )
        spec.expose_inputs(
            Q2rBaseWorkChain,
            namespace="q2r",
            exclude=("q2r.parent_folder",),
            namespace_options={"help": "q2r.x, used twice (with and without the dielectric block)."},
        )
        spec.input(
            "response",
            valid_type=orm.Dict,
            validator=validate_response,
            help="Response settings: temperatures_k, radii_nm (lists or {start, stop, num, extra}), tau_s (s), "
            "grad_t_k_m (K/m), mesh (k mesh of the sums), frequency_cutoff_thz, bz_temperature_k (K), "
            "path_points_per_segment, trajectory_q (reduced), trajectory_branch.",
        )
        spec.inputs.validator = validate_inputs

        spec.outline(
            cls.setup,
            if_(cls.should_relax)(cls.run_relax, cls.inspect_relax),
            cls.run_scf,
            cls.inspect_scf,
            cls.run_ph,
            cls.inspect_ph,
            cls.run_q2r,
            cls.inspect_q2r,
            cls.run_response,
            cls.results,
        )

        spec.output("structure", valid_type=orm.StructureData, help="The structure the DFPT ran on.")
        spec.output("q2r_force_constants", valid_type=orm.SinglefileData, help="q2r.x IFCs, no dipole subtraction.")
        spec.output("q2r_force_constants_nac", valid_type=orm.SinglefileData, help="q2r.x file with eps/Z*.")
        spec.output("force_constants", valid_type=orm.ArrayData, help="phonopy force constants + eps/Z* (QE units).")
        for name in RESPONSE_OUTPUTS:
            spec.output(name, valid_type=orm.Data, help=f"Response output `{name}` (units in its attributes).")

        spec.exit_code(401, "ERROR_SUB_PROCESS_FAILED_RELAX", message="The vc-relax PwRelaxWorkChain failed.")
        spec.exit_code(402, "ERROR_SUB_PROCESS_FAILED_SCF", message="The scf PwBaseWorkChain failed.")
        spec.exit_code(403, "ERROR_SUB_PROCESS_FAILED_PH", message="The DFPT PhBaseWorkChain failed.")
        spec.exit_code(404, "ERROR_SUB_PROCESS_FAILED_Q2R", message="A Q2rBaseWorkChain failed.")
        spec.exit_code(405, "ERROR_NO_DIELECTRIC_DATA", message="ph.x wrote no dielectric tensor / Born charges.")

    @classmethod
    def get_protocol_filepath(cls):
        from importlib.resources import files

        from . import protocols

        return files(protocols) / "pam.yaml"

    @classmethod
    def get_builder_from_protocol(cls, pw_code, ph_code, q2r_code, structure, protocol=None, overrides=None, options=None):
        """A ready builder: ``protocol`` is smoke, fast or production; ``overrides`` merge into the protocol.

        Raises ValueError for an unknown protocol or a structure with species missing from the pseudo family.
        """
        if protocol is not None and protocol not in cls.get_available_protocols():
            raise ValueError(f"unknown protocol {protocol!r}: choose from {', '.join(cls.get_available_protocols())}")
        inputs = cls.get_protocol_inputs(protocol, overrides)
        pw_code, ph_code, q2r_code = (orm.load_code(c) if isinstance(c, str) else c for c in (pw_code, ph_code, q2r_code))

        system = {"ecutwfc": inputs["ecutwfc"], "ecutrho": inputs["ecutrho"], "occupations": "fixed"}
        pw_overrides = {"pseudo_family": inputs["pseudo_family"], "pw": {"parameters": {"SYSTEM": system}}}
        kwargs = {"electronic_type": ElectronicType.INSULATOR, "options": options}

        def with_mesh(base):
            kpoints = orm.KpointsData()
            kpoints.set_kpoints_mesh(inputs["kpoints"])
            base.kpoints = kpoints
            base.pop("kpoints_distance", None)
            base.pop("kpoints_force_parity", None)

        builder = cls.get_builder()
        builder.structure = structure
        if inputs["relax"]:
            relax = PwRelaxWorkChain.get_builder_from_protocol(
                pw_code, structure, "fast",
                overrides={"base_relax": pw_overrides, "base_init_relax": pw_overrides, "meta_convergence": False},
                relax_type=RelaxType.POSITIONS_CELL, **kwargs,
            )  # fmt: skip
            relax.pop("structure", None)
            relax.pop("clean_workdir", None)
            relax.pop("base_init_relax", None)
            with_mesh(relax.base_relax)
            builder.relax = relax

        scf = PwBaseWorkChain.get_builder_from_protocol(pw_code, structure, "fast", overrides=pw_overrides, **kwargs)
        scf.pw.pop("structure", None)
        scf.pop("clean_workdir", None)
        scf.pw.parameters["ELECTRONS"]["conv_thr"] = 1.0e-12  # DFPT needs a tight scf
        with_mesh(scf)
        builder.scf = scf

        ph = PhBaseWorkChain.get_builder_from_protocol(
            ph_code, protocol="fast",
            # QE 6.7 accepts nmix_ph <= 5 (the aiida-qe protocol's 8 is rejected by phq_readin)
            overrides={
                "qpoints": inputs["qpoints"],
                "ph": {"parameters": {"INPUTPH": {"tr2_ph": inputs["tr2_ph"], "nmix_ph": 4}}},
            },
            **kwargs,
        )  # fmt: skip
        ph.pop("clean_workdir", None)
        builder.ph_main = ph

        builder.q2r.q2r.code = q2r_code
        builder.q2r.q2r.parameters = orm.Dict({"INPUT": {"zasr": "crystal"}})
        if options:
            builder.q2r.q2r.metadata.options = recursive_merge({"resources": {"num_machines": 1}}, options)
        else:
            builder.q2r.q2r.metadata.options = {"resources": {"num_machines": 1, "num_mpiprocs_per_machine": 1}}

        response = dict(inputs["response"])
        response.update(
            protocol=protocol or cls.get_default_protocol(),
            ecutwfc_ry=inputs["ecutwfc"],
            ecutrho_ry=inputs["ecutrho"],
            kpoints_mesh=list(inputs["kpoints"]),
            qpoints_mesh=list(inputs["qpoints"]),
            relaxed=bool(inputs["relax"]),
            pseudo_family=inputs["pseudo_family"],
        )
        builder.response = orm.Dict(response)
        builder.clean_workdir = orm.Bool(inputs["clean_workdir"])
        return builder

    # ---- outline steps -------------------------------------------------------------------------

    def setup(self):
        self.ctx.structure = self.inputs.structure

    def should_relax(self):
        return "relax" in self.inputs

    def run_relax(self):
        inputs = AttributeDict(self.exposed_inputs(PwRelaxWorkChain, namespace="relax"))
        inputs.structure = self.ctx.structure
        inputs.metadata.call_link_label = "relax"
        node = self.submit(PwRelaxWorkChain, **inputs)
        self.report(f"launching PwRelaxWorkChain<{node.pk}> (vc-relax)")
        return ToContext(workchain_relax=node)

    def inspect_relax(self):
        node = self.ctx.workchain_relax
        if not node.is_finished_ok:
            self.report(f"PwRelaxWorkChain<{node.pk}> failed with exit status {node.exit_status}")
            return self.exit_codes.ERROR_SUB_PROCESS_FAILED_RELAX
        self.ctx.structure = node.outputs.output_structure
        cell = self.ctx.structure.cell
        self.report(f"relaxed: a = {np.linalg.norm(cell[0]):.4f} A, c = {np.linalg.norm(cell[2]):.4f} A")
        return None

    def run_scf(self):
        inputs = AttributeDict(self.exposed_inputs(PwBaseWorkChain, namespace="scf"))
        inputs.pw.structure = self.ctx.structure
        inputs.metadata.call_link_label = "scf"
        node = self.submit(PwBaseWorkChain, **inputs)
        self.report(f"launching PwBaseWorkChain<{node.pk}> (scf)")
        return ToContext(workchain_scf=node)

    def inspect_scf(self):
        node = self.ctx.workchain_scf
        if not node.is_finished_ok:
            self.report(f"PwBaseWorkChain<{node.pk}> failed with exit status {node.exit_status}")
            return self.exit_codes.ERROR_SUB_PROCESS_FAILED_SCF
        return None

    def run_ph(self):
        inputs = AttributeDict(self.exposed_inputs(PhBaseWorkChain, namespace="ph_main"))
        inputs.ph.parent_folder = self.ctx.workchain_scf.outputs.remote_folder
        parameters = inputs.ph.parameters.get_dict()
        parameters.setdefault("INPUTPH", {})["epsil"] = True  # eps and Z* are the NAC source
        inputs.ph.parameters = orm.Dict(parameters)
        inputs.metadata.call_link_label = "ph"
        node = self.submit(PhBaseWorkChain, **inputs)
        mesh = inputs.qpoints.get_kpoints_mesh()[0] if "qpoints" in inputs else "from qpoints_distance"
        self.report(f"launching PhBaseWorkChain<{node.pk}> (DFPT, q mesh {mesh}, epsil)")
        return ToContext(workchain_ph=node)

    def inspect_ph(self):
        node = self.ctx.workchain_ph
        if not node.is_finished_ok:
            self.report(f"PhBaseWorkChain<{node.pk}> failed with exit status {node.exit_status}")
            return self.exit_codes.ERROR_SUB_PROCESS_FAILED_PH
        return None

    def run_q2r(self):
        retrieved = self.ctx.workchain_ph.outputs.retrieved
        try:
            stripped = strip_dielectric_block_from_folder(retrieved)
        except ValueError as exc:
            self.report(str(exc))
            return self.exit_codes.ERROR_NO_DIELECTRIC_DATA
        futures = {}
        for key, parent in (("workchain_q2r_nac", retrieved), ("workchain_q2r", stripped)):
            inputs = AttributeDict(self.exposed_inputs(Q2rBaseWorkChain, namespace="q2r"))
            inputs.q2r.parent_folder = parent
            inputs.metadata.call_link_label = "q2r_nac" if key.endswith("nac") else "q2r"
            futures[key] = self.submit(Q2rBaseWorkChain, **inputs)
        self.report(
            f"launching Q2rBaseWorkChain<{futures['workchain_q2r_nac'].pk}> (dyn files with eps/Z*) and "
            f"Q2rBaseWorkChain<{futures['workchain_q2r'].pk}> (dielectric block removed)"
        )
        return ToContext(**futures)

    def inspect_q2r(self):
        for key in ("workchain_q2r_nac", "workchain_q2r"):
            node = self.ctx[key]
            if not node.is_finished_ok:
                self.report(f"Q2rBaseWorkChain<{node.pk}> failed with exit status {node.exit_status}")
                return self.exit_codes.ERROR_SUB_PROCESS_FAILED_Q2R
        return None

    def run_response(self):
        fc_file = self.ctx.workchain_q2r.outputs.force_constants
        nac_file = self.ctx.workchain_q2r_nac.outputs.force_constants
        self.ctx.force_constants = phonopy_force_constants(fc_file, nac_file)
        parameters = self.inputs.response.get_dict()
        from spglib import get_symmetry_dataset

        structure = self.ctx.structure
        ase = structure.get_ase()
        dataset = get_symmetry_dataset((ase.cell[:], ase.get_scaled_positions(), ase.numbers), symprec=1e-3)
        parameters.update(
            space_group_number=int(dataset.number),
            space_group=str(dataset.international),
            enantiomer=self.inputs.enantiomer.value if "enantiomer" in self.inputs else None,
            formula=structure.get_formula(),
        )
        mesh = parameters["mesh"]
        self.report(f"computing the response on a {mesh[0]}x{mesh[1]}x{mesh[2]} k mesh (space group {dataset.international})")
        self.ctx.response = pam_response(self.ctx.force_constants, orm.Dict(parameters))

    def results(self):
        self.out("structure", self.ctx.structure)
        self.out("q2r_force_constants", self.ctx.workchain_q2r.outputs.force_constants)
        self.out("q2r_force_constants_nac", self.ctx.workchain_q2r_nac.outputs.force_constants)
        self.out("force_constants", self.ctx.force_constants)
        for name in RESPONSE_OUTPUTS:
            self.out(name, self.ctx.response[name])
        chi = self.ctx.response["chi"]
        self.report(f"done: chi_total({chi.get_array('temperatures_k')[-1]:.0f} K) = {chi.get_array('chi_total')[-1]:.3e} kg/m")

    def on_terminated(self):
        super().on_terminated()
        if not self.inputs.clean_workdir.value:
            return
        cleaned = []
        for called in self.node.called_descendants:
            if isinstance(called, orm.CalcJobNode):
                try:
                    called.outputs.remote_folder._clean()  # noqa: SLF001
                    cleaned.append(called.pk)
                except (OSError, KeyError):
                    pass
        if cleaned:
            self.report(f"cleaned remote folders of calculations: {' '.join(map(str, cleaned))}")
