"""Rewriting lake partitions beside the live ones and committing them in, and cleaning up after a crash.

The features rebuild writes each (date, equipment) partition anew in a staging folder under
``data/.rebuild/<id>/``, outside the lake, then moves the staged files into the partition folders
under new names (invisible: no commit names them yet) and replaces the partitions in one commit of
the table's log (:func:`replace_partitions`). Whatever a killed run left (its work folder, files no
commit names) is garbage by construction and removed here (by the next run or ``vibra doctor
--repair``). ``vibra doctor`` finds those leftovers here, rewrites a partition without orphan or
duplicate windows (one commit), and moves damaged lake files aside (``data/.quarantine/``) after a
commit has removed them from their table.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from vibra.storage import lake, remote
from vibra.storage.atomic import TMP_MARK, replace_into, temp_path
from vibra.storage.lake import READ_FILES, partition_dir, partition_files, reading, sql_literal

if TYPE_CHECKING:
    from vibra.storage.tables.registry import Table
    from vibra.workspace import Workspace

REBUILD_DIR = ".rebuild"  # under data/, outside the lake, so no glob over the lake ever sees it
COMPACT_DIR = ".compact"  # work folders of compactions before the lake was Delta: only ever leftovers now
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


def replace_partitions(table_dir: Path, staging: Path, partitions: set[tuple[str, str]]) -> None:
    """Replace the ``partitions`` of ``table_dir`` by what ``staging`` holds for them, in one commit.

    The staged files move into their partition folders under new names (invisible until the
    commit); the commit adds them and removes every earlier file of those partitions, so a reader
    sees the old partitions or the rebuilt ones, never a mix; the removed files are deleted after."""
    added = []
    for f in sorted(staging.glob("date=*/equipment=*/*.parquet")):  # the rebuild's own folder: every file is staged
        date, eid = f.parent.parent.name.split("=", 1)[1], f.parent.name.split("=", 1)[1]
        final = partition_dir(table_dir, date, eid) / f"part-rebuilt-{uuid.uuid4().hex[:12]}.parquet"
        final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(f, final)
        added.append(final)
    old = [f for date, eid in partitions for f in partition_files(table_dir, eid, [date])]
    lake.commit(table_dir, add=added, remove=old)
    lake.unlink(old)


def recover(ws: Workspace) -> None:
    """Remove what a crashed rebuild left behind: its work folders (staged files never committed to the
    table are only garbage; files it moved into the lake but did not commit are :func:`leftovers`)."""
    root = ws.data / REBUILD_DIR
    if root.exists():
        for work in root.iterdir():
            shutil.rmtree(work, ignore_errors=True)


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


def leftovers(ws: Workspace, *, untracked: bool = True) -> list[Path]:
    """Temporary files of writers that are gone, and work folders of killed runs (lake and artifacts), and
    (with ``untracked``) lake files no commit names."""
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
    for table in lake.tables_in(ws.lake) if untracked else []:  # a writer killed between its file and its commit
        out += lake.untracked(table)
    return sorted(set(out))


def lost_commits(ws: Workspace, completed: set[str]) -> list[Path]:
    """``features`` files no commit names whose every window belongs to a recording the ledger holds as
    completed and that no commit of the log names at all: the commit that added them is lost (its log
    file deleted — the newest commit of a log leaves no gap to see), not a killed writer's (whose
    recordings the ledger never completed) nor one a commit removed (compaction killed before deleting
    the merged-away files). Files that do not read are left to the leftovers."""
    import pyarrow.parquet as pq

    from vibra.storage import deltalog

    table = ws.table("features")
    untracked = [f for f in lake.untracked(table) if lake.OWN_FILE.match(f.name)]
    if not untracked:
        return []
    named = deltalog.read(table, remote.of(table)).last  # a file some commit removed is not a lost commit's
    out = []
    for f in untracked:
        if f.relative_to(table).as_posix() in named:
            continue
        try:
            ids = set(pq.read_table(f, columns=["recording_id"]).column(0).unique().to_pylist())
        except Exception:  # noqa: BLE001 - damaged, or another schema: not a file to put back
            continue
        if ids and ids <= completed:
            out.append(f)
    return out


def clean_leftovers(ws: Workspace, *, untracked: bool = True) -> None:
    """Remove every leftover :func:`leftovers` finds: temporary files and work folders are deleted (never
    whole); lake files no commit names are moved to ``data/.quarantine/`` (kept: a log damaged by hand may
    be what forgot them)."""
    from vibra.storage.repair import move_aside

    for p in leftovers(ws, untracked=untracked):
        if not p.exists() and remote.of(p) is None:
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif TMP_MARK in p.name or not (ws.lake in p.parents and lake.table_dir_of(p) is not None):
            lake.unlink([p])
        else:
            move_aside(p, ws.data / QUARANTINE, ws.lake)


def keep_windows(ws: Workspace, table: Table, part: Path, recording_ids: set[str] | list[str], *,
                 exclude: set[Path] = frozenset()) -> None:
    """Rewrite one partition of ``table`` keeping only rows of ``recording_ids``, one per key (the earliest
    by the table's time column); one commit replaces the partition's files by the rewritten one. Files in
    ``exclude`` (another writer's, on a shared store) are neither read nor replaced."""
    import duckdb

    table_dir = ws.table(table.name)
    date, eid = part.parent.name.split("=", 1)[1], part.name.split("=", 1)[1]
    files = [f for f in partition_files(table_dir, eid, [date]) if f not in exclude]
    out = part / f"part-repaired-{uuid.uuid4().hex[:12]}.parquet"
    tmp = temp_path(out)
    try:
        with duckdb.connect() as con, reading(files):
            con.execute("SET TimeZone = 'UTC'")
            con.execute(f"COPY (SELECT * FROM {READ_FILES} WHERE recording_id IN (SELECT unnest(?)) "
                        f"QUALIFY row_number() OVER (PARTITION BY {', '.join(table.keys)} "
                        f"ORDER BY {table.time_column}) = 1) TO {sql_literal(tmp)} (FORMAT parquet, COMPRESSION zstd)",
                        [[str(f) for f in files], sorted(recording_ids)])
        replace_into(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    lake.commit(table_dir, add=[out], remove=files)
    from vibra.storage.repair import move_aside

    for f in files:  # their kept rows are in the new file; the files are kept aside, never deleted
        move_aside(f, ws.data / QUARANTINE, ws.lake)


def quarantine(ws: Workspace, path: Path) -> Path:
    """Remove a damaged lake file from its table (one commit), then move it to ``data/.quarantine/`` (same
    relative path; kept, never deleted); returns where it went."""
    rel = path.relative_to(ws.lake)
    target = ws.data / QUARANTINE / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}")
    lake.commit(ws.lake / rel.parts[0], remove=[path])  # out of the table first, then moved aside
    if path.exists():
        os.replace(path, target)
    return target
