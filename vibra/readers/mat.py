"""MATLAB ``.mat`` files, with the CWRU bearing-data naming: v5 through scipy, v7.3 (HDF5) through h5py.

CWRU files hold ``X097_DE_time`` (drive end), ``X097_FE_time`` (fan end),
``X097_BA_time`` (base) and ``X097RPM``. Some files carry the variables of a
second record number as well; the number that matches the file name wins,
else the one with the most channels. Other ``.mat`` files: every numeric
vector of the longest length is a channel; a scalar named ``rpm``, ``fs`` or
``sample_rate_hz`` is read as such. Both versions follow these conventions
(:func:`vibra.readers.matvars.choose`); v7.3 files are read a slice at a time (:mod:`vibra.readers.mat73`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vibra.errors import InputError
from vibra.readers.base import Recording
from vibra.readers.matvars import choose
from vibra.equipment import Equipment

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _chunks(matrix: np.ndarray, chunk_rows: int):
    for offset in range(0, matrix.shape[0], chunk_rows):
        yield matrix[offset:offset + chunk_rows]


def read_mat(path: Path, equipment: Equipment, chunk_rows: int, on_time_gap: str = "split") -> Recording:
    with open(path, "rb") as fh:
        fh.seek(512)  # MATLAB v7.3 files are HDF5 with a 512-byte MATLAB header before the superblock
        if fh.read(8) == HDF5_SIGNATURE:
            from vibra.readers.mat73 import read_mat73

            return read_mat73(path, equipment, chunk_rows)
    import scipy.io

    try:
        variables = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError… for garbage
        raise InputError(f"{path}: not a readable MATLAB v5 file ({type(exc).__name__}: {exc}); "
                         "check the file's format and extension") from None
    vectors, scalars, arrays = {}, {}, {}
    for name, value in variables.items():
        if name.startswith("__") or not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
            continue
        if value.size == 1:
            scalars[name] = float(value.ravel()[0])
        elif min(value.shape) == 1:
            vectors[name] = value.size
            arrays[name] = value
    choice = choose(path, vectors, scalars)
    matrix = np.column_stack([np.asarray(arrays[v], dtype=np.float64).ravel() for v in choice.channels.values()])
    return Recording(channels=list(choice.channels), chunks=_chunks(matrix, chunk_rows), rpm=choice.rpm,
                     sample_rate_hz=choice.sample_rate_hz, warnings=choice.warnings)
