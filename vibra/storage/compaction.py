"""Compaction and retention over the lake's Delta tables: the file-level mechanics of ``vibra maintain``.

Compaction is Delta Lake's optimize, one partition at a time (:func:`vibra.storage.lake.compact`):
the partition's small files are merged and, in the same commit, removed from the table's log, so a
reader sees the old files or the merged one, never both and never neither; the merged-away files
are deleted right after. A compaction killed at any instant leaves the table at its last commit (a
merged file written but not committed is invisible, and ``vibra doctor --repair`` deletes it).

Retention removes whole dates in one commit (:func:`vibra.storage.lake.delete_partitions`), then
vacuums their files away.

The caller (the ``maintain`` stage) holds the ingest lock; between processes delta-rs orders commits.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vibra.storage import lake

if TYPE_CHECKING:
    from vibra.workspace import Workspace


# -- compaction ---------------------------------------------------------------------------------------

def compact(ws: Workspace, tables: list[str], min_files: int,
            keep_apart: dict[str, set[str]] | None = None) -> tuple[dict[str, dict], int]:
    """Compact every partition of ``tables`` holding at least ``min_files`` files.

    ``keep_apart`` maps a table to the recording-id prefixes whose own files may be merged: a
    partition holding a recording's own file whose prefix is not in it (a recording not yet
    committed to the ledger; a rerun rewrites it under its own name, so a merged copy would
    double it) is left as it is, since optimize merges a partition whole. Returns
    ({table: {partitions, files_before, files_after, rows}}, files kept apart)."""
    keep_apart = keep_apart or {}
    out: dict[str, dict] = {}
    kept_apart = 0
    for t in tables:
        stats = {"partitions": 0, "files_before": 0, "files_after": 0, "rows": 0}
        folder = ws.table(t)
        parts: dict[tuple[str, str], list[Path]] = {}
        for date, eid, f in lake.active(folder):
            parts.setdefault((date, eid), []).append(f)
        allowed = keep_apart.get(t)
        for (date, eid), files in sorted(parts.items()):
            if len(files) < min_files:
                continue
            if allowed is not None:
                apart = [f for f in files if (m := lake.OWN_FILE.match(f.name)) and m.group(1) not in allowed]
                if apart:
                    kept_apart += len(apart)
                    continue
            done = lake.compact(folder, date, eid)
            stats["partitions"] += 1
            for k in ("files_before", "files_after", "rows"):
                stats[k] += done[k]
        out[t] = stats
    return out, kept_apart


# -- retention ----------------------------------------------------------------------------------------

def dates_before(ws: Workspace, table: str, cutoff: str) -> list[str]:
    """Partition dates of ``table`` earlier than ``cutoff`` (``YYYY-MM-DD``), oldest first."""
    return sorted(d for d in lake.partition_dates(ws.table(table)) if d < cutoff)


def files_on(ws: Workspace, table: str, dates: list[str], *, fetch: bool = True) -> list[Path]:
    """The Parquet files of ``table`` on these dates (every machine); ``fetch``: see ``lake.partition_files``."""
    return lake.partition_files(ws.table(table), None, dates, fetch=fetch)


sizes = lake.sizes  # bytes of lake files, from the log for a lake on object storage


def partitions_on(ws: Workspace, table: str, dates: list[str]) -> set[tuple[str, str]]:
    """(date, equipment_id) of ``table``'s partitions on these dates."""
    wanted = set(dates)
    return {(d, e) for d, e, _ in lake.active(ws.table(table)) if d in wanted}


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


def drop_dates(ws: Workspace, table: str, dates: list[str]) -> int:
    """Remove every file of ``table`` on these dates in one commit (gone for readers at once), then delete
    them and vacuum; returns the files removed."""
    return lake.delete_partitions(ws.table(table), dates)
