"""Response settings: the one parser and validator (used by the physics, the workchain's port and the CLI).

A settings mapping (the workchain's ``response`` input, a protocol's
``response:`` section) holds, in the units its keys name:

* ``temperatures_k`` (K) and ``radii_nm`` (nm): a list, or a grid
  ``{start, stop, num[, extra]}`` (geometric when start > 0 and it spans more
  than a decade; ``extra`` values are added);
* ``tau_s`` (s), ``grad_t_k_m`` (K/m), ``mesh`` (three positive integers),
  ``frequency_cutoff_thz`` (THz), ``bz_temperature_k`` (K), and optionally
  ``degeneracy_tolerance_thz`` (THz);
* optionally the k-sum convergence (:mod:`aiida_llpam.physics.convergence`):
  ``convergence_meshes`` (meshes tried after ``mesh``, in order),
  ``convergence_tolerance`` (relative, default 0.01) and
  ``convergence_temperature_k`` (K, default 300; the nearest grid temperature is used).

Every failure is a :class:`ValueError` whose message starts with the key.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np

from .degeneracy import DEGENERACY_TOLERANCE_THZ

__all__ = ["MAX_MESH_POINTS", "RESPONSE_KEYS", "ResponseSettings", "grid"]

#: the largest k mesh summed: about 100 s per million points on 2 cores for quartz (27 branches), so
#: a mesh beyond this would run for hours; refuse it before anything is computed
MAX_MESH_POINTS = 2_000_000

_REQUIRED = ("temperatures_k", "radii_nm", "tau_s", "grad_t_k_m", "mesh", "frequency_cutoff_thz", "bz_temperature_k")
#: every key a settings mapping may hold
RESPONSE_KEYS = (
    *_REQUIRED,
    "degeneracy_tolerance_thz",
    "convergence_meshes",
    "convergence_tolerance",
    "convergence_temperature_k",
    "store_mesh_modes",
)


def grid(spec, key: str = "grid") -> np.ndarray:
    """Values of a list or of a ``{start, stop, num[, extra]}`` grid, sorted and unique."""
    if isinstance(spec, Mapping):
        try:
            start, stop, num = float(spec["start"]), float(spec["stop"]), int(spec["num"])
            extra = [float(v) for v in spec.get("extra", [])]
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                f"{key}: a grid needs numbers start, stop, num (and an optional list extra), got {spec}"
            ) from None
        if num < 1:
            raise ValueError(f"{key}: num must be >= 1, got {num}")
        values = np.geomspace(start, stop, num) if start > 0 and stop / start > 10 else np.linspace(start, stop, num)
        return np.unique(np.concatenate([values, extra]))
    try:
        return np.asarray([float(v) for v in spec], dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{key}: not a list of numbers or a {{start, stop, num}} grid: {spec!r}") from None


def _positive_values(values: np.ndarray, key: str, what: str) -> np.ndarray:
    values = np.asarray(values, dtype=float).ravel()
    if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"{key}: every {what} must be a positive number, got {values.tolist()}")
    return values


def _positive(value, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ValueError(f"{key}: must be a positive number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{key}: must be > 0, got {value}")
    return float(value)


def _mesh(mesh, key: str) -> tuple[int, int, int]:
    """Three positive integers, refused beyond :data:`MAX_MESH_POINTS` before anything is computed."""
    if not (
        isinstance(mesh, (list, tuple, np.ndarray))
        and len(mesh) == 3
        and all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0 for n in mesh)
    ):
        raise ValueError(f"{key}: a mesh must be three positive integers, got {mesh}")
    points = math.prod(int(n) for n in mesh)
    if points > MAX_MESH_POINTS:
        raise ValueError(
            f"{key}: {'x'.join(map(str, mesh))} has {points:.3g} k points, more than the {MAX_MESH_POINTS:.0e} "
            "this code sums in reasonable time and memory; converge with smaller meshes"
        )
    return tuple(int(n) for n in mesh)


@dataclasses.dataclass(frozen=True)
class ResponseSettings:
    """Validated settings of the response sums, SI units (radii in m)."""

    temperatures_k: np.ndarray
    radii_m: np.ndarray
    tau_s: float
    grad_t_k_m: float
    mesh: tuple[int, int, int]
    frequency_cutoff_thz: float = 0.05
    bz_temperature_k: float = 300.0
    degeneracy_tolerance_thz: float = DEGENERACY_TOLERANCE_THZ
    convergence_meshes: tuple[tuple[int, int, int], ...] = ()
    convergence_tolerance: float = 0.01
    convergence_temperature_k: float = 300.0
    #: keep frequencies, l^z and mu^z of every mode on the irreducible k points (output mesh_modes): tens of MB
    #: at 48^3, so only on request
    store_mesh_modes: bool = False

    def __post_init__(self):
        set_ = object.__setattr__  # frozen: normalise once, here
        set_(self, "temperatures_k", _positive_values(self.temperatures_k, "temperatures_k", "temperature"))
        set_(self, "radii_m", _positive_values(self.radii_m, "radii_m", "radius"))
        for key in (
            "tau_s",
            "frequency_cutoff_thz",
            "bz_temperature_k",
            "degeneracy_tolerance_thz",
            "convergence_tolerance",
            "convergence_temperature_k",
        ):
            set_(self, key, _positive(getattr(self, key), key))
        grad = self.grad_t_k_m
        if (
            isinstance(grad, bool)
            or not isinstance(grad, (int, float, np.floating, np.integer))
            or not math.isfinite(grad)
        ):
            raise ValueError(f"grad_t_k_m: must be a finite number, got {grad!r}")
        set_(self, "grad_t_k_m", float(grad))
        if not isinstance(self.store_mesh_modes, (bool, np.bool_)):
            raise ValueError(f"store_mesh_modes: must be true or false, got {self.store_mesh_modes!r}")
        set_(self, "store_mesh_modes", bool(self.store_mesh_modes))
        set_(self, "mesh", _mesh(self.mesh, "mesh"))
        meshes = self.convergence_meshes
        if not isinstance(meshes, (list, tuple)):
            raise ValueError(f"convergence_meshes: must be a list of meshes, got {meshes!r}")
        set_(self, "convergence_meshes", tuple(_mesh(m, "convergence_meshes") for m in meshes))

    @classmethod
    def from_mapping(cls, parameters: Mapping) -> ResponseSettings:
        """Parse a settings mapping (radii in nm, grids allowed); unknown keys are refused."""
        missing = [key for key in _REQUIRED if key not in parameters]
        if missing:
            raise ValueError(f"{', '.join(missing)}: missing")
        unknown = sorted(set(parameters) - set(RESPONSE_KEYS))
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: unknown response setting(s); known: {', '.join(RESPONSE_KEYS)}")
        values = dict(parameters)
        values["temperatures_k"] = grid(values["temperatures_k"], "temperatures_k")
        values["radii_m"] = _positive_values(grid(values.pop("radii_nm"), "radii_nm"), "radii_nm", "radius") * 1e-9
        return cls(**values)

    def as_dict(self) -> dict:
        """JSON-ready values (radii in m) for a settings node."""
        return {
            key: value.tolist()
            if isinstance(value, np.ndarray)
            else np.asarray(value).tolist()
            if isinstance(value, tuple)
            else value
            for key, value in dataclasses.asdict(self).items()
        }
