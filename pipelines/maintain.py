"""Housekeeping: compaction, retention, garbage collection and the integrity check (``vibra doctor``).

The file-level work lives in :mod:`vibra.storage.compaction` (Delta Lake's optimize per partition,
dates removed in one commit then vacuumed); this stage holds the ingest lock, checks the options,
keeps the ledger in step and records the run.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from vibra.errors import InputError
from vibra.settings import Settings
from vibra.storage import compaction, lake, ledger, tables
from vibra.workspace import Workspace

from vibra_pipelines.runs import StageResult, recorded

# raw keeps one file per recording by design (found by name); the rest can be merged
COMPACTABLE = tables.compactable()
RETAINABLE = tables.retainable()


@dataclass
class CompactResult(StageResult):
    COUNTS = ("tables",)

    tables: dict = field(default_factory=dict)   # table -> {partitions, files_before, files_after, rows}
    skipped_uncommitted: int = 0
    seconds: float = 0.0


def _completed_ids(ws: Workspace) -> set[str]:
    return {r["recording_id"][:16] for r in ledger.current(ws, status="completed")}


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
    with ledger.ingest_lock(ws, settings), lake.translated():  # a store outage or a damaged table: one line
        # a recording's own features file is merged only once the ledger holds it as completed
        result.tables, result.skipped_uncommitted = compaction.compact(
            ws, tables, min_files, keep_apart={"features": _completed_ids(ws)})
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

    def plan() -> dict:
        dates = compaction.dates_before(ws, table, cutoff)
        files = compaction.files_on(ws, table, dates, fetch=False)  # counted, not read
        return {"table": table, "cutoff_date": cutoff, "dry_run": dry_run, "dates": dates, "files": len(files),
                "bytes": compaction.sizes(files), "recordings_expired": 0}

    if dry_run:
        with lake.translated():
            return plan()
    with ledger.ingest_lock(ws, settings), lake.translated():
        out = plan()  # counted under the lock: an ingest or compaction finishing meanwhile is counted too
        dates = out["dates"]
        expired = compaction.recordings_only_in(ws, table, dates) if table == "features" else []
        compaction.drop_dates(ws, table, dates)  # one commit: the dates are gone at once; then vacuumed
        if expired:
            ledger.expire(ws, expired, "windows dropped by retention")
        if table == "features":
            from vibra.storage import hourly

            hourly.rebuild(ws.lake, compaction.partitions_on(ws, "hourly", dates))
        out["recordings_expired"] = len(expired)
    return out


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
