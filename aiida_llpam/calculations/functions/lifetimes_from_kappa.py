"""The lifetimes node of the response: phono3py's RTA linewidths, read from its ``kappa-m*.hdf5``."""

from aiida import orm
from aiida.engine import ExitCode, calcfunction

from aiida_llpam.physics.lifetimes import Lifetimes

#: units of the arrays of a lifetimes node (Lifetimes.as_arrays)
UNITS = {"mesh": "1", "temperatures_k": "K", "qpoints": "reduced", "frequencies_thz": "THz", "gamma_thz": "THz"}


@calcfunction
def lifetimes_from_kappa(kappa: orm.SinglefileData) -> orm.ArrayData:
    """Half widths Gamma_ks(T) (THz) on phono3py's irreducible grid points, with their q points and frequencies.

    tau_ks = 1 / (4 pi Gamma_ks) is taken, unfolded and interpolated in T by the response
    (:mod:`aiida_llpam.physics.lifetimes`). A file that is not one RTA run on a plain mesh is refused (300).
    """
    try:
        with kappa.open(mode="rb") as handle:
            lifetimes = Lifetimes.from_kappa_hdf5(handle)
    except (OSError, ValueError) as exc:
        return ExitCode(300, f"{kappa.filename}: {exc}")
    node = orm.ArrayData()
    for name, array in lifetimes.as_arrays().items():
        node.set_array(name, array)
    node.base.attributes.set("units", UNITS)
    return node
