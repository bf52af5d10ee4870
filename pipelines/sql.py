"""``vibra sql``: DuckDB over the workspace, one view per lake table, the ledger read-only — by construction.

Each lake table is read through the lake layer like every other command: its current
files as its Delta log lists them (on object storage: the log on the store, the files
fetched into this process's cache), with the ``date`` and ``equipment`` partition
columns, so a query sees exactly what ``vibra status`` and the report see. The files
are handed to DuckDB as Arrow datasets, so DuckDB itself needs no file access at all.

Read-only by construction, not by convention:

- the connection *is* the catalog file opened read-only (its default database, named
  ``catalog``, so ``recordings`` and ``catalog.recordings`` both work): a default
  database cannot be detached, and a read-only one cannot be written or re-attached;
- external access is off (no ``read_csv('/etc/shadow')``, no ``COPY … TO``, no
  ``ATTACH``, no extensions) and the configuration is locked, so no statement turns
  it back on;
- one statement per call, and only SELECT / WITH / DESCRIBE / SHOW / SUMMARIZE /
  EXPLAIN of one (not ``EXPLAIN ANALYZE`` of anything else);
- ``[sql] memory_limit_mb`` bounds DuckDB's memory (no spilling to disk) and the size
  of the answer held for printing; ``[sql] timeout_s`` interrupts a statement that runs
  longer.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from vibra.errors import InputError, LakeCorruptError
from vibra.settings import Settings
from vibra.storage import lake, tables
from vibra.workspace import Workspace

from vibra_pipelines.runs import StageResult

# Lake folders that are not tables of rows one would query.
_NOT_TABLES = {"raw"}
# Statements a query may be (DESCRIBE, SHOW, SUMMARIZE, FROM-first and VALUES parse as SELECT).
_EXPLAIN = re.compile(r"^\s*EXPLAIN\s+(?:ANALY[SZ]E\s+)?", re.IGNORECASE)


@dataclass
class SqlResult(StageResult):
    """Columns and rows of one query (rows as tuples of plain Python values); ``truncated`` when the
    statement had more rows than ``max_rows``."""

    query: str
    columns: list[str]
    rows: list[tuple]
    views: list[str] = field(default_factory=list)
    truncated: bool = False

    def as_dict(self) -> dict:
        return {"schema_version": 1, "command": "sql", "query": self.query, "columns": self.columns,
                "rows": [dict(zip(self.columns, r)) for r in self.rows], "views": self.views,
                "truncated": self.truncated}


def lake_tables(ws: Workspace) -> list[str]:
    """Names of the registered lake tables (:mod:`vibra.storage.tables`) that hold at least one Parquet file."""
    return sorted(name for name in tables.TABLES if name not in _NOT_TABLES and lake.has_files(ws.table(name)))


def _dataset(table_dir: Path, files: list[Path]):
    """The table's files as one Arrow dataset: the union of their schemas (a column a file lacks reads as
    null) plus the ``date`` and ``equipment`` partition columns."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    with lake.reading(files):
        try:
            schemas = [pq.read_schema(f) for f in files]
        except FileNotFoundError:
            missing = next((f for f in files if not Path(f).exists()), table_dir)
            raise LakeCorruptError(missing, "named by the table's log but missing") from None
    keys = pa.schema([(k, pa.string()) for k in lake.PARTITION_BY])
    own = [pa.schema([f for f in s if f.name not in lake.PARTITION_BY]) for s in schemas]
    try:
        unified = pa.unify_schemas(own, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise _odd_one_out(files, own) from None
    return ds.dataset([str(f) for f in files], schema=pa.unify_schemas([unified, keys]), format="parquet",
                      partitioning=ds.partitioning(keys, flavor="hive"), partition_base_dir=str(table_dir))


def _odd_one_out(files: list[Path], schemas: list) -> LakeCorruptError:
    """The file whose column types the table's other files do not share (a lake file overwritten by a
    Parquet file of another table, say), as the error naming it."""
    from collections import Counter

    types: dict[str, Counter] = {}
    for schema in schemas:
        for f in schema:
            types.setdefault(f.name, Counter())[str(f.type)] += 1
    for path, schema in zip(files, schemas):
        for f in schema:
            usual, _ = types[f.name].most_common(1)[0]
            if str(f.type) != usual:
                return LakeCorruptError(path, f"column {f.name!r} is {f.type} here but {usual} in the table's other "
                                              "files (not a file of this table?)")
    return LakeCorruptError(files[0].parent.parent.parent, "its files' schemas do not combine")


def connect(ws: Workspace, settings: Settings):
    """A locked-down DuckDB connection: the catalog opened read-only (or an empty database before the
    first ingest), a view per lake table, no file access. Returns (connection, view names)."""
    import duckdb

    _store_present(ws)
    config = {"memory_limit": f"{settings.sql.memory_limit_mb}MB", "temp_directory": ""}  # no spilling
    if ws.catalog_path.exists():
        con = _open_catalog(ws.catalog_path, config)
        views = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                           "WHERE table_catalog = 'catalog' ORDER BY 1").fetchall()]
    else:
        con, views = duckdb.connect(config=config), []
    try:
        con.execute("SET TimeZone = 'UTC'")
        for name in lake_tables(ws):
            table_dir = ws.table(name)
            con.register(name, _dataset(table_dir, lake.partition_files(table_dir)))
            views.append(name)
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con, sorted(set(views))


