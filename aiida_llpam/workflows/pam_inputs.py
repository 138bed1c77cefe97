"""PamWorkChain's inputs: validators, the pseudo family's cut-offs, the builder from a protocol, the DFPT step's
inputs."""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.common.exceptions import NotExistent
from aiida.plugins import WorkflowFactory
from aiida_quantumespresso.common.types import ElectronicType, RelaxType
from aiida_quantumespresso.workflows.protocols.utils import recursive_merge

from aiida_llpam.calculations.functions.pam_figure_data import validate_figure_parameters
from aiida_llpam.calculations.functions.phonopy_force_constants import validate_fit_inputs, validate_sum_rules
from aiida_llpam.configure import python_code
from aiida_llpam.physics.equilibrium import validate_thresholds

from .ph_base import PhBaseWorkChain
from .ph_qpoints import PhQpointsWorkChain

PwBaseWorkChain = WorkflowFactory("quantumespresso.pw.base")
PwRelaxWorkChain = WorkflowFactory("quantumespresso.pw.relax")
#: the CalcJob options of a run's jobs that also reach its response job (a serial Python job of its own layout)
SITE_OPTIONS = ("queue_name", "account", "qos", "max_wallclock_seconds")


def validate_figures(node: orm.Dict, _) -> str | None:
    """The figure settings, checked by the calcfunction's own validator (before anything runs)."""
    return validate_figure_parameters(node.get_dict())


def validate_sum_rules_input(node: orm.Dict, _) -> str | None:
    return validate_sum_rules(node.get_dict())


def validate_equilibrium(node: orm.Dict, _) -> str | None:
    return validate_thresholds(node.get_dict())


def validate_inputs(inputs, _) -> str | None:
    """Cross-checks: DFPT inputs or a finished DFPT, a pseudo for every kind, a q mesh (not a list) for ph.x,
    direct ph.x runs to fit only with the sum rules that fit them."""
    if "sum_rules" in inputs:
        fit = validate_fit_inputs(inputs["sum_rules"].get_dict(), True, len(inputs.get("fit_direct", {})))
        if fit:
            return fit
    if "representations_per_job" in inputs:
        per_job = inputs["representations_per_job"].value
        if per_job < 1:
            return f"representations_per_job: must be at least 1, not {per_job}"
        if not inputs["parallelize_qpoints"].value:
            return "representations_per_job: splits the per-q-point route; set parallelize_qpoints too"
    if "dfpt" in inputs:
        given = sorted(key for key in ("relax", "scf", "ph_main") if key in inputs)
        if given:
            return f"dfpt: a finished DFPT replaces relax, scf and ph_main; remove {', '.join(given)}"
        if "validation_qpoints" in inputs:
            return (
                "validation_qpoints: needs this run's own scf; check a run on a given DFPT with "
                "workflows/run_direct_dfpt.py (DirectDfptWorkChain runs its scf again)"
            )
        return None
    missing = [key for key in ("scf", "ph_main") if key not in inputs]
    if missing:
        return f"{', '.join(missing)}: needed to run the DFPT (or give `dfpt`, the retrieved files of a finished ph.x)"
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


def family_cutoffs(inputs: dict, structure: orm.StructureData, overrides: dict) -> dict:
    """ecutwfc/ecutrho (Ry) from the pseudo family where it records them (the largest over the structure's elements).

    The protocol's own cut-offs are for families that record none (Debian's LDA files suggest none); a
    value given in ``overrides`` is kept as it is (e.g. a cut-off convergence study).
    """
    from aiida_pseudo.groups.mixins import RecommendedCutoffMixin

    try:
        family = orm.load_group(inputs["pseudo_family"])
    except NotExistent:
        raise ValueError(f"no pseudopotential family {inputs['pseudo_family']}: run `aiida-llpam setup`") from None
    missing = sorted(set(structure.get_kind_names()) - set(family.elements))
    if missing:
        raise ValueError(
            f"no pseudopotential for {', '.join(missing)} in the pseudo family {family.label} "
            f"(it has {', '.join(sorted(family.elements))})"
        )
    if not isinstance(family, RecommendedCutoffMixin):
        return {}
    recommended = dict(zip(("ecutwfc", "ecutrho"), family.get_recommended_cutoffs(structure=structure, unit="Ry")))
    return {key: inputs[key] if key in overrides else value for key, value in recommended.items()}


def sum_rule_data(inputs, dfpt_retrieved: orm.FolderData) -> dict:
    """The data nodes ``phonopy_force_constants`` needs beside its files: the direct ph.x folders to fit, and for
    the on-site rule the DFPT's dyn files (its raw Gamma matrix)."""
    data = dict(inputs.get("fit_direct", {}))
    if inputs["sum_rules"].get("acoustic", "crystal") == "onsite":
        data["dfpt"] = dfpt_retrieved
    return data


