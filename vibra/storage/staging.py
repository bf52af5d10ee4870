"""Rewriting lake partitions beside the live ones and swapping them in, and recovering from a crash midway.

The features rebuild writes each (date, equipment) partition anew in a staging folder under
``data/.rebuild/<id>/`` and swaps it in with two renames (the old one moved to ``trash`` first);
compaction builds twins under ``data/.compact/<id>/``. Both live outside the lake, so no reader
ever sees them; whatever a killed run left there is put back or removed here (by the next run or
``vibra doctor --repair``). ``vibra doctor`` finds those leftovers here, rewrites a partition
without orphan or duplicate windows, and moves damaged lake files aside (``data/.quarantine/``).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from vibra.storage.lake import (READ_FILES, TABLE_LOCK, TMP_MARK, exchange, partition_dir, partition_files, reading,
                                sql_literal)
from vibra.storage.locks import table_exclusive

if TYPE_CHECKING:
    from vibra.storage.tables import Table
    from vibra.workspace import Workspace

REBUILD_DIR = ".rebuild"  # under data/, outside the lake, so no glob over the lake ever sees it
COMPACT_DIR = ".compact"
QUARANTINE = ".quarantine"  # under data/: damaged files moved aside by ``vibra doctor --repair``, never deleted
TMP_PID = re.compile(r"\.tmp-(\d+)-")


def recording_files(table: Path, equipment_ids: list[str]) -> dict[str, dict[Path, list[Path]]]:
    """recording_id → {partition folder: files holding its rows}, found from the rows (files may be compacted)."""
    import duckdb

    files = [f for eid in equipment_ids for f in partition_files(table, eid)]
    out: dict[str, dict[Path, list[Path]]] = {}
    if not files:
        return out
    with duckdb.connect() as con, reading(files):
        rows = con.execute(f"SELECT DISTINCT recording_id, filename FROM {READ_FILES.replace(')', ', filename = true)')}",
                           [[str(f) for f in files]]).fetchall()
    for rid, name in rows:
        path = Path(name)
        out.setdefault(rid, {}).setdefault(path.parent, []).append(path)
    return out


def copy_recording_rows(files: list[Path], recording_id: str, target: Path) -> None:
    """Copy one recording's rows out of (possibly shared) files into ``target``."""
    import duckdb

    target.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as con, reading(files):
        con.execute(f"COPY (SELECT * EXCLUDE (filename) FROM {READ_FILES.replace(')', ', filename = true)')} "
                    f"WHERE recording_id = ?) TO {sql_literal(target)} (FORMAT parquet, COMPRESSION zstd)",
                    [[str(f) for f in files], recording_id])


def swap_partition(table_dir: Path, work: Path, date: str, equipment_id: str) -> None:
    """Replace one partition folder by its rebuilt twin: two renames, then delete the old one."""
    final = partition_dir(table_dir, date, equipment_id)
    new = partition_dir(work / "staging", date, equipment_id)
    trash = partition_dir(work / "trash", date, equipment_id)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        trash.parent.mkdir(parents=True, exist_ok=True)
        os.rename(final, trash)
    os.rename(new, final)
    shutil.rmtree(trash, ignore_errors=True)


def restore(table_dir: Path, work: Path) -> None:
    """Put back any old partition moved aside but not replaced, then drop the work folder."""
    for trash in (work / "trash").glob("date=*/equipment=*"):
        final = table_dir / trash.parent.name / trash.name
        if not final.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            os.rename(trash, final)
    shutil.rmtree(work, ignore_errors=True)


def recover(ws: Workspace) -> None:
    """Undo what a crashed rebuild left behind (see :func:`restore`)."""
    root = ws.data / REBUILD_DIR
    if root.exists():
        for work in root.iterdir():
            restore(ws.table("features"), work)


def clean_compact_leftovers(ws: Workspace) -> list[str]:
    """Remove what killed compactions left (twin folders: unused new files or already-swapped old ones)."""
    root = ws.data / COMPACT_DIR
    removed = []
    if root.exists():
        for work in root.iterdir():
            # the exchange fallback (no renameat2) may have parked a partition under "<name>.exchange"
            for side in work.glob("**/*.exchange"):
                final = ws.lake / side.relative_to(work / "twin").parent / side.name.removesuffix(".exchange")
                if not final.exists():
                    final.parent.mkdir(parents=True, exist_ok=True)
                    side.rename(final)
            shutil.rmtree(work, ignore_errors=True)
            removed.append(str(work))
    return removed


# -- what ``vibra doctor`` finds and repairs ------------------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _running_writer(name: str) -> bool:
    m = TMP_PID.search(name)
    return bool(m and _alive(int(m.group(1))) and int(m.group(1)) != os.getpid())


def leftovers(ws: Workspace) -> list[Path]:
    """Temporary files of writers that are gone, and work folders of killed runs (lake and artifacts)."""
    out = []
    for root in (ws.lake, ws.artifacts):
        if not root.exists():
            continue
        for p in root.rglob(f"*{TMP_MARK}*"):
            if _running_writer(p.name):
                continue  # a running writer's file
            out.append(p)
        for p in root.rglob(".tmp-*"):
            if p.is_dir() and not _running_writer(p.name):
                out.append(p)
    for work_root in (ws.data / COMPACT_DIR, ws.data / REBUILD_DIR):
        if work_root.exists():
            out += [p for p in work_root.iterdir()]
    return sorted(set(out))


def clean_leftovers(ws: Workspace) -> None:
    """Put back what a killed rebuild moved aside, then remove every leftover :func:`leftovers` finds."""
    recover(ws)
    clean_compact_leftovers(ws)
    for p in leftovers(ws):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def keep_windows(ws: Workspace, table: Table, part: Path, recording_ids: set[str] | list[str]) -> None:
    """Rewrite one partition of ``table`` keeping only rows of ``recording_ids``, one per key (the earliest
    by the table's time column); the rewritten twin is swapped in atomically under the table's lock."""
    import duckdb

    files = sorted(part.glob("*.parquet"))
    work = ws.data / COMPACT_DIR / f"doctor-{uuid.uuid4().hex[:8]}"
    twin = work / "twin" / part.relative_to(ws.lake)
    twin.mkdir(parents=True)
    try:
        out = twin / f"part-repaired-{uuid.uuid4().hex[:12]}.parquet"
        with duckdb.connect() as con:
            con.execute("SET TimeZone = 'UTC'")
            con.execute(f"COPY (SELECT * FROM {READ_FILES} WHERE recording_id IN (SELECT unnest(?)) "
                        f"QUALIFY row_number() OVER (PARTITION BY {', '.join(table.keys)} "
                        f"ORDER BY {table.time_column}) = 1) TO {sql_literal(out)} (FORMAT parquet, COMPRESSION zstd)",
                        [[str(f) for f in files], sorted(recording_ids)])
        with table_exclusive(ws.table(table.name) / TABLE_LOCK):
            exchange(part, twin)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def quarantine(ws: Workspace, path: Path) -> Path:
    """Move a damaged lake file to ``data/.quarantine/`` (same relative path; kept, never deleted), under its
    table's lock; returns where it went."""
    rel = path.relative_to(ws.lake)
    target = ws.data / QUARANTINE / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}")
    with table_exclusive(ws.lake / rel.parts[0] / TABLE_LOCK):
        os.replace(path, target)
    return target
