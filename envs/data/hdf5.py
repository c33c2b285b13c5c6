"""Opening the project's HDF5 files for reading, with one clear error per way a file can be wrong (no torch).

Every reader in this package opens its file here, so a missing file, a file that is not HDF5, or one without
the expected groups, datasets or attributes fails with a :class:`DatasetFileError` that names the file and
says what is missing -- never an ``h5py`` ``KeyError`` from deep inside a training loop.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py

from manipstack.errors import InputError


class DatasetFileError(InputError):
    """A data file that cannot be read as the format it should have; the message names the file."""


def open_for_reading(path: str | os.PathLike, what: str) -> h5py.File:
    """Open ``path`` read-only; ``what`` names the format in error messages (e.g. "grasp dataset").

    Raises:
        FileNotFoundError: no file at ``path``.
        DatasetFileError: the file is not HDF5.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    if not h5py.is_hdf5(path):
        raise DatasetFileError(f"{path} is not an HDF5 file, so not a {what}")
    try:
        return h5py.File(path, "r")
    except OSError as err:  # truncated or otherwise damaged
        raise DatasetFileError(f"{path}: cannot open the {what} ({err})") from err


def require(node: h5py.Group, path: Path, what: str, datasets: tuple[str, ...] = (),
            attrs: tuple[str, ...] = (), groups: tuple[str, ...] = ()) -> None:
    """Raise :class:`DatasetFileError` naming ``path`` and ``node`` if ``node`` lacks any of the named
    datasets, attributes or subgroups of a ``what``."""
    missing = ([f"dataset '{k}'" for k in datasets if not isinstance(node.get(k), h5py.Dataset)]
               + [f"group '{k}'" for k in groups if not isinstance(node.get(k), h5py.Group)]
               + [f"attribute '{k}'" for k in attrs if k not in node.attrs])
    if missing:
        where = "the file root" if node.name == "/" else f"'{node.name}'"
        raise DatasetFileError(f"{path}: {where} lacks {', '.join(missing)} -- not a {what} as this version "
                               "of manipstack writes it")
