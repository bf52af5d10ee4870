"""The features-rebuild stage: recompute the ``features`` table after an indicator definition
(or a machine's settings) changed, from the kept raw waveforms or the recorded source files.

Each touched (date, equipment) partition is rebuilt in a staging folder and all of them replace
the old ones in one commit of the table's log, so a reader sees the old partitions or the new
ones, never a mix of definitions.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from vibra.storage import hourly
from vibra.errors import VibraError
from vibra.settings import Settings
from vibra.ingest.recordings import compute_features, ensure_embedding_manifest, resolve
from vibra.storage import ledger, tables
from vibra.storage import staging as staging_area
from vibra.storage.staging import recover  # noqa: F401 - re-exported (doctor --repair calls it)
from vibra.workspace import Workspace

from vibra_pipelines.runs import StageResult, recorded


@dataclass
class RebuildResult(StageResult):
    COUNTS = ("recordings", "from_raw", "from_source", "kept_stale", "windows")

    recordings: int = 0
    from_raw: int = 0
    from_source: int = 0
    kept_stale: int = 0
    partitions: int = 0
    windows: int = 0
    seconds: float = 0.0
    problems: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict:
        return {**super().counts(), **({"status": "partial"} if self.kept_stale else {})}


def _read_back(ws: Workspace, settings: Settings, row: dict):
    """(recording read back, rate, start, rpm) of a completed recording, from raw or source, with rate,
    start and rpm resolved by the rules ingest used."""
    back = tables.read_recording(ws, settings, row["equipment_id"], row["recording_id"], row["source_path"],
                                 expect=(row["size_bytes"], row["mtime"]))
    sample_rate_hz, start, rpm, _ = resolve(settings.equipment_for(row["equipment_id"]), settings, back.source_path, back.mtime,
                                  file_sample_rate_hz=back.file_sample_rate_hz, file_start=back.file_start,
                                  file_rpm=back.file_rpm)
    return back, sample_rate_hz, start, rpm


@recorded("features rebuild")
def rebuild(ws: Workspace, settings: Settings, equipment_ids: list[str] | None = None, *,
            progress: Callable[[str, dict], None] | None = None) -> RebuildResult:
    """Recompute ``features`` (and ``hourly``) for every completed recording of the given machines."""
    notify = progress or (lambda event, info: None)
    ledger.ensure(ws)
    result = RebuildResult()
    with ledger.ingest_lock(ws, settings, on_wait=lambda msg: notify("wait", {"message": msg})):
        started = time.perf_counter()
        staging_area.recover(ws)
        ensure_embedding_manifest(ws, settings)
        rows = ledger.current(ws, status="completed", equipment=equipment_ids or None)
        table = ws.table("features")
        work = ws.data / staging_area.REBUILD_DIR / uuid.uuid4().hex[:8]
        staging = work / "staging"
        touched: set[tuple[str, str]] = set()
        updated = []
        notify("start", {"files": len(rows), "bytes": sum(r["size_bytes"] or 0 for r in rows)})
        def one(row: dict):
            rid, eid = row["recording_id"], row["equipment_id"]
            back, sample_rate_hz, start, rpm = _read_back(ws, settings, row)
            res = compute_features(settings, eid, rid, back.chunks, back.channels, sample_rate_hz, start, rpm,
                                   row["source_path"], gaps=back.gaps, units=back.units)
            return res, tables.write_features(ws, res.table, rid, table_dir=staging), back.origin, sample_rate_hz, start, rpm

        try:
            with ThreadPoolExecutor(max_workers=max(1, settings.ingest.max_concurrent_files)) as pool:
                futures = [(row, pool.submit(one, row)) for row in rows]
                where_now = staging_area.recording_files(table, sorted({r["equipment_id"] for r in rows}))
                for row, future in futures:
                    rid, eid = row["recording_id"], row["equipment_id"]
                    old = where_now.get(rid, {})  # partition folder → the files holding its rows
                    touched |= {(p.parent.name.split("=", 1)[1], eid) for p in old}
                    try:
                        res, parts, origin, sample_rate_hz, start, rpm = future.result()
                        touched |= set(parts)
                        result.windows += res.n_windows
                        setattr(result, f"from_{origin}", getattr(result, f"from_{origin}") + 1)
                        updated.append({**row, "n_windows": res.n_windows, "sample_rate_hz": sample_rate_hz,
                                        "recorded_at": start, "rpm": rpm, "updated_at": datetime.now(timezone.utc),
                                        "channel_stats": json.dumps(res.channel_stats)})
                    except VibraError as exc:
                        # nothing to rebuild from: keep the old rows rather than lose them
                        result.kept_stale += 1
                        result.problems[row["source_path"]] = str(exc)
                        for part, files in old.items():
                            staging_area.copy_recording_rows(files, rid, staging / part.relative_to(table) / f"part-{rid[:16]}.parquet")
                    result.recordings += 1
                    notify("file", {"path": row["source_path"], "bytes": row["size_bytes"] or 0, "status": "rebuilt"})
            staging_area.replace_partitions(table, staging, touched)
            result.partitions = len(touched)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        ledger.write_rows(ws, updated)
        hourly.rebuild(ws.lake, touched)
        result.seconds = time.perf_counter() - started
    return result
