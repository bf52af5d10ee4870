"""The ingest stage: source tree → ledger rows + ``features`` and ``hourly`` partitions.

Incremental and idempotent: files whose (path, size, mtime) the ledger already
holds are skipped before hashing; a file whose content hash matches a completed
recording is recorded as a duplicate. One ingest runs per workspace at a time
(a file lock); the catalog is opened only for short transactions.

Who is to blame decides what happens. A file that cannot be read or parsed, or
whose times make no sense, is recorded as failed with its reason and the batch
goes on; a failure whose cause can go away without the file changing (an
unreadable source, a clock ahead) is tried again on every run, and any other
failed file when the settings that concern it change (or with ``retry_failed``).
Everything else — the lake's disk full or read-only, the catalog, memory, a bug
or a Rust panic — stops the run (:class:`IngestStopped`) with no file blamed:
what completed is kept and a plain rerun does the rest.

Group commit: a file's windows are written to the ``features`` table but not committed; every
second (or every :data:`BATCH_FILES` files) the files finished since are added to the table in one
Delta commit, then their ledger rows are written in one transaction. A run killed mid-batch leaves
that batch's files invisible (no commit names them) and their rows pending, so the rerun processes
them again: nothing is lost or stored twice.

A completed file whose settings changed since it was ingested (its machine's units, rpm, geometry,
sample rate, the window settings…: :mod:`vibra.ingest.staleness`) is recomputed at the end of the
run by the same rebuild as ``vibra features rebuild`` (``[ingest] on_settings_change = "warn"``
lists them and the command instead).

A completed file whose content changed is a new version of the same recording:
its old windows are removed just before the new ones are written, never both
kept (``[ingest] on_change = "refuse"`` keeps the old version instead). A file
still growing while it is read is deferred to the next run.
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from vibra import __version__

from vibra.storage import hourly
from vibra.errors import BusyError, CorruptError, InputError, VibraError
from vibra.storage.hashing import sha256_file
from vibra.settings import Settings
from vibra.storage import lake, ledger, raw, tables
from vibra.storage.raw import RawMeta, RawWriter
from vibra.ingest.faults import IngestStopped, RetryableInputError, describe, guarded, is_panic, open_guarded
from vibra.ingest.prefetch import prefetch
from vibra.readers import hashed_while_read
from vibra.ingest.recordings import check_times, compute_features, ensure_embedding_manifest, resolve, utc_of
from vibra.ingest.sources import RETRY, SourceFile, display, scan
from vibra.ingest import rebuild, staleness
from vibra.ingest.staleness import settings_hash  # noqa: F401 - the hash a ledger row keeps (imported from here)
from vibra.workspace import Workspace

from vibra_pipelines.ingest import local
from vibra_pipelines.runs import StageResult, count_ingest, recorded

FLUSH_EVERY_S = 1.0  # a batch: the files finished within a second ...
BATCH_FILES = 256  # ... or this many, whichever comes first: one lake commit and one ledger transaction
PREFETCH_BLOCKS = 1  # blocks a file's reader parses ahead of the one being computed
log = logging.getLogger("vibra")

__all__ = ["IngestResult", "IngestStopped", "SourceFile", "run", "scan", "work_one"]


class _Deferred(Exception):
    """The file changed while it was being read (still being written)."""


class _Stop(Exception):
    """Raised out of a file's guard: the failure is the environment's or a bug, not the file's."""

    def __init__(self, item: SourceFile, cause: BaseException, ws: Workspace | None = None, message: str | None = None):
        super().__init__(message or describe(cause, item, ws))
        self.item = item
        self.cause = cause

    def __reduce__(self):  # raised in a worker process (local.py): its message and its cause's traceback cross as text
        import traceback

        text = "".join(traceback.format_exception(self.cause)).rstrip()
        return (_Stop, (self.item, _WorkerError(f"in an ingest worker process:\n{text}"), None, str(self)))


class _WorkerError(Exception):
    """The cause of a stop in a worker process, as the traceback text it had there."""


