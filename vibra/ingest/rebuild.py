"""Recompute the ``features`` (and ``hourly``) partitions of some machines' completed recordings with
the current settings, from the kept raw waveforms or else the recorded source files.

Each touched (date, equipment) partition is rebuilt in a staging folder and all of them replace the
old ones in one commit of the table's log, so a reader sees the old partitions or the new ones, never
a mix of definitions. The caller holds the ingest lock (``vibra features rebuild`` takes it;
``vibra ingest`` calls this under its own for the files whose settings changed,
:mod:`vibra.ingest.staleness`). A rebuilt row takes the current settings' hash.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from vibra.errors import VibraError
from vibra.ingest import staleness
from vibra.ingest.recordings import compute_features, ensure_embedding_manifest, resolve
from vibra.settings import Settings
from vibra.storage import ledger, tables
from vibra.workspace import Workspace


@dataclass
class Rebuilt:
    """What one rebuild did: recordings recomputed (from raw / from source), kept as they were because
    nothing could be read (``problems``: source path → why), partitions replaced, windows written."""

    recordings: int = 0
    from_raw: int = 0
    from_source: int = 0
    kept_stale: int = 0
    partitions: int = 0
    windows: int = 0
    problems: dict[str, str] = field(default_factory=dict)


def _read_back(ws: Workspace, settings: Settings, row: dict):
    """(recording read back, sample rate, start, rpm) of a completed recording, from raw or source, with rate,
    start and rpm resolved by the rules ingest used."""
    back = tables.read_recording(ws, settings, row["equipment_id"], row["recording_id"], row["source_path"],
                                 expect=(row["size_bytes"], row["mtime"]))
    sample_rate_hz, start, rpm, _ = resolve(settings.equipment_for(row["equipment_id"]), settings, back.source_path,
                                            back.mtime, file_sample_rate_hz=back.file_sample_rate_hz,
                                            file_start=back.file_start, file_rpm=back.file_rpm)
    return back, sample_rate_hz, start, rpm


def recompute(ws: Workspace, settings: Settings, equipment_ids: list[str] | None = None,
              notify: Callable[[str, dict], None] | None = None) -> Rebuilt:
    """Recompute every completed recording of the given machines (all when None); the ingest lock is the
    caller's. ``notify`` gets ``start`` and ``file`` events (a progress bar)."""
    notify = notify or (lambda event, info: None)
    result = Rebuilt()
    ensure_embedding_manifest(ws, settings)
    rows = ledger.current(ws, status="completed", equipment=equipment_ids or None)
    updated = []
    payloads = {}
    notify("start", {"files": len(rows), "bytes": sum(r["size_bytes"] or 0 for r in rows)})

    def one(row: dict):
        rid, eid = row["recording_id"], row["equipment_id"]
        back, sample_rate_hz, start, rpm = _read_back(ws, settings, row)
        res = compute_features(settings, eid, rid, back.chunks, back.channels, sample_rate_hz, start, rpm,
                               row["source_path"], gaps=back.gaps, units=back.units)
        return res, back.origin, sample_rate_hz, start, rpm

    with tables.FeaturesRebuild(ws, [r["equipment_id"] for r in rows]) as work, \
            ThreadPoolExecutor(max_workers=max(1, settings.ingest.max_concurrent_files)) as pool:
        futures = [(row, pool.submit(one, row)) for row in rows]
        for row, future in futures:
            rid, eid = row["recording_id"], row["equipment_id"]
            work.old(rid, eid)
            try:
                res, origin, sample_rate_hz, start, rpm = future.result()
                work.write(res.table, rid)
                result.windows += res.n_windows
                setattr(result, f"from_{origin}", getattr(result, f"from_{origin}") + 1)
                body = payloads.setdefault(eid, staleness.payload(settings, eid))
                updated.append({**row, "n_windows": res.n_windows, "sample_rate_hz": sample_rate_hz,
                                "recorded_at": start, "rpm": rpm, "updated_at": datetime.now(timezone.utc),
                                "channel_stats": json.dumps(res.channel_stats), "settings_hash": staleness.hash_of(body)})
            except VibraError as exc:
                # nothing to rebuild from: keep the old rows rather than lose them
                result.kept_stale += 1
                result.problems[row["source_path"]] = str(exc)
                work.keep(rid, eid)
            result.recordings += 1
            notify("file", {"path": row["source_path"], "bytes": row["size_bytes"] or 0, "status": "rebuilt"})
        result.partitions = work.commit()
    staleness.remember(ws, {staleness.hash_of(b): b for b in payloads.values()})
    ledger.write_rows(ws, updated)
    return result
