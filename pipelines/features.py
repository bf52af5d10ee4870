"""The features-rebuild stage: recompute the ``features`` table after an indicator definition
(or a machine's settings) changed, from the kept raw waveforms or the recorded source files.

Each (date, equipment) partition is rebuilt in a staging folder and swapped in whole, so a
reader sees the old partition or the new one, never a mix of definitions.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from vibra import hourly
from vibra.errors import InputError, VibraError
from vibra.readers import open_recording
from vibra.settings import Settings
from vibra.storage import catalog, raw
from vibra.storage.lake import partition_dir
from vibra.storage.locks import exclusive
from vibra.workspace import Workspace

from vibra_pipelines.ingest import ensure_embedding_manifest, features_for, resolve
from vibra_pipelines.runs import run_record

REBUILD_DIR = ".rebuild"  # under data/, outside the lake, so no glob over the lake ever sees it


@dataclass
class RebuildResult:
    recordings: int = 0
    from_raw: int = 0
    from_source: int = 0
    kept_stale: int = 0
    partitions: int = 0
    windows: int = 0
    seconds: float = 0.0
    problems: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _chunks_for(ws: Workspace, settings: Settings, row: dict):
    """(chunks, channels, rate, start, rpm, origin, extra) of a completed recording, from raw or source;
    ``extra`` holds what only a source file says (its time-column gaps, its units) for ``features_for``."""
    equipment = settings.equipment_for(row["equipment_id"])
    raw_file = raw.find(ws.table("raw"), row["equipment_id"], row["recording_id"])
    if raw_file is not None:
        meta, chunks = raw.read(raw_file, settings.ingest.chunk_rows)
        rate, start, rpm, _ = resolve(equipment, settings, Path(meta.source_path), meta.mtime,
                                      file_rate=meta.file_sample_rate_hz, file_start=meta.start,
                                      file_rpm=meta.file_rpm)
        return chunks, meta.channels, rate, start, rpm, "raw", {"gaps": meta.gaps, "units": meta.units}
    path = Path(row["source_path"])
    try:
        st = path.stat()
    except OSError:
        raise InputError(f"{path}: source file is gone and no raw waveform was kept; "
                         "set [ingest] keep_raw = true before the next ingest") from None
    if st.st_size != row["size_bytes"] or abs(st.st_mtime - row["mtime"].timestamp()) > 1e-5:
        raise InputError(f"{path}: source file changed since it was ingested; run `vibra ingest` instead")
    recording = open_recording(path, equipment, settings.ingest.chunk_rows, on_time_gap=settings.ingest.on_time_gap)
    rate, start, rpm, _ = resolve(equipment, settings, path, st.st_mtime, file_rate=recording.sample_rate_hz,
                                  file_start=recording.start, file_rpm=recording.rpm)
    return recording.chunks, recording.channels, rate, start, rpm, "source", {"gaps": recording.gaps,
                                                                               "units": recording.units}


def _partitions_of(table: Path, equipment_ids: list[str]) -> dict[str, dict[Path, list[Path]]]:
    """recording_id → {partition folder: files holding its rows}, found from the rows (files may be compacted)."""
    import duckdb

    from vibra.storage.lake import READ_FILES, partition_files, reading

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


def _keep_rows(files: list[Path], recording_id: str, target: Path) -> None:
    """Copy one recording's rows out of (possibly shared) files into ``target``."""
    import duckdb

    from vibra.storage.lake import READ_FILES, reading, sql_literal

    target.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as con, reading(files):
        con.execute(f"COPY (SELECT * EXCLUDE (filename) FROM {READ_FILES.replace(')', ', filename = true)')} "
                    f"WHERE recording_id = ?) TO {sql_literal(target)} (FORMAT parquet, COMPRESSION zstd)",
                    [[str(f) for f in files], recording_id])


def _swap(table_dir: Path, work: Path, date: str, equipment_id: str) -> None:
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


def _restore(table_dir: Path, work: Path) -> None:
    """Put back any old partition moved aside but not replaced, then drop the work folder."""
    for trash in (work / "trash").glob("date=*/equipment=*"):
        final = table_dir / trash.parent.name / trash.name
        if not final.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            os.rename(trash, final)
    shutil.rmtree(work, ignore_errors=True)


