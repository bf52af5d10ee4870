"""Settling finished files in batches: one lake commit, then one ledger transaction; the files worked on
threads of this process, on worker processes (:mod:`.local`) or by a caller's fan-out."""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from vibra.storage import hourly
from vibra.errors import VibraError
from vibra.settings import Settings
from vibra.storage import lake, ledger, tables
from vibra.ingest.faults import IngestStopped
from vibra.ingest.sources import SourceFile, display
from vibra.workspace import Workspace

from . import local
from .result import FileResult, IngestResult, _base_row, _count
from .work import _Dedup, _Stop, _work

log = logging.getLogger("vibra")


FLUSH_EVERY_S = 1.0  # a batch: the files finished within a second ...
BATCH_FILES = 256  # ... or this many, whichever comes first: one lake commit and one ledger transaction


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
