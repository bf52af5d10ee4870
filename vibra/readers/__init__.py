"""Readers: one module per format, registered in :data:`READERS`, imported only when used."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from vibra.errors import InputError
from vibra.readers.base import Recording
from vibra.settings import Equipment

# format → (module, function, file name endings). Every reader is called as
# reader(path, equipment, chunk_rows, on_time_gap) and returns a Recording.
READERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "csv": ("vibra.readers.csv", "read_csv", (".csv", ".csv.gz")),
    "parquet": ("vibra.readers.parquet", "read_parquet", (".parquet",)),
    "mat": ("vibra.readers.mat", "read_mat", (".mat",)),
    "wav": ("vibra.readers.wav", "read_wav", (".wav",)),
}
SUFFIXES = tuple(s for _, _, suffixes in READERS.values() for s in suffixes)


def format_of(path: Path) -> str | None:
    """The :data:`READERS` key for a file name's ending, or None for an unknown one."""
    name = path.name.lower()
    for fmt, (_, _, suffixes) in READERS.items():
        if name.endswith(suffixes):
            return fmt
    return None


def open_recording(path: Path, equipment: Equipment, chunk_rows: int = 262_144, *,
                   on_time_gap: str = "split") -> Recording:
    """Open a source file for chunked reading; raises :class:`InputError` for unreadable files.

    ``on_time_gap`` (``"split"`` or ``"refuse"``) is what a time column with gaps,
    repeats or backward steps does (see :class:`vibra.readers.timestamps.TimeCheck`).
    """
    fmt = format_of(path)
    if fmt is None:
        raise InputError(f"{path}: unknown file type {''.join(path.suffixes) or '(no extension)'!r}; "
                         f"supported: {', '.join(SUFFIXES)}")
    module, function, _ = READERS[fmt]
    reader = getattr(import_module(module), function)
    return reader(path, equipment, chunk_rows, on_time_gap)


__all__ = ["READERS", "Recording", "SUFFIXES", "format_of", "open_recording"]
