"""Edit ph.x dynamical-matrix files: for q2r.x with phonopy's NAC, and for the other enantiomer.

ph.x with ``epsil=.true.`` appends the dielectric tensor and the Born
effective charges (and, with Raman, more tensors) to the Gamma file after the
dynamical matrix. q2r.x reads them and subtracts the dipole-dipole part from
the IFCs; without that block it writes the full IFCs. The frequencies section
("Diagonalizing the dynamical matrix") is kept: q2r.x does not need it, but
the file stays a valid ph.x dyn file for humans and other tools.

``mirror_z`` writes the files ph.x gives for the mirror image z -> -z of the
crystal (the other enantiomer, on the right-handed lattice of
``structures.mirror_z``). The mirror S = diag(1, 1, -1) is an exact
symmetry of the DFT and DFPT equations when the k and q meshes are symmetric
under k_z -> -k_z (Monkhorst-Pack meshes are), so ph.x on the mirror image
computes S D(q) S at q S, S eps S and S Z* S: the mirror of the files, up to
the convergence noise of the two runs. Only signs change, so the numbers are
copied exactly.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

__all__ = [
    "DynamicalMatrixFile",
    "has_dielectric_block",
    "mirror_z",
    "read_dynamical_matrices",
    "strip_dielectric_block",
]

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


_NUMBER = re.compile(r"\S+")
_MIRROR = (1, 1, -1)


def _negate(line: str, positions) -> str:
    """``line`` with the whitespace-separated tokens at ``positions`` negated, the spacing kept where possible."""
    tokens = list(_NUMBER.finditer(line))
    out, end = [], 0
    for index, match in enumerate(tokens):
        gap, token = line[end : match.start()], match.group()
        if index in positions:
            if token.startswith("-"):
                token, gap = token[1:], gap + " "
            else:
                token, gap = "-" + token, gap[:-1] if len(gap) > 1 else gap
        out.append(gap + token)
        end = match.end()
    return "".join(out) + line[end:]


def _tensor_row(line: str, row: int, pairs: bool) -> str:
    """Row ``row`` of a Cartesian 3x3 block (complex pairs or reals): entry (row, col) times S_row S_col."""
    width = 2 if pairs else 1
    flip = [col for col in range(3) if _MIRROR[row] * _MIRROR[col] < 0]
    return _negate(line, {width * col + k for col in flip for k in range(width)})


def mirror_z(text: str) -> str:
    """The ph.x file (a dynamical-matrix file or the "-0" list of q points) of the mirror image z -> -z."""
    lines = text.split("\n")
    if not text.lstrip().startswith(_HEADER):  # "nq1 nq2 nq3 / nq / q points (2 pi/alat, Cartesian)"
        return "\n".join(_negate(l, {2}) if len(l.split()) == 3 and i >= 2 else l for i, l in enumerate(lines))
    _check(text)
    if int(lines[2].split()[2]) != 0:
        raise ValueError(
            "mirror_z needs a dyn file with explicit basis vectors (ibrav = 0, as aiida-quantumespresso writes)"
        )
    out, row, pairs, section = [], None, False, "header"
    for line in lines:
        words = line.split()
        if line.strip() == "Basis vectors":
            section, row = "lattice", 0
        elif "Dynamical  Matrix in cartesian axes" in line:
            section = "matrix"
        elif _BLOCK_START in line:
            section, row, pairs = "tensor", 0, False  # eps: three rows of three reals follow
        elif words[:2] == ["atom", "#"]:
            row = 0  # the Born charge of one atom: three rows follow
        elif _BLOCK_END in line:
            section = "modes"
        elif words[:3] == ["q", "=", "("]:
            line = _negate(line, {5})
        elif section == "lattice" and row is not None:
            # rows (a S, b S, -c S): the mirror of a and b, minus that of c, so the cell stays right-handed
            line = _negate(line, {0, 1} if row == 2 else {2})
            row = row + 1 if row < 2 else None
        elif section == "lattice" and len(words) == 5 and words[0].isdigit() and words[1].isdigit():
            line = _negate(line, {4})  # atom, species, Cartesian position (alat)
        elif section == "matrix" and len(words) == 2 and all(w.isdigit() for w in words):
            row, pairs = 0, True  # the block of atoms (i, j): three rows of three complex numbers follow
        elif (
            section in ("matrix", "tensor")
            and row is not None
            and len(words) == (6 if pairs else 3)
            and _numeric(words)
        ):
            line = _tensor_row(line, row, pairs)
            row = row + 1 if row < 2 else None
        elif section == "modes" and words[:1] == ["("] and len(words) == 8:
            line = _negate(line, {5, 6})  # eigenvector: (x re, x im, y re, y im, z re, z im)
        out.append(line)
    return "\n".join(out)


def _numeric(words) -> bool:
    try:
        [float(w) for w in words]
    except ValueError:
        return False
    return True


@dataclasses.dataclass(frozen=True)
class DynamicalMatrixFile:
    """The dynamical matrices of one ph.x dyn file (every q of the star it lists), in ph.x's own convention.

    ``phi_ry_bohr2[m, i, j, a, b]`` is ph.x's Phi_{ia,jb}(q_m) (not divided by the masses) at ``q_2pi_alat[m]``
    (Cartesian, 2 pi/alat); ``lattice_alat`` holds the lattice vectors as rows in units of alat.
    """

    alat_bohr: float
    lattice_alat: np.ndarray  # (3, 3)
    positions_alat: np.ndarray  # (nat, 3) Cartesian
    q_2pi_alat: np.ndarray  # (nq, 3)
    phi_ry_bohr2: np.ndarray  # (nq, nat, nat, 3, 3) complex

    @property
    def qpoints_reduced(self) -> np.ndarray:
        """(nq, 3) the q points in reduced coordinates of the reciprocal lattice (q . a_i, no 2 pi)."""
        return self.q_2pi_alat @ self.lattice_alat.T


def read_dynamical_matrices(text: str) -> DynamicalMatrixFile:
    """Every dynamical matrix of a ph.x dyn file (ibrav = 0, as aiida-quantumespresso writes the pw.x input)."""
    _check(text)
    lines = text.split("\n")
    head = lines[2].split()
    nat, ibrav, alat = int(head[1]), int(head[2]), float(head[3])
    if ibrav != 0:
        raise ValueError(f"dyn file with ibrav = {ibrav}: only explicit basis vectors (ibrav = 0) are read")
    start = lines.index("Basis vectors")
    lattice = np.array([[float(w) for w in lines[start + 1 + row].split()] for row in range(3)])
    ntyp = int(head[0])
    positions = np.array([[float(w) for w in lines[start + 4 + ntyp + atom].split()[2:5]] for atom in range(nat)])
    qpoints, matrices = [], []
    for index, line in enumerate(lines):
        if "Dynamical  Matrix in cartesian axes" not in line:
            continue
        cursor = index + 1
        while not lines[cursor].strip():
            cursor += 1
        qpoints.append([float(w) for w in lines[cursor].replace("(", " ").replace(")", " ").split()[2:5]])
        cursor += 1
        phi = np.zeros((nat, nat, 3, 3), dtype=complex)
        for _ in range(nat * nat):
            while not lines[cursor].strip():
                cursor += 1
            i, j = (int(w) - 1 for w in lines[cursor].split())
            rows = np.array([[float(w) for w in lines[cursor + 1 + a].split()] for a in range(3)])
            phi[i, j] = rows[:, 0::2] + 1j * rows[:, 1::2]
            cursor += 4
        matrices.append(phi)
    if not matrices:
        raise ValueError("dyn file without a dynamical matrix")
    return DynamicalMatrixFile(alat, lattice, positions, np.array(qpoints), np.array(matrices))
