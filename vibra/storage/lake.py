"""The lake: Delta Lake tables ``data/lake/<table>/`` partitioned ``date=YYYY-MM-DD/equipment=<id>/``.

The data files stay Parquet in the same folders; which of them make up the table is
what the table's transaction log (``<table>/_delta_log/``, written through
``deltalake``, delta-rs) says. A writer writes its file (hidden temporary name, then
renamed into place) and then commits it; a file removed from the table (compaction,
retention, a replaced recording) is removed by a commit in the same transaction as
its successor, so a reader listing the table's files sees the old ones or the new
ones, never both and never neither. A file on disk that no commit names (a writer
killed between its rename and its commit) is invisible; ``vibra doctor --repair``
deletes it. Readers therefore list files through :func:`partition_files`, never by
globbing folders. ``raw`` is not a table of rows: its one-file-per-recording
waveforms stay plain files (``vibra.storage.raw``).
"""

from __future__ import annotations

import errno
import json
import os
import re
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable

from vibra.storage import remote
from vibra.storage.atomic import replace_into, temp_path
# DuckDB over a list of lake files (bound as the parameter): schemas of any age, no columns from folder names
READ_FILES = "read_parquet(?, union_by_name = true, hive_partitioning = false)"
LOG_DIR = "_delta_log"  # in each table folder: the Delta transaction log
PARTITION_BY = ["date", "equipment"]


