"""aiida-quantumespresso's PhCalculation, restartable from another ph.x run's work directory."""

import os

from aiida.plugins import CalculationFactory

QePhCalculation = CalculationFactory("quantumespresso.ph")

#: process types of ph.x calculations: this project's (``llpam.ph``, and ``llpam.ph_gather`` that assembles a q point
#: split by representation) and aiida-quantumespresso's (older runs)
PH_PROCESS_TYPES = (
    "aiida.calculations:llpam.ph",
    "aiida.calculations:llpam.ph_gather",
    "aiida.calculations:quantumespresso.ph",
)


class PhCalculation(QePhCalculation):
    """``quantumespresso.ph`` whose restarts work with aiida-quantumespresso 5.1.

    aiida-quantumespresso 5.1 raises ``KeyError: 'INPUTPH'`` in ``prepare_for_submission`` whenever the parent folder
    is a ``quantumespresso.ph`` calculation's (its issue #1212; the fix, PR #1283, is not released), so no ph.x
    restart with ``recover`` can start. Registered as ``llpam.ph``, this class is not recognised as a ph.x parent by
    that branch: the parent's ``out`` folder (with ph.x's ``_ph0`` recover files) is copied as for any parent, and the
    dynamical matrices the interrupted run had finished are copied here, which is all that branch does for ph.x.
    """

    def prepare_for_submission(self, folder):
        calcinfo = super().prepare_for_submission(folder)
        parent_folder = self.inputs.parent_folder
        if parent_folder.creator is not None and parent_folder.creator.process_type in PH_PROCESS_TYPES:
            # a glob: an interrupted run may have finished no q point yet, and then there is nothing to copy
            source = os.path.join(parent_folder.get_remote_path(), self._FOLDER_DYNAMICAL_MATRIX, "*")
            calcinfo.remote_copy_list.append((parent_folder.computer.uuid, source, self._FOLDER_DYNAMICAL_MATRIX))
        return calcinfo
