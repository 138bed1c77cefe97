"""Edit ph.x dynamical-matrix files so q2r.x writes IFCs phonopy can use with its own NAC.

ph.x with ``epsil=.true.`` appends the dielectric tensor and the Born
effective charges (and, with Raman, more tensors) to the Gamma file after the
dynamical matrix. q2r.x reads them and subtracts the dipole-dipole part from
the IFCs; without that block it writes the full IFCs. The frequencies section
("Diagonalizing the dynamical matrix") is kept: q2r.x does not need it, but
the file stays a valid ph.x dyn file for humans and other tools.
"""

from __future__ import annotations

__all__ = ["has_dielectric_block", "strip_dielectric_block"]

_HEADER = "Dynamical matrix file"
_BLOCK_START = "Dielectric Tensor:"
_BLOCK_END = "Diagonalizing the dynamical matrix"


def _check(text: str) -> None:
    if not text.lstrip().startswith(_HEADER) or "Dynamical  Matrix in cartesian axes" not in text:
        raise ValueError("not a ph.x dynamical-matrix file (no 'Dynamical matrix file' header)")


def has_dielectric_block(text: str) -> bool:
    """True if the dyn file carries eps (and Born charges) after the dynamical matrix."""
    _check(text)
    return _BLOCK_START in text


def strip_dielectric_block(text: str) -> str:
    """The dyn file without its dielectric/effective-charge block (unchanged if it has none)."""
    _check(text)
    start = text.find(_BLOCK_START)
    if start < 0:
        return text
    start = text.rfind("\n", 0, start) + 1
    end = text.find(_BLOCK_END, start)
    if end < 0:
        raise ValueError("dyn file has a dielectric block but no 'Diagonalizing the dynamical matrix' section after it")
    end = text.rfind("\n", 0, end) + 1
    return text[:start] + text[end:]
