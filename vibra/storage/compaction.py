"""Compaction and retention over the lake's partition folders: the file-level mechanics of ``vibra maintain``.

Compaction merges a partition's small files into one without copying the rest of the table. The
merged file is built in a twin folder under ``data/.compact/<id>/`` (same filesystem); then,
holding the table's lock exclusively (so no writer is mid-file), the twin and the partition folder
are exchanged in one atomic ``renameat2(RENAME_EXCHANGE)``: a reader sees the old files or the new
one, never both and never neither. Whatever a killed compaction leaves under ``data/.compact`` is
garbage by construction and is removed by :func:`vibra.storage.staging.clean_compact_leftovers`.

Retention drops whole date folders: each is renamed into a trash folder under ``data/.compact``
(one rename per date, so a date is gone at once), then deleted.

The caller (the ``maintain`` stage) holds the ingest lock; these functions take each table's own lock.
"""

from __future__ import annotations

import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from vibra.errors import InputError
from vibra.storage import lake
from vibra.storage.locks import table_exclusive
from vibra.storage.staging import COMPACT_DIR

if TYPE_CHECKING:
    from vibra.workspace import Workspace

SORT_KEYS = ("equipment_id", "recording_id", "channel", "window_start", "window_index", "model_type", "time")


# -- compaction ---------------------------------------------------------------------------------------

def merge(files: list[Path], out: Path) -> int:
    """Write the rows of ``files`` to ``out`` sorted by the keys they have; returns the row count."""
    import duckdb

    with duckdb.connect() as con, lake.reading(files):
        con.execute("SET TimeZone = 'UTC'")
        names = [str(f) for f in files]
        cols = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {lake.READ_FILES}", [names]).fetchall()}
        order = ", ".join(k for k in SORT_KEYS if k in cols) or "ALL"
        con.execute(f"COPY (SELECT * FROM {lake.READ_FILES} ORDER BY {order}) "
                    f"TO {lake.sql_literal(out)} (FORMAT parquet, COMPRESSION zstd)", [names])
        return con.execute("SELECT count(*) FROM read_parquet(?, hive_partitioning = false)", [str(out)]).fetchone()[0]


def count_rows(files: list[Path]) -> int:
    """The rows in ``files`` together (0 for none)."""
    import duckdb

    if not files:
        return 0
    with duckdb.connect() as con, lake.reading(files):
        return con.execute(f"SELECT count(*) FROM {lake.READ_FILES}", [[str(f) for f in files]]).fetchone()[0]


def compact_partition(ws: Workspace, table: str, part: Path, work: Path, keep_apart: set[str] | None = None) -> dict:
    """Merge one partition's files into one (see the module doc); returns what it did.

    With ``keep_apart`` (recording-id prefixes), a recording's own file whose prefix is not in it
    stays as it is (a recording not yet committed to the ledger)."""
    files = sorted(p for p in part.glob("*.parquet"))
    apart = [f for f in files if keep_apart is not None and lake.OWN_FILE.match(f.name)
             and lake.OWN_FILE.match(f.name).group(1) not in keep_apart]
    to_merge = [f for f in files if f not in apart]
    before = len(files)
    twin = work / "twin" / part.relative_to(ws.lake)
    twin.mkdir(parents=True)
    name = f"part-compact-{uuid.uuid4().hex[:12]}.parquet"
    tmp = twin / f".{name}{lake.TMP_MARK}{uuid.uuid4().hex[:6]}"
    rows = merge(to_merge, tmp)
    expected = count_rows(to_merge)
    if rows != expected:  # never swap in a file that lost or gained rows
        raise InputError(f"{part}: compaction wrote {rows} rows for {expected}; partition left as it was")
    lake.replace_into(tmp, twin / name)
    with table_exclusive(ws.table(table) / lake.TABLE_LOCK):
        # files that arrived since the merge was planned go along untouched (hard links, no copy)
        for f in part.glob("*.parquet"):
            if f not in to_merge:
                (twin / f.name).hardlink_to(f)
        lake.exchange(part, twin)
    shutil.rmtree(twin, ignore_errors=True)  # now the old files
    return {"files_before": before, "files_after": len(list(part.glob("*.parquet"))), "rows": rows,
            "kept_apart": len(apart)}