def sql_literal(path: Path | str) -> str:
    """A path as a quoted SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def partition_dir(table_dir: Path, date: str, equipment_id: str) -> Path:
    return table_dir / f"date={date}" / f"equipment={equipment_id}"


def write_bytes(final: Path, payload: bytes) -> Path:
    """Write ``payload`` to ``final`` atomically (temporary name in the same folder, then rename)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(final)
    try:
        tmp.write_bytes(payload)
        replace_into(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    push(final)
    return final


def push(path: Path) -> None:
    """Upload a file written under a folder mirrored to object storage (see :mod:`vibra.storage.remote`)."""
    store = remote.of(path)
    if store is not None and store.shared(path):
        store.upload(path)
        st = path.stat()
        _PUSHED[str(path)] = (st.st_size, st.st_mtime_ns)


_PUSHED: dict[str, tuple[int, int]] = {}  # files this process uploaded, as they were: a commit need not again


def write_text(final: Path, text: str) -> Path:
    return write_bytes(final, text.encode("utf-8"))


def write_json(final: Path, payload) -> Path:
    import json

    return write_text(final, json.dumps(payload, indent=2, default=str))


def read_json(path: Path):
    """A JSON file written by :func:`write_json`; None only when the file does not exist.

    Raises
    ------
    CorruptArtifactError
        The file exists but is not JSON (truncated, edited, overwritten): a damaged pointer or
        manifest must never read as "nothing there".
    """
    import json

    from vibra.errors import CorruptArtifactError

    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both are
        raise CorruptArtifactError(path, f"not valid JSON ({exc})") from None


# -- reading the lake: a damaged file is named, never a bare "No magic bytes" ------------------------

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


# -- who wrote a commit: on a store several workspaces share, each judges only its own files -------------

WRITER_FILE = ".writer-id"  # in the workspace's data folder (beside the lake): this workspace's writer id


def writer_id(table_dir: Path) -> str:
    """The id this workspace signs its commits with (a random id made once, kept in ``data/.writer-id``;
    the lake folder's parent is the data folder)."""
    path = Path(table_dir).absolute().parent.parent / WRITER_FILE
    known = _WRITERS.get(str(path))
    if known:
        return known
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        value = ""
    if not value:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(path)
        tmp.write_text(uuid.uuid4().hex)
        try:
            os.link(tmp, path)  # first writer wins; a concurrent one reads the winner's
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        value = path.read_text().strip()
    _WRITERS[str(path)] = value
    return value


_WRITERS: dict[str, str] = {}


def _signed(table_dir: Path, writer: str | None = None):
    """delta-rs commit properties recording the commit's writer in its ``commitInfo``."""
    from deltalake.transaction import CommitProperties

    from vibra.storage.deltalog import WRITER_KEY

    return CommitProperties(custom_metadata={WRITER_KEY: writer or writer_id(table_dir)})


def read_frame(files: list[Path], columns: list[str] | None = None):
    """The rows of lake ``files`` as one Polars frame (schemas of any age: missing columns are null)."""
    import polars as pl

    with reading(files):
        return pl.concat([pl.read_parquet(f, columns=columns, hive_partitioning=False) for f in files],
                         how="diagonal_relaxed")


# -- the transaction log --------------------------------------------------------------------------

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


def table_dir_of(final: Path) -> Path | None:
    """The table folder of a partition file (``<table>/date=…/equipment=…/<file>``), else None."""
    if final.parent.name.startswith("equipment=") and final.parent.parent.name.startswith("date="):
        return final.parent.parent.parent
    return None


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


def partition_of(path: Path) -> tuple[str, str]:
    """(date, equipment_id) of a partition file, from its folders."""
    return path.parent.parent.name.split("=", 1)[1], path.parent.name.split("=", 1)[1]


_REMOTE_TABLES: set[str] = set()  # tables on object storage known to have a log (a log never goes away)
RAW = "raw"  # the one lake folder that is no table (one waveform file per recording, see vibra.storage.raw)


def _on_disk(table_dir: Path, older_than_s: float | None = None) -> list[Path]:
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
            return [(*partition_of(f), f) for f in _on_disk(table_dir)]
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


def _delta_type(t):
    """An Arrow type Delta can hold: nanosecond timestamps as microseconds, all-null columns as strings."""
    import pyarrow as pa

    if pa.types.is_timestamp(t) and t.unit != "us":
        return pa.timestamp("us", t.tz)
    if pa.types.is_null(t):
        return pa.string()
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.list_(_delta_type(t.value_type))
    return t


def _schema_of(files: list[Path]):
    """The union of the files' schemas, in Delta's types, with the partition columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields: dict[str, object] = {}
    for f in files:
        store = remote.of(f)
        schema = (pq.read_schema(store.key(f), filesystem=store.fs) if store is not None and not Path(f).exists()
                  else pq.read_schema(f))
        for field in schema:
            if field.name not in fields and field.name not in PARTITION_BY:
                fields[field.name] = pa.field(field.name, _delta_type(field.type))
    return pa.schema(list(fields.values()) + [pa.field(p, pa.string()) for p in PARTITION_BY])


def _add_action(table_dir: Path, f: Path, data_change: bool = True):
    import pyarrow.parquet as pq
    from deltalake.transaction import AddAction

    date, equipment = partition_of(f)
    store = remote.of(table_dir)
    try:
        st = f.stat()
        size, mtime, rows = st.st_size, int(st.st_mtime * 1000), pq.read_metadata(f).num_rows
    except FileNotFoundError:
        if store is None:
            raise
        # written and uploaded by another process (a Dask worker): described from the store
        size, mtime = store.size(f), int(time.time() * 1000)
        if size is None:
            raise
        rows = pq.read_metadata(store.key(f), filesystem=store.fs).num_rows
    return AddAction(f.relative_to(table_dir).as_posix(), size, {"date": date, "equipment": equipment},
                     mtime, data_change, json.dumps({"numRecords": rows}))


def _remove_action(table_dir: Path, f: Path, data_change: bool = True):
    from deltalake.transaction import RemoveAction

    date, equipment = partition_of(f)
    try:
        size = f.stat().st_size
    except OSError:
        size = None
    return RemoveAction(path=f.relative_to(table_dir).as_posix(), data_change=data_change,
                        deletion_timestamp=int(time.time() * 1000), size=size,
                        partition_values={"date": date, "equipment": equipment})


def _create(table_dir: Path, files: list[Path], writer: str | None = None) -> None:
    """Start the table's log with ``files`` (every one already in its partition folder)."""
    from deltalake import Schema
    from deltalake.transaction import create_table_with_add_actions

    store = remote.of(table_dir)
    create_table_with_add_actions(store.url(table_dir) if store else str(table_dir), Schema.from_arrow(_schema_of(files)),
                                  [_add_action(table_dir, f) for f in files], mode="error",
                                  partition_by=PARTITION_BY, name=table_dir.name,
                                  storage_options=store.storage_options() if store else None,
                                  commit_properties=_signed(table_dir, writer))


def convert(table_dir: Path) -> int:
    """Make a folder of hive-partitioned Parquet files a Delta table in place (its files stay where they
    are; one commit adds them all). Returns the files adopted; 0 when it is one already or empty."""
    table_dir = Path(table_dir)
    with _commit_lock(table_dir):
        if is_table(table_dir):
            return 0
        files = _on_disk(table_dir)
        if files:
            with translated(files=files):  # a file that does not read is named, never a traceback
                _create(table_dir, files)
        return len(files)


def ensure_table(table_dir: Path, columns: Iterable[str]) -> None:
    """Make ``table_dir`` a Delta table before writers stage files in it: a folder of plain files is converted
    (:func:`convert`), an empty one gets a log whose schema holds the string ``columns`` (each commit then adds the
    columns its files bring). Without it, the first commit into a folder that is no table yet takes every file
    lying there, so files other threads have staged but not settled would become visible with it."""
    import pyarrow as pa
    from deltalake import Schema
    from deltalake.transaction import create_table_with_add_actions

    table_dir = Path(table_dir)
    if convert(table_dir) or is_table(table_dir):
        return
    store = remote.of(table_dir)
    schema = pa.schema([pa.field(c, pa.string()) for c in columns] + [pa.field(p, pa.string()) for p in PARTITION_BY])
    with _commit_lock(table_dir), translated(table=table_dir):
        if is_table(table_dir):
            return
        try:
            create_table_with_add_actions(store.url(table_dir) if store else str(table_dir), Schema.from_arrow(schema),
                                          [], mode="error", partition_by=PARTITION_BY, name=table_dir.name,
                                          storage_options=store.storage_options() if store else None,
                                          commit_properties=_signed(table_dir, None))
        except Exception as exc:  # noqa: BLE001 - another process made the first commit meanwhile
            if "exists" not in str(exc).lower():
                raise


def _evolve(dt, files: list[Path]) -> bool:
    """Add to the table's schema the columns ``files`` have and it has not yet (schemas grow over versions)."""
    import pyarrow as pa
    from deltalake import Schema

    have = {f.name for f in dt.schema().fields}
    new = [f for f in _schema_of(files) if f.name not in have]
    if new:
        dt.alter.add_columns(Schema.from_arrow(pa.schema(new)).fields)
    return bool(new)


def commit(table_dir: Path, add: Iterable[Path] = (), remove: Iterable[Path] = (), *, data_change: bool = True,
           writer: str | None = None) -> None:
    """Add and remove files of the table in one transaction: readers see all of it or none of it.

    Files to add must already be in their partition folders (an added file whose path the
    table already holds replaces that entry). The removed files stay on disk for readers
    that listed them; :func:`remove_files` and :func:`vacuum` delete them. The commit records
    its writer (``writer``, by default this workspace's :func:`writer_id`): on a store several
    workspaces share, each judges and repairs only the files it committed.

    Raises
    ------
    LakeCorruptError
        The table's log does not read (a commit or checkpoint missing or damaged).
    StoreError
        The object store failed.
    """
    table_dir = Path(table_dir)
    add, remove = [Path(f) for f in add], [Path(f) for f in remove]
    if not add and not remove:
        return
    with translated(table=table_dir):
        _commit(table_dir, add, remove, data_change, writer)


def _commit(table_dir: Path, add: list[Path], remove: list[Path], data_change: bool, writer: str | None) -> None:
    _upload(add)
    with _commit_lock(table_dir):
        if not is_table(table_dir):
            # a folder of plain files (``raw``, or a table written before Delta): removing is the caller's
            # unlink; the first file added makes it a table of what lies there
            files = sorted(set(_on_disk(table_dir)) - set(remove))
            if add and files:
                try:
                    _create(table_dir, files, writer)
                    return
                except Exception as exc:  # noqa: BLE001 - another process made the first commit meanwhile
                    if "exists" not in str(exc).lower():
                        raise  # (else: appended to the table the other process made, below)
            else:
                return
        dt = _table(table_dir)
        if add and _evolve(dt, add):
            dt = _table(table_dir)
        held = {p for _, _, p in active(table_dir)} if remove else set()
        actions = [_add_action(table_dir, f, data_change) for f in add]
        actions += [_remove_action(table_dir, f, data_change) for f in remove if f in held]
        if not actions:  # only files the table does not hold were to go: nothing to commit
            return
        dt.create_write_transaction(actions, mode="append", schema=dt.schema(), partition_by=PARTITION_BY,
                                    commit_properties=_signed(table_dir, writer))


def _upload(files: list[Path]) -> None:
    """Put on the store the files to commit that this process wrote and has not uploaded yet."""
    for f in files:
        store = remote.of(f)
        if store is None:
            return
        try:
            st = f.stat()
        except FileNotFoundError:
            continue  # written and uploaded elsewhere (a Dask worker)
        if _PUSHED.get(str(f)) != (st.st_size, st.st_mtime_ns):
            push(f)


def unlink(files: Iterable[Path]) -> None:
    """Delete lake files (and their objects, for a lake on object storage)."""
    files = list(files)
    for f in files:
        Path(f).unlink(missing_ok=True)
    store = remote.of(files[0]) if files else None
    if store is not None:
        store.delete(files)


def remove_files(files: Iterable[Path]) -> None:
    """Remove lake files from their tables (one commit per table), then delete them."""
    by_table: dict[Path, list[Path]] = {}
    for f in files:
        table = table_dir_of(Path(f))
        if table is not None:
            by_table.setdefault(table, []).append(Path(f))
    for table, gone in by_table.items():
        commit(table, remove=gone)
        unlink(gone)


def compact(table_dir: Path, date: str, equipment_id: str) -> dict:
    """Merge one partition's files with Delta's optimize (one commit); the merged-away files are deleted
    at once. Returns {files_before, files_after, rows}."""
    before = set(partition_files(table_dir, equipment_id, [date]))
    with reading(sorted(before)), _commit_lock(table_dir):
        _table(table_dir).optimize.compact(
            partition_filters=[("date", "=", date), ("equipment", "=", equipment_id)], max_concurrent_tasks=1,
            commit_properties=_signed(table_dir))
    after = set(partition_files(table_dir, equipment_id, [date]))
    unlink(before - after)
    import pyarrow.parquet as pq

    return {"files_before": len(before), "files_after": len(after),
            "rows": sum(pq.read_metadata(f).num_rows for f in after)}


def delete_partitions(table_dir: Path, dates: list[str]) -> int:
    """Remove every file of the given dates in one commit, then delete them (and their emptied folders) and
    vacuum what older runs left unreferenced; returns the files removed."""
    gone = [p for d, _, p in active(table_dir) if d in set(dates)]
    commit(table_dir, remove=gone)
    unlink(gone)
    for d in dates:
        for folder in [*Path(table_dir).glob(f"date={d}/equipment=*"), Path(table_dir) / f"date={d}"]:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    vacuum(table_dir, retention_hours=VACUUM_HOURS)
    return len(gone)


VACUUM_HOURS = 1  # a file no commit holds is deleted by vacuum once it is this old (never a writer's file in flight)


def vacuum(table_dir: Path, retention_hours: float = VACUUM_HOURS) -> list[str]:
    """Delete files the log no longer holds, older than ``retention_hours``; returns their paths."""
    if not is_table(table_dir):
        return []
    with translated(table=table_dir), _commit_lock(table_dir):
        return list(_table(table_dir).vacuum(retention_hours=int(retention_hours), dry_run=False,
                                             enforce_retention_duration=False, commit_properties=_signed(table_dir)))


def untracked(table_dir: Path) -> list[Path]:
    """Files in the table's partition folders that its log does not hold (a writer killed before its commit, or
    a commit file lost).

    On object storage only objects older than :data:`VACUUM_HOURS` count: the ingest lock is a local file,
    so a younger one may be a writer's on another machine, uploaded and about to be committed. There a
    folder without a log holds only such uploads (a first ingest killed before its first commit)."""
    store = remote.of(table_dir)
    if not is_table(table_dir):
        return _on_disk(table_dir, VACUUM_HOURS * 3600) if store is not None and Path(table_dir).name != RAW else []
    held = {p for _, _, p in active(table_dir)}
    age = VACUUM_HOURS * 3600 if store is not None else None
    return [f for f in _on_disk(table_dir, age) if f not in held]


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


def write_parquet(df, final: Path) -> Path:
    """Write a Polars frame to ``final`` (temporary name, then rename) and commit it to its table."""
    _write_file(df, final)
    table = table_dir_of(final)
    if table is not None:
        commit(table, add=[final])
    return final


def _write_file(df, final: Path) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(final)
    try:
        df.write_parquet(tmp, compression="zstd", statistics=True)
        replace_into(tmp, final)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        _raise_full(exc, final)
        raise
    push(final)  # on object storage: uploaded now, invisible until a commit names it
    return final


def _raise_full(exc: BaseException, final: Path) -> None:
    """Polars reports a write cut short by a full disk as a damaged file ("Invalid thrift: transport error"):
    when the target's file system has (almost) no space left, say so, naming the file."""
    from vibra.errors import os_errno

    if not isinstance(exc, Exception) or os_errno(exc) is not None:
        return
    try:
        st = os.statvfs(final.parent)
    except OSError:
        return
    if st.f_bavail * st.f_frsize < 1 << 20:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(final)) from exc