@dataclass
class FileResult:
    """One file's outcome. ``row`` is its ledger row; ``keep_previous``: the new version failed or
    was refused and the row is not written (the version completed before stays current);
    ``deferred``: the file changed while being read; ``adopt``: earlier versions held by
    duplicates of this file, whose ownership passes to them; ``files``: its ``features`` files,
    written but not yet committed to the table (its batch's commit adds them); ``raw``: its kept raw
    waveform, when ``[ingest] keep_raw`` wrote one."""

    row: dict
    partitions: list[tuple[str, str]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    keep_previous: bool = False
    deferred: bool = False
    adopt: list[str] = field(default_factory=list)
    raw: Path | None = None


@dataclass
class IngestResult(StageResult):
    """Counts of one run; ``failures`` maps file → reason; ``notes``: what the scan and the run
    want the user to know (unreadable folders, vanished files, deferred files)."""

    COUNTS = ("new", "skipped", "duplicates", "failed", "deferred", "windows")

    source: str
    files_seen: int = 0
    new: int = 0
    skipped: int = 0
    duplicates: int = 0
    failed: int = 0
    ignored: int = 0
    deferred: int = 0
    windows: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    warnings: int = 0
    workers: int = 1  # processes that worked the files (1: this one, on threads)
    failures: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    recomputed: int = 0
    stale: list[dict] = field(default_factory=list)

    def counts(self) -> dict:
        return {**super().counts(), "recomputed": self.recomputed, "stale": sum(s["files"] for s in self.stale),
                **({"status": "partial"} if self.failed else {})}


sha256_of = sha256_file  # the recording id is the sha256 of the file's bytes


def _base_row(item: SourceFile, status: str, now: datetime) -> dict:
    return {
        "recording_id": "", "equipment_id": item.equipment_id, "source_path": display(item.path),
        "size_bytes": item.size_bytes, "mtime": utc_of(item.mtime), "status": status, "error": None,
        "n_samples": None, "channels": None, "sample_rate_hz": None, "recorded_at": None,
        "ingested_at": None, "n_windows": None, "warnings": [], "vibra_version": __version__, "rpm": None,
        "duplicate_of": None, "updated_at": now,
    }


def _unchanged(item: SourceFile) -> bool:
    """Whether the file still has the size and mtime the scan saw (it is not still being written)."""
    try:
        st = os.stat(item.path)
    except OSError:
        return False
    return st.st_size == item.size_bytes and abs(st.st_mtime - item.mtime) < 1e-6


@dataclass
class _Computed:
    """A file read and its indicators computed, not yet stored."""

    recording: object  # vibra.readers.Recording
    result: object  # vibra.ingest.features.FeatureResult
    sample_rate_hz: float
    start: datetime
    rpm: float | None
    warnings: list[str]
    writer: RawWriter | None = None

    @property
    def content_id(self) -> str | None:
        """The sha256 the reader took while reading (None when the reader does not hash)."""
        hashed = self.recording.content_hash
        return hashed.hexdigest if hashed is not None else None


def _compute(ws: Workspace, settings: Settings, item: SourceFile, recording_id: str | None) -> _Computed:
    """Read one file and compute its indicators; nothing is stored yet (a raw waveform being kept
    is staged, see :meth:`RawWriter.commit`). ``recording_id`` None: the reader hashes the file
    while reading it (:attr:`_Computed.content_id`), and the table's ids are filled in by :func:`_store`."""
    equipment = settings.equipment_for(item.equipment_id)
    source = display(item.path)
    recording = open_guarded(item.path, equipment, settings.ingest.chunk_rows, on_time_gap=settings.ingest.on_time_gap)
    sample_rate_hz, start, rpm, warnings = resolve(equipment, settings, item.path, item.mtime, file_sample_rate_hz=recording.sample_rate_hz,
                                         file_start=recording.start, file_rpm=recording.rpm)
    # what the header declares (HDF5, TDMS, UFF, audio) is checked before a sample is read: a 2.5 KB file
    # declaring 10^12 samples fails here instead of reading fill values for hours
    check_times(source, start, sample_rate_hz, recording.declared_samples or settings.features.frame_length, settings)
    writer = None
    # the next block parses on a thread while this one is computed (one block ahead: memory stays flat)
    chunks = guarded(item.path, prefetch(recording.chunks, PREFETCH_BLOCKS))
    if settings.ingest.keep_raw:  # the raw file is named by the id: hashed before reading
        meta = RawMeta(recording_id, item.equipment_id, source, list(recording.channels),
                       recording.sample_rate_hz, recording.start.isoformat() if recording.start else None,
                       recording.rpm, item.mtime, recording.units, recording.gaps)
        date = start.astimezone(timezone.utc).date().isoformat()
        writer = RawWriter(raw.raw_path(ws.table("raw"), date, meta), meta)
        chunks = writer.tee(chunks)
    try:
        result = compute_features(settings, item.equipment_id, recording_id or "", chunks, recording.channels, sample_rate_hz,
                                  start, rpm, source, gaps=recording.gaps, units=recording.units)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return _Computed(recording, result, sample_rate_hz, start, rpm, warnings, writer)


def _store(ws: Workspace, item: SourceFile, computed: _Computed, recording_id: str) -> FileResult:
    """Write a computed file's ``features`` files, uncommitted (and its kept raw waveform), replacing its
    earlier versions' windows; its ledger row. Raises :class:`_Deferred` if the file changed
    while it was read."""
    result, recording, writer = computed.result, computed.recording, computed.writer
    try:
        if not _unchanged(item):
            raise _Deferred()
        table = result.table
        if table["recording_id"][0] != recording_id:  # hashed while read: the id is known only now
            import polars as pl

            table = table.with_columns(pl.lit(recording_id, dtype=pl.String).alias("recording_id"))
        replace_versions(ws, item, keep=recording_id)
        files = tables.stage_features(ws, table, recording_id)  # committed with its batch (_settle)
        if writer is not None:
            writer.commit()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    warnings = recording.warnings + computed.warnings + result.warnings  # the reader's grow while it streams
    now = datetime.now(timezone.utc)
    row = _base_row(item, "completed", now)
    row.update(recording_id=recording_id, n_samples=result.n_samples, channels=recording.channels,
               sample_rate_hz=computed.sample_rate_hz, recorded_at=computed.start, ingested_at=now, n_windows=result.n_windows,
               warnings=warnings, rpm=computed.rpm, channel_stats=json.dumps(result.channel_stats))
    return FileResult(row, [lake.partition_of(f) for f in files], files=files,
                      raw=writer.final if writer is not None else None)


def process_file(ws: Workspace, settings: Settings, item: SourceFile, recording_id: str) -> FileResult:
    """Read one file, compute its indicators and write its ``features`` files, uncommitted (the
    caller commits ``files`` with :func:`vibra.storage.tables.commit_features`), and its ``raw``
    waveform with ``[ingest] keep_raw``, replacing its earlier versions' windows.

    Raises :class:`InputError` for a file that cannot be used (nothing written then),
    :class:`_Deferred` for a file that changed while it was read, and anything else for
    failures that are not the file's.
    """
    return _store(ws, item, _compute(ws, settings, item, recording_id), recording_id)


def replace_versions(ws: Workspace, item: SourceFile, keep: str | None) -> None:
    """Remove the windows (and raw waveforms) of the file's earlier versions, before its new
    version (``keep``, None for none) is written: a crash in between leaves neither version,
    which the rerun mends, never both. Their hourly partitions are marked for rebuild first."""
    if not item.old_ids:
        return
    ids = set(item.old_ids)
    table = ws.table("features")
    found = lake.recording_partitions(table, item.equipment_id, ids)
    if found:
        hourly.mark_dirty(ws.lake, {(p.parent.name.split("=", 1)[1], item.equipment_id) for p in found})
        keep_name = {lake.RECORDING_FILE.format(keep[:16])} if keep else set()
        lake.remove_recordings(table, found, ids, keep=keep_name)
    tables.drop_raw(ws, item.equipment_id, ids - {keep})


class _Dedup:
    """Content hashes completed before this run (``completed``, read only) and claimed in it (``claims``: a dict,
    thread-safe by the GIL's dict ops, or a manager's dict that worker processes share: :mod:`.local`)."""

    def __init__(self, completed: dict[str, str], claims=None):
        self.completed = completed
        self.claims = {} if claims is None else claims

    def claim(self, recording_id: str, path: str) -> str | None:
        """None if this path now owns the content; else the path that owns it."""
        before = self.completed.get(recording_id)
        if before is not None and before != path:
            return before
        owner = self.claims.setdefault(recording_id, path)
        return None if owner == path else owner

    def release(self, recording_id: str, path: str) -> None:
        if self.claims.get(recording_id) == path:
            self.claims.pop(recording_id, None)


def _failed(item: SourceFile, now: datetime, error: str, kind: str, digest: str, recording_id: str = "") -> FileResult:
    row = _base_row(item, "failed", now)
    row.update(recording_id=recording_id, error=error, error_kind=kind, settings_hash=digest)
    # a new version of a completed file that cannot be used leaves the completed version in place
    return FileResult(row, keep_previous=item.previous_id is not None)


def _hashed_while_read(settings: Settings, item: SourceFile) -> bool:
    """Whether the file is hashed in its reader's pass (one read of its bytes) rather than before reading.

    A file never completed before, whose reader hashes as it reads and whose raw waveform is not
    kept (that file is named by the id): its id is known only after the parse, so a duplicate is
    found then and its work discarded. A file completed before is hashed first: an unchanged copy
    (a touched file) or a refused change is then settled without parsing.
    """
    return (item.previous_id is None and not settings.ingest.keep_raw
            and hashed_while_read(item.path, settings.equipment_for(item.equipment_id)))


def _id_of_failed(item: SourceFile) -> str:
    """A failed file's id when its reader stopped before hashing it all ("" if it cannot be read)."""
    try:
        return sha256_of(item.path)
    except OSError:
        return ""


def _duplicate(ws: Workspace, item: SourceFile, recording_id: str, owner: str, now: datetime, digest: str) -> FileResult:
    replace_versions(ws, item, keep=None)  # the path now holds a copy of another file
    row = _base_row(item, "duplicate", now)
    row.update(recording_id=recording_id, duplicate_of=owner, ingested_at=now, settings_hash=digest)
    return FileResult(row)


def _work(ws: Workspace, settings: Settings, item: SourceFile, dedup: _Dedup) -> FileResult:
    """One file inside its guard: the file's own faults become its row; anything else raises :class:`_Stop`.

    The content hash claims the file's content in ``dedup`` before anything is stored: taken
    before reading, or (:func:`_hashed_while_read`) by the reader on its way through the bytes,
    in which case a copy found after the parse discards its work.
    """
    now = datetime.now(timezone.utc)
    digest = settings_hash(settings, item.equipment_id)
    source = display(item.path)
    recording_id = None
    changed = False
    if not _hashed_while_read(settings, item):
        try:
            recording_id = sha256_of(item.path)
        except OSError as exc:
            return _failed(item, now, f"{source}: cannot read ({exc.strerror}); check its permissions — it is tried "
                                      "again on every run", RETRY, digest)
        except MemoryError as exc:
            raise _Stop(item, exc, ws) from exc
        changed = item.previous_id is not None and recording_id != item.previous_id
        if changed and settings.ingest.on_change == "refuse":
            return _failed(item, now, f"{source}: changed since it was ingested (new content); [ingest] on_change = "
                                      "\"refuse\" keeps the version ingested before — restore the file, or set "
                                      "on_change = \"replace\" to ingest the new version in its place", "input",
                           digest, recording_id)
    try:
        if recording_id is not None and (owner := dedup.claim(recording_id, source)) is not None:
            return _duplicate(ws, item, recording_id, owner, now, digest)
        computed = _compute(ws, settings, item, recording_id)
        if recording_id is None:
            recording_id = computed.content_id
            if (owner := dedup.claim(recording_id, source)) is not None:
                return _duplicate(ws, item, recording_id, owner, now, digest)  # its work is discarded
        fr = _store(ws, item, computed, recording_id)
        fr.row["settings_hash"] = digest
        return fr
    except (CorruptError, BusyError) as exc:  # a damaged lake file or a held catalog is not this file's fault
        _release(dedup, recording_id, source)
        raise _Stop(item, exc, ws) from exc
    except VibraError as exc:
        _release(dedup, recording_id, source)
        kind = RETRY if isinstance(exc, RetryableInputError) else "input"
        fr = _failed(item, now, str(exc), kind, digest, recording_id if recording_id is not None else _id_of_failed(item))
        if changed:
            fr.row["error"] += "; the version ingested before is kept"
        return fr
    except _Deferred:
        _release(dedup, recording_id, source)
        row = _base_row(item, "pending", now)
        row.update(error=f"{source}: changed while it was being read (still being written?); deferred to the next run")
        return FileResult(row, deferred=True)
    except BaseException as exc:
        _release(dedup, recording_id, source)
        if isinstance(exc, Exception) or is_panic(exc):
            raise _Stop(item, exc, ws) from exc
        raise  # KeyboardInterrupt, SystemExit


def _release(dedup: _Dedup, recording_id: str | None, source: str) -> None:
    if recording_id is not None:
        dedup.release(recording_id, source)


def work_one(ws: Workspace, settings: Settings, completed: dict[str, str], item: SourceFile) -> FileResult:
    """Hash, read and compute one file (the unit a flow fans out; runs anywhere the workspace is mounted, or in
    a private workspace whose lake is a cache of the same URI: see :mod:`vibra_pipelines.ingest.remote`).

    ``completed`` maps content hashes already ingested to their files: such a
    file is a duplicate and is not read. Copies of one another within the same
    run are settled by :func:`run`'s commit, in file order, as a sequential run would.
    Raises :class:`IngestStopped` for a failure that is not the file's.
    """
    try:
        return _work(ws, settings, item, _Dedup(completed))
    except _Stop as stop:
        raise IngestStopped(str(stop)) from stop.cause


FanOut = Callable[[list[SourceFile], dict[str, str]], list[FileResult]]


@recorded("ingest")
def run(ws: Workspace, settings: Settings, source: Path, *, include_expired: bool = False, retry_failed: bool = False,
        progress: Callable[[str, dict], None] | None = None, fan_out: FanOut | None = None) -> IngestResult:
    """Ingest every new or changed file under ``source``; returns the run's counts.

    A failed file is tried again when it changed, when the settings that concern it changed,
    on every run when its failure can pass by itself, and always with ``retry_failed``.
    ``progress(event, info)`` is called with ``start`` (files, bytes), ``file``
    (path, bytes, status) and ``wait`` (message) events, for a progress bar.
    ``fan_out(files, completed)`` (e.g. a Prefect flow mapping a task over the
    files, on threads or Dask workers) replaces the local thread pool: it returns
    :func:`work_one`'s result for every file, in order (files written, not committed);
    the lake commit and the ledger are written once at the end, holding the ingest
    lock throughout.

    Raises :class:`IngestStopped` when the environment fails or vibra hits a bug: what
    completed before is recorded, no file is blamed, and a plain rerun resumes.

    With ``[ingest] workers`` > 1 (or 0 on a large run) the files are worked by spawned processes,
    which import the main module: a script calling this needs ``if __name__ == "__main__":``.
    """
    local.check_not_bootstrapping()
    source = source.expanduser().resolve()
    if not source.is_dir():
        raise InputError(f"{source}: not a folder; give the export folder holding one subfolder per machine")
    notify = progress or (lambda event, info: None)
    ws.ensure()
    ledger.ensure(ws)
    result = IngestResult(source=display(source))
    with ledger.ingest_lock(ws, settings, on_wait=lambda msg: notify("wait", {"message": msg})):
        started = time.perf_counter()
        try:
            _run(ws, settings, source, include_expired, retry_failed, notify, fan_out, result)
        except IngestStopped as exc:
            log.error("%s", exc, exc_info=exc.__cause__ or exc)
            exc.partial = result  # what completed before the stop: recorded with the failed run
            raise
        except BaseException as exc:
            if not (isinstance(exc, Exception) or is_panic(exc)) or isinstance(exc, VibraError):
                raise
            log.error("ingest stopped", exc_info=exc)
            stopped = IngestStopped(describe(exc, None, ws))
            stopped.partial = result
            raise stopped from exc
        result.seconds = time.perf_counter() - started
        count_ingest(ws, result)
    return result


def _to_do(files: list[SourceFile], index) -> list[SourceFile]:
    """The files to ingest, each told which earlier versions of itself to remove (``old_ids``: content no other
    file's current row stands on) and which completed recording it replaces (``previous_id``)."""
    held: dict[str, set[str]] = {}
    for path, prev in index.current.items():
        if prev.status in ("completed", "duplicate", "expired") and prev.recording_id:
            held.setdefault(prev.recording_id, set()).add(path)
    for f in files:
        key = display(f.path)
        prev = index.current.get(key)
        versions = index.versions.get(key, set())
        f.old_ids = tuple(sorted(r for r in versions if not (held.get(r, set()) - {key})))
        if prev is not None and prev.status in ("completed", "pending", "processing") and versions:
            f.previous_id = index.latest_completed.get(key)
    return files


def _run(ws: Workspace, settings: Settings, source: Path, include_expired: bool, retry_failed: bool, notify,
         fan_out: FanOut | None, result: IngestResult) -> None:
    hourly.rebuild_dirty(ws.lake)  # left over by a run that crashed
    found = scan(source)
    result.ignored = len(found.ignored)
    result.notes += found.warnings
    for note in found.warnings:
        log.warning("%s", note)
    index = ledger.skip_index(ws)
    done = ("completed", "duplicate", "failed") + (() if include_expired else ("expired",))
    digests: dict[str, str] = {}

    def digest(equipment_id: str) -> str:
        if equipment_id not in digests:
            digests[equipment_id] = settings_hash(settings, equipment_id)
        return digests[equipment_id]

    def settled(path: str, size: int, mtime: float, equipment_id: str) -> bool:
        prev = index.current.get(path)
        if prev is None or prev.status not in done or prev.size_bytes != size or abs(prev.mtime - mtime) >= 1e-5:
            return False
        if prev.status == "failed":
            return not (retry_failed or prev.error_kind == RETRY or prev.settings_hash != digest(equipment_id))
        return True

    todo = _to_do([f for f in found.files if not settled(display(f.path), f.size_bytes, f.mtime, f.equipment_id)],
                  index)
    result.files_seen = len(found.files) + len(found.refused)
    result.skipped = len(found.files) - len(todo)
    now = datetime.now(timezone.utc)
    rows = [_base_row(f, "pending", now) for f in todo]
    for bad in found.refused:
        if settled(bad.path, bad.size_bytes, bad.mtime, bad.equipment_id):
            result.skipped += 1
            continue
        item = SourceFile(Path(bad.path), bad.equipment_id, bad.size_bytes, bad.mtime)
        row = _base_row(item, "failed", now)
        row.update(source_path=bad.path, error=bad.reason, error_kind=bad.kind,
                   settings_hash=digest(bad.equipment_id))
        rows.append(row)
        result.failed += 1
        result.failures[bad.path] = bad.reason
    ledger.write_rows(ws, rows)
    if todo:  # the embedding the new features carry (an unchanged rerun writes none, and loads no numpy)
        ensure_embedding_manifest(ws, settings)
    notify("start", {"files": len(todo), "bytes": sum(f.size_bytes for f in todo)})
    if fan_out is None:
        _process_all(ws, settings, todo, index.completed, result, notify)
    else:
        _commit(ws, todo, fan_out(todo, dict(index.completed)), result)
    machines = sorted({f.equipment_id for f in found.files})
    staleness.remember(ws, {digest(e): staleness.payload(settings, e) for e in machines})
    _settings_changed(ws, settings, machines, [display(f.path) for f in found.files], result, notify)


def _settings_changed(ws: Workspace, settings: Settings, machines: list[str], paths: list[str], result: IngestResult,
                      notify) -> None:
    """Recompute (or list) the completed files found whose settings changed since they were ingested."""
    stale = staleness.find(ws, settings, machines, paths)
    if not stale:
        return
    if settings.ingest.on_settings_change == "warn":
        result.stale = [{"equipment_id": s.equipment_id, "files": s.files, "why": s.why} for s in stale]
        note = (f"{sum(s.files for s in stale)} ingested file(s) were computed with other settings "
                f"({'; '.join(f'{s.equipment_id}: {s.reason}' for s in stale)}); recompute them with "
                f"`{staleness.rebuild_command(stale)}`")
        result.notes.append(note)
        log.warning("%s", note)
        return
    done = rebuild.recompute(ws, settings, [s.equipment_id for s in stale],
                             lambda event, info: notify(event, info) if event == "wait" else None)
    result.recomputed = done.recordings - done.kept_stale
    result.notes += [f"{s.equipment_id}: {s.files} file(s) recomputed ({s.reason})" for s in stale]
    result.notes += [f"{path}: settings changed but it could not be recomputed, its old windows are kept ({why})"
                     for path, why in done.problems.items()]


def _settle(ws: Workspace, settled: list[FileResult]) -> None:
    """Close a batch of finished files: their ``features`` files in one commit of the table, then the
    hourly marks, then the rows in one transaction. Killed before the commit, the batch's files stay
    invisible and its rows pending (the rerun does them again); killed after it, the rerun writes the
    same files under the same names again, so nothing is ever stored twice."""
    tables.commit_features(ws, [f for fr in settled if not fr.keep_previous for f in fr.files])
    parts = {p for fr in settled for p in fr.partitions}
    if parts:
        hourly.mark_dirty(ws.lake, parts)  # before the rows say "completed"; rebuilt at the end
    _pause("settle:committed")
    now = datetime.now(timezone.utc)
    for fr in settled:
        for rid in fr.adopt:
            ledger.adopt(ws, rid, now)
    ledger.drop_pending(ws, [fr.row["source_path"] for fr in settled if fr.keep_previous])
    ledger.write_rows(ws, [fr.row for fr in settled if not fr.keep_previous])
    _pause("settle:recorded")


PAUSE = os.environ.get("VIBRA_TEST_PAUSE")  # test only: the step at which a kill test stops this process


def _pause(point: str) -> None:
    """For kill tests only (``tests/test_kill_points.py``): with ``VIBRA_TEST_PAUSE=<point>`` set, write this
    process's pid to ``VIBRA_TEST_PAUSE_MARK`` and wait to be killed at that step. Unset (always, outside
    tests), it costs one comparison per batch."""
    if PAUSE == point:
        Path(os.environ["VIBRA_TEST_PAUSE_MARK"]).write_text(str(os.getpid()))
        time.sleep(600)


@contextmanager
def _threads(ws: Workspace, settings: Settings, completed: dict[str, str], width: int):
    """``submit(item)`` of :func:`_work` on threads of this process (the processes' twin: :func:`.local.pool`)."""
    dedup = _Dedup(completed)
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="vibra-ingest") as pool:
        yield lambda item: pool.submit(_work, ws, settings, item, dedup)


