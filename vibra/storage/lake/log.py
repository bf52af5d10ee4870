"""A table as its Delta log says: the files it holds now (read once per commit, cached per process), and what
a failed read over them means (one error naming the damaged file, log entry or store)."""

from __future__ import annotations

import errno
import os
import re
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable

from vibra.storage import remote
from vibra.storage.lake.files import _PUSHED, LOG_DIR, RAW, partition_of, table_dir_of


def damaged(path: Path | str) -> str | None:
    """Why a Parquet file cannot be read (its footer is checked: a truncated file has none), else None."""
    import pyarrow.parquet as pq

    try:
        pq.read_metadata(str(path))
    except FileNotFoundError:
        return None  # gone since it was listed (a compaction removed it): not damage
    except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid/OSError for every kind of damage
        if "magic bytes" in str(exc) or os.path.getsize(path) < 12:
            return f"damaged: no Parquet footer ({os.path.getsize(path)} bytes; truncated, or not a Parquet file)"
        return f"damaged: its Parquet footer does not read ({str(exc).splitlines()[0][:160]})"
    return None


def _reader_error(exc: BaseException) -> bool:
    """An error raised by a Parquet reader (DuckDB, pyarrow, Polars, delta-rs) or the file system — not a bug of ours."""
    import sys

    delta = sys.modules.get("deltalake.exceptions")  # delta-rs's errors live in its compiled `_internal`
    return isinstance(exc, OSError) or (delta is not None and isinstance(exc, delta.DeltaError)) or any(
        (cls.__module__ or "").split(".")[0].lstrip("_") in ("duckdb", "pyarrow", "polars")
        for cls in type(exc).__mro__)


@contextmanager
def reading(files: Iterable[Path | str] | Path):
    """Run a read over lake ``files`` (a list, or a table folder): a file the table's log names that is gone
    or was overwritten since its commit (another size), and any reader error over a damaged file, raise
    :class:`~vibra.errors.LakeCorruptError` naming that file and ``vibra doctor --repair``.

    With :func:`translated`, the one place where DuckDB's "No magic bytes" and "No files found",
    pyarrow's ``ArrowInvalid``, Polars' ``ComputeError`` and delta-rs's ``DeltaError`` become one error
    naming the file. Before the read each file is checked against its log entry (one ``stat``); the
    footers are probed only after a failure.
    """
    from vibra.errors import LakeCorruptError

    if not isinstance(files, (str, Path)):
        for f in files:
            problem = changed(Path(f))
            if problem:
                raise LakeCorruptError(f, problem)
    with translated(files=files):
        yield


def changed(path: Path) -> str | None:
    """Why a lake file is not what its table's log says (gone, or another size: overwritten), else None.
    Only files the log has been read for are checked (a file on object storage: its cached copy)."""
    known = _SIZES.get(str(path))
    if known is None:
        return None
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        if remote.of(path) is not None:
            return None  # not cached: the reader fetches it, or names it gone
        return GONE
    except OSError:
        return None  # the reader says why
    if known[0] is not None and size != known[0]:
        return damaged(path) or (f"changed since its commit: {size} bytes, the table's log says {known[0]} (overwritten by another "
                "file?)")
    return None


DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM)
GONE = "gone: the table's log lists it but the file is not there (deleted by hand, or a partial restore)"


@contextmanager
def translated(*, table: Path | str | None = None, files: Iterable[Path | str] | Path | None = None):
    """Run lake work (a read over ``files``, a commit or listing of ``table``) turning what the storage libraries
    raise into vibra's errors (:func:`translate`); anything else (a bug) passes through unchanged."""
    try:
        yield
    except Exception as exc:
        mapped = translate(exc, table=table, files=files)
        if mapped is exc:
            raise
        raise mapped from exc


