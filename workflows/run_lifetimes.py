"""Mode-resolved lifetimes for a finished run, and its response with them (THEORY.md section 4).

    verdi run workflows/run_lifetimes.py PK [--supercell 1 1 1] [--cutoff-pair-angstrom 2.0] [--mesh 8 8 6]
        [--fc3-method random --snapshots 4 [--seed 7]] [--displacement-angstrom 0.03]
        [--supercell-kpoints 1 1 1 [--gamma-tricks]]
        [--max-concurrent 2 --mpiprocs 1] [--rta-cores 2] [--computer localhost] [--protocol P] [--pk-file F]
        [--temperatures T ...] [--figure F.png] [--measured MEASURED.json]
    verdi -p llpam-daemon run workflows/run_lifetimes.py PK ... --submit      (step 1 on the daemon, returns at once)
    verdi -p llpam-daemon run workflows/run_lifetimes.py PK --lifetimes LPK [--figure F] [--measured M]   (2 and 3)

PK: a finished PamWorkChain (e.g. imported: `verdi archive import fixtures/reference/quartz_production.aiida`).

1. LifetimesWorkChain: phono3py's displaced supercells of the unit cell x --supercell (pairs beyond
   --cutoff-pair-angstrom left out), pw.x forces with the settings of the scf the DFPT perturbed (one job per
   supercell, --max-concurrent at a time with --mpiprocs each), fc3, and phono3py's RTA on the DFPT fc2 with
   eps/Z* on --mesh at the protocol's temperatures (--protocol: default the run's own; another is refused, since
   it would give another fc2): the lifetimes node.
2. A PamWorkChain on the same DFPT (its dynamical matrices, sum rules and direct-point fit: the RTA's fc2, checked)
   whose response takes the lifetimes, on --mesh: `aiida-llpam show` then prints gamma^NL with the constant and the
   mode-resolved tau.
3. With --measured, the RTA's kappa against measured values (workflows/compare_kappa.py), stored beside it.

With --submit, step 1 goes to the daemon of the profile (computer default localhost-slurm where the profile has it),
where it survives the end of this process; --measured and --figure wait for the next step. --lifetimes LPK takes
that finished LifetimesWorkChain (made on PK's force constants) for steps 2 and 3, on its mesh, temperatures and
computer; the flags of step 1 are not used.
"""

import argparse
from pathlib import Path

from aiida_llpam.cli.lifetimes import run_lifetimes
from aiida_llpam.configure import SLURM_COMPUTER


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pk", help="PK or UUID of a finished PamWorkChain")
    parser.add_argument("--supercell", type=int, nargs=3, default=[1, 1, 1], help="fc3 supercell (diagonal)")
    parser.add_argument("--cutoff-pair-angstrom", type=float, help="no second displacement beyond this pair distance")
    parser.add_argument("--fc3-method", choices=("finite", "random"), default="finite", help="fc3 from")
    parser.add_argument("--snapshots", type=int, help="random snapshots (each also with its opposite)")
    parser.add_argument("--seed", type=int, help="random seed (default drawn, stored)")
    parser.add_argument(
        "--displacement-angstrom", type=float, help="finite displacement, or every atom's random one (default 0.03)"
    )
    parser.add_argument("--supercell-kpoints", type=int, nargs=3, help="k mesh of the supercells' scf")
    parser.add_argument("--gamma-tricks", action="store_true", help="pw.x's Gamma tricks (with 1 1 1)")
    parser.add_argument("--mesh", type=int, nargs=3, help="RTA and response k mesh (default 8 8 6)")
    parser.add_argument("--max-concurrent", type=int, default=2, help="force jobs running at once")
    parser.add_argument("--mpiprocs", type=int, default=1, help="MPI processes of each force job")
    parser.add_argument("--rta-cores", type=int, help="OpenMP threads of the RTA job (default: the computer's)")
    parser.add_argument("--computer", help=f"default: localhost, with --submit {SLURM_COMPUTER} if the profile has it")
    parser.add_argument(
        "--temperatures", type=float, nargs="+", help="K, instead of the protocol's (fewer: smaller nodes)"
    )
    parser.add_argument("--protocol", help="settings of q2r, response, figures (default: the run's own)")
    parser.add_argument("--pk-file", type=Path, help="write the two PKs (lifetimes, response run) here")
    parser.add_argument("--figure", type=Path, help="gamma^NL and gamma^M with both taus, cumulative gamma^NL")
    parser.add_argument("--measured", type=Path, help="JSON of measured kappa to compare with (compare_kappa.py)")
    parser.add_argument("--submit", action="store_true", help="hand the lifetimes to the daemon and return at once")
    parser.add_argument(
        "--lifetimes",
        dest="lifetimes_pk",
        help="PK of a finished LifetimesWorkChain on PK's force constants: steps 2-3 on its mesh and computer",
    )
    return run_lifetimes(**vars(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
