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
from pathlib import Path

from aiida_llpam.cli.redo import recompute_response


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("identifier")
    parser.add_argument("-T", dest="temperatures", type=float, action="append", help="K; repeatable")
    parser.add_argument("-r", dest="radii", type=float, action="append", help="nm; repeatable")
    parser.add_argument("--tau", type=float)
    parser.add_argument("--grad-t", type=float)
    parser.add_argument("--mesh", type=int, nargs=3)
    parser.add_argument("--bz-temperature", type=float)
    parser.add_argument(
        "--code", default="llpam-response@localhost", help="code of the response job (aiida-llpam setup)"
    )
    parser.add_argument("--pk-file", type=Path)
    return recompute_response(**vars(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
