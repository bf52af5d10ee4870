"""Housekeeping: compaction, retention, garbage collection and the integrity check (``vibra doctor``).

Compaction merges a partition's small files into one without copying the
rest of the table. The merged file is built in a twin folder under
``data/.compact/<id>/`` (same filesystem); then, holding the table's lock
exclusively (so no writer is mid-file), the twin and the partition folder are
exchanged in one atomic ``renameat2(RENAME_EXCHANGE)``: a reader sees the old
files or the new one, never both and never neither. Whatever a killed
compaction leaves under ``data/.compact`` is garbage by construction (either
the unused twin or the old files) and is removed by the next compaction or
``vibra doctor --repair``.
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from vibra.errors import InputError
from vibra.settings import Settings
from vibra.storage import catalog, lake, tables
from vibra.storage.locks import exclusive, table_exclusive
from vibra.storage.staging import COMPACT_DIR, clean_compact_leftovers
from vibra.workspace import Workspace

from vibra_pipelines.runs import StageResult, recorded

# raw keeps one file per recording by design (found by name); the rest can be merged
COMPACTABLE = tables.compactable()
RETAINABLE = tables.retainable()
SORT_KEYS = ("equipment_id", "recording_id", "channel", "window_start", "window_index", "model_type", "time")
FEATURE_FILE = re.compile(r"^part-([0-9a-f]{16})\.parquet$")


@dataclass
class CompactResult(StageResult):
    COUNTS = ("tables",)

    tables: dict = field(default_factory=dict)   # table -> {partitions, files_before, files_after, rows}
    skipped_uncommitted: int = 0
    seconds: float = 0.0


def _completed_ids(ws: Workspace) -> set[str]:
    return {r[0][:16] for r in catalog.query(ws.catalog_path, f"SELECT recording_id FROM {catalog.CURRENT} c "
                                                              "WHERE status = 'completed'")}


def _merge(files: list[Path], out: Path) -> int:
    """Write the rows of ``files`` to ``out`` sorted by the keys they have; returns the row count."""
    import duckdb

    with duckdb.connect() as con, lake.reading(files):
        con.execute("SET TimeZone = 'UTC'")
        names = [str(f) for f in files]
        cols = {r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?, union_by_name = true, hive_partitioning = false)",
                                          [names]).fetchall()}
        order = ", ".join(k for k in SORT_KEYS if k in cols) or "ALL"
        con.execute(f"COPY (SELECT * FROM read_parquet(?, union_by_name = true, hive_partitioning = false) ORDER BY {order}) "
                    f"TO {lake.sql_literal(out)} (FORMAT parquet, COMPRESSION zstd)", [names])
        return con.execute("SELECT count(*) FROM read_parquet(?, hive_partitioning = false)", [str(out)]).fetchone()[0]


def _rows(files: list[Path]) -> int:
    import duckdb

    if not files:
        return 0
    with duckdb.connect() as con, lake.reading(files):
        return con.execute("SELECT count(*) FROM read_parquet(?, union_by_name = true, hive_partitioning = false)",
                           [[str(f) for f in files]]).fetchone()[0]


def compact_partition(ws: Workspace, table: str, part: Path, work: Path, keep_apart: set[str] | None = None) -> dict:
    """Merge one partition's files into one (see the module doc); returns what it did."""
    files = sorted(p for p in part.glob("*.parquet"))
    apart = [f for f in files if keep_apart is not None and FEATURE_FILE.match(f.name)
             and FEATURE_FILE.match(f.name).group(1) not in keep_apart]
    merge = [f for f in files if f not in apart]
    before = len(files)
    twin = work / "twin" / part.relative_to(ws.lake)
    twin.mkdir(parents=True)
    name = f"part-compact-{uuid.uuid4().hex[:12]}.parquet"
    tmp = twin / f".{name}{lake.TMP_MARK}{uuid.uuid4().hex[:6]}"
    rows = _merge(merge, tmp)
    expected = _rows(merge)
    if rows != expected:  # never swap in a file that lost or gained rows
        raise InputError(f"{part}: compaction wrote {rows} rows for {expected}; partition left as it was")
    lake.replace_into(tmp, twin / name)
    with table_exclusive(ws.table(table) / lake.TABLE_LOCK):
        # files that arrived since the merge was planned go along untouched (hard links, no copy)
        for f in part.glob("*.parquet"):
            if f not in merge:
                (twin / f.name).hardlink_to(f)
        lake.exchange(part, twin)
    shutil.rmtree(twin, ignore_errors=True)  # now the old files
    return {"files_before": before, "files_after": len(list(part.glob("*.parquet"))), "rows": rows,
            "kept_apart": len(apart)}


@recorded("maintain compact")
def compact(ws: Workspace, settings: Settings, *, tables: list[str] | None = None, min_files: int = 2) -> CompactResult:
    """Merge the small files of every partition holding at least ``min_files`` of them."""
    tables = tables or list(COMPACTABLE)
    for t in tables:
        if t not in COMPACTABLE:
            raise InputError(f"--table {t!r}: compactable tables are {', '.join(COMPACTABLE)} "
                             "(raw keeps one file per recording)")
    if min_files < 2:
        raise InputError(f"--min-files {min_files}: use 2 or more")
    result = CompactResult()
    started = time.perf_counter()
    with exclusive(ws.data / ".ingest.lock", timeout_s=settings.ingest.lock_timeout_s, what="vibra ingest"):
        clean_compact_leftovers(ws)
        completed = _completed_ids(ws)
        work = ws.data / COMPACT_DIR / uuid.uuid4().hex[:8]
        try:
            for t in tables:
                stats = {"partitions": 0, "files_before": 0, "files_after": 0, "rows": 0}
                for part in sorted(ws.table(t).glob("date=*/equipment=*")):
                    files = list(part.glob("*.parquet"))
                    if len(files) < min_files:
                        continue
                    done = compact_partition(ws, t, part, work / uuid.uuid4().hex[:6],
                                             completed if t == "features" else None)
                    result.skipped_uncommitted += done["kept_apart"]
                    stats["partitions"] += 1
                    for k in ("files_before", "files_after", "rows"):
                        stats[k] += done[k]
                result.tables[t] = stats
        finally:
            shutil.rmtree(work, ignore_errors=True)
        result.seconds = time.perf_counter() - started
    return result


