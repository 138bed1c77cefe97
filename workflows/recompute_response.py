"""Recompute only the PAM response from a stored force-constants node, with new settings (no QE rerun).

    verdi run workflows/recompute_response.py IDENTIFIER [-T 300 -T 400 ...] [-r 20 ...] [--tau 1e-11]
        [--grad-t 1e4] [--mesh 16 16 16] [--code llpam-response@localhost] [--pk-file F]

IDENTIFIER is a PamWorkChain (its `force_constants` output is used) or the force-constants node
itself (PK, UUID or label). The new PamResponseCalculation takes that very node as input, so
the provenance graph links the new results to the original DFPT. Radii in nm. Settings not given
are those of the last response computed from the same node (for a run older than physics v2,
only its response settings are kept).
"""

import argparse
import sys
from pathlib import Path

from aiida import orm
from aiida.common.exceptions import MultipleObjectsError, NotExistent
from aiida.engine import run_get_node

from aiida_llpam.calculations.response import PamResponseCalculation, validate_parameters
from aiida_llpam.physics.settings import RESPONSE_KEYS


def load_force_constants(identifier: str) -> tuple[orm.ArrayData, dict]:
    """The force-constants node and the response parameters it was last used with."""
    try:
        node = orm.load_node(identifier)
    except (NotExistent, MultipleObjectsError) as exc:
        sys.exit(f"{identifier}: {exc}")
    if isinstance(node, orm.WorkflowNode):
        if "force_constants" not in node.outputs:
            sys.exit(f"{identifier}: {node.process_label}<{node.pk}> has no force_constants output")
        node = node.outputs.force_constants
    if not (isinstance(node, orm.ArrayData) and "force_constants" in node.get_arraynames()):
        sys.exit(f"{identifier}: not a force-constants node of aiida-llpam")
    previous = (
        orm.QueryBuilder()
        # orm.Data, not orm.ArrayData: QueryBuilder matches subclasses by entry point, and aiida-phonopy's
        # ForceConstantsData (the node since issue #10) is not under ArrayData's
        .append(orm.Data, filters={"id": node.pk}, tag="fc")
        .append(orm.ProcessNode, with_incoming="fc", tag="calc",
                filters={"or": [{"attributes.function_name": "pam_response"},  # runs made before the CalcJob
                                {"process_type": "aiida.calculations:llpam.response"}]})
        .append(orm.Dict, with_outgoing="calc", edge_filters={"label": "parameters"})
        .order_by({orm.Dict: {"ctime": "desc"}})
        .first()
    )
    parameters = previous[0].get_dict() if previous else {}
    return node, {key: value for key, value in parameters.items() if key in RESPONSE_KEYS}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("identifier")
    parser.add_argument("-T", dest="temperatures", type=float, action="append", help="K; repeatable")
    parser.add_argument("-r", dest="radii", type=float, action="append", help="nm; repeatable")
    parser.add_argument("--tau", type=float)
    parser.add_argument("--grad-t", type=float)
    parser.add_argument("--mesh", type=int, nargs=3)
    parser.add_argument("--bz-temperature", type=float)
    parser.add_argument("--code", default="llpam-response@localhost", help="code of the response job (aiida-llpam setup)")
    parser.add_argument("--pk-file", type=Path)
    args = parser.parse_args(argv)

    fc, parameters = load_force_constants(args.identifier)
    updates = {
        "temperatures_k": args.temperatures,
        "radii_nm": args.radii,
        "tau_s": args.tau,
        "grad_t_k_m": args.grad_t,
        "mesh": args.mesh,
        "bz_temperature_k": args.bz_temperature,
    }
    parameters.update({key: value for key, value in updates.items() if value is not None})
    node = orm.Dict(parameters)
    error = validate_parameters(node, None)
    if error:
        sys.exit(error)
    results, calc = run_get_node(PamResponseCalculation, code=orm.load_code(args.code), force_constants=fc, parameters=node)
    if not calc.is_finished_ok:
        sys.exit(f"PamResponseCalculation<{calc.pk}> failed: {calc.exit_message}")
    print(f"PamResponseCalculation<{calc.pk}> from force constants {fc.__class__.__name__}<{fc.pk}>")
    for name in sorted(results):
        print(f"  {name:18s} {results[name].__class__.__name__}<{results[name].pk}>")
    if args.pk_file:
        args.pk_file.write_text(f"{calc.pk}\n")


if __name__ == "__main__":
    main()
