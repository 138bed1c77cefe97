"""Helpers the AiiDA tests share: reach a called process by its link label, read dynamical-matrix files."""

import numpy as np


def called(node, label):
    """The process ``node`` called (CALL_WORK or CALL_CALC) with link label ``label``."""
    from aiida.common.links import LinkType

    links = node.base.links.get_outgoing(link_type=(LinkType.CALL_WORK, LinkType.CALL_CALC), link_label_filter=label)
    return links.one().node


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def dyn_numbers(folder) -> dict[str, np.ndarray]:
    """{file: numbers of the dynamical matrix, eps and Z*} of the ``DYN_MAT`` files of a folder: what q2r.x reads
    (the header with the cell and positions, which q2r.x checks, and the modes after it are left out)."""
    numbers = {}
    for name in folder.base.repository.list_object_names("DYN_MAT"):
        text = folder.base.repository.get_object_content(f"DYN_MAT/{name}", mode="r").split("Diagonalizing")[0]
        if "Dynamical  Matrix" in text:
            words = text[text.index("Dynamical  Matrix") :].replace("(", " ").replace(")", " ").split()
            numbers[name] = np.array([float(w) for w in words if _is_number(w)])
    return numbers
