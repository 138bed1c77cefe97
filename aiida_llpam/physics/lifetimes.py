"""Mode-resolved phonon lifetimes from phono3py (THEORY.md section 4): tau_ks(T) = 1 / (4 pi Gamma_ks) ps.

phono3py's RTA writes, per irreducible grid point of a Gamma-centred mesh, the half width Gamma (``gamma``,
THz) of every band at every temperature of its run (``kappa-m*.hdf5``). The response sums pair an axial
vector (l) with a polar one (v), so they must not be folded with phono3py's weights: they run on their own
k points (the response's irreducible set, symmetrised with its rotations, or the full mesh), and each of
those points takes Gamma from the irreducible point of its star. A linewidth is a scalar, invariant under
the point group and time reversal, so unfolding it is exact. Bands are matched by index (both codes sort
by frequency at each k); :meth:`Lifetimes.linewidths_on` refuses force constants that give other
frequencies, i.e. lifetimes computed for another crystal or another fc2.

Between phono3py's temperatures Gamma is interpolated linearly (Gamma, not tau: above the Debye scale
Gamma grows linearly with T, so a linear interpolation of it is nearly exact there); outside them nothing is
extrapolated. Degenerate modes share one tau: the response averages Gamma over each degenerate subspace of
its own (phono3py already does, with its own tolerance).
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = [
    "FREQUENCY_MATCH_THZ",
    "Lifetimes",
    "RtaKappa",
    "SPLIT_BOUNDS_CM",
    "check_inside",
    "check_measured_inside",
    "diffusivity_exponents",
    "diffusivity_mm2_s",
    "frequency_split",
    "kappa_against_measured",
    "measured_diffusivity",
    "read_kappa",
    "tau_s_from_linewidth",
    "uniaxial_kappa",
]

#: largest frequency difference (THz) between the lifetimes' modes and the response's at the same k point;
#: the same force constants through phono3py and through the response differ by rounding (1e-6 THz)
FREQUENCY_MATCH_THZ = 1.0e-3


def tau_s_from_linewidth(gamma_thz: np.ndarray) -> np.ndarray:
    """tau = 1 / (2 * 2 pi Gamma): Gamma is the half width at half maximum in THz (ordinary frequency), s."""
    with np.errstate(divide="ignore"):
        return 1.0e-12 / (4.0 * np.pi * np.asarray(gamma_thz))


@dataclasses.dataclass(frozen=True)
class Lifetimes:
    """Linewidths of phono3py's irreducible grid points.

    mesh: Gamma-centred mesh of the RTA run; temperatures_k (nT,); qpoints (nq, 3) reduced; frequencies_thz
    (nq, nb); gamma_thz (nT, nq, nb): the half width Gamma_ks(T) in THz, isotope scattering included when
    the run had it.
    """

    mesh: tuple[int, int, int]
    temperatures_k: np.ndarray
    qpoints: np.ndarray
    frequencies_thz: np.ndarray
    gamma_thz: np.ndarray

    def __post_init__(self):
        nt, nq, nb = np.shape(self.gamma_thz)
        if np.shape(self.qpoints) != (nq, 3) or np.shape(self.frequencies_thz) != (nq, nb):
            raise ValueError(
                f"lifetimes: {nq} q points x {nb} bands of gamma do not match qpoints {np.shape(self.qpoints)} "
                f"and frequencies {np.shape(self.frequencies_thz)}"
            )
        if len(self.temperatures_k) != nt or np.any(np.diff(self.temperatures_k) <= 0):
            raise ValueError(f"lifetimes: temperatures must be {nt} increasing values, got {list(self.temperatures_k)}")
        if not np.all(np.isfinite(self.gamma_thz)) or np.any(np.asarray(self.gamma_thz) < 0):
            raise ValueError("lifetimes: gamma must be finite and >= 0")

    @classmethod
    def from_kappa_hdf5(cls, source) -> Lifetimes:
        """Read phono3py's ``kappa-m*.hdf5`` (a path or an open binary file); one smearing method only."""
        import h5py

        with h5py.File(source, "r") as handle:
            missing = [key for key in ("mesh", "temperature", "qpoint", "frequency", "gamma") if key not in handle]
            if missing:
                raise ValueError(f"kappa file: no {', '.join(missing)} (an RTA run of phono3py writes them)")
            if "grid_matrix" in handle:
                raise ValueError("kappa file: a generalized regular grid (grid_matrix); use a plain mesh")
            gamma = np.asarray(handle["gamma"], dtype=float)
            if gamma.ndim != 3:
                raise ValueError(f"kappa file: gamma of shape {gamma.shape}; expected (T, q, band): one sigma per file")
            if "gamma_isotope" in handle:
                gamma = gamma + np.asarray(handle["gamma_isotope"], dtype=float)[None]
            return cls(
                mesh=tuple(int(n) for n in handle["mesh"]),
                temperatures_k=np.asarray(handle["temperature"], dtype=float),
                qpoints=np.asarray(handle["qpoint"], dtype=float),
                frequencies_thz=np.asarray(handle["frequency"], dtype=float),
                gamma_thz=gamma,
            )

    def _star_index(self, rotations: np.ndarray) -> dict[tuple[int, int, int], int]:
        """Mesh address (mod mesh) of every point of every stored point's star -> index of the stored point."""
        mesh = np.asarray(self.mesh)
        addresses = np.rint(self.qpoints * mesh).astype(int)
        if not np.allclose(addresses / mesh, self.qpoints, atol=1e-6):
            raise ValueError(f"lifetimes: q points not on the Gamma-centred {_mesh_text(self.mesh)} mesh")
        index = {}
        # q in reduced reciprocal coordinates goes to R^T q under a direct-lattice rotation R (R^-T q over the
        # group gives the same star), -q by time reversal (a linewidth is even in q); images off this mesh
        # (a 3-fold axis on an n1 != n2 mesh) are skipped
        for sign in (1, -1):
            for rotation in rotations:
                images = sign * (addresses / mesh) @ np.asarray(rotation) * mesh
                on_mesh = np.all(np.abs(images - np.rint(images)) < 1e-6, axis=1)
                for i in np.flatnonzero(on_mesh):
                    index.setdefault(tuple(np.mod(np.rint(images[i]).astype(int), mesh)), i)
        return index

    def linewidths_on(
        self,
        qpoints: np.ndarray,
        mesh,
        rotations: np.ndarray,
        temperatures_k: np.ndarray,
        frequencies_thz: np.ndarray | None = None,
    ) -> np.ndarray:
        """Gamma (THz) at the k points ``qpoints`` of the response's ``mesh``: (nk, nb, nT).

        ``rotations``: the point group (direct-lattice integer matrices) the stored points were reduced with,
        or any group containing it. ``frequencies_thz`` (nk, nb), the response's own, are checked against the
        stored ones to :data:`FREQUENCY_MATCH_THZ`.
        """
        mesh = tuple(int(n) for n in mesh)
        if mesh != self.mesh:
            raise ValueError(
                f"lifetimes: computed on the {_mesh_text(self.mesh)} mesh, the response sums on {_mesh_text(mesh)}; "
                f"run the response on {_mesh_text(self.mesh)} or phono3py on {_mesh_text(mesh)}"
            )
        temperatures_k = np.asarray(temperatures_k, dtype=float)
        low, high = self.temperatures_k[0], self.temperatures_k[-1]
        outside = temperatures_k[(temperatures_k < low - 1e-9) | (temperatures_k > high + 1e-9)]
        if outside.size:
            raise ValueError(
                f"lifetimes: temperatures {outside.tolist()} K outside the lifetimes' {low:g}-{high:g} K "
                "(nothing is extrapolated)"
            )
        addresses = np.rint(np.asarray(qpoints) * np.asarray(mesh)).astype(int) % np.asarray(mesh)
        star = self._star_index(rotations)
        try:
            which = np.array([star[tuple(address)] for address in addresses], dtype=int)
        except KeyError as exc:
            raise ValueError(
                f"lifetimes: k point {exc.args[0]} of the {_mesh_text(mesh)} mesh is in no stored star; the "
                "lifetimes were reduced with another symmetry (another crystal?)"
            ) from None
        if frequencies_thz is not None:
            difference = np.abs(np.asarray(frequencies_thz) - self.frequencies_thz[which])
            at_gamma = ~np.any(addresses, axis=1)  # LO-TO splitting at Gamma depends on the direction of approach
            worst = float(np.max(difference[~at_gamma], initial=0.0))
            if worst > FREQUENCY_MATCH_THZ:
                raise ValueError(
                    f"lifetimes: their frequencies differ from the response's by up to {worst:.3g} THz "
                    f"(tolerance {FREQUENCY_MATCH_THZ:g}): the lifetimes were computed with other force constants"
                )
        return np.moveaxis(self._interpolated(temperatures_k)[:, which], 0, -1)  # (nk, nb, nT)

    def _interpolated(self, temperatures_k: np.ndarray) -> np.ndarray:
        """Gamma (nT', nq, nb) at ``temperatures_k`` (inside the stored range), linear in T."""
        if len(self.temperatures_k) == 1:
            return np.repeat(self.gamma_thz, len(temperatures_k), axis=0)
        upper = np.clip(np.searchsorted(self.temperatures_k, temperatures_k), 1, len(self.temperatures_k) - 1)
        t0, t1 = self.temperatures_k[upper - 1], self.temperatures_k[upper]
        weight = np.clip((temperatures_k - t0) / (t1 - t0), 0.0, 1.0)[:, None, None]
        return (1 - weight) * self.gamma_thz[upper - 1] + weight * self.gamma_thz[upper]

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {
            "mesh": np.asarray(self.mesh),
            "temperatures_k": self.temperatures_k,
            "qpoints": self.qpoints,
            "frequencies_thz": self.frequencies_thz,
            "gamma_thz": self.gamma_thz,
        }

    @classmethod
    def from_arrays(cls, arrays) -> Lifetimes:
        return cls(
            mesh=tuple(int(n) for n in arrays["mesh"]),
            **{
                key: np.asarray(arrays[key], dtype=float)
                for key in ("temperatures_k", "qpoints", "frequencies_thz", "gamma_thz")
            },
        )


