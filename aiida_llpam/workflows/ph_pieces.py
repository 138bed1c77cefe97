"""One q point's DFPT split by irreducible representation: the groups, and the ph.x job that gathers them.

What ph.x of Quantum ESPRESSO 6.7 does with ``ldisp`` (checked by running it on Si, 2x2x2 q mesh, ``epsil``):

* ``start_irr = last_irr = 0`` (PhQpointsWorkChain's ``ph_init``) writes ``_ph0/{prefix}.phsave/patterns.<iq>.xml``
  for every irreducible q point and stops; it does not reach the electric field, even at Gamma, and its output
  does not state how many representations each q point has.
* ``only_init = .true.`` (which QE 6.7 accepts only with ``lqdir = .true.``) with ``start_q = last_q = iq``, from
  that folder: the bands of q (in ``_ph0/{prefix}.q_<iq>/``), at Gamma eps and Z* (``tensors.xml``), the part of
  the dynamical matrix that needs no response (``dynmat.<iq>.0.xml``), the line "There are N irreducible
  representations", then it stops. ``trans = .false.`` is no substitute: with ``ldisp`` ph.x computes the phonons.
* ``start_irr = a, last_irr = b`` with ``recover`` and ``lqdir`` from that setup folder: only representations
  a..b (``dynmat.<iq>.<irr>.xml``), no bands again, no electric field again.
* ``recover`` on the setup folder with every ``dynmat.<iq>.<irr>.xml`` copied in: ph.x lists each representation
  as "Done" and writes the dyn file in seconds, equal to one job's to the printed digits (only the eigenvectors of
  degenerate modes, which the dyn file prints after the matrices and q2r.x does not read, may differ).
"""

from aiida_llpam.calculations.ph_gather import (
    GATHER_LABEL,
    PIECE_LABEL,
    SETUP_LABEL,
    piece_range,
    single_q_progress,
    split_job,
)

__all__ = [
    "GATHER_LABEL",
    "PIECE_LABEL",
    "SETUP_LABEL",
    "piece_range",
    "representation_groups",
    "single_q_progress",
    "split_job",
]


def representation_groups(n_irreps: int, per_job: int) -> list[tuple[int, int]]:
    """(first, last) of consecutive groups of ``per_job`` representations (1-based, inclusive) covering 1..n."""
    if per_job < 1:
        raise ValueError(f"representations per job must be at least 1, not {per_job}")
    return [(first, min(first + per_job - 1, n_irreps)) for first in range(1, n_irreps + 1, per_job)]