def translate(exc: BaseException, *, table: Path | str | None = None,
              files: Iterable[Path | str] | Path | None = None) -> BaseException:
    """What an exception raised over the lake means to the user: the one translation point.

    Returns a :class:`~vibra.errors.StoreError` for an object store failure, a
    :class:`~vibra.errors.LakeCorruptError` naming the damaged file or log entry (and the table) for a
    ``DeltaError``, a DuckDB ``IOException``, a pyarrow/Polars reader error or a schema mismatch,
    or ``exc`` itself when it is none of these (a vibra error already, or a bug: its traceback stays).
    ``table`` is the table folder the work was on, ``files`` the lake files it read (a list, or a
    table folder); either helps to name the culprit.
    """
    from vibra.errors import LakeCorruptError, StoreError, VibraError, os_errno

    if isinstance(exc, (VibraError, MemoryError)) or not isinstance(exc, Exception) or not _reader_error(exc):
        return exc
    if remote.failure(exc):
        return StoreError(remote.explain(exc))
    code = os_errno(exc)
    if code in DISK_ERRORS:  # the environment (disk full, read-only, permissions): not damage; say where
        where = table / LOG_DIR if table is not None else (Path(files) if isinstance(files, (str, Path)) else None)
        return OSError(code, os.strerror(code), str(where)) if where is not None and \
            not getattr(exc, "filename", None) else exc
    if type(exc).__name__ == "CommitFailedError" or code not in (None, errno.ENOENT, errno.EISDIR):
        return exc  # a commit conflict, or another OS failure: not damage
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:240]
    if isinstance(files, (str, Path)):
        table, files = Path(files), None
    if files is not None:
        candidates = [Path(f) for f in files]
        for path in candidates:
            problem = changed(path) or damaged(path)
            if problem is None and not path.exists() and remote.of(path) is None:
                problem = GONE
            if problem:
                return LakeCorruptError(path, problem)
        if table is None and candidates:
            table = table_dir_of(candidates[0])
    if table is None:
        return exc  # a reader error over files that all read: not the lake's (the query's, a bug's)
    table = Path(table)
    from vibra.storage import deltalog

    try:
        problems = deltalog.read(table, remote.of(table)).problems()
    except Exception:  # noqa: BLE001 - the log could not even be listed: say what delta-rs said
        problems = []
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        path, _, problem = problems[0].partition(": ")
        return LakeCorruptError(path, f"table {table.name}'s log is damaged: {problem}{more}")
    try:  # a file the log names that is gone or changed (delta-rs's optimize, a checkpoint over it)
        for _, _, path in active(table):
            if problem := changed(path) or (damaged(path) if path.exists() else None):
                return LakeCorruptError(path, problem)
    except Exception:  # noqa: BLE001 - nothing more to learn
        pass
    return LakeCorruptError(table / LOG_DIR, f"table {table.name} does not read ({first})")


_GUARD = threading.Lock()
_LOCKS: dict[str, threading.RLock] = {}


def _commit_lock(table_dir: Path) -> threading.RLock:
    """One committer at a time per table within a process (threads of one ingest); between processes
    delta-rs's optimistic concurrency orders the commits (appends never conflict)."""
    with _GUARD:
        return _LOCKS.setdefault(str(Path(table_dir).absolute()), threading.RLock())  # re-entered by commit → active


_TABLES: dict[str, object] = {}  # table folder → its DeltaTable, brought up to date before each use


def _table(table_dir: Path):
    """The table's DeltaTable at its newest version (loaded once per process, then updated incrementally).
    Call with the table's commit lock held."""
    from deltalake import DeltaTable

    key = str(Path(table_dir).absolute())
    store = remote.of(table_dir)
    uri, options = (store.url(table_dir), store.storage_options()) if store else (key, None)
    dt = _TABLES.get(key)
    if dt is None:
        dt = _TABLES[key] = DeltaTable(uri, storage_options=options)
    else:
        try:
            dt.update_incremental()
        except Exception:  # noqa: BLE001 - the folder was replaced under us (a table recreated): load it afresh
            dt = _TABLES[key] = DeltaTable(uri, storage_options=options)
    return dt


def is_table(table_dir: Path) -> bool:
    """Whether ``table_dir`` has a transaction log with a commit (a folder written before Delta has none
    until migrated; a log folder without a commit is a first commit that failed, e.g. on a full disk)."""
    store = remote.of(table_dir)
    if store is not None:
        key = str(Path(table_dir).absolute())
        if key in _REMOTE_TABLES:
            return True
        if Path(table_dir).name == RAW:  # plain files by design, never a table: no LIST per lookup
            return False
        if any(_COMMIT_FILE.match(p.name) or p.name == "_last_checkpoint"
               for p, _ in store.listing(Path(table_dir) / LOG_DIR)):
            _REMOTE_TABLES.add(key)
            return True
        return False
    try:
        with os.scandir(Path(table_dir) / LOG_DIR) as entries:
            return any(_COMMIT_FILE.match(e.name) or e.name == "_last_checkpoint" for e in entries)
    except (FileNotFoundError, NotADirectoryError):
        return False


_REMOTE_TABLES: set[str] = set()  # tables on object storage known to have a log (a log never goes away)


def on_disk(table_dir: Path, older_than_s: float | None = None) -> list[Path]:
    store = remote.of(table_dir)
    if store is not None:  # the store's objects, as local paths (not fetched)
        return [p for p, _ in store.listing(Path(table_dir), ".parquet", older_than_s=older_than_s)
                if p.parent.name.startswith("equipment=") and p.parent.parent.name.startswith("date=")
                and p.parent.parent.parent == Path(table_dir).absolute()]
    return sorted(table_dir.glob("date=*/equipment=*/*.parquet")) if table_dir.exists() else []


