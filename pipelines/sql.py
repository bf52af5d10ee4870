"""``vibra sql``: DuckDB over the workspace, one view per lake table, the ledger read-only.

Each view reads the table's current files, as its Delta log lists them when the
connection opens (with the ``date`` and ``equipment`` partition columns), so a query
sees exactly what ``vibra status`` and the report see, never a file a compaction
has merged away. The catalog is attached read-only
as ``catalog`` (its ``recordings`` and ``runs`` tables are also exposed as views of the
same names), so a query can never change the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vibra.errors import InputError
from vibra.storage import lake, tables
from vibra.workspace import Workspace

from vibra_pipelines.runs import StageResult

# Lake folders that are not tables of rows one would query.
_NOT_TABLES = {"raw"}


@dataclass
class SqlResult(StageResult):
    """Columns and rows of one query (rows as tuples of plain Python values)."""

    query: str
    columns: list[str]
    rows: list[tuple]
    views: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"schema_version": 1, "command": "sql", "query": self.query, "columns": self.columns,
                "rows": [dict(zip(self.columns, r)) for r in self.rows], "views": self.views}


def lake_tables(ws: Workspace) -> list[str]:
    """Names of the registered lake tables (:mod:`vibra.storage.tables`) that hold at least one Parquet file."""
    return sorted(name for name in tables.TABLES if name not in _NOT_TABLES and lake.has_files(ws.table(name)))


def connect(ws: Workspace):
    """An in-memory DuckDB connection with a view per lake table and the ledger attached read-only."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    views = []
    for name in lake_tables(ws):
        files = ", ".join(lake.sql_literal(f) for f in lake.partition_files(ws.table(name)))
        con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM read_parquet([{files}], hive_partitioning = true, '
                    "union_by_name = true)")
        views.append(name)
    if ws.catalog_path.exists():
        con.execute(f"ATTACH {lake.sql_literal(ws.catalog_path)} AS catalog (READ_ONLY)")
        for name in ("recordings", "runs"):
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM catalog.{name}")
            views.append(name)
    return con, views


def run(ws: Workspace, query: str, *, max_rows: int | None = None) -> SqlResult:
    """Run one SQL statement; a DuckDB error becomes an InputError naming the fix."""
    import duckdb

    con, views = connect(ws)
    try:
        try:
            cursor = con.execute(query)
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            raise InputError(f"sql: {first}; the views are {', '.join(views) or 'none yet (run `vibra ingest`)'}") from None
        if cursor.description is None:
            return SqlResult(query, [], [], views)
        columns = [d[0] for d in cursor.description]
        rows = cursor.fetchmany(max_rows) if max_rows else cursor.fetchall()
        return SqlResult(query, columns, rows, views)
    finally:
        con.close()


def shell_path(ws: Workspace) -> Path:
    """Where the interactive prompt keeps its history."""
    return ws.data / ".sql_history"
