"""Time phonopy's own run_mesh against the full PAM response on the same quartz mesh.

    python benchmarks/bench_response.py [--mesh 24] [--fc F --nac-fc F] [--no-sum-rules]

The model is the workflow's: the rotational sum rules unfold the IFCs to a 2x2x2 larger supercell
(their cost is printed as a ratio too). Prints the timings measured in this run, their ratio (target
<= 1.5) and the peak memory traced while the response runs (numpy allocations, via tracemalloc).
"""

import argparse
import time
import tracemalloc
from pathlib import Path

import numpy as np

from aiida_llpam.physics import build_phonopy, compute_response, read_q2r
from aiida_llpam.physics.sum_rules import enforce_rotational_invariance

QUARTZ = Path(__file__).resolve().parents[1] / "fixtures" / "dfpt" / "quartz_q222"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mesh", type=int, default=24)
    parser.add_argument("--temperatures", type=int, default=100)
    parser.add_argument("--fc", default=QUARTZ / "quartz.fc")
    parser.add_argument("--nac-fc", default=QUARTZ / "quartz_rigid.fc")
    parser.add_argument("--no-sum-rules", action="store_true", help="the ASR-only model on the DFPT supercell")
    args = parser.parse_args()
    mesh = (args.mesh,) * 3
    temperatures = np.linspace(5.0, 800.0, args.temperatures)
    phonon = build_phonopy(read_q2r(args.fc), read_q2r(args.nac_fc, read_ifc=False))
    t_sum_rules = None
    if not args.no_sum_rules:
        start = time.perf_counter()
        phonon, _ = enforce_rotational_invariance(phonon)
        t_sum_rules = time.perf_counter() - start

    start = time.perf_counter()
    phonon.run_mesh(mesh, with_eigenvectors=True, with_group_velocities=True, is_gamma_center=True)
    t_phonopy = time.perf_counter() - start
    nir = len(phonon.mesh.qpoints)

    tracemalloc.start()
    start = time.perf_counter()
    res = compute_response(phonon, mesh, temperatures, [20e-9], 1e-11, 1e4)
    t_response = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    nb = 3 * len(phonon.primitive)
    naive = np.prod(mesh) * nb * nb * len(temperatures) * 8
    print(
        f"mesh {mesh}: {np.prod(mesh)} k points, phonopy irreducible {nir}, 27 branches, "
        f"{len(temperatures)} temperatures"
    )
    print(f"phonopy run_mesh (eigenvectors + group velocities): {t_phonopy:8.2f} s")
    print(
        "aiida-llpam compute_response (gamma^NL_ij, gamma^M, chi and chi_ML pieces, BZ maps, mesh modes): "
        f"{t_response:8.2f} s"
    )
    print(f"ratio response / run_mesh: {t_response / t_phonopy:.2f}  (target <= 1.5)")
    if t_sum_rules is not None:
        print(
            f"rotational sum rules (unfolding to {len(phonon.supercell)} supercell atoms): {t_sum_rules:8.2f} s, "
            f"ratio to run_mesh {t_sum_rules / t_phonopy:.2f}"
        )
    print(
        f"peak traced memory of the response: {peak / 2**20:.1f} MiB "
        f"(an Nk x nb x nb x nT float64 array would be {naive / 2**30:.1f} GiB)"
    )
    print(
        f"chi_total(300 K) = {np.interp(300, temperatures, res.chi_total):.4e} kg/m, "
        f"gamma_M(300 K) = {np.interp(300, temperatures, res.gamma_m):.4e} A/K"
    )


if __name__ == "__main__":
    main()
