"""The thermal conductivity of an RTA run against measured values, stored beside its kappa file."""

from aiida import orm
from aiida.engine import ExitCode, calcfunction

from aiida_llpam.physics.lifetimes import kappa_against_measured, read_kappa


@calcfunction
def kappa_comparison(kappa: orm.SinglefileData, measured: orm.Dict) -> orm.Dict:
    """phono3py's RTA kappa of a uniaxial crystal (c along z) against measured values: ``measured`` holds
    ``source``, ``temperatures_k``, ``perpendicular_w_mk`` and ``parallel_w_mk``, optionally ``diffusivity``
    (measured exponents of D ~ T^-n, against the RTA's kappa over its heat capacity, and optionally measured D
    itself, against that kappa over its heat capacity per volume)
    (:func:`aiida_llpam.physics.lifetimes.kappa_against_measured`). A file without kappa, or measured temperatures
    outside the RTA's, are refused (300)."""
    try:
        with kappa.open(mode="rb") as handle:
            rta = read_kappa(handle)
        return orm.Dict(kappa_against_measured(rta, measured.get_dict()))
    except (OSError, KeyError, ValueError) as exc:
        return ExitCode(300, f"{kappa.filename}: {exc}")