def write_partitioned(df, table_dir: Path, name: str, time_column: str = "window_start") -> list[tuple[str, str]]:
    """Split ``df`` by UTC date of ``time_column`` and ``equipment_id``; write ``part-<name>.parquet`` in each
    and commit them all in one transaction.

    Returns the (date, equipment_id) partitions written.
    """
    files = write_files(df, table_dir, name, time_column)
    commit(table_dir, add=files)
    return [partition_of(f) for f in files]


def write_files(df, table_dir: Path, name: str, time_column: str = "window_start") -> list[Path]:
    """Write ``df`` as :func:`write_partitioned` does but commit nothing: the files stay invisible to readers
    until a :func:`commit` adds them (a staging folder, or many writes gathered into one commit)."""
    import polars as pl

    first, last = df[time_column].min(), df[time_column].max()
    equipment = df["equipment_id"].unique()
    if first.date() == last.date() and equipment.len() == 1:  # the usual case: one file, no split
        return [_write_file(df, partition_dir(table_dir, first.date().isoformat(), equipment[0]) / f"part-{name}.parquet")]
    keyed = df.with_columns(_date=pl.col(time_column).dt.convert_time_zone("UTC").dt.date().cast(pl.String))
    return [_write_file(part.drop("_date"), partition_dir(table_dir, date, equipment_id) / f"part-{name}.parquet")
            for (date, equipment_id), part in keyed.group_by(["_date", "equipment_id"], maintain_order=True)]


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