def _mesh_text(mesh) -> str:
    return "x".join(str(int(n)) for n in mesh)


@dataclasses.dataclass(frozen=True)
class RtaKappa:
    """What the comparisons with measured values take from phono3py's ``kappa-m*.hdf5`` (:func:`read_kappa`).

    temperatures_k (nT,); kappa_w_mk (nT, 6): xx, yy, zz, yz, xz, xy in W/(m K); heat_capacity_ev_k (nT,): the
    phonon heat capacity per cell in eV/K, None for a file without it; volume_angstrom3: the unit cell's volume,
    None for a file without phono3py's conversion factor.
    """

    temperatures_k: np.ndarray
    kappa_w_mk: np.ndarray
    heat_capacity_ev_k: np.ndarray | None
    volume_angstrom3: float | None


def read_kappa(source) -> RtaKappa:
    """A ``kappa-m*.hdf5`` (a path or an open binary file), opened once. An RTA run of phono3py always writes the
    temperatures and kappa (ValueError without them). The heat capacity per cell is its mode heat capacities
    summed over bands and the (weighted, irreducible) grid points, over the mesh size; the volume is phono3py's
    own unit of kappa over the conversion factor to W/(m K) it writes (``kappa_unit_conversion``)."""
    import h5py
    from phono3py.conductivity.utils import get_unit_to_WmK

    with h5py.File(source, "r") as handle:
        missing = [key for key in ("temperature", "kappa") if key not in handle]
        if missing:
            raise ValueError(f"kappa file: no {', '.join(missing)} (an RTA run of phono3py writes them)")
        heat_capacity = volume = None
        if "heat_capacity" in handle and "weight" in handle:
            weight = np.asarray(handle["weight"], dtype=float)
            per_point = np.asarray(handle["heat_capacity"], dtype=float)
            heat_capacity = np.einsum("tqb,q->t", per_point, weight) / weight.sum()
        if "kappa_unit_conversion" in handle:
            volume = float(get_unit_to_WmK() / np.asarray(handle["kappa_unit_conversion"]).item())
        return RtaKappa(
            np.asarray(handle["temperature"], dtype=float),
            np.asarray(handle["kappa"], dtype=float),
            heat_capacity,
            volume,
        )


