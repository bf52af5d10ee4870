"""MATLAB v7.3 ``.mat`` files (HDF5) through ``h5py``, read a slice at a time.

MATLAB stores an N×1 vector as an HDF5 dataset of shape (1, N) (column-major
order transposed); every real numeric dataset at the file's root with one
dimension of 1 is a vector, every one-element dataset a scalar. A dataset's shape is only declared:
its length is checked against ``[ingest] max_span_s`` and the file's size before a sample is read. The variables
then follow the v5 reader's conventions (:func:`vibra.readers.matvars.choose`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vibra.errors import InputError
from vibra.readers.base import Recording, check_expansion
from vibra.readers.matvars import choose
from vibra.equipment import Equipment


def read_mat73(path: Path, equipment: Equipment, chunk_rows: int) -> Recording:
    import h5py

    try:
        fh = h5py.File(str(path), "r")
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable MATLAB v7.3 (HDF5) file ({exc}); re-save it or re-copy it") from None
    vectors, scalars, datasets = {}, {}, {}
    for name, item in fh.items():
        if not isinstance(item, h5py.Dataset) or item.dtype.kind not in "fiu" or item.ndim > 2:
            continue  # groups (structs, cells), strings, complex and matrices are not signals
        if item.size == 1:
            scalars[name] = float(np.asarray(item[()]).ravel()[0])
        elif min(item.shape) == 1:
            vectors[name] = item.size
            datasets[name] = item
    try:
        choice = choose(path, vectors, scalars)
    except InputError:
        fh.close()
        raise
    columns = [datasets[v] for v in choice.channels.values()]

    def read(ds, start: int, stop: int) -> np.ndarray:
        if ds.ndim == 1:
            return ds[start:stop]
        return ds[0, start:stop] if ds.shape[0] == 1 else ds[start:stop, 0]

    def chunks():
        try:
            # HDF5 may declare a dataset far larger than what it stores (unwritten chunks read as fill
            # values): checked before the first slice, after the ingest has checked the declared span
            check_expansion(path, choice.length, len(columns))
            for offset in range(0, choice.length, chunk_rows):
                stop = min(choice.length, offset + chunk_rows)
                yield np.column_stack([np.asarray(read(ds, offset, stop), dtype=np.float64) for ds in columns])
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: MATLAB v7.3 data unreadable ({exc}); re-copy the file") from None
        finally:
            fh.close()

    return Recording(channels=list(choice.channels), chunks=chunks(), rpm=choice.rpm,
                     sample_rate_hz=choice.sample_rate_hz, warnings=choice.warnings, declared_samples=choice.length)