def _store_present(ws: Workspace) -> None:
    """For a lake on object storage: its bucket must exist (a missing one would read as an empty lake)."""
    from pyarrow import fs as pafs

    from vibra.errors import StoreError
    from vibra.storage import remote

    store = remote.of(ws.lake)
    if store is None:
        return
    bucket = store.key(ws.lake).split("/", 1)[0]
    try:
        info = store.fs.get_file_info(bucket)
    except OSError as exc:
        raise StoreError(remote.explain(exc, store.uri)) from None
    if info.type == pafs.FileType.NotFound:
        raise StoreError(f"[lake] uri = {store.uri}: the bucket {bucket!r} does not exist; create it or fix the URI")


def _open_catalog(path: Path, config: dict):
    """The catalog file as the connection's read-only default database, retried while an ingest holds it."""
    import random
    import time

    import duckdb

    from vibra.errors import BusyError

    deadline, delay = time.monotonic() + 60, 0.01
    while True:
        try:
            return duckdb.connect(str(path), read_only=True, config=config)
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() >= deadline:
                raise BusyError(f"{path}: held by another process for over 60 s; retry when it finishes") from None
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.2)


def check_statement(con, query: str) -> str:
    """The one statement of ``query`` if it only reads, else an InputError saying what is allowed."""
    import duckdb

    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise InputError(f"sql: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise InputError(f"sql: {len(statements)} statements given; run one at a time")
    kind = statements[0].type
    if kind == duckdb.StatementType.EXPLAIN:
        inner = _EXPLAIN.sub("", query, count=1)
        kinds = [s.type for s in con.extract_statements(inner)] if inner != query else []
        if kinds != [duckdb.StatementType.SELECT]:
            raise InputError("sql: EXPLAIN only of a SELECT; a query can only read")
    elif kind != duckdb.StatementType.SELECT:
        raise InputError(f"sql: {kind.name} statements are not allowed; a query can only read "
                         "(SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN)")
    return query


def run(ws: Workspace, settings: Settings, query: str, *, max_rows: int | None = None) -> SqlResult:
    """Run one read-only SQL statement; every row unless ``max_rows`` is given (then ``truncated`` says
    whether there were more). A DuckDB error, a refused statement, the timeout or the memory limit
    becomes an InputError naming the fix."""
    import duckdb

    con, views = connect(ws, settings)
    timer = threading.Timer(settings.sql.timeout_s, con.interrupt)
    try:
        check_statement(con, query)
        timer.start()
        try:
            cursor = con.execute(query)
            if cursor.description is None:
                return SqlResult(query, [], [], views)
            columns = [d[0] for d in cursor.description]
            rows, truncated = _fetch(cursor, max_rows, settings.sql.memory_limit_mb * 2**20)
        except duckdb.InterruptException:
            raise InputError(f"sql: stopped after {settings.sql.timeout_s:g} s ([sql] timeout_s); narrow the query "
                             "(a WHERE on date or equipment_id, a LIMIT) or raise the setting") from None
        except duckdb.OutOfMemoryException:
            raise InputError(f"sql: the query needs more than {settings.sql.memory_limit_mb} MB ([sql] "
                             "memory_limit_mb); narrow it or raise the setting") from None
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            raise InputError(f"sql: {first}; the views are {', '.join(views) or 'none yet (run `vibra ingest`)'}") from None
        return SqlResult(query, columns, rows, views, truncated)
    finally:
        timer.cancel()
        con.close()


def _fetch(cursor, max_rows: int | None, budget_bytes: int) -> tuple[list[tuple], bool]:
    """Rows of the statement (at most ``max_rows``, and whether there were more), fetched in chunks so that
    an answer too big to hold fails on its size (estimated from the first rows) instead of exhausting memory."""
    import sys

    want = None if max_rows is None else max_rows + 1  # one row more tells whether the answer was cut
    rows: list[tuple] = []
    row_bytes = 0
    while want is None or len(rows) < want:
        chunk = cursor.fetchmany(10_000 if want is None else min(10_000, want - len(rows)))
        if not chunk:
            break
        if not row_bytes:
            sample = chunk[:100]
            row_bytes = 64 + sum(sys.getsizeof(v) + 8 for row in sample for v in row) // len(sample)
        rows.extend(chunk)
        if len(rows) * row_bytes > budget_bytes:
            raise InputError(f"sql: the answer passed {len(rows):,} rows (~{len(rows) * row_bytes / 2**20:.0f} MB, over "
                             "[sql] memory_limit_mb); add a LIMIT or --max-rows")
    truncated = max_rows is not None and len(rows) > max_rows
    return (rows[:max_rows] if truncated else rows), truncated