def check_inside(temperatures_k, at_k, what: str) -> None:
    """ValueError naming ``what`` and the temperatures of ``at_k`` (K) outside the RTA's ``temperatures_k``, a
    rising sequence: nothing is extrapolated beyond them."""
    at = np.atleast_1d(np.asarray(at_k, dtype=float))
    outside = sorted({float(t) for t in at if not temperatures_k[0] <= t <= temperatures_k[-1]})
    if outside:
        raise ValueError(
            f"{what}: {', '.join(f'{t:g}' for t in outside)} K outside the RTA's "
            f"{temperatures_k[0]:g}-{temperatures_k[-1]:g} K, where nothing is extrapolated"
        )


def diffusivity_mm2_s(temperatures_k, kappa, heat_capacity, volume_angstrom3, at_k) -> tuple[np.ndarray, np.ndarray]:
    """The thermal diffusivity D = kappa / C (mm^2/s) perpendicular to and along c at the temperatures ``at_k``
    (K): the RTA's kappa (T, 6) over its heat capacity per cell (T,) in eV/K divided by the cell volume
    (Angstrom^3), both interpolated linearly in T, never extrapolated (ValueError). C is the harmonic C_V of
    the RTA's mesh; a laser-flash D divides by rho c_p, which exceeds C_V by the thermal expansion term (about
    1 % for quartz at 400 K, less below)."""
    at = np.atleast_1d(np.asarray(at_k, dtype=float))
    check_inside(temperatures_k, at, "diffusivity")
    from aiida_llpam.physics.units import PHONOPY_EV_J

    per_volume = np.interp(at, temperatures_k, heat_capacity) * PHONOPY_EV_J / (volume_angstrom3 * 1e-30)  # J/(m^3 K)
    return tuple(np.interp(at, temperatures_k, k) / per_volume * 1e6 for k in uniaxial_kappa(kappa))


