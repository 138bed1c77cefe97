"""The ``DYN_MAT`` folder of ph.x's dynamical-matrix files, as PhCalculation retrieves it and Q2rCalculation
reads it."""

from collections.abc import Callable

from aiida import orm

from aiida_llpam.physics.dynmat import DynamicalMatrixFile, read_dynamical_matrices

DYN_MAT = "DYN_MAT"  # PhCalculation._FOLDER_DYNAMICAL_MATRIX, which Q2rCalculation copies from a FolderData
PREFIX = "dynamical-matrix-"  # PhCalculation's fildyn: "-0" lists the q points, "-<i>" is q point i


def read_dyn_files(retrieved: orm.FolderData) -> dict[str, str]:
    """{file name: text} of the ``DYN_MAT`` folder; ValueError if there is none (not a ph.x mesh run)."""
    try:
        names = retrieved.base.repository.list_object_names(DYN_MAT)
    except FileNotFoundError:
        names = []
    if not names:
        raise ValueError(f"{retrieved.__class__.__name__}<{retrieved.pk}> has no {DYN_MAT} folder: not a ph.x mesh run")
    return {name: retrieved.base.repository.get_object_content(f"{DYN_MAT}/{name}", mode="r") for name in names}


def dyn_folder(files: dict[str, str], transform: Callable[[str], str] = lambda text: text) -> orm.FolderData:
    """A new ``FolderData`` with ``transform(text)`` of each file in ``DYN_MAT``."""
    folder = orm.FolderData()
    for name, text in files.items():
        folder.base.repository.put_object_from_bytes(transform(text).encode(), f"{DYN_MAT}/{name}")
    return folder


def only_dyn_file(folder: orm.FolderData) -> DynamicalMatrixFile:
    """The dynamical matrices of a single-q ph.x run (``ldisp = .false.``: one dyn file, the star of q)."""
    files = read_dyn_files(folder)
    if len(files) != 1:
        raise ValueError(
            f"FolderData<{folder.pk}>: expected the one dyn file of a single-q ph.x run, got {sorted(files)}"
        )
    return read_dynamical_matrices(next(iter(files.values())))


def gamma_dyn_file(retrieved: orm.FolderData) -> DynamicalMatrixFile:
    """The Gamma dyn file (the first of the mesh) of a ph.x mesh run's retrieved folder: its raw Gamma matrix."""
    return read_dynamical_matrices(read_dyn_files(retrieved)[f"{PREFIX}1"])


def qpoint_labels(labels) -> list[str]:
    """Link labels ``q<i>`` in the order of i."""
    return sorted(labels, key=lambda label: int(label[1:]))


def direct_dyn_files(direct: dict[str, orm.FolderData]) -> list[DynamicalMatrixFile]:
    """The dyn files of single-q ph.x runs keyed ``q<i>``, in the order of i."""
    return [only_dyn_file(direct[label]) for label in qpoint_labels(direct)]