# -- retention --------------------------------------------------------------------------------------

def parse_age(text: str) -> timedelta:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dhw])\s*", text or "")
    if not m:
        raise InputError(f"--older-than {text!r}: write a number and a unit, e.g. 90d, 12w or 36h")
    n, unit = float(m.group(1)), m.group(2)
    return timedelta(days=n) if unit == "d" else timedelta(weeks=n) if unit == "w" else timedelta(hours=n)


def _retention_counts(out: dict) -> dict:
    extra = {"bytes": out["bytes"]} if out["dry_run"] else {"recordings_expired": out["recordings_expired"]}
    return {"table": out["table"], "dates": len(out["dates"]), "files": out["files"], **extra}


# a dry run is recorded too: it is what an operator checks before the real one
@recorded(lambda kw: "maintain retention" + (" --dry-run" if kw.get("dry_run") else ""), _retention_counts)
def retention(ws: Workspace, settings: Settings, table: str, older_than: str, *, dry_run: bool = False,
              now: datetime | None = None) -> dict:
    """Drop whole date partitions of ``table`` older than the age; the ledger keeps the recordings' history."""
    if table not in RETAINABLE:
        raise InputError(f"--table {table!r}: choose one of {', '.join(RETAINABLE)}")
    cutoff = ((now or datetime.now(timezone.utc)) - parse_age(older_than)).date().isoformat()
    folder = ws.table(table)
    dates = sorted(d for d in lake.partition_dates(folder) if d < cutoff)
    files = [f for d in dates for f in folder.glob(f"date={d}/equipment=*/*.parquet")]
    out = {"table": table, "cutoff_date": cutoff, "dry_run": dry_run, "dates": dates, "files": len(files),
           "bytes": sum(f.stat().st_size for f in files), "recordings_expired": 0}
    if dry_run:
        return out
    with exclusive(ws.data / ".ingest.lock", timeout_s=settings.ingest.lock_timeout_s, what="vibra ingest"):
        expired = []
        if table == "features":
            expired = _recordings_only_in(ws, folder, dates)
        trash = ws.data / COMPACT_DIR / f"retention-{uuid.uuid4().hex[:8]}"
        with table_exclusive(folder / lake.TABLE_LOCK):
            for d in dates:
                trash.mkdir(parents=True, exist_ok=True)
                (folder / f"date={d}").rename(trash / f"date={d}")  # one rename per date: gone at once
        if expired:
            _mark_expired(ws, expired)
        shutil.rmtree(trash, ignore_errors=True)
        if table == "features":
            from vibra import hourly

            hourly.rebuild(ws.lake, {(d, p.name.split("=", 1)[1]) for d in dates
                                     for p in ws.table("hourly").glob(f"date={d}/equipment=*")})
        out["recordings_expired"] = len(expired)
    return out


def _recordings_only_in(ws: Workspace, folder: Path, dates: list[str]) -> list[str]:
    """Recordings whose every window lies in the dropped dates."""
    import duckdb

    dropped = [str(f) for d in dates for f in folder.glob(f"date={d}/equipment=*/*.parquet")]
    kept = [str(f) for f in lake.partition_files(folder) if str(f) not in set(dropped)]
    if not dropped:
        return []
    with duckdb.connect() as con, lake.reading(dropped + kept):
        gone = {r[0] for r in con.execute(f"SELECT DISTINCT recording_id FROM {lake.READ_FILES}",
                                          [dropped]).fetchall()}
        still = {r[0] for r in con.execute(f"SELECT DISTINCT recording_id FROM {lake.READ_FILES}",
                                           [kept]).fetchall()} if kept else set()
    return sorted(gone - still)


def _mark_expired(ws: Workspace, recording_ids: list[str]) -> None:
    names = [n for n, _ in catalog.RECORDING_COLUMNS]
    rows = catalog.query(ws.catalog_path, f"SELECT {', '.join(names)} FROM {catalog.CURRENT} c "
                                          "WHERE status = 'completed' AND recording_id IN (SELECT unnest(?))",
                         [recording_ids])
    now = datetime.now(timezone.utc)
    catalog.write_rows(ws.catalog_path, [{**dict(zip(names, r)), "status": "expired", "updated_at": now,
                                          "error": "windows dropped by retention"} for r in rows])


# -- garbage collection -----------------------------------------------------------------------------

@recorded("maintain gc", lambda removed: {k: len(v) for k, v in removed.items()})
def gc(ws: Workspace, settings: Settings, keep: int) -> dict:
    """Old versions of every registered artifact kind (``vibra.storage.artifacts.KINDS``): all but the
    ``keep`` newest of each store, never the one ``latest`` names nor the newest that verifies.
    Every store is checked before anything is deleted: a damaged pointer stops the gc whole."""
    from vibra.storage import artifacts

    if keep < 1:
        raise InputError(f"--keep {keep}: keep at least 1 version")
    return artifacts.collect(ws.artifacts, keep)