def diffusivity_exponents(temperatures_k, kappa, heat_capacity, between_k) -> tuple[float, float]:
    """n of D ~ T^-n between the two temperatures ``between_k`` (K), perpendicular to and along c, where the
    thermal diffusivity D = kappa / C is the RTA's kappa (T, 6) over the heat capacity (T,) of the same modes (any
    unit: only the ratio D(T2)/D(T1) enters). Measured laser-flash diffusivities give n without a heat capacity
    that is not the crystal's own. Interpolated linearly in T, never extrapolated (ValueError)."""
    t1, t2 = (float(t) for t in between_k)
    if not temperatures_k[0] <= t1 < t2 <= temperatures_k[-1]:
        raise ValueError(
            f"diffusivity: temperatures {t1:g}, {t2:g} K not two rising ones within the RTA's "
            f"{temperatures_k[0]:g}-{temperatures_k[-1]:g} K"
        )
    exponents = []
    for computed in uniaxial_kappa(kappa):
        d1, d2 = (
            np.interp(t, temperatures_k, computed) / np.interp(t, temperatures_k, heat_capacity) for t in (t1, t2)
        )
        exponents.append(float(-np.log(d2 / d1) / np.log(t2 / t1)))
    return exponents[0], exponents[1]


#: the frequency bands (cm^-1) of the mode split of gamma^NL_zz: acoustic and the lowest optical, the bulk of
#: the optical modes, the Si-O stretching modes of quartz (issue #21)
SPLIT_BOUNDS_CM = (60.0, 600.0)


def frequency_split(edges_thz, cumulative, bounds_cm=SPLIT_BOUNDS_CM) -> np.ndarray:
    """The parts of a sum between zero, each bound (cm^-1) and the total, from its cumulative sum over frequency
    (``cumulative`` at the bins' upper ``edges_thz``, interpolated linearly inside a bin); they add up to the
    total."""
    from aiida_llpam.physics.units import THZ_TO_CM

    edges, cumulative = np.asarray(edges_thz, dtype=float), np.asarray(cumulative, dtype=float)
    below = [0.0, *(np.interp(bound / THZ_TO_CM, edges, cumulative, left=0.0) for bound in bounds_cm), cumulative[-1]]
    return np.diff(below)


