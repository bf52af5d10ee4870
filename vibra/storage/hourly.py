"""Hourly aggregates: per equipment × channel × UTC hour, window count and mean / max / p95
of the main indicators. Recomputed whole for each (date, equipment) partition that
changed, so reruns and late files always give the same table."""

from __future__ import annotations

import uuid
from pathlib import Path

from vibra.storage.atomic import replace_into, temp_path
from vibra.storage.lake import commit, partition_dir, partition_files, reading, sql_literal, unlink

HOURLY_INDICATORS = ("rms", "peak", "crest_factor", "kurtosis", "skewness", "dominant_freq_hz",
                     "velocity_rms_mm_s")


def hourly_sql(files: list[Path], available: set[str]) -> str:
    names = [n for n in HOURLY_INDICATORS if n in available]
    aggs = ", ".join(
        f"avg({n}) AS {n}_mean, max({n}) AS {n}_max, quantile_cont({n}, 0.95) AS {n}_p95" for n in names)
    file_list = ", ".join(sql_literal(f) for f in files)
    return (f"SELECT equipment_id, channel, date_trunc('hour', window_start) AS hour, "
            f"count(*) AS n_windows, {aggs} "
            f"FROM read_parquet([{file_list}], hive_partitioning = false, union_by_name = true) "
            f"GROUP BY ALL ORDER BY channel, hour")


DIRTY = ".dirty"


def mark_dirty(lake: Path, partitions: set[tuple[str, str]]) -> None:
    """Record durably that these partitions' hourly aggregates must be rebuilt.

    Written before the ledger says the recordings are completed, removed after the
    rebuild: a crash in between leaves the marker, and the next ingest rebuilds it.
    """
    folder = lake / "hourly" / DIRTY
    folder.mkdir(parents=True, exist_ok=True)
    for date, equipment_id in partitions:
        (folder / f"{date}__{equipment_id}").touch()


def rebuild_dirty(lake: Path) -> int:
    """Rebuild every partition marked dirty, then clear the marks; returns rows written."""
    folder = lake / "hourly" / DIRTY
    if not folder.exists():
        return 0
    marks = list(folder.iterdir())
    rows = rebuild(lake, _partitions_of(marks))
    for m in marks:
        m.unlink(missing_ok=True)
    return rows


def marked(lake: Path) -> set[tuple[str, str]]:
    """The (date, equipment_id) partitions marked dirty and not rebuilt yet."""
    folder = lake / "hourly" / DIRTY
    return _partitions_of(folder.iterdir()) if folder.exists() else set()


def _partitions_of(marks) -> set[tuple[str, str]]:
    return {tuple(m.name.split("__", 1)) for m in marks if "__" in m.name}  # type: ignore[misc]


def rebuild(lake: Path, partitions: set[tuple[str, str]]) -> int:
    """Recompute ``hourly`` for the given (date, equipment_id) partitions; returns rows written."""
    if not partitions:  # every ingest calls this, a rerun with nothing new too: no DuckDB to start then
        return 0
    import duckdb

    total = 0
    added, removed = [], []  # committed to the hourly table in one transaction at the end
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        for date, equipment_id in sorted(partitions):
            files = partition_files(lake / "features", equipment_id, [date])
            # a new name each time: a committed file is never overwritten (a reader holding the log's size and a
            # store's object under that name must agree); the partition's earlier files leave in the same commit
            removed += partition_files(lake / "hourly", equipment_id, [date], fetch=False)
            out = partition_dir(lake / "hourly", date, equipment_id) / f"part-{uuid.uuid4().hex[:16]}.parquet"
            if not files:
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = temp_path(out)
            try:
                with reading(files):
                    columns = {row[0] for row in con.execute(
                        f"DESCRIBE SELECT * FROM read_parquet({sql_literal(files[0])}, hive_partitioning = false)").fetchall()}
                    con.execute(f"COPY ({hourly_sql(files, columns)}) TO {sql_literal(tmp)} "
                                "(FORMAT parquet, COMPRESSION zstd)")
                replace_into(tmp, out)
                added.append(out)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            total += con.execute(f"SELECT count(*) FROM read_parquet({sql_literal(out)})").fetchone()[0]
    finally:
        con.close()
    commit(lake / "hourly", add=added, remove=removed)
    unlink(removed)
    return total
