"""Whose fault is a failure met while ingesting a file: the file's, or everything else's.

A file that cannot be read or parsed is the file's fault: it is recorded as failed and the batch
goes on. A full disk, a read-only or unwritable lake, the catalog, memory, a bug or a Rust panic
are not: the run stops with one line saying why (:func:`describe`) and no file is blamed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from vibra import errors
from vibra.errors import InputError, VibraError
from vibra.readers import open_recording
from vibra.settings import Equipment
from vibra.workspace import Workspace

from vibra.ingest.sources import SourceFile, display


class IngestStopped(VibraError):
    """The run stopped on a failure that is not a file's fault (disk, permissions on the
    workspace, the catalog, memory, a bug); no file was marked failed and a rerun resumes."""


class RetryableInputError(InputError):
    """A file problem that can go away without the file changing (permissions, a clock ahead):
    the file is recorded failed and tried again on every run."""


def is_panic(exc: BaseException) -> bool:
    """A Rust panic surfaced through pyo3 (Polars, …). ``pyo3_runtime.PanicException`` derives
    from BaseException, not Exception, so it is recognised by name rather than caught broadly
    (KeyboardInterrupt and SystemExit must still go through)."""
    kind = type(exc)
    return kind.__name__ == "PanicException" and kind.__module__ in ("pyo3_runtime", "builtins")


def reader_fault(path: Path, exc: BaseException) -> BaseException | None:
    """What an exception raised while reading or parsing a source file becomes: the file's
    failure (an InputError), or None when it is not the file's fault (memory, interrupts)."""
    if isinstance(exc, VibraError):
        return exc
    if isinstance(exc, MemoryError) or not (isinstance(exc, Exception) or is_panic(exc)):
        return None
    code = os_errno(exc)
    if code is not None:  # the reader touches only the source file
        return RetryableInputError(f"{display(path)}: cannot read ({os.strerror(code)}); check the file and its "
                                   "permissions — it is tried again on every run")
    # the parser's own message may quote the file's bytes: name the error, never its content
    return InputError(f"{display(path)}: could not be parsed ({type(exc).__name__}); check the file's format, and "
                      "report it if the file looks valid")


def guarded(path: Path, chunks):
    """The reader's chunks, with a parse error raised while iterating turned into the file's failure."""
    it = iter(chunks)
    while True:
        try:
            chunk = next(it)
        except StopIteration:
            return
        except BaseException as exc:
            blamed = reader_fault(path, exc)
            if blamed is None or blamed is exc:
                raise
            raise blamed from exc
        yield chunk


def open_guarded(path: Path, equipment: Equipment, chunk_rows: int, on_time_gap: str = "split"):
    try:
        return open_recording(path, equipment, chunk_rows, on_time_gap=on_time_gap)
    except BaseException as exc:
        blamed = reader_fault(path, exc)
        if blamed is None or blamed is exc:
            raise
        raise blamed from exc


def os_errno(exc: BaseException) -> int | None:
    """The errno behind an I/O failure, found anywhere in its chain (:func:`vibra.errors.os_errno`: an
    OSError's, or the one delta-rs, Polars, DuckDB and pyarrow put in their messages); 0 for an OSError
    that carries none; None when no OS error is behind it."""
    code = errors.os_errno(exc)
    if code is None and isinstance(exc, OSError):
        return 0
    return code


def failed_path(exc: BaseException) -> str | None:
    """The path a failed write names, anywhere in its chain (:func:`vibra.errors.failed_path`)."""
    return errors.failed_path(exc)


LOW_SPACE_BYTES = 1 << 20  # a write that failed with less than this free was the disk filling up


def free_bytes(path: Path) -> float:
    try:
        st = os.statvfs(path)
    except OSError:
        return math.inf
    return st.f_bavail * st.f_frsize


def describe(exc: BaseException, item: SourceFile | None = None, ws: Workspace | None = None) -> str:
    """One line saying why a run stopped and what to do; no file is blamed."""
    import errno

    where = f" while ingesting {display(item.path)}" if item is not None else ""
    tail = "no file was marked failed; fix the cause and run `vibra ingest` again to resume"
    from vibra.storage import remote

    if remote.failure(exc):
        return f"ingest stopped{where}: {remote.explain(exc)}; {tail}"
    code = os_errno(exc)
    if code is None and ws is not None and min(free_bytes(ws.lake), free_bytes(ws.data)) < LOW_SPACE_BYTES:
        # Polars sometimes reports a full disk as a corrupt-file error ("Invalid thrift: transport error")
        code = errno.ENOSPC
    if code is not None:
        filename = failed_path(exc)
        target = display(filename) if filename else (display(ws.data) if ws else "the workspace")
        reason = os.strerror(code) if code else str(exc).splitlines()[0][:200]
        if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return f"ingest stopped: no space left writing {target} ({reason}){where}; free space, then {tail}"
        if code in (errno.EACCES, errno.EPERM, errno.EROFS):
            return (f"ingest stopped: cannot write {target} ({reason}){where}; check the workspace's permissions "
                    f"and mounts; {tail}")
        return f"ingest stopped: I/O error on {target} ({reason}){where}; {tail}"
    if isinstance(exc, MemoryError):
        return (f"ingest stopped: out of memory{where}; lower [ingest] max_concurrent_files or chunk_rows; {tail}")
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    module = type(exc).__module__
    if module.startswith("duckdb") or module.startswith("_duckdb"):
        return f"ingest stopped: the catalog failed ({type(exc).__name__}: {first}){where}; {tail}"
    return (f"ingest stopped: internal error ({type(exc).__name__}: {first}){where}; this is a bug in vibra — please "
            f"report it with the traceback in the log; moving that file out of the export lets the rest ingest; {tail}")
