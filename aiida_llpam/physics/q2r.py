"""Reader for the real-space force-constant files written by QE's q2r.x.

The file carries its own structure: a header with ``ntyp nat ibrav celldm``,
the lattice (only for ``ibrav=0``), species with masses in Rydberg mass units,
atoms with Cartesian positions in units of ``alat``, an optional block with
the dielectric tensor and Born effective charges (``lrigid = T``), the mesh
``nr1 nr2 nr3`` and then the force constants in Ry/bohr^2.

``lrigid = T`` means q2r.x subtracted the dipole-dipole part from the IFCs:
such a file is only a source of eps/Z*, never of force constants for phonopy
(see :mod:`aiida_llpam.physics.phonon`).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from .units import AMU_RY

__all__ = ["Q2RFormatError", "Q2RForceConstants", "parse_q2r", "read_q2r"]


class Q2RFormatError(ValueError):
    """A q2r.x file is missing, malformed or uses an unsupported header."""


@dataclasses.dataclass(frozen=True)
class Q2RForceConstants:
    """Content of one q2r.x file, in the file's own units (bohr, Ry)."""

    ibrav: int
    alat_bohr: float
    lattice_bohr: np.ndarray  # (3, 3), rows are lattice vectors
    symbols: tuple[str, ...]  # per atom
    masses_amu: np.ndarray  # (nat,)
    positions_bohr: np.ndarray  # (nat, 3) Cartesian
    mesh: tuple[int, int, int]  # nr1, nr2, nr3
    #: (nr1, nr2, nr3, nat, nat, 3, 3) as written: [m1, m2, m3, na1, na2, j1, j2]
    ifc_ry_bohr2: np.ndarray | None
    dielectric: np.ndarray | None  # (3, 3)
    born_charges: np.ndarray | None  # (nat, 3, 3), rows as written by q2r.x

    @property
    def natom(self) -> int:
        return len(self.symbols)

    @property
    def is_dipole_subtracted(self) -> bool:
        """True when the file carries eps/Z* (q2r.x removed the dipole part)."""
        return self.dielectric is not None

    @property
    def volume_bohr3(self) -> float:
        return float(abs(np.linalg.det(self.lattice_bohr)))


