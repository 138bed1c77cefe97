"""PamWorkChain's checks of its own result: the DFPT cell's equilibrium before the sum rules, and the model against
direct DFPT at q points off the mesh (docs/theory.md, "Checked against direct DFPT")."""

from __future__ import annotations

import numpy as np
from aiida.engine import ToContext

from aiida_llpam.physics.equilibrium import equilibrium_problems

from .direct_dfpt import DirectDfptWorkChain
from .ph_base import PhBaseWorkChain


class PamChecks:
    """Steps of PamWorkChain (a mixin: they use its inputs, context, exit codes and ``launch_job``)."""

    def check_equilibrium(self):
        """Stress and forces of the scf the DFPT perturbed, before the sum rules assume zero stress."""
        from aiida_llpam.queries import dfpt_scf_equilibrium

        thresholds = self.inputs.equilibrium.get_dict()
        scf, stress, forces = dfpt_scf_equilibrium(self.ctx.dfpt_retrieved)
        if stress is None:
            self.report(f"WARNING: {scf.process_label}<{scf.pk}> computed no stress (tstress): equilibrium not checked")
            return None
        self.report(
            f"equilibrium of the scf {scf.process_label}<{scf.pk}>: largest stress component "
            f"{abs(stress).max():.3f} GPa, largest force {np.linalg.norm(forces, axis=-1).max():.4f} eV/A"
        )
        problems = equilibrium_problems(
            stress, forces, thresholds["max_stress_gpa"], thresholds["max_force_ev_angstrom"]
        )
        if problems and thresholds["refuse"]:
            return self.exit_codes.ERROR_NOT_IN_EQUILIBRIUM.format(message="; ".join(problems))
        for problem in problems:
            self.report(f"WARNING: {problem} (equilibrium.refuse is false: going on)")
        return None

    def should_validate(self):
        return "validation_qpoints" in self.inputs

    def submit_validation(self):
        ph = self.exposed_inputs(PhBaseWorkChain, namespace="ph_main")["ph"]
        return self.submit(
            DirectDfptWorkChain,
            structure=self.ctx.structure,
            force_constants=self.ctx.force_constants,
            dfpt=self.ctx.dfpt_retrieved,
            validation_qpoints=self.inputs.validation_qpoints,
            parent_folder=self.ctx.workchain_scf.outputs.remote_folder,
            ph={"ph": {"code": ph["code"], "parameters": ph["parameters"], "metadata": ph.get("metadata", {})}},
            metadata={"call_link_label": "direct_dfpt"},
        )

    def run_validation(self):
        node = self.launch_job("workchain_direct", "submit_validation")
        self.report(
            f"launching DirectDfptWorkChain<{node.pk}> "
            f"(ph.x at {len(self.inputs.validation_qpoints)} q points off the mesh)"
        )
        return ToContext(workchain_direct=node)

    def inspect_validation(self):
        node = self.ctx.workchain_direct
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_VALIDATION_FAILED.format(
                message=node.exit_message or f"exit status {node.exit_status}"
            )
        self.out_many(self.exposed_outputs(node, DirectDfptWorkChain, namespace="direct_dfpt"))
        return None
