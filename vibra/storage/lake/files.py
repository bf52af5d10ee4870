"""The lake's files: where each lies (``<table>/date=…/equipment=…/``, the names the lake gives them) and how
one is written (temporary name, renamed into place, pushed to object storage) or deleted."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Iterable

from vibra.storage import remote
from vibra.storage.atomic import replace_into, temp_path


# DuckDB over a list of lake files (bound as the parameter): schemas of any age, no columns from folder names
READ_FILES = "read_parquet(?, union_by_name = true, hive_partitioning = false)"
LOG_DIR = "_delta_log"  # in each table folder: the Delta transaction log
PARTITION_BY = ["date", "equipment"]


def sql_literal(path: Path | str) -> str:
    """A path as a quoted SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def partition_dir(table_dir: Path, date: str, equipment_id: str) -> Path:
    return table_dir / f"date={date}" / f"equipment={equipment_id}"


def write_bytes(final: Path, payload: bytes) -> Path:
    """Write ``payload`` to ``final`` atomically (temporary name in the same folder, then rename)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(final)
    try:
        tmp.write_bytes(payload)
        replace_into(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    push(final)
    return final


def push(path: Path) -> None:
    """Upload a file written under a folder mirrored to object storage (see :mod:`vibra.storage.remote`)."""
    store = remote.of(path)
    if store is not None and store.shared(path):
        store.upload(path)
        st = path.stat()
        _PUSHED[str(path)] = (st.st_size, st.st_mtime_ns)


_PUSHED: dict[str, tuple[int, int]] = {}  # files this process uploaded, as they were: a commit need not again


def write_text(final: Path, text: str) -> Path:
    return write_bytes(final, text.encode("utf-8"))


def write_json(final: Path, payload) -> Path:
    import json

    return write_text(final, json.dumps(payload, indent=2, default=str))


def read_json(path: Path):
    """A JSON file written by :func:`write_json`; None only when the file does not exist.

    Raises
    ------
    CorruptArtifactError
        The file exists but is not JSON (truncated, edited, overwritten): a damaged pointer or
        manifest must never read as "nothing there".
    """
    import json

    from vibra.errors import CorruptArtifactError

    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both are
        raise CorruptArtifactError(path, f"not valid JSON ({exc})") from None


def table_dir_of(final: Path) -> Path | None:
    """The table folder of a partition file (``<table>/date=…/equipment=…/<file>``), else None."""
    if final.parent.name.startswith("equipment=") and final.parent.parent.name.startswith("date="):
        return final.parent.parent.parent
    return None


def partition_of(path: Path) -> tuple[str, str]:
    """(date, equipment_id) of a partition file, from its folders."""
    return path.parent.parent.name.split("=", 1)[1], path.parent.name.split("=", 1)[1]


RAW = "raw"  # the one lake folder that is no table (one waveform file per recording, see vibra.storage.raw)


def unlink(files: Iterable[Path]) -> None:
    """Delete lake files (and their objects, for a lake on object storage)."""
    files = list(files)
    for f in files:
        Path(f).unlink(missing_ok=True)
    store = remote.of(files[0]) if files else None
    if store is not None:
        store.delete(files)


def _write_file(df, final: Path) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(final)
    try:
        df.write_parquet(tmp, compression="zstd", statistics=True)
        replace_into(tmp, final)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        _raise_full(exc, final)
        raise
    push(final)  # on object storage: uploaded now, invisible until a commit names it
    return final


def _raise_full(exc: BaseException, final: Path) -> None:
    """Polars reports a write cut short by a full disk as a damaged file ("Invalid thrift: transport error"):
    when the target's file system has (almost) no space left, say so, naming the file."""
    from vibra.errors import os_errno

    if not isinstance(exc, Exception) or os_errno(exc) is not None:
        return
    try:
        st = os.statvfs(final.parent)
    except OSError:
        return
    if st.f_bavail * st.f_frsize < 1 << 20:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(final)) from exc


RECORDING_FILE = "part-{}.parquet"  # one recording's own file in a partition: part-<recording_id[:16]>.parquet
OWN_FILE = re.compile(r"^part-([0-9a-f]{16})\.parquet$")  # group 1: the recording_id prefix
