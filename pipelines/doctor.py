"""``vibra doctor``: does the lake agree with the ledger? Explain every finding; repair what is safe.

Checks: leftover temporary files and work folders of killed runs; completed
recordings without windows; windows of recordings the ledger does not hold as
completed (orphans); windows stored twice; empty partition folders; the
catalog's schema version; files written before a column existed; ``latest``
pointers naming a version that is gone. ``--repair`` holds the ingest lock, so
no ingest, rebuild or compaction runs meanwhile.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from vibra.settings import Settings
from vibra.storage import catalog, lake, migrations
from vibra.storage.locks import exclusive, table_exclusive
from vibra.workspace import Workspace

from vibra_pipelines.runs import run_record

KEYS = ("equipment_id", "recording_id", "channel", "window_index")
POINTER_ROOTS = ("models/forecast", "models/clustering", "models/knn", "models/embedding", "snapshots")
TMP_PID = re.compile(r"\.tmp-(\d+)-")


@dataclass
class Finding:
    check: str
    severity: str        # error (lake and ledger disagree) | warning | info
    count: int
    explanation: str
    repair: str          # what --repair does ("" = nothing safe to do)
    examples: list
    repaired: bool = False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leftovers(ws: Workspace) -> list[Path]:
    """Temporary files of writers that are gone, and work folders of killed runs."""
    out = []
    for root in (ws.lake, ws.artifacts):
        if not root.exists():
            continue
        for p in root.rglob(f"*{lake.TMP_MARK}*"):
            m = TMP_PID.search(p.name)
            if m and _alive(int(m.group(1))) and int(m.group(1)) != os.getpid():
                continue  # a running writer's file
            out.append(p)
        for p in root.rglob(".tmp-*"):
            if p.is_dir():
                out.append(p)
    for work_root in (ws.data / ".compact", ws.data / ".rebuild"):
        if work_root.exists():
            out += [p for p in work_root.iterdir()]
    return sorted(set(out))


def _recording_counts(ws: Workspace):
    """{recording_id: (rows, distinct keys)} over the features table."""
    import duckdb

    files = [str(f) for f in lake.partition_files(ws.table("features"))]
    if not files:
        return {}
    with duckdb.connect() as con:
        rows = con.execute("""SELECT recording_id, count(*), count(DISTINCT (channel, window_index))
                              FROM read_parquet(?, union_by_name = true, hive_partitioning = false) GROUP BY 1""", [files]).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def _rewrite(ws: Workspace, table: str, part: Path, select_sql: str) -> None:
    """Rewrite one partition through ``select_sql`` (reading view ``src``), swapped in atomically."""
    import duckdb

    files = sorted(part.glob("*.parquet"))
    work = ws.data / ".compact" / f"doctor-{uuid.uuid4().hex[:8]}"
    twin = work / "twin" / part.relative_to(ws.lake)
    twin.mkdir(parents=True)
    try:
        out = twin / f"part-repaired-{uuid.uuid4().hex[:12]}.parquet"
        with duckdb.connect() as con:
            con.execute("SET TimeZone = 'UTC'")
            src = ("(SELECT * FROM read_parquet([" + ", ".join(lake.sql_literal(f) for f in files)
                   + "], union_by_name = true, hive_partitioning = false))")
            con.execute(f"COPY ({select_sql.replace('FROM src', 'FROM ' + src)}) TO {lake.sql_literal(out)} "
                        "(FORMAT parquet, COMPRESSION zstd)")
        with table_exclusive(ws.table(table) / lake.TABLE_LOCK):
            lake.exchange(part, twin)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check(ws: Workspace, settings: Settings, *, repair: bool = False) -> dict:
    """Every finding (and, with ``repair``, what was repaired); ``ok`` when no error remains."""
    from contextlib import nullcontext

    catalog.ensure(ws.catalog_path)
    lock = exclusive(ws.data / ".ingest.lock", timeout_s=settings.ingest.lock_timeout_s, what="vibra ingest") \
        if repair else nullcontext()
    with run_record(ws, "doctor" + (" --repair" if repair else ""), settings) as counts, lock:
        findings = _run_checks(ws, repair)
        errors = [f for f in findings if f.severity == "error" and not f.repaired]
        counts.update(findings=len(findings), errors=len(errors), repaired=sum(f.repaired for f in findings))
    return {"ok": not errors, "repair": repair, "checked_at": datetime.now(timezone.utc).isoformat(),
            "findings": [asdict(f) for f in findings]}


def _run_checks(ws: Workspace, repair: bool) -> list[Finding]:
    from vibra_pipelines import features as features_stage
    from vibra_pipelines import maintain

    findings: list[Finding] = []
    left = _leftovers(ws)
    if left:
        f = Finding("leftover_temporary_files", "warning", len(left),
                    "temporary files or work folders of runs that were killed; readers never see them, "
                    "they only take space", "delete them (a killed rebuild's moved-aside partitions are put back first)",
                    [str(p) for p in left[:5]])
        if repair:
            features_stage.recover(ws)
            maintain.clean_compact_leftovers(ws)
            for p in _leftovers(ws):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            f.repaired = True
        findings.append(f)

    ledger = catalog.query(ws.catalog_path, f"SELECT recording_id, source_path, status, n_windows FROM {catalog.CURRENT} c")
    completed = {r[0]: r for r in ledger if r[2] == "completed"}
    expired = {r[0] for r in ledger if r[2] == "expired"}
    counts = _recording_counts(ws)
    missing = [r for rid, r in completed.items() if (r[3] or 0) > 0 and rid not in counts]
    if missing:
        f = Finding("completed_without_windows", "error", len(missing),
                    "the ledger says these recordings were ingested but the features table has none of their windows "
                    "(partitions deleted by hand, or a restore from an older backup)",
                    "mark them pending so the next `vibra ingest` processes them again", [r[1] for r in missing[:5]])
        if repair:
            names = [n for n, _ in catalog.RECORDING_COLUMNS]
            rows = catalog.query(ws.catalog_path, f"SELECT {', '.join(names)} FROM {catalog.CURRENT} c "
                                                  "WHERE recording_id IN (SELECT unnest(?))", [[r[0] for r in missing]])
            now = datetime.now(timezone.utc)
            catalog.write_rows(ws.catalog_path, [{**dict(zip(names, r)), "status": "pending",
                                                  "error": "windows missing (vibra doctor): re-ingested on the next run",
                                                  "updated_at": now} for r in rows])
            f.repaired = True
        findings.append(f)

    orphans = sorted(rid for rid in counts if rid not in completed and rid not in expired)
    dups = sorted(rid for rid, (n, distinct) in counts.items() if n > distinct)
    parts = sorted(ws.table("features").glob("date=*/equipment=*"))
    if orphans or dups:
        import duckdb

        affected: set[Path] = set()
        with duckdb.connect() as con:
            for part in parts:
                files = [str(x) for x in part.glob("*.parquet")]
                if not files:
                    continue
                ids = {r[0] for r in con.execute(f"SELECT DISTINCT recording_id FROM {lake.READ_FILES}",
                                                 [files]).fetchall()}
                if ids & (set(orphans) | set(dups)):
                    affected.add(part)
        if orphans:
            # an earlier version of a file whose content changed (kept beside the new one before ingest replaced them)
            earlier = {r[0] for r in catalog.query(ws.catalog_path, "SELECT DISTINCT recording_id FROM recordings "
                                                                    "WHERE status = 'completed'")} & set(orphans)
            killed = [rid for rid in orphans if rid not in earlier]
            if earlier:
                findings.append(Finding("earlier_version_windows", "error", len(earlier),
                                        "windows of an earlier version of a file whose content changed since; the "
                                        "ledger holds the new version, so these are counted twice",
                                        "remove the earlier version's windows", sorted(earlier)[:5]))
            if killed:
                findings.append(Finding("orphan_windows", "error", len(killed),
                                        "windows of recordings the ledger does not hold as completed (an ingest killed "
                                        "between writing the windows and recording them); the next ingest of the file "
                                        "would store them again",
                                        "remove those windows; the next `vibra ingest` re-ingests their files",
                                        killed[:5]))
        if dups:
            f2 = Finding("duplicate_windows", "error", len(dups),
                         "windows stored more than once (same equipment, recording, channel, window index)",
                         "keep one copy of each window", dups[:5])
            findings.append(f2)
        if repair:
            keep = "', '".join(sorted(completed) + sorted(expired))
            for part in sorted(affected):
                _rewrite(ws, "features", part, f"""SELECT * FROM src WHERE recording_id IN ('{keep}')
                    QUALIFY row_number() OVER (PARTITION BY {', '.join(KEYS)} ORDER BY window_start) = 1""")
            for f in findings:
                if f.check in ("orphan_windows", "earlier_version_windows", "duplicate_windows"):
                    f.repaired = True
            from vibra import hourly

            hourly.rebuild(ws.lake, {(p.parent.name.split("=", 1)[1], p.name.split("=", 1)[1]) for p in affected})

    empty = [p for t in maintain.RETAINABLE for p in ws.table(t).glob("date=*/equipment=*")
             if p.is_dir() and not any(p.iterdir())]
    if empty:
        f = Finding("empty_partitions", "info", len(empty), "partition folders holding no file", "remove the folders",
                    [str(p) for p in empty[:5]])
        if repair:
            for p in empty:
                p.rmdir()
                if not any(p.parent.iterdir()):
                    p.parent.rmdir()
            f.repaired = True
        findings.append(f)

    version = catalog.query(ws.catalog_path, "SELECT value FROM meta WHERE key = 'schema_version'")
    have = int(version[0][0]) if version else 0
    if have != migrations.CURRENT:
        findings.append(Finding("catalog_schema", "error", 1, f"catalog schema version {have}, this vibra expects "
                                f"{migrations.CURRENT}", "run `vibra migrate`", []))
    old = _old_schema_files(ws)
    if old:
        findings.append(Finding("features_schema", "info", len(old),
                                "features files written before the embedding carried its version; clustering and "
                                "the kNN leave their windows out", "none: `vibra features rebuild` recomputes them",
                                [str(p) for p in old[:5]]))

    for rel in POINTER_ROOTS:
        root = ws.artifacts / rel
        pointer = root / "latest.json"
        name = lake.latest_version(root)
        if name and not (root / name).is_dir():
            versions = sorted((p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), reverse=True)
            f = Finding("dangling_latest_pointer", "error", 1, f"{pointer} names {name}, which is gone",
                        "point it at the newest version left" if versions else "remove the pointer", [str(pointer)])
            if repair:
                if versions:
                    lake.write_json(pointer, {"version": versions[0]})
                else:
                    pointer.unlink()
                f.repaired = True
            findings.append(f)
    return findings


def _old_schema_files(ws: Workspace) -> list[Path]:
    import pyarrow.parquet as pq

    out = []
    for f in lake.partition_files(ws.table("features")):
        try:
            if "embedding_version" not in pq.read_schema(f).names:
                out.append(f)
        except OSError:
            out.append(f)
    return out
