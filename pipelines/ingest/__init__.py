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

A completed file whose content changed holds a new recording in the old one's place:
its old windows are removed just before the new ones are written, never both
kept (``[ingest] on_change = "refuse"`` keeps the old version instead). A file
still growing while it is read is deferred to the next run.

The package: :mod:`.plan` which files a run does; :mod:`.work` one file inside its guard, over
:mod:`.compute` (read, compute, stage its files); :mod:`.batches` settling finished files (one lake
commit, one ledger transaction); :mod:`.result` what a file and a run produce; :mod:`.local` worker
processes of this machine, :mod:`.remote` workers that share only the lake URI.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from vibra.storage import hourly
from vibra.errors import InputError, VibraError
from vibra.settings import Settings
from vibra.storage import ledger
from vibra.ingest.faults import IngestStopped, describe, is_panic
from vibra.ingest.recordings import ensure_embedding_manifest
from vibra.ingest.sources import SourceFile, display, scan
from vibra.ingest import rebuild, staleness
from vibra.workspace import Workspace

from vibra_pipelines.runs import count_ingest, recorded

from . import local
from .batches import _commit, _process_all
from .plan import _to_do, skip_rule
from .result import FileResult, IngestResult, _base_row
from .work import sha256_of, work_one

log = logging.getLogger("vibra")

__all__ = ["FileResult", "IngestResult", "IngestStopped", "SourceFile", "run", "scan", "sha256_of", "work_one"]


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


def _run(ws: Workspace, settings: Settings, source: Path, include_expired: bool, retry_failed: bool, notify,
         fan_out: FanOut | None, result: IngestResult) -> None:
    hourly.rebuild_dirty(ws.lake)  # left over by a run that crashed
    found = scan(source)
    result.ignored = len(found.ignored)
    result.notes += found.warnings
    for note in found.warnings:
        log.warning("%s", note)
    index = ledger.skip_index(ws)
    digest, settled = skip_rule(settings, index, include_expired, retry_failed)
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
