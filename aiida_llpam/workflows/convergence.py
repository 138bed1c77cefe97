"""DfptConvergenceWorkChain: the PAM response of one crystal for several DFPT settings, and their table."""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain, while_
from aiida_quantumespresso.workflows.protocols.utils import recursive_merge

from aiida_llpam.calculations.functions.dfpt_convergence_table import ROW_NODES, dfpt_convergence_table
from aiida_llpam.queries import dfpt_retrieved, dfpt_settings
from aiida_llpam.workflows.pam import PamWorkChain


def point_overrides(variation: dict, response: dict | None) -> dict:
    """The protocol overrides of one point: its variation plus the common response settings."""
    return recursive_merge(variation, {"response": response}) if response is not None else dict(variation)


def expected_dfpt(protocol: str, overrides: dict) -> dict:
    """What the protocol with ``overrides`` asks the DFPT to be (same keys as :func:`dfpt_settings`)."""
    inputs = PamWorkChain.get_protocol_inputs(protocol, overrides)
    return {
        "ecutwfc_ry": inputs["ecutwfc"],
        "ecutrho_ry": inputs["ecutrho"],
        "kpoints_mesh": list(inputs["kpoints"]),
        "qpoints_mesh": list(inputs["ph_main"]["qpoints"]),
    }