def _process_all(ws: Workspace, settings: Settings, todo: list[SourceFile], completed: dict[str, str],
                 result: IngestResult, notify) -> None:
    """Work the files on threads of this process or on worker processes (``[ingest] workers``), settling
    the finished ones in batches here: the workers write files, only this process commits and records."""
    pending_rows: list[FileResult] = []
    last_flush = time.monotonic()
    stops: list[_Stop] = []

    def flush() -> None:
        _settle(ws, pending_rows)
        pending_rows.clear()

    tables.open_features(ws)  # before any file is staged: the table's first commit must take only its batch
    result.workers = local.auto_workers(settings.ingest.workers, len(todo))
    if result.workers > 1:
        workers, submitting = result.workers, local.pool(ws, settings, completed, result.workers)
    else:
        workers = max(1, settings.ingest.max_concurrent_files)
        submitting = _threads(ws, settings, completed, workers)
    with submitting as submit:
        queue = iter(todo)
        running = {}
        for item in queue:
            running[submit(item)] = item
            if len(running) >= workers * 2:
                break
        while running:
            done, _ = wait(running, timeout=FLUSH_EVERY_S, return_when=FIRST_COMPLETED)
            for future in done:
                item = running.pop(future)
                try:
                    fr = future.result()
                except _Stop as stop:  # let the files in flight finish, start no more
                    stops.append(stop)
                    continue
                except BrokenProcessPool as exc:  # a worker died: every file in flight comes here, none to blame
                    stops.append(_Stop(item, BrokenProcessPool(str(exc)), message=local.CRASHED))  # a fresh one each:
                    # the pool raises one instance for every future, whose traceback would grow with each raise
                    continue
                _adopters(fr, item)
                _count(result, fr, item)
                pending_rows.append(fr)
                notify("file", {"path": display(item.path), "bytes": item.size_bytes, "status": fr.row["status"]})
                nxt = None if stops else next(queue, None)
                if nxt is not None:
                    running[submit(nxt)] = nxt
            if pending_rows and (time.monotonic() - last_flush >= FLUSH_EVERY_S or len(pending_rows) >= BATCH_FILES
                                 or not running):
                in_flight = [display(i.path) for i in running.values()]
                flush()
                ledger.mark_processing(ws, in_flight, datetime.now(timezone.utc))
                last_flush = time.monotonic()
    if pending_rows:
        flush()
    if stops:
        _wind_down(ws, stops)
    hourly.rebuild_dirty(ws.lake)