def _lattice_from_ibrav(ibrav: int, celldm: np.ndarray) -> np.ndarray:
    """Lattice vectors in units of alat for the Bravais lattices of QE's latgen."""
    if ibrav == 1:
        return np.eye(3)
    if ibrav == 2:
        return 0.5 * np.array([[-1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [-1.0, 1.0, 0.0]])
    if ibrav == 3:
        return 0.5 * np.array([[1.0, 1.0, 1.0], [-1.0, 1.0, 1.0], [-1.0, -1.0, 1.0]])
    if ibrav == 4:
        return np.array([[1.0, 0.0, 0.0], [-0.5, np.sqrt(3.0) / 2.0, 0.0], [0.0, 0.0, celldm[2]]])
    raise Q2RFormatError(
        f"ibrav={ibrav} in the q2r header is not supported (only 0, 1, 2, 3, 4): "
        "run pw.x with ibrav=0 and CELL_PARAMETERS"
    )


def _floats(line: str) -> list[float]:
    return [float(x.replace("D", "E").replace("d", "e")) for x in line.split()]


def parse_q2r(text: str, read_ifc: bool = True, source: str = "q2r file") -> Q2RForceConstants:
    """Parse the text of a q2r.x output file.

    ``read_ifc=False`` stops after the header (enough to take eps/Z* from it).
    """
    lines = text.splitlines()
    pos = 0

    def next_line(what: str) -> str:
        nonlocal pos
        while pos < len(lines) and not lines[pos].strip():
            pos += 1
        if pos >= len(lines):
            raise Q2RFormatError(f"{source}: file ends before the {what}")
        pos += 1
        return lines[pos - 1]

    try:
        head = next_line("header").split()
        ntyp, nat, ibrav = int(head[0]), int(head[1]), int(head[2])
        celldm = np.array(_floats(" ".join(head[3:9])))
        if len(celldm) != 6 or ntyp < 1 or nat < 1 or celldm[0] <= 0:
            raise ValueError("bad header")
    except (ValueError, IndexError) as exc:
        raise Q2RFormatError(
            f"{source}: not a q2r.x force-constant file (first line must be 'ntyp nat ibrav celldm(1:6)')"
        ) from exc
    alat = float(celldm[0])

    try:
        if ibrav == 0:
            lattice = np.array([_floats(next_line("lattice vectors")) for _ in range(3)])
        else:
            lattice = _lattice_from_ibrav(ibrav, celldm)
        species: dict[int, tuple[str, float]] = {}
        for _ in range(ntyp):
            line = next_line("species list")
            it, rest = line.split(None, 1)
            name, mass = rest.rsplit("'", 1)
            species[int(it)] = (name.strip().strip("'").strip(), float(mass))
        ityp = np.zeros(nat, dtype=int)
        tau = np.zeros((nat, 3))
        for i in range(nat):
            fields = next_line("atomic positions").split()
            ityp[i] = int(fields[1])
            tau[i] = _floats(" ".join(fields[2:5]))
        lrigid = next_line("lrigid flag").strip().upper().startswith("T")
        dielectric = born = None
        if lrigid:
            dielectric = np.array([_floats(next_line("dielectric tensor")) for _ in range(3)])
            born = np.zeros((nat, 3, 3))
            for i in range(nat):
                next_line("Born charge atom index")
                born[i] = [_floats(next_line("Born charges")) for _ in range(3)]
        mesh = tuple(int(x) for x in next_line("mesh nr1 nr2 nr3").split()[:3])
        if len(mesh) != 3 or min(mesh) < 1:
            raise ValueError(f"bad mesh {mesh}")
    except Q2RFormatError:
        raise
    except (ValueError, IndexError, KeyError) as exc:
        raise Q2RFormatError(f"{source}: malformed q2r header ({exc})") from exc
    if set(ityp) - set(species):
        raise Q2RFormatError(f"{source}: an atom refers to a species that is not listed")

    ifc = None
    if read_ifc:
        ifc = _parse_ifc_block(lines[pos:], nat, mesh, source)

    symbols = tuple(species[t][0] for t in ityp)
    masses = np.array([species[t][1] for t in ityp]) / AMU_RY
    return Q2RForceConstants(
        ibrav=ibrav,
        alat_bohr=alat,
        lattice_bohr=lattice * alat,
        symbols=symbols,
        masses_amu=masses,
        positions_bohr=tau * alat,
        mesh=mesh,  # type: ignore[arg-type]
        ifc_ry_bohr2=ifc,
        dielectric=dielectric,
        born_charges=born,
    )


def _parse_ifc_block(lines: list[str], nat: int, mesh: tuple[int, int, int], source: str) -> np.ndarray:
    """Read the 9 nat^2 blocks of ``j1 j2 na1 na2`` followed by nr1*nr2*nr3 rows."""
    ncell = mesh[0] * mesh[1] * mesh[2]
    nblock = 9 * nat * nat
    rows = [ln for ln in lines if ln.strip()]
    if len(rows) < nblock * (ncell + 1):
        raise Q2RFormatError(
            f"{source}: force-constant block is truncated "
            f"({len(rows)} lines, expected {nblock * (ncell + 1)} for nat={nat} and mesh {mesh})"
        )
    try:
        table = np.array(" ".join(rows[: nblock * (ncell + 1)]).split(), dtype=float)
        table = table.reshape(nblock, ncell + 1, 4)
    except ValueError as exc:
        raise Q2RFormatError(f"{source}: malformed force-constant block ({exc})") from exc
    heads = table[:, 0, :].astype(int)
    cells = table[0, 1:, :3].astype(int)
    values = table[:, 1:, 3]
    # The file loops j1, j2, na1, na2 (slowest first) and m3, m2, m1 inside (m1 fastest).
    expected = np.array(list(np.ndindex(3, 3, nat, nat))) + 1
    expected_cells = np.array([c[::-1] for c in np.ndindex(mesh[::-1])]) + 1
    if not (np.array_equal(heads, expected) and np.array_equal(cells, expected_cells)):
        raise Q2RFormatError(f"{source}: force-constant blocks are not in q2r.x order")
    ifc = values.reshape(3, 3, nat, nat, mesh[2], mesh[1], mesh[0])
    return np.ascontiguousarray(ifc.transpose(6, 5, 4, 2, 3, 0, 1))


def read_q2r(path: str | os.PathLike, read_ifc: bool = True) -> Q2RForceConstants:
    """Read a q2r.x file; raise :class:`Q2RFormatError` naming the problem."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise Q2RFormatError(f"{path}: no such file")
    with open(path, encoding="utf-8", errors="replace") as handle:
        return parse_q2r(handle.read(), read_ifc=read_ifc, source=path)
