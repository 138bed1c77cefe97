"""Mode-resolved lifetimes for a finished run, and its response with them (THEORY.md section 4).

    verdi run workflows/run_lifetimes.py PK [--supercell 1 1 1] [--cutoff-pair-angstrom 2.0] [--mesh 8 8 6]
        [--max-concurrent 2 --mpiprocs 1] [--computer localhost] [--protocol production] [--pk-file F]
        [--figure F.png]

PK: a finished PamWorkChain (e.g. imported: `verdi archive import fixtures/reference/quartz_production.aiida`).

1. LifetimesWorkChain: phono3py's displaced supercells of the unit cell x --supercell (pairs beyond
   --cutoff-pair-angstrom left out), pw.x forces with the settings of the scf the DFPT perturbed (one job per
   supercell, --max-concurrent at a time with --mpiprocs each), fc3, and phono3py's RTA on the DFPT fc2 with eps/Z* on --mesh at the
   protocol's temperatures: the lifetimes node.
2. A PamWorkChain on the same DFPT (its dynamical matrices, as run_from_dfpt.py: same force constants) whose
   response takes the lifetimes, on --mesh: `aiida-llpam show` then prints gamma^NL with the constant and the
   mode-resolved tau.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from aiida import orm
from aiida.engine import run_get_node

from aiida_llpam.physics.settings import ResponseSettings
from aiida_llpam.queries import dfpt_retrieved, dfpt_structure
from aiida_llpam.workflows.lifetimes import LifetimesWorkChain
from aiida_llpam.workflows.pam import PamWorkChain


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pk", help="PK or UUID of a finished PamWorkChain")
    parser.add_argument("--supercell", type=int, nargs=3, default=[1, 1, 1], help="fc3 supercell (diagonal)")
    parser.add_argument("--cutoff-pair-angstrom", type=float, help="no second displacement beyond this pair distance")
    parser.add_argument("--mesh", type=int, nargs=3, default=[8, 8, 6], help="RTA and response k mesh")
    parser.add_argument("--max-concurrent", type=int, default=2, help="force jobs running at once")
    parser.add_argument("--mpiprocs", type=int, default=1, help="MPI processes of each force job")
    parser.add_argument("--computer", default="localhost")
    parser.add_argument("--protocol", default="production", help="settings of q2r, sum rules, response, figures")
    parser.add_argument("--pk-file", type=Path, help="write the two PKs (lifetimes, response run) here")
    parser.add_argument("--figure", type=Path, help="gamma^NL and gamma^M with both taus, cumulative gamma^NL")
    args = parser.parse_args(argv)

    pam = orm.load_node(args.pk)
    if not (isinstance(pam, orm.WorkChainNode) and pam.process_label == "PamWorkChain" and pam.is_finished_ok):
        sys.exit(f"{args.pk}: not a finished PamWorkChain")
    codes = [orm.load_code(f"{name}@{args.computer}") for name in ("pw", "ph", "q2r")]
    retrieved = dfpt_retrieved(pam)
    response_builder = PamWorkChain.get_builder_from_protocol(
        *codes, dfpt_structure(retrieved), protocol=args.protocol, dfpt=retrieved
    )
    response = response_builder.response.parameters.get_dict()
    temperatures = ResponseSettings.from_mapping(response).temperatures_k
    parameters = {
        "supercell_matrix": args.supercell, "mesh": args.mesh, "max_concurrent": args.max_concurrent,
        "temperatures_k": sorted({*temperatures.tolist(), float(response["bz_temperature_k"])}),
    }  # fmt: skip
    if args.cutoff_pair_angstrom:
        parameters["cutoff_pair_distance_angstrom"] = args.cutoff_pair_angstrom
    # small jobs: two single-process ones side by side hide each other's AiiDA overhead (upload, poll, retrieve)
    options = {
        "resources": {"num_machines": 1, "num_mpiprocs_per_machine": args.mpiprocs},
        "max_wallclock_seconds": 3600,
    }
    builder = LifetimesWorkChain.get_builder_from_pam(pam, parameters, pw_code=codes[0], options=options)
    builder.metadata.label = f"lifetimes of PamWorkChain<{pam.uuid}>"
    _, lifetimes = run_get_node(builder)
    print(f"LifetimesWorkChain<{lifetimes.pk}> {lifetimes.process_state.value}, exit status {lifetimes.exit_status}")
    if not lifetimes.is_finished_ok:
        sys.exit(f"the lifetimes failed: {lifetimes.exit_message}")

    # the response on the lifetimes' mesh: one mesh, no convergence sequence (the constant-tau k-mesh error of
    # this mesh is the original run's convergence table)
    response = {key: value for key, value in response.items() if not key.startswith("convergence_")}
    response["mesh"] = args.mesh
    response_builder.response.parameters = orm.Dict(response)
    response_builder.response.lifetimes = lifetimes.outputs.lifetimes
    response_builder.metadata.label = f"{pam.label} (response with mode-resolved lifetimes)".strip()
    response_builder.metadata.description = (
        f"DFPT of PamWorkChain<{pam.uuid}>, lifetimes of LifetimesWorkChain<{lifetimes.uuid}>"
    )
    _, node = run_get_node(response_builder)
    print(f"PamWorkChain<{node.pk}> {node.process_state.value}, exit status {node.exit_status}")
    if args.pk_file:
        args.pk_file.write_text(f"{lifetimes.pk}\n{node.pk}\n")
    if not node.is_finished_ok:
        sys.exit(f"the response failed: {node.exit_message}")
    out = node.outputs.lifetimes_response
    temperatures = out.get_array("temperatures_k")
    it = int(np.argmin(np.abs(temperatures - 300.0)))
    print(f"gamma^NL_zz({temperatures[it]:g} K): constant tau {node.outputs.gamma_nl.get_array('gamma_nl_zz')[it]:.4g}, "
          f"mode-resolved {out.get_array('gamma_nl_zz_tau_modes')[it]:.4g} J s K^-1 m^-2; "
          f"effective tau {out.get_array('tau_effective_nl_s')[it]:.4g} s")  # fmt: skip
    print(f"aiida-llpam show {node.pk}")
    if args.figure:
        from aiida_llpam.plotting.lifetimes import lifetimes_figure

        lifetimes_figure(node, args.figure)
        print(f"  figure {args.figure}")


if __name__ == "__main__":
    main()