def _wind_down(ws: Workspace, stops: list[_Stop]) -> None:
    """After a stop: put the stopped files back to pending and bring hourly up to date as far as the
    environment lets us (what fails here is left to the rerun), then raise the first cause."""
    try:
        ledger.write_rows(ws, [_base_row(s.item, "pending", datetime.now(timezone.utc)) for s in stops])
        hourly.rebuild_dirty(ws.lake)
    except Exception as exc:  # noqa: BLE001 - the first cause is the one to report
        log.warning("could not tidy up after the stop (%s); the next run does it", type(exc).__name__)
    for extra in stops[1:]:
        if str(extra) != str(stops[0]):  # a dead worker stops every file in flight with the same line
            log.error("%s", extra, exc_info=extra.cause)
    raise IngestStopped(str(stops[0])) from stops[0].cause


def _adopters(fr: FileResult, item: SourceFile) -> None:
    """Earlier versions of a file that other files hold as duplicates pass to them once it moved on."""
    if fr.row["status"] in ("completed", "duplicate") and not fr.keep_previous:
        fr.adopt = [rid for rid in _held_elsewhere(item) if rid != fr.row.get("recording_id")]


def _held_elsewhere(item: SourceFile) -> list[str]:
    return [item.previous_id] if item.previous_id and item.previous_id not in item.old_ids else []