RECORDING_FILE = "part-{}.parquet"  # one recording's own file in a partition: part-<recording_id[:16]>.parquet
OWN_FILE = re.compile(r"^part-([0-9a-f]{16})\.parquet$")  # group 1: the recording_id prefix


def recording_partitions(table_dir: Path, equipment_id: str, recording_ids: set[str]) -> dict[Path, list[Path]]:
    """Partition folder → the table's files in it holding rows of these recordings.

    A recording's own ``part-<id[:16]>.parquet`` is found by name; files merged by compaction (any
    other name) are asked for the recordings' rows.
    """
    import duckdb

    own = {RECORDING_FILE.format(r[:16]) for r in recording_ids}
    by_part: dict[Path, list[Path]] = {}
    for f in partition_files(table_dir, equipment_id):
        by_part.setdefault(f.parent, []).append(f)
    found: dict[Path, list[Path]] = {}
    for part, files in sorted(by_part.items()):
        hits = [f for f in files if f.name in own]
        merged = [str(f) for f in files if f.name not in own and not OWN_FILE.match(f.name)]
        if merged:
            with duckdb.connect() as con, reading(merged):
                rows = con.execute("SELECT DISTINCT filename FROM read_parquet(?, filename = true, union_by_name = true, "
                                   "hive_partitioning = false) WHERE recording_id IN (SELECT unnest(?))",
                                   [merged, sorted(recording_ids)]).fetchall()
            hits += [Path(r[0]) for r in rows]
        if hits:
            found[part] = hits
    return found


