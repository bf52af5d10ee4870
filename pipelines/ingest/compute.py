"""One file read and its indicators computed (nothing stored), then stored: its ``features`` files staged
uncommitted, its kept raw waveform, its earlier versions' windows removed, its ledger row."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone

from vibra.storage import hourly
from vibra.settings import Settings
from vibra.storage import lake, raw, tables
from vibra.storage.raw import RawMeta, RawWriter
from vibra.ingest.faults import guarded, open_guarded
from vibra.ingest.prefetch import prefetch
from vibra.ingest.recordings import check_times, compute_features, resolve
from vibra.ingest.sources import SourceFile, display
from vibra.workspace import Workspace

from .result import FileResult, _base_row


PREFETCH_BLOCKS = 1  # blocks a file's reader parses ahead of the one being computed


class _Deferred(Exception):
    """The file changed while it was being read (still being written)."""


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
