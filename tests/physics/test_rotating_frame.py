"""THEORY.md section 6, exact check: chi_D + chi_OD,N + chi_OD,P equals -d^2F/dOmega^2 of H_0 + Omega L_z.

A small random chiral model (two atoms, complex Hermitian D(k) at k and -k)
goes through exactly the code path the crystal does (modes_from_eigensystem ->
response_sums). The exact free energy comes from the normal modes of
H_0 + Omega L_z, a quadratic problem at every k: in mass-weighted coordinates
x'' + 2 Omega J x' + (D + Omega^2 J^2) x = 0 with J = eps_z per atom.
"""

import numpy as np
import pytest

from aiida_llpam.physics.magnetic_moment import EPS_Z
from aiida_llpam.physics.modes import modes_from_eigensystem
from aiida_llpam.physics.response import response_sums
from aiida_llpam.physics.units import HBAR, KB

NATOM = 2
NB = 3 * NATOM
J = np.kron(np.eye(NATOM), EPS_Z)


def random_model(rng, nk=3):
    """D(k) (rad^2/s^2) for k and -k: positive definite, complex, no symmetry (chiral)."""
    mats = []
    for _ in range(nk):
        a = rng.normal(size=(NB, NB)) + 1j * rng.normal(size=(NB, NB))
        d = a @ a.conj().T + 0.5 * NB * np.eye(NB)
        d *= (2 * np.pi * 4e12) ** 2 / np.linalg.eigvalsh(d).mean()  # frequencies of a few THz
        mats += [d, d.conj()]
    return np.array(mats)


def free_energy(dmats, omega, temperature):
    """F(Omega) (J) from the positive normal-mode frequencies of H_0 + Omega L_z at every k."""
    total = 0.0
    for d in dmats:
        a = np.block([[np.zeros((NB, NB)), np.eye(NB)], [-(d + omega**2 * J @ J), -2.0 * omega * J]])
        w = (1j * np.linalg.eigvals(a)).real  # x ~ exp(-i w t): eigenvalue -i w
        w = np.sort(w[w > 0])
        assert len(w) == NB
        x = HBAR * w / (KB * temperature)
        total += np.sum(0.5 * HBAR * w + KB * temperature * np.log(-np.expm1(-x)))
    return total


def exact_chi(dmats, temperature, step):
    """-d^2F/dOmega^2 by central differences with one Richardson step (error O(step^4))."""

    def second(h):
        return (
            free_energy(dmats, h, temperature)
            - 2 * free_energy(dmats, 0.0, temperature)
            + free_energy(dmats, -h, temperature)
        ) / h**2

    return -(4 * second(step / 2) - second(step)) / 3


@pytest.mark.parametrize("temperature", [5.0, 150.0, 3000.0])
def test_chi_pieces_equal_rotating_frame_curvature(temperature):
    rng = np.random.default_rng(7)
    dmats = random_model(rng)
    eigenvalues, vectors = np.linalg.eigh(dmats)
    frequencies_thz = np.sqrt(eigenvalues) / (2 * np.pi * 1e12)
    ddm = np.zeros((len(dmats), 3, NB, NB))  # velocities play no part in chi
    modes = modes_from_eigensystem(np.zeros((len(dmats), 3)), frequencies_thz, vectors, ddm, 1.0)
    sums = response_sums(modes, np.array([temperature]), cutoff_thz=1e-3)
    pieces = [sums[name][:, 0, 0].sum() for name in ("diagonal", "offdiagonal_interband", "offdiagonal_pair_thermal")]
    chi = sum(pieces) + sums["zero_point"][:, 0].sum()
    assert all(piece > 0 for piece in pieces)

    reference = exact_chi(dmats, temperature, step=2 * np.pi * 4e12 * 1e-3)
    assert chi == pytest.approx(reference, rel=1e-6, abs=0)
