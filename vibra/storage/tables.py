"""The lake's tables, each defined once: name, key columns, time column, schema version.

Every table is Parquet partitioned ``date=YYYY-MM-DD/equipment=<id>/`` (the UTC date of its time
column); ``raw`` holds kept waveforms, one file per recording. Stages name a table through this
module rather than spelling its folder or its keys: one ``WINDOW_KEYS`` identifies a window
everywhere (features, scores, clusters, defects, labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from vibra.errors import InputError
from vibra.settings import EQUIPMENT_ID_RE
from vibra.storage import catalog, lake

if TYPE_CHECKING:
    from vibra.workspace import Workspace

# A window: which machine, which recording, which channel, which frame of it.
WINDOW_KEYS: tuple[str, ...] = ("equipment_id", "recording_id", "channel", "window_index")
PARTITION_KEYS: tuple[str, ...] = ("date", "equipment")


@dataclass(frozen=True)
class Table:
    """One lake table. ``keys`` identify a row; ``time_column`` dates its partition."""

    name: str
    keys: tuple[str, ...]
    time_column: str
    schema_version: int = 1
    compactable: bool = True
    retainable: bool = True
    doc: str = ""

    def folder(self, lake: Path) -> Path:
        return lake / self.name


TABLES: dict[str, Table] = {}


def define(table: Table) -> Table:
    """Register a table; a new table kind is one call here (compaction, retention and `vibra sql` see it)."""
    TABLES[table.name] = table
    return table


FEATURES = define(Table("features", WINDOW_KEYS, "window_start", doc="indicators per window and channel"))
HOURLY = define(Table("hourly", ("equipment_id", "channel", "hour"), "hour", doc="hourly aggregates of features"))
SCORES = define(Table("scores", WINDOW_KEYS + ("model_type", "model_version"), "window_start",
                      doc="anomaly scores per window and model version"))
FORECASTS = define(Table("forecasts", ("equipment_id", "channel", "indicator", "model_version", "time"), "time",
                         doc="forecast paths with intervals"))
CLUSTERS = define(Table("clusters", WINDOW_KEYS + ("clustering_version",), "window_start",
                        doc="cluster of every window per clustering"))
DEFECTS = define(Table("defects", WINDOW_KEYS + ("knn_version",), "window_start", doc="kNN defect assignments"))
RUL = define(Table("rul", ("equipment_id", "model_version"), "generated_at", doc="remaining useful life estimates"))
RAW = define(Table("raw", ("equipment_id", "recording_id"), "start", compactable=False,
                   doc="kept raw waveforms (float32), one file per recording"))


def compactable() -> tuple[str, ...]:
    return tuple(t.name for t in TABLES.values() if t.compactable)


def retainable() -> tuple[str, ...]:
    return tuple(t.name for t in TABLES.values() if t.retainable)


# -- readers of the features table shared by the stages ----------------------------------------------

def equipment_ids(ws: Workspace, wanted: list[str] | None = None) -> list[str]:
    table = ws.table(FEATURES.name)
    have = sorted({p.name.split("=", 1)[1] for p in table.glob("date=*/equipment=*")}) if table.exists() else []
    if wanted:
        for eid in wanted:
            if not EQUIPMENT_ID_RE.match(eid) or eid not in have:
                raise InputError(f"equipment {eid!r} has no features; choose from {have or 'nothing yet: run vibra ingest'}")
        return list(wanted)
    return have


def read_features(ws: Workspace, equipment_id: str, since: datetime | None = None, until: datetime | None = None):
    """One machine's features, reading only its partitions (and only dates in range)."""
    import polars as pl

    table = ws.table(FEATURES.name)
    dates = lake.partition_dates(table, equipment_id)
    if since is not None:
        dates = [d for d in dates if d >= since.date().isoformat()]
    if until is not None:
        dates = [d for d in dates if d <= until.date().isoformat()]
    files = lake.partition_files(table, equipment_id, dates)
    if not files:
        return pl.DataFrame()
    df = lake.read_frame(files)
    if since is not None:
        df = df.filter(pl.col("window_start") >= since)
    if until is not None:
        df = df.filter(pl.col("window_start") < until)
    return df.sort("window_start", "channel")


def read_windows(ws: Workspace, columns: list[str], *, since: datetime | None = None, equipment: list[str] | None = None):
    """Rows of the ``features`` table (only ``columns`` plus the keys), across files of any schema age.

    Files written before the embedding carried a version read with a null
    ``embedding_version``.
    """
    import duckdb
    import polars as pl

    table = ws.table(FEATURES.name)
    dates = None
    if since is not None:
        dates = [d for d in lake.partition_dates(table) if d >= since.date().isoformat()]
    files = [f for eid in (equipment or [None]) for f in lake.partition_files(table, eid, dates)]
    if not files:
        return pl.DataFrame()
    wanted = list(dict.fromkeys(list(WINDOW_KEYS) + ["window_start"] + columns))
    with duckdb.connect() as con, lake.reading(files):
        con.execute("SET TimeZone = 'UTC'")
        have = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {lake.READ_FILES}", [[str(f) for f in files]]).fetchall()}
        select = ", ".join(c if c in have else f"NULL AS {c}" for c in wanted)
        where = "WHERE window_start >= ?" if since is not None else ""
        params: list = [[str(f) for f in files]] + ([since] if since is not None else [])
        df = catalog.frame(con, f"SELECT {select} FROM {lake.READ_FILES} {where}", params)
    return df.sort(list(WINDOW_KEYS)) if df.height else df