def recover(ws: Workspace) -> None:
    """Undo what a crashed rebuild left behind (see :func:`_restore`)."""
    root = ws.data / REBUILD_DIR
    if root.exists():
        for work in root.iterdir():
            _restore(ws.table("features"), work)


def rebuild(ws: Workspace, settings: Settings, equipment_ids: list[str] | None = None, *,
            progress: Callable[[str, dict], None] | None = None) -> RebuildResult:
    """Recompute ``features`` (and ``hourly``) for every completed recording of the given machines."""
    notify = progress or (lambda event, info: None)
    catalog.ensure(ws.catalog_path)
    result = RebuildResult()
    with run_record(ws, "features rebuild", settings) as counts, \
            exclusive(ws.data / ".ingest.lock", timeout_s=settings.ingest.lock_timeout_s, what="vibra ingest",
                      on_wait=lambda msg: notify("wait", {"message": msg})):
        started = time.perf_counter()
        recover(ws)
        ensure_embedding_manifest(ws, settings)
        where, params = "WHERE status = 'completed'", []
        if equipment_ids:
            where += " AND equipment_id IN (SELECT unnest(?))"
            params = [equipment_ids]
        names = [n for n, _ in catalog.RECORDING_COLUMNS]
        rows = [dict(zip(names, r)) for r in catalog.query(
            ws.catalog_path, f"SELECT {', '.join(names)} FROM {catalog.CURRENT} c {where} ORDER BY recorded_at", params)]
        table = ws.table("features")
        work = ws.data / REBUILD_DIR / uuid.uuid4().hex[:8]
        staging = work / "staging"
        touched: set[tuple[str, str]] = set()
        updated = []
        notify("start", {"files": len(rows), "bytes": sum(r["size_bytes"] or 0 for r in rows)})
        def one(row: dict):
            rid, eid = row["recording_id"], row["equipment_id"]
            chunks, channels, rate, start, rpm, origin, extra = _chunks_for(ws, settings, row)
            res, parts = features_for(ws, settings, eid, rid, chunks, channels, rate, start, rpm,
                                      row["source_path"], table_dir=staging, **extra)
            return res, parts, origin, rate, start, rpm

        try:
            with ThreadPoolExecutor(max_workers=max(1, settings.ingest.max_concurrent_files)) as pool:
                futures = [(row, pool.submit(one, row)) for row in rows]
                where_now = _partitions_of(table, sorted({r["equipment_id"] for r in rows}))
                for row, future in futures:
                    rid, eid = row["recording_id"], row["equipment_id"]
                    old = where_now.get(rid, {})  # partition folder → the files holding its rows
                    touched |= {(p.parent.name.split("=", 1)[1], eid) for p in old}
                    try:
                        res, parts, origin, rate, start, rpm = future.result()
                        touched |= set(parts)
                        result.windows += res.n_windows
                        setattr(result, f"from_{origin}", getattr(result, f"from_{origin}") + 1)
                        updated.append({**row, "n_windows": res.n_windows, "sample_rate_hz": rate,
                                        "recorded_at": start, "rpm": rpm, "updated_at": datetime.now(timezone.utc),
                                        "channel_stats": json.dumps(res.channel_stats)})
                    except VibraError as exc:
                        # nothing to rebuild from: keep the old rows rather than lose them
                        result.kept_stale += 1
                        result.problems[row["source_path"]] = str(exc)
                        for part, files in old.items():
                            _keep_rows(files, rid, staging / part.relative_to(table) / f"part-{rid[:16]}.parquet")
                    result.recordings += 1
                    notify("file", {"path": row["source_path"], "bytes": row["size_bytes"] or 0, "status": "rebuilt"})
            for date, eid in sorted(touched):
                if not partition_dir(staging, date, eid).exists():
                    partition_dir(staging, date, eid).mkdir(parents=True)
                _swap(table, work, date, eid)
            result.partitions = len(touched)
        finally:
            _restore(table, work)
        catalog.write_rows(ws.catalog_path, updated)
        hourly.rebuild(ws.lake, touched)
        result.seconds = time.perf_counter() - started
        counts.update(recordings=result.recordings, from_raw=result.from_raw, from_source=result.from_source,
                      kept_stale=result.kept_stale, windows=result.windows)
        if result.kept_stale:
            counts["status"] = "partial"
    return result
