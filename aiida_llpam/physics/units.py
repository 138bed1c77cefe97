"""Physical constants and unit conversions used at the SI boundary.

Internal units follow phonopy with ``calculator='qe'``: lengths in bohr,
force constants in Ry/bohr^2, masses in AMU, frequencies in THz (cycles per
picosecond), group velocities as d(nu)/dq in THz*bohr. Everything the
physics package returns is SI unless its name says otherwise.
"""

from phonopy.physical_units import get_physical_units as _phonopy_units
from scipy import constants as _c

HBAR = _c.hbar  # J s
KB = _c.k  # J/K
AMU_KG = _c.physical_constants["atomic mass constant"][0]
BOHR_M = _c.physical_constants["Bohr radius"][0]
THZ_HZ = 1.0e12
THZ_TO_CM = THZ_HZ / (_c.c * 100.0)
THZ_TO_J = _c.h * THZ_HZ

#: one atomic mass unit in QE's Rydberg mass unit (2 m_e); q2r.x writes masses in it
AMU_RY = AMU_KG / (2.0 * _c.m_e)

#: d(nu)/dq in THz*bohr -> d(omega)/dk in m/s (the 2 pi of omega = 2 pi nu and k = 2 pi q cancel)
THZ_BOHR_TO_M_S = THZ_HZ * BOHR_M
MU_N = _c.physical_constants["nuclear magneton"][0]  # J/T
MU_0 = _c.mu_0  # T m / A
PROTON_MASS_AMU = _c.m_p / AMU_KG

#: phonopy's default units (Angstrom, eV; aiida-phonopy stores force constants in them, and phono3py computes
#: only in them), from phonopy's own constants: Angstrom per bohr, eV/Angstrom^2 per Ry/bohr^2
BOHR_ANGSTROM = _phonopy_units().Bohr
RY_BOHR2_IN_EV_ANGSTROM2 = _phonopy_units().Rydberg / _phonopy_units().Bohr ** 2
#: J per eV as phonopy and phono3py convert (their own constant, of an older CODATA than scipy's: 4e-7 apart), for
#: the eV of their files
PHONOPY_EV_J = _phonopy_units().EV