def remove_recordings(table_dir: Path, found: dict[Path, list[Path]], recording_ids: set[str],
                      keep: set[str] = frozenset()) -> None:
    """Remove the rows of ``recording_ids`` from the partitions :func:`recording_partitions` found, in one commit.

    A recording's own file is removed (unless its name is in ``keep``: it is about to be
    replaced under the same name). A merged file holding some of their rows is rewritten
    without them beside it, and the commit swaps the two, so a reader sees all old rows
    or none.
    """
    import duckdb

    remove, add = [], []
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        for part, files in found.items():
            for f in files:
                if f.name in keep:
                    continue
                remove.append(f)
                if OWN_FILE.match(f.name):
                    continue
                src = f"read_parquet({sql_literal(f)}, hive_partitioning = false)"
                left = con.execute(f"SELECT count(*) FROM {src} WHERE recording_id NOT IN (SELECT unnest(?))",
                                   [sorted(recording_ids)]).fetchone()[0]
                if left:
                    out = part / f"part-rewritten-{uuid.uuid4().hex[:12]}.parquet"
                    tmp = temp_path(out)
                    con.execute(f"COPY (SELECT * FROM {src} WHERE recording_id NOT IN "
                                f"({', '.join(sql_literal(r) for r in sorted(recording_ids))})) "
                                f"TO {sql_literal(tmp)} (FORMAT parquet, COMPRESSION zstd)")
                    replace_into(tmp, out)
                    add.append(out)
    commit(table_dir, add=add, remove=remove)
    unlink(remove)