def validate_inputs(inputs, _) -> str | None:
    """Known protocol, known keys in every variation, reused DFPT runs that match their variation."""
    protocol = inputs["protocol"].value if "protocol" in inputs else PamWorkChain.get_default_protocol()
    if protocol not in PamWorkChain.get_available_protocols():
        return f"protocol: unknown {protocol!r}; choose from {', '.join(PamWorkChain.get_available_protocols())}"
    variations = inputs["variations"].get_dict()
    if not variations:
        return "variations: give at least one label -> protocol overrides (e.g. {'fast': {}})"
    known = set(PamWorkChain.get_protocol_inputs(protocol))
    response = inputs["response"].get_dict() if "response" in inputs else None
    for label, variation in variations.items():
        if not isinstance(variation, dict):
            return f"variations.{label}: must be a dict of protocol overrides, got {type(variation).__name__}"
        unknown = sorted(set(variation) - known)
        if unknown:
            return (
                f"variations.{label}: unknown protocol key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        if response is not None and "response" in variation:
            return f"variations.{label}: sets `response`, but the input `response` is applied to every point"
    reuse, structures = dict(inputs.get("reuse", {})), dict(inputs.get("reuse_structures", {}))
    if set(reuse) != set(structures):
        return f"reuse and reuse_structures: need the same labels, got {sorted(reuse)} and {sorted(structures)}"
    for label, retrieved in reuse.items():
        if label not in variations:
            return f"reuse.{label}: no variation of that label (variations: {', '.join(variations)})"
        try:
            found = dfpt_settings(retrieved)
        except (ValueError, AttributeError, KeyError) as exc:
            return f"reuse.{label}: {exc}"
        wanted = expected_dfpt(protocol, variations[label])  # the response settings do not touch the DFPT
        if found != wanted:
            return (
                f"reuse.{label}: the ph.x run has {found}, "
                f"but variation {label!r} of protocol {protocol!r} asks for {wanted}"
            )
    return None


class DfptConvergenceWorkChain(WorkChain):
    """The PAM response of one crystal for several DFPT settings (cut-off, scf k mesh, ph.x q mesh), tabulated.

    Outline: for each label of ``variations``, one PamWorkChain from the base
    protocol with that label's overrides (and the common ``response``), one after
    the other so that two ph.x runs never share the cores; a label in ``reuse``
    starts at q2r.x from that finished ph.x run. Then one calcfunction turns the
    finished points into the ``table``: the headline sums at the reference
    temperature with their k-mesh uncertainty, the Gamma frequencies and the
    wall time of each point. Failed points are left out of the table and named.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("pw_code", valid_type=orm.AbstractCode, help="pw.x (scf and vc-relax).")
        spec.input("ph_code", valid_type=orm.AbstractCode, help="ph.x (DFPT).")
        spec.input("q2r_code", valid_type=orm.AbstractCode, help="q2r.x.")
        spec.input("structure", valid_type=orm.StructureData, help="The crystal of the points that run their own DFPT.")
        spec.input(
            "protocol",
            valid_type=orm.Str,
            default=lambda: orm.Str(PamWorkChain.get_default_protocol()),
            help="Base protocol of PamWorkChain (smoke, fast, production) every variation starts from.",
        )
        spec.input(
            "variations",
            valid_type=orm.Dict,
            help="label -> protocol overrides of that point, e.g. {'k333': {'kpoints': [3, 3, 3]}, "
            "'ecut40': {'ecutwfc': 40, 'ecutrho': 320}}; an empty dict is the base protocol.",
        )
        spec.input(
            "response",
            valid_type=orm.Dict,
            required=False,
            help="Response settings (aiida_llpam.physics.settings) for every point, so that every row is summed "
            "on the same k meshes; without it each point has its protocol's.",
        )
        spec.input_namespace(
            "reuse",
            valid_type=orm.FolderData,
            dynamic=True,
            required=False,
            help="label -> retrieved files of a finished ph.x run with exactly that variation's DFPT settings.",
        )
        spec.input_namespace(
            "reuse_structures",
            valid_type=orm.StructureData,
            dynamic=True,
            required=False,
            help="label -> the structure that reused ph.x run was made on.",
        )
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.setup,
            while_(cls.has_next_point)(cls.run_point, cls.inspect_point),
            cls.make_table,
            cls.results,
        )
        spec.output("table", valid_type=orm.ArrayData, help="One row per finished point (dfpt_convergence_table).")
        spec.exit_code(401, "ERROR_BUILDER", message="Could not build the PamWorkChain of point {label}: {message}")
        spec.exit_code(
            402, "ERROR_SOME_POINTS_FAILED", message="The PamWorkChain of {labels} failed; the table holds the others."
        )
        spec.exit_code(403, "ERROR_ALL_POINTS_FAILED", message="Every PamWorkChain failed ({labels}); no table.")

    def setup(self):
        self.ctx.labels = list(self.inputs.variations.get_dict())
        self.ctx.index = 0
        self.ctx.failed = []
        self.ctx.finished = []

    def has_next_point(self):
        return self.ctx.index < len(self.ctx.labels)

    def run_point(self):
        label = self.ctx.labels[self.ctx.index]
        response = self.inputs.response.get_dict() if "response" in self.inputs else None
        overrides = point_overrides(self.inputs.variations[label], response)
        reused = label in self.inputs.get("reuse", {})
        structure = self.inputs.reuse_structures[label] if reused else self.inputs.structure
        try:
            builder = PamWorkChain.get_builder_from_protocol(
                self.inputs.pw_code,
                self.inputs.ph_code,
                self.inputs.q2r_code,
                structure,
                protocol=self.inputs.protocol.value,
                overrides=overrides,
                dfpt=self.inputs.reuse[label] if reused else None,
            )
        except ValueError as exc:
            return self.exit_codes.ERROR_BUILDER.format(label=label, message=str(exc))
        builder.metadata.call_link_label = f"point_{self.ctx.index}"
        builder.metadata.label = f"dfpt convergence: {label}"
        node = self.submit(builder)
        self.report(f"point {label}: launching PamWorkChain<{node.pk}>" + (" (DFPT reused)" if reused else ""))
        return ToContext(point=node)

    def inspect_point(self):
        label, node = self.ctx.labels[self.ctx.index], self.ctx.point
        self.ctx.index += 1
        if node.is_finished_ok:
            self.ctx.finished.append((label, node))
        else:
            self.ctx.failed.append(label)
            self.report(f"point {label}: PamWorkChain<{node.pk}> failed ({node.exit_status}: {node.exit_message})")

    def make_table(self):
        if not self.ctx.finished:
            return self.exit_codes.ERROR_ALL_POINTS_FAILED.format(labels=", ".join(self.ctx.failed))
        rows, nodes = [], {}
        for i, (label, node) in enumerate(self.ctx.finished):
            rows.append(
                {
                    "label": label,
                    "workchain": node.uuid,
                    **dfpt_settings(dfpt_retrieved(node)),
                    "dfpt_reused": int("dfpt" in node.inputs),
                    # of this point's workchain only: a reused DFPT's own cost is in its original run
                    "wall_time_s": (node.mtime - node.ctime).total_seconds(),
                }
            )
            nodes.update({f"{kind}_{i}": node.outputs[kind] for kind in ROW_NODES})
            nodes[f"dfpt_{i}"] = dfpt_retrieved(node)  # its raw Gamma matrix: the ASR violation of the point
        self.ctx.table = dfpt_convergence_table(orm.Dict({"rows": rows}), **nodes)
        self.out("table", self.ctx.table)
        return None

    def results(self):
        if self.ctx.failed:
            return self.exit_codes.ERROR_SOME_POINTS_FAILED.format(labels=", ".join(self.ctx.failed))
        self.report(f"table of {len(self.ctx.finished)} points: {self.ctx.table.base.attributes.get('labels')}")
        return None
