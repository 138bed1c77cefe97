"""Two fc3 of one supercell and the kappa each gave, e.g. symfc's fit to random snapshots against phono3py's finite
differences, stored with both."""

import numpy as np
from aiida import orm
from aiida.engine import ExitCode, calcfunction

from aiida_llpam.physics.lifetimes import kappa_against_reference, read_kappa
from aiida_llpam.physics.third_order import fc3_relative_difference


def _fc3(node: orm.SinglefileData):
    from phono3py.file_IO import read_fc3_from_hdf5

    with node.open(mode="rb") as handle:
        return read_fc3_from_hdf5(handle)


@calcfunction
def fc3_comparison(
    fc3: orm.SinglefileData,
    kappa: orm.SinglefileData,
    reference_fc3: orm.SinglefileData,
    reference_kappa: orm.SinglefileData,
) -> orm.Dict:
    """``fc3`` (phono3py's fc3.hdf5, eV/Angstrom^3) against ``reference_fc3`` of the same supercell:
    ``fc3_relative_difference`` |fc3 - reference| / |reference| over every element and both norms
    (``fc3_norm_ev_angstrom3``, ``reference_fc3_norm_ev_angstrom3``); and the kappa of their RTAs, at the same
    temperatures (:func:`aiida_llpam.physics.lifetimes.kappa_against_reference`). Two supercells, other
    temperatures or an unreadable file are refused (300)."""
    try:
        first, second = _fc3(fc3), _fc3(reference_fc3)
        difference = fc3_relative_difference(first, second)
        with kappa.open(mode="rb") as a, reference_kappa.open(mode="rb") as b:
            kappas = kappa_against_reference(read_kappa(a), read_kappa(b))
    except (OSError, KeyError, ValueError) as exc:
        return ExitCode(300, str(exc))
    return orm.Dict(
        {
            "fc3_relative_difference": difference,
            "fc3_norm_ev_angstrom3": float(np.linalg.norm(first)),
            "reference_fc3_norm_ev_angstrom3": float(np.linalg.norm(second)),
            **kappas,
        }
    )