def active(table_dir: Path) -> list[tuple[str, str, Path]]:
    """(date, equipment_id, file) of every file of the table now, from its log.

    A folder without a log (a workspace written before the lake became Delta, not yet
    migrated) is read as its files lie.
    """
    table_dir = Path(table_dir)
    store = remote.of(table_dir)
    with translated(table=table_dir):
        if not is_table(table_dir):
            # a local folder written before the lake was Delta reads as its files lie; on a store there is no
            # such lake (`vibra migrate` converts local lakes only): objects no log names are uploads of a
            # writer killed before its first commit — not a table (`vibra doctor --repair` clears them)
            if store is not None and Path(table_dir).name != RAW:  # (``raw``: plain files by design, listed)
                return []
            return [(*partition_of(f), f) for f in on_disk(table_dir)]
        import pyarrow as pa

        head = None if store else _log_head(table_dir)
        cached = _ACTIVE.get(str(table_dir))
        if cached is not None and cached[0] == head and head is not None:
            return cached[1]
        with _commit_lock(table_dir):
            dt = _table(table_dir)
            if store is not None:
                version = dt.version()
                if cached is not None and cached[0] == version:
                    return cached[1]
            adds = pa.table(dt.get_add_actions(flatten=True))
            version = dt.version()
    out = []
    if adds.num_rows:
        cols = adds.select(["path", "partition.date", "partition.equipment", "size_bytes",
                            "modification_time"]).to_pydict()
        out = [(d, e, table_dir / p) for p, d, e in zip(cols["path"], cols["partition.date"], cols["partition.equipment"])]
        # what a cached copy must match, and what a file must still be (a file overwritten since its commit is damage)
        for p, size, when in zip(cols["path"], cols["size_bytes"], cols["modification_time"]):
            _SIZES[str(table_dir / p)] = (size, when)  # (ms since the epoch, as the add action wrote it)
    if store is not None:
        _ACTIVE[str(table_dir)] = (version, out)
        return out
    name = f"{version:020d}.json"
    try:  # the commit file's mtime too: a table deleted and written again reuses version numbers
        _ACTIVE[str(table_dir)] = (f"{name}@{(table_dir / LOG_DIR / name).stat().st_mtime_ns}", out)
    except OSError:
        pass

    return out


_SIZES: dict[str, tuple[int, int | None]] = {}  # a table's file → (size, modification ms) from its log
_ACTIVE: dict[str, tuple[str, list]] = {}  # table folder → (newest commit file, its files): readers list once per commit
_COMMIT_FILE = re.compile(r"^\d{20}\.json$")


def _log_head(table_dir: Path) -> str:
    """The newest commit file of the table's log (its version), by listing the log folder."""
    log = Path(table_dir) / LOG_DIR
    with os.scandir(log) as entries:
        name = max((e.name for e in entries if _COMMIT_FILE.match(e.name)), default="")
    try:
        return f"{name}@{(log / name).stat().st_mtime_ns}" if name else ""
    except OSError:
        return ""


def sizes(files: Iterable[Path]) -> int:
    """Bytes of lake files, from the log (or the store) for a lake on object storage: nothing is fetched."""
    total = 0
    for f in files:
        known = _SIZES.get(str(f))
        if known is not None:
            total += known[0]
        elif Path(f).exists():
            total += Path(f).stat().st_size
        else:
            store = remote.of(f)
            total += (store.size(Path(f)) or 0) if store is not None else 0
    return total


def forget(root: Path) -> None:
    """Drop what this process remembers of the files and tables under ``root`` (a worker's private cache,
    deleted after its task: a long-lived worker must not keep a DeltaTable per finished task)."""
    prefix = str(Path(root).absolute())
    inside = lambda key: key == prefix or key.startswith(prefix + os.sep)  # noqa: E731
    with _GUARD:  # (other threads may add keys meanwhile: each cache is copied before it is scanned)
        for cache in (_TABLES, _ACTIVE, _SIZES, _PUSHED, _LOCKS):
            for key in [k for k in list(cache) if inside(k)]:
                cache.pop(key, None)
        _REMOTE_TABLES.difference_update({k for k in list(_REMOTE_TABLES) if inside(k)})


def tables_in(lake_root: Path) -> list[Path]:
    """The table folders of the lake (on the store, for a lake on object storage)."""
    store = remote.of(lake_root)
    if store is not None:
        found = store.folders(Path(lake_root))
    else:
        found = sorted(p for p in Path(lake_root).iterdir() if p.is_dir()) if Path(lake_root).exists() else []
    return [p for p in found if not p.name.startswith((".", "_"))]


def has_files(table_dir: Path) -> bool:
    return bool(active(table_dir))


def partition_files(table_dir: Path, equipment_id: str | None = None, dates: Iterable[str] | None = None, *,
                    fetch: bool = True) -> list[Path]:
    """The table's current files in the partitions asked for (partition pruning on the log's values); for a lake
    on object storage, fetched into the cache unless ``fetch`` is False (files to remove, to count)."""
    wanted = None if dates is None else set(dates)
    files = sorted(p for d, e, p in active(table_dir)
                   if (equipment_id is None or e == equipment_id) and (wanted is None or d in wanted))
    store = remote.of(table_dir)
    if fetch and store is not None and is_table(table_dir):  # on object storage: read from this process's cache
        # (``raw`` is no table: its big waveforms are fetched one at a time, by ``raw.find``)
        with translated(table=table_dir):
            store.fetch_all((f, *_SIZES.get(str(f), (None, None))) for f in files)
    return files


def partition_dates(table_dir: Path, equipment_id: str | None = None) -> list[str]:
    """Dates that have a partition (for ``equipment_id`` when given), newest first."""
    return sorted({d for d, e, _ in active(table_dir) if equipment_id is None or e == equipment_id}, reverse=True)
