"""Readers: one module per format, registered in :data:`READERS`, imported only when used.

A file is read by its machine's ``format`` when that applies to its name (see
:meth:`vibra.equipment.Equipment.format_for`), else by its name's ending.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from vibra.errors import InputError
from vibra.readers.base import Recording
from vibra.equipment import Equipment

# format → (module, function, file name endings, library that reads it). Every reader is called as
# reader(path, equipment, chunk_rows, on_time_gap) and returns a Recording.
READERS: dict[str, tuple[str, str, tuple[str, ...], str]] = {
    "csv": ("vibra.readers.csv", "read_csv", (".csv", ".csv.gz"), "polars"),
    "parquet": ("vibra.readers.parquet", "read_parquet", (".parquet",), "pyarrow"),
    "mat": ("vibra.readers.mat", "read_mat", (".mat",), "scipy (v5), h5py (v7.3)"),
    "audio": ("vibra.readers.audio", "read_audio", (".wav", ".flac", ".aiff", ".aif", ".au", ".w64", ".caf"),
              "soundfile"),
    "tdms": ("vibra.readers.tdms", "read_tdms", (".tdms",), "npTDMS"),
    "uff": ("vibra.readers.uff", "read_uff", (".uff", ".unv"), "pyuff"),
}
# formats whose reader reads the file front to back once and hashes it on the way (Recording.content_hash)
HASHED_WHILE_READ = {"csv"}
SUFFIXES = tuple(s for _, _, suffixes, _ in READERS.values() for s in suffixes)


def format_of(path: Path, equipment: Equipment | None = None) -> str | None:
    """The :data:`READERS` key for a file: its machine's ``format``, else its name's ending; None if unknown."""
    fmt = equipment.format_for(path.name) if equipment is not None else None
    if fmt is not None:
        return "csv" if fmt.kind == "text" else fmt.kind
    name = path.name.lower()
    for key, (_, _, suffixes, _) in READERS.items():
        if name.endswith(suffixes):
            return key
    return None


def hashed_while_read(path: Path, equipment: Equipment) -> bool:
    """Whether the file's reader gives its sha256 from its own pass over the bytes (no separate read)."""
    return format_of(path, equipment) in HASHED_WHILE_READ


def open_recording(path: Path, equipment: Equipment, chunk_rows: int = 262_144, *,
                   on_time_gap: str = "split") -> Recording:
    """Open a source file for chunked reading; raises :class:`InputError` for unreadable files.

    ``on_time_gap`` (``"split"`` or ``"refuse"``) is what a time column with gaps,
    repeats or backward steps does (see :class:`vibra.readers.timestamps.TimeCheck`).
    """
    fmt = format_of(path, equipment)
    if fmt is None:
        raise InputError(f"{path}: unknown file type {''.join(path.suffixes) or '(no extension)'!r}; "
                         f"supported: {', '.join(SUFFIXES)}, or set [equipment.{equipment.equipment_id}] format "
                         "(and file_pattern) for files named otherwise")
    module, function, _, _ = READERS[fmt]
    reader = getattr(import_module(module), function)
    return reader(path, equipment, chunk_rows, on_time_gap)


__all__ = ["HASHED_WHILE_READ", "READERS", "Recording", "SUFFIXES", "format_of", "hashed_while_read", "open_recording"]
