"""The thermal conductivity of a run's lifetimes against measured values, stored beside its kappa file.

    verdi run workflows/compare_kappa.py PK MEASURED.json

PK: a finished LifetimesWorkChain, a PamWorkChain whose response took its lifetimes (workflows/run_lifetimes.py), or
a finished RTA job (workflows/rerun_rta.py makes them).
MEASURED.json: {"source": "...", "temperatures_k": [...], "perpendicular_w_mk": [...], "parallel_w_mk": [...]}
(to the c axis), e.g. fixtures/lifetimes/kappa_measured_alpha_quartz.json. The comparison is a Dict made by the
calcfunction kappa_comparison from the kappa file and these values; `aiida-llpam show` prints it.
"""

import argparse
from pathlib import Path

from aiida_llpam.cli.lifetimes import compare_kappa


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pk", help="PK or UUID of a LifetimesWorkChain, an RTA job or a PamWorkChain with lifetimes")
    parser.add_argument("measured", type=Path, help="JSON file of measured kappa")
    args = parser.parse_args(argv)
    return compare_kappa(args.pk, args.measured)


if __name__ == "__main__":
    main()
