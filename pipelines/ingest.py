"""The ingest stage: source tree → ledger rows + ``features`` and ``hourly`` partitions.

Incremental and idempotent: files whose (path, size, mtime) the ledger already
holds are skipped before hashing; a file whose content hash matches a completed
recording is recorded as a duplicate. One ingest runs per workspace at a time
(a file lock); the catalog is opened only for short transactions.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from vibra import __version__, embedding, hourly
from vibra.errors import InputError, VibraError
from vibra.features import compute
from vibra.hashing import sha256_file
from vibra.physics import Machine
from vibra.readers import open_recording
from vibra.readers.timestamps import from_filename
from vibra.signal.resample import decimate_chunks
from vibra.settings import EQUIPMENT_ID_RE, Equipment, Settings
from vibra.storage import catalog, lake, raw
from vibra.storage.raw import RawMeta, RawWriter
from vibra.storage.locks import exclusive
from vibra.workspace import Workspace

from vibra_pipelines.runs import count_ingest, run_record

FLUSH_EVERY_S = 1.0


@dataclass
class SourceFile:
    path: Path
    equipment_id: str
    size_bytes: int
    mtime: float


@dataclass
class FileResult:
    row: dict
    partitions: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class IngestResult:
    """Counts of one run; ``failures`` maps file → reason."""

    source: str
    files_seen: int = 0
    new: int = 0
    skipped: int = 0
    duplicates: int = 0
    failed: int = 0
    ignored: int = 0
    windows: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    warnings: int = 0
    failures: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def scan(source: Path) -> tuple[list[SourceFile], list[Path], dict[str, str]]:
    """Files under ``source/<equipment_id>/**``, sorted.

    Returns (files, ignored top-level files, {path: reason} for files whose
    equipment folder name is unsafe). Hidden files and folders are skipped.
    """
    files: list[SourceFile] = []
    ignored: list[Path] = []
    bad: dict[str, str] = {}
    for entry in sorted(os.scandir(source), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            ignored.append(Path(entry.path))
            continue
        safe = EQUIPMENT_ID_RE.match(entry.name) is not None
        for folder, dirs, names in os.walk(entry.path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                if name.startswith("."):
                    continue
                path = Path(folder) / name
                if not safe:
                    bad[str(path)] = (f"{path}: equipment folder name {entry.name!r} is not a safe id "
                                      f"(letters, digits, '_', '.', '-'; at most 64); rename the folder")
                    continue
                st = path.stat()
                files.append(SourceFile(path, entry.name, st.st_size, st.st_mtime))
    return files, ignored, bad


sha256_of = sha256_file  # the recording id is the sha256 of the file's bytes


def _base_row(item: SourceFile, status: str, now: datetime) -> dict:
    return {
        "recording_id": "", "equipment_id": item.equipment_id, "source_path": str(item.path),
        "size_bytes": item.size_bytes, "mtime": _utc(item.mtime), "status": status, "error": None,
        "n_samples": None, "channels": None, "sample_rate_hz": None, "recorded_at": None,
        "ingested_at": None, "n_windows": None, "warnings": [], "vibra_version": __version__, "rpm": None,
        "duplicate_of": None, "updated_at": now,
    }


def resolve(equipment: Equipment, settings: Settings, path: Path, mtime: float, *, file_rate: float | None,
            file_start: datetime | None, file_rpm: float | None) -> tuple[float, datetime, float | None, list[str]]:
    """Sample rate, start time and rpm of a recording from what the file said and the settings.

    Precedence: the file's own values; then a matching ``[[equipment.<id>.files]]`` rule; then the
    equipment; then the workspace default (rate) or the file name / start rule / mtime (start).
    """
    warnings = []
    rule = equipment.rule_for(path.name)
    rate = (file_rate or (rule and rule.sample_rate_hz) or equipment.sample_rate_hz
            or (settings.ingest.sample_rate_hz or None))
    if not rate:
        raise InputError(f"{path}: unknown sample rate (no time column in the file, no "
                         f"[equipment.{equipment.equipment_id}] sample_rate_hz, no [ingest] sample_rate_hz); "
                         "set one in vibra.toml")
    start = file_start or from_filename(path.name) or (
        equipment.start_rule.start_for(path.name) if equipment.start_rule else None)
    if start is None:
        start = _utc(mtime)
        warnings.append("no timestamp in the file or its name; used the file's modification time")
    rpm = file_rpm or (rule and rule.rpm) or equipment.rpm
    return float(rate), start, rpm, warnings


def process_file(ws: Workspace, settings: Settings, item: SourceFile, recording_id: str) -> FileResult:
    """Read one file, compute its indicators and write its ``features`` partitions
    (and its ``raw`` waveform with ``[ingest] keep_raw``).

    Raises :class:`InputError` for a file that cannot be used; writes nothing then.
    """
    equipment = settings.equipment_for(item.equipment_id)
    recording = open_recording(item.path, equipment, settings.ingest.chunk_rows,
                               on_time_gap=settings.ingest.on_time_gap)
    rate, start, rpm, warnings = resolve(equipment, settings, item.path, item.mtime, file_rate=recording.sample_rate_hz,
                                         file_start=recording.start, file_rpm=recording.rpm)
    writer = None
    chunks = recording.chunks
    if settings.ingest.keep_raw:
        meta = RawMeta(recording_id, item.equipment_id, str(item.path), list(recording.channels),
                       recording.sample_rate_hz, recording.start.isoformat() if recording.start else None,
                       recording.rpm, item.mtime, recording.units, recording.gaps)
        date = start.astimezone(timezone.utc).date().isoformat()
        writer = RawWriter(raw.raw_path(ws.table("raw"), date, meta), meta)
        chunks = writer.tee(chunks)
    try:
        result, partitions = features_for(ws, settings, item.equipment_id, recording_id, chunks,
                                          recording.channels, rate, start, rpm, str(item.path), gaps=recording.gaps,
                                          units=recording.units)
        if writer is not None:
            writer.commit()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    warnings = recording.warnings + warnings + result.warnings  # the reader's grow while it streams
    now = datetime.now(timezone.utc)
    row = _base_row(item, "completed", now)
    row.update(recording_id=recording_id, n_samples=result.n_samples, channels=recording.channels,
               sample_rate_hz=rate, recorded_at=start, ingested_at=now, n_windows=result.n_windows,
               warnings=warnings, rpm=rpm, channel_stats=json.dumps(result.channel_stats))
    return FileResult(row, partitions)


def features_for(ws: Workspace, settings: Settings, equipment_id: str, recording_id: str, chunks, channels,
                 rate: float, start: datetime, rpm: float | None, source: str, table_dir: Path | None = None,
                 gaps: list[tuple[int, float]] | None = None, units: dict[str, str] | None = None):
    """Compute a recording's indicators and write them to ``features`` (or ``table_dir``).

    Returns (FeatureResult with the physics warnings added, partitions written). A matching
    ``files`` rule with ``decimate`` low-passes and decimates the samples first.
    """
    equipment = settings.equipment_for(equipment_id)
    rule = equipment.rule_for(Path(source).name)
    if rule is not None and rule.decimate:
        q = rule.decimate
        chunks, rate = decimate_chunks(chunks, q), rate / q
        gaps = ((i // q, g) for i, g in (gaps if gaps is not None else []))  # lazy: filled while streaming
    machine = Machine.of(equipment, rpm)
    file_units = set((units or {}).values())
    if machine.units is None and len(file_units) == 1:  # the file's own units (TDMS, UFF) when the config has none
        machine = dataclasses.replace(machine, units=file_units.pop())
    result = compute(chunks, list(channels), sample_rate_hz=rate, start=start, params=settings.features,
                     equipment_id=equipment_id, recording_id=recording_id, source=source, machine=machine,
                     gaps=gaps, units=units)
    result.warnings[:0] = machine.checks(rate, equipment_id)
    partitions = lake.write_partitioned(result.table, table_dir or ws.table("features"), recording_id[:16])
    return result, partitions


class _Dedup:
    """Content hashes seen in this run and before it (thread-safe by the GIL's dict ops)."""

    def __init__(self, completed: dict[str, str]):
        self.owner = dict(completed)

    def claim(self, recording_id: str, path: str) -> str | None:
        """None if this path now owns the content; else the path that owns it."""
        owner = self.owner.setdefault(recording_id, path)
        return None if owner == path else owner


def _work(ws: Workspace, settings: Settings, item: SourceFile, dedup: _Dedup) -> FileResult:
    now = datetime.now(timezone.utc)
    try:
        recording_id = sha256_of(item.path)
    except OSError as exc:
        row = _base_row(item, "failed", now)
        row.update(error=f"{item.path}: cannot read ({exc.strerror}); check permissions")
        return FileResult(row)
    owner = dedup.claim(recording_id, str(item.path))
    if owner is not None:
        row = _base_row(item, "duplicate", now)
        row.update(recording_id=recording_id, duplicate_of=owner, ingested_at=now)
        return FileResult(row)
    try:
        return process_file(ws, settings, item, recording_id)
    except VibraError as exc:
        dedup.owner.pop(recording_id, None)
        row = _base_row(item, "failed", now)
        row.update(recording_id=recording_id, error=str(exc))
        return FileResult(row)
    except Exception as exc:  # noqa: BLE001 - a reader bug must fail this file, not the batch
        dedup.owner.pop(recording_id, None)
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        row = _base_row(item, "failed", now)
        row.update(recording_id=recording_id, error=f"{item.path}: could not be read ({type(exc).__name__}: {first}); "
                                                    "check the file, and report it if it looks valid")
        return FileResult(row)


def ensure_embedding_manifest(ws: Workspace, settings: Settings) -> str:
    """The manifest of the embedding the features written now carry (written once per definition)."""
    return embedding.ensure_manifest(ws.artifacts / "models" / "embedding", embedding.definition(settings.features.bands_hz))


def work_one(ws: Workspace, settings: Settings, completed: dict[str, str], item: SourceFile) -> FileResult:
    """Hash, read and compute one file (the unit a flow fans out; runs anywhere the workspace is mounted).

    ``completed`` maps content hashes already ingested to their files: such a
    file is a duplicate and is not read. Copies of one another within the same
    run are settled by :func:`run`'s commit, in file order, as a sequential run would.
    """
    return _work(ws, settings, item, _Dedup(completed))


FanOut = Callable[[list[SourceFile], dict[str, str]], list[FileResult]]


def run(ws: Workspace, settings: Settings, source: Path, *, include_expired: bool = False,
        progress: Callable[[str, dict], None] | None = None, fan_out: FanOut | None = None) -> IngestResult:
    """Ingest every new file under ``source``; returns the run's counts.

    ``progress(event, info)`` is called with ``start`` (files, bytes), ``file``
    (path, bytes, status) and ``wait`` (message) events, for a progress bar.
    ``fan_out(files, completed)`` (e.g. a Prefect flow mapping a task over the
    files, on threads or Dask workers) replaces the local thread pool: it returns
    :func:`work_one`'s result for every file, in order; the ledger is written once
    at the end, holding the ingest lock throughout.
    """
    source = source.expanduser().resolve()
    if not source.is_dir():
        raise InputError(f"{source}: not a folder; give the export folder holding one subfolder per machine")
    notify = progress or (lambda event, info: None)
    ws.ensure()
    catalog.ensure(ws.catalog_path)
    result = IngestResult(source=str(source))
    with run_record(ws, "ingest", settings) as counts, \
            exclusive(ws.data / ".ingest.lock", timeout_s=settings.ingest.lock_timeout_s, what="vibra ingest",
                      on_wait=lambda msg: notify("wait", {"message": msg})):
        started = time.perf_counter()
        hourly.rebuild_dirty(ws.lake)  # left over by a run that crashed
        ensure_embedding_manifest(ws, settings)
        files, ignored, bad = scan(source)
        result.ignored = len(ignored)
        seen, completed = catalog.skip_index(ws.catalog_path, include_expired)
        todo = [f for f in files if not _same(seen.get(str(f.path)), f)]
        result.files_seen = len(files) + len(bad)
        result.skipped = len(files) - len(todo)
        now = datetime.now(timezone.utc)
        rows = [_base_row(f, "pending", now) for f in todo]
        for path, reason in bad.items():
            if str(path) not in seen:
                item = SourceFile(Path(path), Path(path).parent.name, 0, 0.0)
                row = _base_row(item, "failed", now)
                row.update(error=reason, equipment_id="")
                rows.append(row)
                result.failed += 1
                result.failures[path] = reason
            else:
                result.skipped += 1
        catalog.write_rows(ws.catalog_path, rows)
        notify("start", {"files": len(todo), "bytes": sum(f.size_bytes for f in todo)})
        if fan_out is None:
            _process_all(ws, settings, todo, _Dedup(completed), result, notify)
        else:
            _commit(ws, settings, todo, fan_out(todo, dict(completed)), result)
        result.seconds = time.perf_counter() - started
        counts.update(new=result.new, skipped=result.skipped, duplicates=result.duplicates, failed=result.failed,
                      windows=result.windows)
        if result.failed:
            counts["status"] = "partial"
        count_ingest(ws, result)
    return result


def _same(previous: tuple[int, float] | None, item: SourceFile) -> bool:
    return previous is not None and previous[0] == item.size_bytes and abs(previous[1] - item.mtime) < 1e-5


def _process_all(ws: Workspace, settings: Settings, todo: list[SourceFile], dedup: _Dedup,
                 result: IngestResult, notify) -> None:
    pending_rows: list[FileResult] = []
    last_flush = time.monotonic()

    def flush() -> None:
        parts = {p for fr in pending_rows for p in fr.partitions}
        if parts:
            hourly.mark_dirty(ws.lake, parts)  # before the rows say "completed"; rebuilt at the end
        catalog.write_rows(ws.catalog_path, [fr.row for fr in pending_rows])
        pending_rows.clear()

    workers = max(1, settings.ingest.max_concurrent_files)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vibra-ingest") as pool:
        queue = iter(todo)
        running = {}
        for item in queue:
            running[pool.submit(_work, ws, settings, item, dedup)] = item
            if len(running) >= workers * 2:
                break
        while running:
            done, _ = wait(running, timeout=FLUSH_EVERY_S, return_when=FIRST_COMPLETED)
            for future in done:
                item = running.pop(future)
                fr = future.result()
                _count(result, fr)
                pending_rows.append(fr)
                notify("file", {"path": str(item.path), "bytes": item.size_bytes, "status": fr.row["status"]})
                nxt = next(queue, None)
                if nxt is not None:
                    running[pool.submit(_work, ws, settings, nxt, dedup)] = nxt
            if pending_rows and (time.monotonic() - last_flush >= FLUSH_EVERY_S or not running):
                in_flight = [str(i.path) for i in running.values()]
                flush()
                catalog.mark_processing(ws.catalog_path, in_flight, datetime.now(timezone.utc))
                last_flush = time.monotonic()
    if pending_rows:
        flush()
    hourly.rebuild_dirty(ws.lake)


def _commit(ws: Workspace, settings: Settings, todo: list[SourceFile], results: list[FileResult],
            result: IngestResult) -> None:
    """Settle copies within the run (the first file in order owns the content), then write the ledger."""
    if len(results) != len(todo):
        raise VibraError(f"fan-out returned {len(results)} results for {len(todo)} files; nothing recorded")
    owner: dict[str, tuple[str, list]] = {}
    final = []
    now = datetime.now(timezone.utc)
    for item, fr in zip(todo, results):
        rid = fr.row.get("recording_id")
        if fr.row["status"] == "completed" and rid in owner:
            kept = set(owner[rid][1])
            for date, eid in fr.partitions:
                if (date, eid) not in kept:  # its windows landed elsewhere: remove that copy
                    (lake.partition_dir(ws.table("features"), date, eid) / f"part-{rid[:16]}.parquet").unlink(
                        missing_ok=True)
            row = _base_row(item, "duplicate", now)
            row.update(recording_id=rid, duplicate_of=owner[rid][0], ingested_at=now)
            fr = FileResult(row)
        elif fr.row["status"] == "completed":
            owner[rid] = (str(item.path), fr.partitions)
        _count(result, fr)
        final.append(fr)
    parts = {p for fr in final for p in fr.partitions}
    if parts:
        hourly.mark_dirty(ws.lake, parts)
    catalog.write_rows(ws.catalog_path, [fr.row for fr in final])
    hourly.rebuild_dirty(ws.lake)


def _count(result: IngestResult, fr: FileResult) -> None:
    row = fr.row
    result.bytes_read += row["size_bytes"] or 0
    if row["status"] == "completed":
        result.new += 1
        result.windows += row["n_windows"] or 0
        result.warnings += len(row["warnings"] or [])
    elif row["status"] == "duplicate":
        result.duplicates += 1
    else:
        result.failed += 1
        result.failures[row["source_path"]] = row["error"]
