"""The lake's tables, each defined once: name, key columns, time column, schema version.

Every table is Parquet partitioned ``date=YYYY-MM-DD/equipment=<id>/`` (the UTC date of its time
column); ``raw`` holds kept waveforms, one file per recording. Stages name a table through this
module rather than spelling its folder or its keys: one ``WINDOW_KEYS`` identifies a window
everywhere (features, scores, clusters, defects, labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
# forecasts and RUL estimates are dated by the run that made them (``generated_at``), not by the times they speak of
FORECASTS = define(Table("forecasts", ("equipment_id", "channel", "indicator", "model_version", "kind", "ds"),
                         "generated_at", doc="forecast paths with intervals"))
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