def compact(ws: Workspace, tables: list[str], min_files: int,
            keep_apart: dict[str, set[str]] | None = None) -> tuple[dict[str, dict], int]:
    """Compact every partition of ``tables`` holding at least ``min_files`` files.

    ``keep_apart`` maps a table to the recording-id prefixes whose own files may be merged (see
    :func:`compact_partition`). Returns ({table: {partitions, files_before, files_after, rows}},
    files kept apart)."""
    keep_apart = keep_apart or {}
    out: dict[str, dict] = {}
    kept_apart = 0
    work = ws.data / COMPACT_DIR / uuid.uuid4().hex[:8]
    try:
        for t in tables:
            stats = {"partitions": 0, "files_before": 0, "files_after": 0, "rows": 0}
            for part in sorted(ws.table(t).glob("date=*/equipment=*")):
                files = list(part.glob("*.parquet"))
                if len(files) < min_files:
                    continue
                done = compact_partition(ws, t, part, work / uuid.uuid4().hex[:6], keep_apart.get(t))
                kept_apart += done["kept_apart"]
                stats["partitions"] += 1
                for k in ("files_before", "files_after", "rows"):
                    stats[k] += done[k]
            out[t] = stats
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out, kept_apart


# -- retention ----------------------------------------------------------------------------------------

def dates_before(ws: Workspace, table: str, cutoff: str) -> list[str]:
    """Partition dates of ``table`` earlier than ``cutoff`` (``YYYY-MM-DD``), oldest first."""
    return sorted(d for d in lake.partition_dates(ws.table(table)) if d < cutoff)


def files_on(ws: Workspace, table: str, dates: list[str]) -> list[Path]:
    """The Parquet files of ``table`` on these dates (every machine)."""
    return lake.partition_files(ws.table(table), None, dates)


def partitions_on(ws: Workspace, table: str, dates: list[str]) -> set[tuple[str, str]]:
    """(date, equipment_id) of ``table``'s partitions on these dates."""
    folder = ws.table(table)
    return {(d, p.name.split("=", 1)[1]) for d in dates for p in folder.glob(f"date={d}/equipment=*")}


def recordings_only_in(ws: Workspace, table: str, dates: list[str]) -> list[str]:
    """Recordings whose every row (window) of ``table`` lies in these dates."""
    import duckdb

    folder = ws.table(table)
    dropped = [str(f) for f in files_on(ws, table, dates)]
    kept = [str(f) for f in lake.partition_files(folder) if str(f) not in set(dropped)]
    if not dropped:
        return []
    with duckdb.connect() as con, lake.reading(dropped + kept):
        gone = {r[0] for r in con.execute(f"SELECT DISTINCT recording_id FROM {lake.READ_FILES}",
                                          [dropped]).fetchall()}
        still = {r[0] for r in con.execute(f"SELECT DISTINCT recording_id FROM {lake.READ_FILES}",
                                           [kept]).fetchall()} if kept else set()
    return sorted(gone - still)


@contextmanager
def dropping_dates(ws: Workspace, table: str, dates: list[str]) -> Iterator[None]:
    """Move ``table``'s date folders aside (one rename per date, under the table's exclusive lock), run the
    body, then delete them. If the body raises, the moved folders stay under ``data/.compact`` (garbage,
    removed by the next compaction or ``vibra doctor --repair``)."""
    folder = ws.table(table)
    trash = ws.data / COMPACT_DIR / f"retention-{uuid.uuid4().hex[:8]}"
    with table_exclusive(folder / lake.TABLE_LOCK):
        for d in dates:
            trash.mkdir(parents=True, exist_ok=True)
            (folder / f"date={d}").rename(trash / f"date={d}")  # one rename per date: gone at once
    yield
    shutil.rmtree(trash, ignore_errors=True)