def measured_diffusivity(diffusivity: dict) -> dict:
    """The ``diffusivity`` entry of measured values, checked: ``source``, ``temperatures_k`` (two rising, in K) and
    the finite exponents ``exponent_perpendicular``, ``exponent_parallel`` of D ~ T^-n between them; optionally
    ``values``: measured D itself, ``temperatures_k`` and ``perpendicular_mm2_s``, ``parallel_mm2_s`` (one each per
    temperature, positive). ValueError naming what is wrong."""
    keys = ("source", "temperatures_k", "exponent_perpendicular", "exponent_parallel")
    missing = [key for key in keys if key not in diffusivity]
    if missing:
        raise ValueError(f"measured: diffusivity without {', '.join(missing)}")
    temperatures = np.asarray(diffusivity["temperatures_k"], dtype=float)
    if temperatures.shape != (2,) or not 0 < temperatures[0] < temperatures[1]:
        raise ValueError(f"measured: diffusivity temperatures_k, two rising ones, got {diffusivity['temperatures_k']}")
    exponents = [diffusivity[key] for key in keys[2:]]
    if not all(isinstance(n, (int, float)) and not isinstance(n, bool) and np.isfinite(n) for n in exponents):
        raise ValueError(f"measured: diffusivity exponents, two finite numbers, got {exponents}")
    checked = {key: diffusivity[key] for key in keys}
    if "values" in diffusivity:
        values = diffusivity["values"]
        names = ("temperatures_k", "perpendicular_mm2_s", "parallel_mm2_s")
        if not isinstance(values, dict) or any(name not in values for name in names):
            raise ValueError(f"measured: diffusivity values need {', '.join(names)}")
        arrays = [np.asarray(values[name], dtype=float) for name in names]
        if arrays[0].ndim != 1 or any(a.shape != arrays[0].shape for a in arrays) or not np.all(np.hstack(arrays) > 0):
            raise ValueError("measured: diffusivity values, one positive D per direction and temperature")
        checked["values"] = {name: values[name] for name in names}
    return checked


