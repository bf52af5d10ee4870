"""MATLAB ``.mat`` files, with the CWRU bearing-data naming: v5 through scipy, v7.3 (HDF5) through h5py.

CWRU files hold ``X097_DE_time`` (drive end), ``X097_FE_time`` (fan end),
``X097_BA_time`` (base) and ``X097RPM``. Some files carry the variables of a
second record number as well; the number that matches the file name wins,
else the one with the most channels. Other ``.mat`` files: every numeric
vector of the longest length is a channel; a scalar named ``rpm``, ``fs`` or
``sample_rate_hz`` is read as such. Both versions follow these conventions
(:func:`choose`); v7.3 files are read a slice at a time (:mod:`vibra.readers.mat73`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vibra.errors import InputError
from vibra.readers.base import Recording
from vibra.equipment import Equipment

_CWRU_CHANNEL = re.compile(r"^X(?P<num>\d+)_(?P<ch>[A-Z]+)_time$")
_CWRU_RPM = re.compile(r"^X(?P<num>\d+)RPM$")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@dataclass
class Choice:
    """Which variables of a MATLAB file are the channels (channel name → variable name), and its scalars."""

    channels: dict[str, str]
    length: int
    rpm: float | None = None
    sample_rate_hz: float | None = None
    warnings: list[str] = field(default_factory=list)


def choose(path: Path, vectors: dict[str, int], scalars: dict[str, float]) -> Choice:
    """Apply the naming conventions to a file's numeric vectors ({name: length}) and scalars ({name: value})."""
    by_number: dict[str, dict[str, str]] = defaultdict(dict)
    rpm_by_number: dict[str, float] = {}
    for name in vectors:
        if m := _CWRU_CHANNEL.match(name):
            by_number[m["num"]][m["ch"]] = name
    for name, value in scalars.items():
        if m := _CWRU_RPM.match(name):
            rpm_by_number[m["num"]] = value
    warnings: list[str] = []
    sample_rate_hz = None
    if by_number:
        stem_numbers = set(re.findall(r"\d+", path.stem))
        match = [n for n in by_number if n in stem_numbers or n.lstrip("0") in {s.lstrip("0") for s in stem_numbers}]
        number = match[0] if match else max(by_number, key=lambda n: len(by_number[n]))
        if len(by_number) > 1:
            warnings.append(f"file holds variables of records {sorted(by_number)}; used X{number}")
        series = by_number[number]
        rpm = rpm_by_number.get(number)
    else:
        series = {name: name for name in vectors}
        lower = {k.lower(): v for k, v in scalars.items()}
        rpm = lower.get("rpm")
        sample_rate_hz = lower.get("sample_rate_hz", lower.get("fs"))
    if not series:
        raise InputError(f"{path}: no numeric signal vectors inside; expected e.g. X097_DE_time")
    length = max(vectors[v] for v in series.values())
    dropped = sorted(k for k, v in series.items() if vectors[v] != length)
    if dropped:
        warnings.append(f"channels {dropped} are shorter than the others and were left out")
    channels = {k: series[k] for k in sorted(series) if vectors[series[k]] == length}
    return Choice(channels, length, rpm, sample_rate_hz, warnings)


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
