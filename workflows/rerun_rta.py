"""The fc3 + RTA job of a LifetimesWorkChain again, on another mesh or fit: the same forces and temperatures.

    verdi run workflows/rerun_rta.py PK [--mesh 12 12 8] [--cutoff-pair-angstrom 3.0] [--snapshots 16]
        [--force-constants PAM] [--isotope | --no-isotope] [--triplets-within-angstrom 3.0]
        [--symmetrize-fc3 | --no-symmetrize-fc3] [--cores 2]

PK: a LifetimesWorkChain whose RTA job was submitted (it may still run). The new job takes that job's inputs with
another mesh or, for random snapshots (symfc fits any of them to any cut-off), another fc3 cut-off or only the
first --snapshots snapshots and their opposites; its kappa file gives the convergence of kappa and of the
lifetimes in the mesh, the cut-off and the snapshots (workflows/compare_kappa.py compares it with measured values).
--force-constants takes the fc2 and eps/Z* of another PamWorkChain of the same crystal (another q mesh or sum-rule
model): what the harmonic model does to kappa with the same fc3. --isotope adds the scattering by the natural
isotope mix (phono3py's Tamura widths, stored apart in the kappa file and added to the lifetimes), --no-isotope takes
it away (default: as the job was).
--triplets-within-angstrom zeroes the fc3, of either route, on every triplet with a pair farther apart: kappa of the
triplets a finite-displacement run and a random one both hold (workflows/compare_fc3.py compares the two).
--symmetrize-fc3 projects the fc3 made (and cut) onto its symmetry and sum rules (symfc's projector): the
acoustic sum rule, which finite differences with a pair cut-off and any cut violate (new LifetimesWorkChains do it
by default); --no-symmetrize-fc3 leaves it out.
"""

import argparse

from aiida_llpam.cli.rta import rerun_rta


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pk", help="PK or UUID of a LifetimesWorkChain")
    parser.add_argument("--mesh", type=int, nargs=3, help="RTA mesh (Gamma-centred; default the job's)")
    parser.add_argument("--cutoff-pair-angstrom", type=float, help="fc3 of triplets within this distance (random)")
    parser.add_argument("--snapshots", type=int, help="fit the first this many snapshots and their opposites (random)")
    parser.add_argument("--force-constants", help="PK of a PamWorkChain (same crystal) whose fc2 the RTA takes")
    parser.add_argument(
        "--isotope", action=argparse.BooleanOptionalAction, help="with(out) the natural isotope mix's scattering"
    )
    parser.add_argument(
        "--triplets-within-angstrom", type=float, help="fc3 zeroed on triplets with a pair farther apart (either route)"
    )
    parser.add_argument(
        "--symmetrize-fc3", action=argparse.BooleanOptionalAction, help="with(out) symfc's projection of fc3"
    )
    parser.add_argument("--cores", type=int, help="OpenMP threads of the job (default: the computer's)")
    args = parser.parse_args(argv)
    return rerun_rta(
        args.pk,
        args.mesh,
        args.cores,
        args.cutoff_pair_angstrom,
        args.snapshots,
        args.force_constants,
        args.isotope,
        args.triplets_within_angstrom,
        args.symmetrize_fc3,
    )


if __name__ == "__main__":
    main()