def dfpt_inputs(
    ph_main, parent_folder: orm.RemoteData, parallelize_qpoints: bool, representations_per_job: int | None = None
) -> tuple[type, AttributeDict]:
    """The DFPT process and its inputs, as PamWorkChain runs it: ``ph_main`` (its namespace's inputs) on the scf
    ``parent_folder``, with eps and Z*; PhQpointsWorkChain if ``parallelize_qpoints`` (split by representation,
    ``representations_per_job`` to a job, where that is given), else PhBaseWorkChain."""
    inputs = AttributeDict({key: value for key, value in ph_main.items() if key != "metadata"})
    inputs.ph = AttributeDict(inputs.ph)
    inputs.ph.parent_folder = parent_folder
    parameters = inputs.ph.parameters.get_dict()
    parameters.setdefault("INPUTPH", {})["epsil"] = True  # eps and Z* are the NAC source
    inputs.ph.parameters = orm.Dict(parameters)
    inputs.metadata = AttributeDict(ph_main.get("metadata", {}))
    if not parallelize_qpoints:
        return PhBaseWorkChain, inputs
    inputs.pop("only_initialization", None)
    if representations_per_job is not None:
        inputs.split_representations = orm.Bool(True)
        inputs.representations_per_job = orm.Int(representations_per_job)
    return PhQpointsWorkChain, inputs


def fill_builder(
    builder, inputs: dict, codes, structure, protocol: str, options, response_code, dfpt, parallelize_qpoints
):
    """PamWorkChain's ``builder`` from the merged protocol ``inputs`` (see PamWorkChain.get_builder_from_protocol)."""
    pw_code, ph_code, q2r_code = (orm.load_code(c) if isinstance(c, str) else c for c in codes)
    qe_protocol = inputs["qe_protocol"]
    kwargs = {"electronic_type": ElectronicType.INSULATOR, "options": options}
    pw_base = {
        "pseudo_family": inputs["pseudo_family"],
        "pw": {
            "parameters": {
                "SYSTEM": {"ecutwfc": inputs["ecutwfc"], "ecutrho": inputs["ecutrho"], "occupations": "fixed"}
            }
        },
    }

    def with_mesh(base):
        kpoints = orm.KpointsData()
        kpoints.set_kpoints_mesh(inputs["kpoints"])
        base.kpoints = kpoints
        base.pop("kpoints_distance", None)
        base.pop("kpoints_force_parity", None)

    builder.structure = structure
    builder.protocol = orm.Str(protocol)
    builder.symprec = orm.Float(inputs["symprec"])
    if dfpt is not None:
        builder.dfpt = dfpt
    elif inputs["run_relax"]:
        relax_overrides = recursive_merge({"base_relax": pw_base, "base_init_relax": pw_base}, inputs["relax"])
        relax = PwRelaxWorkChain.get_builder_from_protocol(
            pw_code, structure, qe_protocol, overrides=relax_overrides, relax_type=RelaxType.POSITIONS_CELL, **kwargs
        )
        for key in ("structure", "clean_workdir", "base_init_relax"):
            relax.pop(key, None)
        with_mesh(relax.base_relax)
        builder.relax = relax

    if dfpt is None:
        scf = PwBaseWorkChain.get_builder_from_protocol(
            pw_code, structure, qe_protocol, overrides=recursive_merge(pw_base, inputs["scf"]), **kwargs
        )
        scf.pw.pop("structure", None)
        scf.pop("clean_workdir", None)
        with_mesh(scf)
        builder.scf = scf
        ph = PhBaseWorkChain.get_builder_from_protocol(
            ph_code, protocol=qe_protocol, overrides=inputs["ph_main"], **kwargs
        )
        ph.pop("clean_workdir", None)
        builder.ph_main = ph
        builder.parallelize_qpoints = orm.Bool(parallelize_qpoints)

    builder.q2r.q2r.code = q2r_code
    builder.q2r.q2r.parameters = orm.Dict(inputs["q2r"]["q2r"]["parameters"])
    # q2r.x is a seconds-long serial step: one process unless the options set the processes
    resources = {"num_machines": 1, "num_mpiprocs_per_machine": 1}
    builder.q2r.q2r.metadata.options = recursive_merge({"resources": resources}, options or {})

    builder.response.code = python_code(pw_code.computer.label, response_code, "the response job")
    for key in SITE_OPTIONS:  # one Python process: the site's queue, account and time limit, not the MPI layout
        if key in (options or {}):
            builder.response.metadata.options[key] = options[key]
    builder.response.parameters = orm.Dict(inputs["response"])
    builder.sum_rules = orm.Dict(inputs["sum_rules"])
    builder.equilibrium = orm.Dict(inputs["equilibrium"])
    builder.figures = orm.Dict(inputs["figures"])
    builder.clean_workdir = orm.Bool(inputs["clean_workdir"])
    return builder
