"""ph.x gathering the representations other ph.x runs computed into one q point's dyn file (ph.x's GRID scheme;
what QE 6.7 does is in :mod:`aiida_llpam.workflows.ph_pieces`)."""

import os
import re

from aiida import orm

from aiida_llpam.parsers.ph_progress import parse_ph_output

from .ph import PhCalculation

#: call link labels (and context keys) of the split route's jobs of q point iq: its setup (bands, eps/Z* at Gamma),
#: the ph.x job computing representations first..last, and the gathering run
SETUP_LABEL = "q{iq}_setup"
PIECE_LABEL = "q{iq}_irr{first}_{last}"
GATHER_LABEL = "q{iq}_gather"
_PIECE = re.compile(r"^q(\d+)_irr(\d+)_(\d+)$")
_SPLIT_JOB = re.compile(r"^q(\d+)_(setup|gather|irr(\d+)_(\d+))$")


def piece_range(label: str) -> tuple[int, int, int]:
    """(iq, first, last) of a piece's label ``q<iq>_irr<first>_<last>`` (:data:`PIECE_LABEL`)."""
    match = _PIECE.match(label)
    if match is None:
        raise ValueError(f"{label!r} is not a piece label like {PIECE_LABEL.format(iq=2, first=1, last=3)!r}")
    return tuple(int(group) for group in match.groups())


def split_job(label: str) -> tuple[int, str, int | None, int | None] | None:
    """(iq, kind, first, last) of a split-route job's call label: kind "setup", "irr" (with the representations
    first..last) or "gather"; None for any other label."""
    match = _SPLIT_JOB.match(label)
    if match is None:
        return None
    kind = "irr" if match.group(3) else match.group(2)
    first, last = (int(match.group(3)), int(match.group(4))) if match.group(3) else (None, None)
    return int(match.group(1)), kind, first, last


def single_q_progress(text: str):
    """The :class:`~aiida_llpam.parsers.ph_progress.QProgress` of the one q point a ph.x run of ``start_q =
    last_q`` handled, or None if its output names none or several."""
    qpoints = list(parse_ph_output(text).qpoints.values())
    return qpoints[0] if len(qpoints) == 1 else None


def _validate_pieces(pieces, _):
    for label in pieces or {}:
        try:
            piece_range(label)
        except ValueError as exc:
            return f"pieces: {exc}"
    return None


class PhGatherCalculation(PhCalculation):
    """``llpam.ph`` with the representations other ph.x runs computed copied into its ``_ph0``: run with
    ``recover`` on the setup folder of one q point, it writes that q point's dyn file from them.

    Each input ``pieces.q<iq>_irr<first>_<last>`` is the work directory of the run that computed representations
    first..last of q point iq; their ``dynmat.<iq>.<irr>.xml`` are copied on the computer (remote copies through
    the transport, so it works as well over SSH). A file that is missing is skipped by AiiDA with a warning, and
    ph.x would then compute that representation itself: :meth:`computed_nothing` tells the caller.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input_namespace(
            "pieces",
            valid_type=orm.RemoteData,
            dynamic=True,
            validator=_validate_pieces,
            help="Work directories of the ph.x runs of this q point's representations, keyed q<iq>_irr<first>_<last>.",
        )

    def prepare_for_submission(self, folder):
        calcinfo = super().prepare_for_submission(folder)
        # after the parent's ``out`` in the list: the copies land in the _ph0 that copy has made
        phsave = os.path.join(self._OUTPUT_SUBFOLDER, "_ph0", f"{self._PREFIX}.phsave")
        for label, remote in sorted(self.inputs.pieces.items()):
            iq, first, last = piece_range(label)
            for irr in range(first, last + 1):
                name = f"dynmat.{iq}.{irr}.xml"
                source = os.path.join(remote.get_remote_path(), phsave, name)
                calcinfo.remote_copy_list.append((remote.computer.uuid, source, os.path.join(phsave, name)))
        return calcinfo

    @staticmethod
    def computed_nothing(text: str) -> bool:
        """True if the gathering ph.x output (``text``) found every representation done and started none."""
        progress = single_q_progress(text)
        return (
            progress is not None
            and progress.irrep is None
            and progress.n_irreps is not None
            and len(progress.irreps_done) == progress.n_irreps
        )