def _commit(ws: Workspace, todo: list[SourceFile], results: list[FileResult], result: IngestResult) -> None:
    """Settle copies within the run (the first file in order owns the content), then write the ledger."""
    if len(results) != len(todo):
        raise VibraError(f"fan-out returned {len(results)} results for {len(todo)} files; nothing recorded")
    owner: dict[str, tuple[str, list, Path | None]] = {}
    final = []
    now = datetime.now(timezone.utc)
    for item, fr in zip(todo, results):
        rid = fr.row.get("recording_id")
        if fr.row["status"] == "completed" and rid in owner:
            kept = set(owner[rid][1])
            # its windows landed elsewhere: remove that copy (written, not committed)
            lake.remove_files(f for f in fr.files if lake.partition_of(f) not in kept)
            if fr.raw is not None and fr.raw != owner[rid][2]:  # its raw waveform too (``raw`` has no log)
                lake.unlink([fr.raw])
            row = _base_row(item, "duplicate", now)
            row.update(recording_id=rid, duplicate_of=owner[rid][0], ingested_at=now,
                       settings_hash=fr.row.get("settings_hash"))
            # its partitions stay marked for hourly: a worker without this workspace returns there the partitions
            # it made stale removing the file's earlier version (ingest_remote); the others rebuild unchanged
            fr = FileResult(row, partitions=fr.partitions)
        elif fr.row["status"] == "completed":
            owner[rid] = (display(item.path), fr.partitions, fr.raw)
        _adopters(fr, item)
        _count(result, fr, item)
        final.append(fr)
    _settle(ws, final)
    hourly.rebuild_dirty(ws.lake)


def _count(result: IngestResult, fr: FileResult, item: SourceFile) -> None:
    row = fr.row
    if fr.deferred:
        result.deferred += 1
        result.notes.append(row["error"])
        return
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