def uniaxial_kappa(kappa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(perpendicular, parallel) to the c axis, which is z in the project's cells: the mean of xx and yy, and zz,
    of kappa (..., 6) in phono3py's order."""
    kappa = np.asarray(kappa, dtype=float)
    return 0.5 * (kappa[..., 0] + kappa[..., 1]), kappa[..., 2]


def check_measured_inside(temperatures_k, measured: dict) -> None:
    """ValueError unless every temperature of measured values (the layout of :func:`kappa_against_measured`, whose
    values it does not check) lies inside the RTA's ``temperatures_k`` (rising), naming the group outside:
    "measured kappa", "measured diffusivity exponent" or "measured diffusivity" (:func:`check_inside`)."""
    diffusivity = measured.get("diffusivity", {})
    groups = {
        "measured kappa": measured["temperatures_k"],
        "measured diffusivity exponent": diffusivity.get("temperatures_k", []),
        "measured diffusivity": diffusivity.get("values", {}).get("temperatures_k", []),
    }
    for what, at_k in groups.items():  # every range before any comparison, each under its own name
        check_inside(temperatures_k, at_k, what)


def kappa_against_measured(rta: RtaKappa, measured: dict) -> dict:
    """The RTA kappa of a uniaxial crystal (:func:`read_kappa`) against measured values.

    ``measured``: ``temperatures_k`` and ``perpendicular_w_mk`` and ``parallel_w_mk`` (to c; one value per
    temperature), ``source`` (the literature). The computed kappa is interpolated linearly in T between the RTA's
    temperatures, never extrapolated: a measured temperature outside them is refused (ValueError), before
    anything is compared. Returns those plus ``computed_perpendicular_w_mk``, ``computed_parallel_w_mk``,
    ``ratio_perpendicular``, ``ratio_parallel`` (computed / measured) and the anisotropy along c / perpendicular,
    ``computed_anisotropy`` and ``measured_anisotropy``.

    Optionally ``measured["diffusivity"]``: ``source``, ``temperatures_k`` (two), ``exponent_perpendicular`` and
    ``exponent_parallel``, the measured n of D ~ T^-n between them; the result then holds ``diffusivity`` with the
    computed exponents beside them (:func:`diffusivity_exponents`, with the RTA's heat capacity). With measured D
    (``values``) it also holds the computed D (:func:`diffusivity_mm2_s`, with the RTA's cell volume):
    ``computed_perpendicular_mm2_s``, ``computed_parallel_mm2_s`` and the ratios ``ratio_perpendicular``,
    ``ratio_parallel`` inside ``values``. A kappa file without what a comparison needs is refused (ValueError).
    """
    temperatures = np.asarray(measured["temperatures_k"], dtype=float)
    values = {key: np.asarray(measured[key], dtype=float) for key in ("perpendicular_w_mk", "parallel_w_mk")}
    if any(v.shape != temperatures.shape for v in values.values()) or temperatures.ndim != 1 or not temperatures.size:
        raise ValueError("measured: one perpendicular and one parallel value per temperature, at least one")
    diffusivity = measured_diffusivity(measured["diffusivity"]) if "diffusivity" in measured else None
    temperatures_k, kappa, heat_capacity = rta.temperatures_k, rta.kappa_w_mk, rta.heat_capacity_ev_k
    check_measured_inside(temperatures_k, measured)
    result = {"source": str(measured["source"]), "temperatures_k": temperatures.tolist()}
    for direction, computed in zip(("perpendicular", "parallel"), uniaxial_kappa(kappa)):
        at = np.interp(temperatures, temperatures_k, computed)
        result[f"measured_{direction}_w_mk"] = values[f"{direction}_w_mk"].tolist()
        result[f"computed_{direction}_w_mk"] = at.tolist()
        result[f"ratio_{direction}"] = (at / values[f"{direction}_w_mk"]).tolist()
    for kind in ("computed", "measured"):
        result[f"{kind}_anisotropy"] = (
            np.asarray(result[f"{kind}_parallel_w_mk"]) / np.asarray(result[f"{kind}_perpendicular_w_mk"])
        ).tolist()
    if diffusivity is not None:
        if heat_capacity is None:
            raise ValueError(
                "measured: a diffusivity exponent needs the RTA's heat capacity (the kappa file lacks "
                "heat_capacity or weight)"
            )
        perpendicular, parallel = diffusivity_exponents(
            temperatures_k, kappa, heat_capacity, diffusivity["temperatures_k"]
        )
        result["diffusivity"] = diffusivity | {
            "computed_exponent_perpendicular": perpendicular,
            "computed_exponent_parallel": parallel,
        }
        if "values" in diffusivity:
            if rta.volume_angstrom3 is None:
                raise ValueError(
                    "measured: a diffusivity value needs the cell volume (kappa file: no kappa_unit_conversion)"
                )
            values = diffusivity["values"]
            computed = diffusivity_mm2_s(
                temperatures_k, kappa, heat_capacity, rta.volume_angstrom3, values["temperatures_k"]
            )
            for direction, at in zip(("perpendicular", "parallel"), computed):
                values[f"computed_{direction}_mm2_s"] = at.tolist()
                values[f"ratio_{direction}"] = (at / np.asarray(values[f"{direction}_mm2_s"], dtype=float)).tolist()
    return result


def kappa_against_reference(rta: RtaKappa, reference: RtaKappa) -> dict:
    """The RTA kappa of one run of a uniaxial (or cubic) crystal against another's at the same temperatures, e.g.
    the fc3 of random snapshots against that of finite displacements: ``temperatures_k``,
    ``perpendicular_w_mk`` and ``parallel_w_mk`` (to c, :func:`uniaxial_kappa`), the same of the reference
    (``reference_...``) and ``ratio_perpendicular``, ``ratio_parallel`` (run / reference). ValueError when the
    two were run at other temperatures (nothing is interpolated between two RTAs)."""
    temperatures = np.asarray(rta.temperatures_k, dtype=float)
    theirs = np.asarray(reference.temperatures_k, dtype=float)
    if temperatures.shape != theirs.shape or not np.allclose(temperatures, theirs, rtol=0, atol=1e-6):
        raise ValueError(
            f"temperatures: {temperatures.size} from {temperatures.min():g} K against {theirs.size} from "
            f"{theirs.min():g} K: two RTAs are compared at the same temperatures"
        )
    result = {"temperatures_k": temperatures.tolist()}
    for direction, computed, known in zip(
        ("perpendicular", "parallel"), uniaxial_kappa(rta.kappa_w_mk), uniaxial_kappa(reference.kappa_w_mk)
    ):
        result[f"{direction}_w_mk"] = computed.tolist()
        result[f"reference_{direction}_w_mk"] = known.tolist()
        result[f"ratio_{direction}"] = (computed / known).tolist()
    return result
