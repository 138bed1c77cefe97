"""Redo the force constants, response and figures of a finished run from its stored DFPT (no ph.x).

    verdi run workflows/run_from_dfpt.py PK [--protocol production] [--enantiomer as-is|other] [--pk-file F]
        [--figures DIR] [--qmesh N1 N2 N3 --direct PK [--direct PK ...]]

PK: a PamWorkChain (e.g. imported from an archive: `verdi archive import`) whose ph.x finished (the
workchain itself may have failed later). The new PamWorkChain gets
the structure the old one ran ph.x on and ph.x's retrieved files as inputs (`dfpt`), so its provenance
links back to the original DFPT; q2r.x, the sum rules, the response and the figure data run with the
current code and the given protocol's settings.

--qmesh with --direct: the force constants on a denser q mesh that contains the DFPT's (3x3x2 -> 6x6x2). The
DFPT's dyn files give the stars they hold, the finished single-q ph.x jobs of the DirectDfptWorkChains the others
(calcfunction assemble_dynamical_matrices, in the provenance). Without enough of them the script names the q
points still to run and the run_direct_dfpt.py command that runs them (--qmesh there does the same).

--enantiomer other: the other enantiomer from the same ph.x run. The structure is mirrored z -> -z
(structures.mirror_z) and so are ph.x's dynamical matrices, eps and Z* (calcfunction mirror_dfpt_z,
in the provenance): the mirror is an exact symmetry of DFPT on symmetric k and q meshes, and
tests/aiida/test_enantiomers.py checks on quartz that the result equals ph.x run on the mirror image. The
run carries the extra `enantiomer_of` (the original structure's UUID, the operation) as run_crystal.py's do.
"""

import argparse
from pathlib import Path

from aiida_llpam.cli.redo import run_from_dfpt


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pk", help="PK or UUID of the PamWorkChain whose DFPT is reused")
    parser.add_argument("--protocol", default="production", help="settings of q2r, sum rules, response, figures")
    parser.add_argument(
        "--enantiomer", default="as-is", choices=("as-is", "other"), help="other: the mirror image z -> -z"
    )
    parser.add_argument("--computer", default="localhost")
    parser.add_argument("--pk-file", type=Path)
    parser.add_argument("--figures", type=Path)
    parser.add_argument("--qmesh", nargs=3, type=int, help="a denser q mesh, from --direct's single-q runs")
    parser.add_argument("--direct", action="append", default=[], help="DirectDfptWorkChain PK (repeatable)")
    args = parser.parse_args(argv)
    if args.direct and not args.qmesh:
        parser.error("--direct needs --qmesh")
    return run_from_dfpt(**vars(args))


if __name__ == "__main__":
    main()
