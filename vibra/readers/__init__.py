"""Readers: one module per format, chosen by file extension."""

from __future__ import annotations

from pathlib import Path

from vibra.errors import InputError
from vibra.readers.base import Recording
from vibra.settings import Equipment

SUFFIXES = (".csv", ".csv.gz", ".parquet", ".mat", ".wav")


def format_of(path: Path) -> str | None:
    """``csv``, ``parquet``, ``mat``, ``wav`` or None for an unknown extension."""
    name = path.name.lower()
    if name.endswith(".csv") or name.endswith(".csv.gz"):
        return "csv"
    for suffix in (".parquet", ".mat", ".wav"):
        if name.endswith(suffix):
            return suffix[1:]
    return None


def open_recording(path: Path, equipment: Equipment, chunk_rows: int = 262_144) -> Recording:
    """Open a source file for chunked reading; raises :class:`InputError` for unreadable files."""
    fmt = format_of(path)
    if fmt is None:
        raise InputError(f"{path}: unknown file type {''.join(path.suffixes) or '(no extension)'!r}; "
                         f"supported: {', '.join(SUFFIXES)}")
    if fmt == "csv":
        from vibra.readers.csv import read_csv as reader
    elif fmt == "parquet":
        from vibra.readers.parquet import read_parquet as reader
    elif fmt == "mat":
        from vibra.readers.mat import read_mat as reader
    else:
        from vibra.readers.wav import read_wav as reader
    return reader(path, equipment, chunk_rows)


__all__ = ["Recording", "SUFFIXES", "format_of", "open_recording"]
