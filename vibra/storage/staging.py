"""Rewriting lake partitions beside the live ones and swapping them in, and recovering from a crash midway.

The features rebuild writes each (date, equipment) partition anew in a staging folder under
``data/.rebuild/<id>/`` and swaps it in with two renames (the old one moved to ``trash`` first);
compaction builds twins under ``data/.compact/<id>/``. Both live outside the lake, so no reader
ever sees them; whatever a killed run left there is put back or removed here (by the next run or
``vibra doctor --repair``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from vibra.storage.lake import READ_FILES, partition_dir, partition_files, reading, sql_literal

if TYPE_CHECKING:
    from vibra.workspace import Workspace

REBUILD_DIR = ".rebuild"  # under data/, outside the lake, so no glob over the lake ever sees it
COMPACT_DIR = ".compact"


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
