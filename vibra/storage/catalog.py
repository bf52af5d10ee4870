"""The catalog file (``data/catalog.duckdb``): its connections, its schema and the one write of ledger rows.

What the stages ask of it (the ingest ledger, the run history, defect types and labels) is
:mod:`vibra.storage.ledger`.

DuckDB lets one process hold a database file read-write and then refuses
every other process, even read-only ones ("Could not set lock on file"). So
no connection is ever held for a whole run: every read or write opens the
file, does one short transaction and closes it, retrying while another
process has it. An ingest of thousands of files holds the file for a few
milliseconds per batch, and ``vibra status`` in another shell still answers.
"""

from __future__ import annotations

import random
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from vibra.errors import BusyError


RECORDING_COLUMNS = (
    ("recording_id", "VARCHAR"),       # sha256 of the file's bytes ('' while pending)
    ("equipment_id", "VARCHAR"),
    ("source_path", "VARCHAR"),        # absolute path of the source file
    ("size_bytes", "BIGINT"),
    ("mtime", "TIMESTAMPTZ"),
    ("status", "VARCHAR"),             # pending | processing | completed | failed | duplicate
    ("error", "VARCHAR"),
    ("n_samples", "BIGINT"),
    ("channels", "VARCHAR[]"),
    ("sample_rate_hz", "DOUBLE"),
    ("recorded_at", "TIMESTAMPTZ"),
    ("ingested_at", "TIMESTAMPTZ"),
    ("n_windows", "BIGINT"),
    ("warnings", "VARCHAR[]"),
    ("vibra_version", "VARCHAR"),
    ("rpm", "DOUBLE"),
    ("duplicate_of", "VARCHAR"),       # source_path of the first copy, for duplicates
    ("updated_at", "TIMESTAMPTZ"),
    ("channel_stats", "VARCHAR"),      # JSON list: per channel samples, nan, flat, clipped, nan_windows
    ("settings_hash", "VARCHAR"),      # hash of the settings that concern the file (a failed file is retried when it changes)
    ("error_kind", "VARCHAR"),         # failed rows: 'input' (until the file or its settings change) | 'retry' (every run)
)

# The current row of each source file: the most recently written one.
CURRENT = ("(SELECT * FROM recordings QUALIFY row_number() OVER "
           "(PARTITION BY source_path ORDER BY updated_at DESC, status = 'pending') = 1)")


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text or "conflicting" in text or "being used" in text


@contextmanager
def connect(path: Path, *, read_only: bool = False, timeout_s: float = 60.0) -> Iterator[Any]:
    """A short-lived DuckDB connection, retried while another process holds the file."""
    import duckdb

    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            if not _is_lock_error(exc) or time.monotonic() >= deadline:
                if _is_lock_error(exc):
                    raise BusyError(f"{path}: held by another process for over {timeout_s:g} s; "
                                    "retry when it finishes") from None
                raise
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.2)
    try:
        con.execute("SET TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


_ENSURED: set[str] = set()


def ensure(path: Path) -> None:
    """Create the catalog's tables if they are missing (idempotent; once per process and file)."""
    if str(path) in _ENSURED and path.exists():
        return
    from vibra.storage.migrations import migrate

    path.parent.mkdir(parents=True, exist_ok=True)
    with connect(path) as con:
        migrate(con)
    _ENSURED.add(str(path))


def query(path: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    """Run a read-only query; an absent catalog reads as empty."""
    if not path.exists():
        return []
    with connect(path, read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Insert or replace ledger rows (key: source_path, recording_id) in one transaction.

    Pending rows of the same paths (recording_id '') are dropped: a final row
    supersedes them.
    """
    if not rows:
        return
    import pyarrow as pa

    names = [n for n, _ in RECORDING_COLUMNS]
    table = pa.Table.from_pylist([{n: r.get(n) for n in names} for r in rows])
    with connect(path) as con:
        con.register("incoming", table)
        con.execute("BEGIN")
        con.execute("DELETE FROM recordings r USING incoming i WHERE r.source_path = i.source_path "
                    "AND (r.recording_id = i.recording_id OR r.status IN ('pending', 'processing'))")
        cols = ", ".join(names)
        casts = ", ".join(f"CAST({n} AS {k}) AS {n}" for n, k in RECORDING_COLUMNS)
        con.execute(f"INSERT INTO recordings ({cols}) SELECT {casts} FROM incoming")
        con.execute("COMMIT")
        con.unregister("incoming")


def frame(con: Any, sql: str, params: Sequence[Any] = ()):
    """The result of ``sql`` as a Polars frame (through Arrow; works across DuckDB's API revisions)."""
    import polars as pl

    rel = con.sql(sql, params=list(params)) if params else con.sql(sql)
    if rel is None:  # not a query
        return pl.DataFrame()
    return pl.from_arrow(rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow())
