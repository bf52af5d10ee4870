"""The lake's tables: one definition of each (:mod:`.registry`), typed readers and writers
(:mod:`.readers`), a recording read back from kept raw data or its source file (:mod:`.recordings`)
and the integrity scans of ``vibra doctor`` (:mod:`.scans`).

Stages read and write the lake only through this package; none builds a glob or SQL over it.
"""

from vibra.storage.tables.readers import (
    commit_features,
    dates_in,
    drop_raw,
    equipment_ids,
    files_of,
    partitions_holding,
    read_clusters,
    read_defects,
    read_features,
    read_forecasts,
    read_hourly,
    read_scores,
    read_windows,
    recording_window_counts,
    window_counts,
    window_stats,
    write_clusters,
    drop_superseded_clusters,
    write_defects,
    write_features,
    write_forecasts,
    write_rul,
    open_features,
    stage_features,
    write_scores,
)
from vibra.storage.tables.recordings import ReadBack, read_recording
from vibra.storage.tables.rebuild import FeaturesRebuild
from vibra.storage.tables.scans import convert_lake, damaged_files, empty_partitions, files_without, remove_empty
from vibra.storage.tables.registry import (
    CLUSTERS,
    DEFECTS,
    FEATURES,
    FORECASTS,
    HOURLY,
    PARTITION_KEYS,
    RAW,
    RUL,
    SCORES,
    TABLES,
    WINDOW_KEYS,
    Table,
    compactable,
    define,
    retainable,
)

__all__ = [
    "CLUSTERS", "DEFECTS", "FEATURES", "FORECASTS", "HOURLY", "PARTITION_KEYS", "RAW", "RUL", "ReadBack", "SCORES",
    "TABLES", "Table", "WINDOW_KEYS", "FeaturesRebuild",
    "commit_features", "compactable", "convert_lake", "damaged_files", "dates_in", "define",
    "drop_raw", "drop_superseded_clusters", "empty_partitions", "equipment_ids", "files_of",
    "files_without", "partitions_holding", "read_clusters", "read_defects", "read_features", "read_forecasts",
    "read_hourly", "read_recording", "read_scores", "read_windows", "recording_window_counts", "remove_empty",
    "open_features", "retainable", "stage_features", "window_counts", "window_stats", "write_clusters", "write_defects",
    "write_features", "write_forecasts", "write_rul", "write_scores",
]
