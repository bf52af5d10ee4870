"""MATLAB ``.mat`` (v5) files, with the CWRU bearing-data naming.

CWRU files hold ``X097_DE_time`` (drive end), ``X097_FE_time`` (fan end),
``X097_BA_time`` (base) and ``X097RPM``. Some files carry the variables of a
second record number as well; the number that matches the file name wins,
else the one with the most channels. Other ``.mat`` files: every numeric
vector of the longest length is a channel; a scalar named ``rpm``, ``fs`` or
``sample_rate_hz`` is read as such.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from vibra.errors import InputError
from vibra.readers.base import Recording
from vibra.settings import Equipment

_CWRU_CHANNEL = re.compile(r"^X(?P<num>\d+)_(?P<ch>[A-Z]+)_time$")
_CWRU_RPM = re.compile(r"^X(?P<num>\d+)RPM$")


def _chunks(matrix: np.ndarray, chunk_rows: int):
    for offset in range(0, matrix.shape[0], chunk_rows):
        yield matrix[offset:offset + chunk_rows]


def read_mat(path: Path, equipment: Equipment, chunk_rows: int, on_time_gap: str = "split") -> Recording:
    import scipy.io

    try:
        variables = scipy.io.loadmat(str(path))
    except NotImplementedError:
        raise InputError(f"{path}: MATLAB v7.3 (HDF5) files are not supported; save with -v7 or export CSV") from None
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError… for garbage
        raise InputError(f"{path}: not a readable MATLAB v5 file ({type(exc).__name__}: {exc}); "
                         "check the file's format and extension") from None
    variables = {k: v for k, v in variables.items() if not k.startswith("__")}
    by_number: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
    rpm_by_number: dict[str, float] = {}
    for name, value in variables.items():
        if (m := _CWRU_CHANNEL.match(name)) and isinstance(value, np.ndarray) and value.dtype.kind in "fiu":
            by_number[m["num"]][m["ch"]] = np.asarray(value, dtype=np.float64).ravel()
        elif (m := _CWRU_RPM.match(name)) and np.size(value) == 1:
            rpm_by_number[m["num"]] = float(np.asarray(value).ravel()[0])
    warnings: list[str] = []
    rpm = None
    if by_number:
        stem_numbers = set(re.findall(r"\d+", path.stem))
        match = [n for n in by_number if n in stem_numbers or n.lstrip("0") in {s.lstrip("0") for s in stem_numbers}]
        number = match[0] if match else max(by_number, key=lambda n: len(by_number[n]))
        if len(by_number) > 1:
            warnings.append(f"file holds variables of records {sorted(by_number)}; used X{number}")
        series = by_number[number]
        rpm = rpm_by_number.get(number)
    else:
        series = {}
        scalars = {}
        for name, value in variables.items():
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
                continue
            if value.size == 1:
                scalars[name.lower()] = float(value.ravel()[0])
            elif min(value.shape) == 1:
                series[name] = np.asarray(value, dtype=np.float64).ravel()
        rpm = scalars.get("rpm")
    if not series:
        raise InputError(f"{path}: no numeric signal vectors inside; expected e.g. X097_DE_time")
    length = max(len(v) for v in series.values())
    dropped = [k for k, v in series.items() if len(v) != length]
    if dropped:
        warnings.append(f"channels {dropped} are shorter than the others and were left out")
    channels = sorted(k for k, v in series.items() if len(v) == length)
    matrix = np.column_stack([series[c] for c in channels])
    recording = Recording(channels=channels, chunks=_chunks(matrix, chunk_rows), rpm=rpm, warnings=warnings)
    if not by_number:
        for key in ("sample_rate_hz", "fs"):
            if key in scalars:
                recording.sample_rate_hz = scalars[key]
    return recording
