"""One file inside its guard: its content claimed once by hash (a copy is a duplicate), its own faults its
failed row, anything else a stop that blames no file (the unit threads, worker processes and flows run)."""

from __future__ import annotations

from datetime import datetime, timezone

from vibra.errors import BusyError, CorruptError, VibraError
from vibra.storage.hashing import sha256_file
from vibra.settings import Settings
from vibra.ingest.faults import IngestStopped, RetryableInputError, describe, is_panic
from vibra.readers import hashed_while_read
from vibra.ingest.sources import RETRY, SourceFile, display
from vibra.ingest.staleness import settings_hash
from vibra.workspace import Workspace

from .compute import _compute, _Deferred, _store, replace_versions
from .result import FileResult, _base_row



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


sha256_of = sha256_file  # the recording id is the sha256 of the file's bytes


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
