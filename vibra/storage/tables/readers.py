"""Typed readers and writers of the lake's tables: the one place a stage's rows come from and go to.

File lists come from :func:`vibra.storage.lake.partition_files` / ``partition_dates`` (the table's
current files as its Delta log lists them, pruned by machine and date) and every write goes through
:func:`vibra.storage.lake.write_partitioned` (one commit per write), so how the lake stores a partition
is the lake module's business alone. Frames are Polars.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from vibra.errors import InputError
from vibra.settings import EQUIPMENT_ID_RE
from vibra.storage import artifacts, catalog, lake
from vibra.storage.tables.registry import (CLUSTERS, DEFECTS, FEATURES, FORECASTS, HOURLY, RAW, RUL, SCORES, WINDOW_KEYS,
                                           Table)

if TYPE_CHECKING:
    from vibra.workspace import Workspace


# -- file lists ---------------------------------------------------------------------------------------

def dates_in(ws: Workspace, table: Table, equipment_id: str | None = None, *, since: datetime | None = None,
             until: datetime | None = None) -> list[str]:
    """Partition dates of ``table`` (for one machine when given) between ``since`` and ``until``, newest first."""
    dates = lake.partition_dates(ws.table(table.name), equipment_id)
    if since is not None:
        dates = [d for d in dates if d >= since.date().isoformat()]
    if until is not None:
        dates = [d for d in dates if d <= until.date().isoformat()]
    return dates


def files_of(ws: Workspace, table: Table, equipment: Iterable[str] | str | None = None,
             dates: Iterable[str] | None = None) -> list[Path]:
    """The files of ``table``'s partitions: of some machines (all by default), of some dates (all by default)."""
    folder = ws.table(table.name)
    if equipment is None or isinstance(equipment, str):
        return lake.partition_files(folder, equipment, dates)
    dates = list(dates) if dates is not None else None
    return [f for eid in equipment for f in lake.partition_files(folder, eid, dates)]


def _sql(files: list[Path], select: str = "*", where: str = "", params: list | None = None):
    """``SELECT {select} FROM <files> {where}`` in DuckDB (UTC session), as a Polars frame."""
    import duckdb

    with duckdb.connect() as con, lake.reading(files):
        con.execute("SET TimeZone = 'UTC'")
        return catalog.frame(con, f"SELECT {select} FROM {lake.READ_FILES} {where}",
                             [[str(f) for f in files]] + (params or []))


def _columns(files: list[Path]) -> set[str]:
    import duckdb

    with duckdb.connect() as con, lake.reading(files):
        return {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {lake.READ_FILES}", [[str(f) for f in files]]).fetchall()}


# -- features -------------------------------------------------------------------------------------------

def equipment_ids(ws: Workspace, wanted: list[str] | None = None) -> list[str]:
    """Machines with features (``wanted`` checked against them: an unknown one is an InputError)."""
    have = sorted({p.parent.name.split("=", 1)[1] for p in files_of(ws, FEATURES)})
    if wanted:
        for eid in wanted:
            if not EQUIPMENT_ID_RE.match(eid) or eid not in have:
                raise InputError(f"equipment {eid!r} has no features; choose from {have or 'nothing yet: run vibra ingest'}")
        return list(wanted)
    return have


def read_features(ws: Workspace, equipment_id: str, since: datetime | None = None, until: datetime | None = None):
    """One machine's features, reading only its partitions (and only dates in range), by time and channel."""
    import polars as pl

    files = files_of(ws, FEATURES, equipment_id, dates_in(ws, FEATURES, equipment_id, since=since, until=until))
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
    import polars as pl

    dates = dates_in(ws, FEATURES, since=since) if since is not None else None
    files = files_of(ws, FEATURES, equipment, dates)
    if not files:
        return pl.DataFrame()
    wanted = list(dict.fromkeys(list(WINDOW_KEYS) + ["window_start"] + columns))
    have = _columns(files)
    select = ", ".join(c if c in have else f"NULL AS {c}" for c in wanted)
    df = _sql(files, select, "WHERE window_start >= ?" if since is not None else "", [since] if since is not None else [])
    return df.sort(list(WINDOW_KEYS)) if df.height else df


def window_counts(ws: Workspace) -> dict[str, int]:
    """Windows in the ``features`` table per machine."""
    files = files_of(ws, FEATURES)
    if not files:
        return {}
    return dict(_sql(files, "equipment_id, count(*) AS n", "GROUP BY equipment_id").iter_rows())


def window_stats(ws: Workspace, embedding_version: str, numeric: Iterable[str]) -> list[dict]:
    """Per machine × channel: windows, with ``embedding_version``, embedding dimensions seen, missing cells
    (null or NaN) over the ``numeric`` columns present, first window start and last window end."""
    import duckdb

    files = [str(f) for f in files_of(ws, FEATURES)]
    if not files:
        return []
    with duckdb.connect() as con, lake.reading(files):
        con.execute("SET TimeZone = 'UTC'")
        have = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {lake.READ_FILES}", [files]).fetchall()}
        numeric = [c for c in numeric if c in have]
        missing = " + ".join(f"count(*) FILTER (WHERE {c} IS NULL OR isnan({c}))" for c in numeric) or "0"
        version = "embedding_version" if "embedding_version" in have else "NULL::VARCHAR"
        dims = "len(embedding)" if "embedding" in have else "NULL::BIGINT"
        rows = con.execute(f"""
            SELECT equipment_id, channel, count(*) AS n,
                   count(*) FILTER (WHERE {version} = ? AND {dims} IS NOT NULL) AS current,
                   count({dims}) AS with_embedding, list(DISTINCT {dims}) FILTER (WHERE {dims} IS NOT NULL) AS dims,
                   {missing} AS missing_cells, {len(numeric)} AS numeric_columns,
                   min(window_start) AS first, max(window_end) AS last
            FROM {lake.READ_FILES} GROUP BY ALL ORDER BY ALL""", [embedding_version, files]).fetchall()
    names = ("equipment_id", "channel", "n", "current", "with_embedding", "dims", "missing_cells", "numeric_columns",
             "first", "last")
    return [dict(zip(names, r)) for r in rows]


def drop_raw(ws: Workspace, equipment_id: str, recording_ids: Iterable[str]) -> None:
    """Delete the kept raw waveforms of these recordings of one machine (``raw`` is plain files, no log)."""
    own = {lake.RECORDING_FILE.format(r[:16]) for r in recording_ids}
    lake.unlink([f for f in files_of(ws, RAW, equipment_id) if f.name in own])


def recording_window_counts(ws: Workspace, skip: set[Path] = frozenset()) -> dict[str, tuple[int, int]]:
    """{recording_id: (windows stored, distinct (channel, window_index))} over ``features`` (files in ``skip`` left
    out): more windows than distinct keys means some are stored twice."""
    files = [f for f in files_of(ws, FEATURES) if f not in skip]
    if not files:
        return {}
    df = _sql(files, "recording_id, count(*) AS n, count(DISTINCT (channel, window_index)) AS keys", "GROUP BY 1")
    return {rid: (n, k) for rid, n, k in df.iter_rows()}


def partitions_holding(ws: Workspace, table: Table, recording_ids: set[str], skip: set[Path] = frozenset()) -> set[Path]:
    """Partition folders of ``table`` whose files (``skip`` left out) hold rows of any of ``recording_ids``."""
    by_part: dict[Path, list[Path]] = {}
    for f in files_of(ws, table):
        if f not in skip:
            by_part.setdefault(f.parent, []).append(f)
    out = set()
    for part, files in sorted(by_part.items()):
        ids = set(_sql(files, "DISTINCT recording_id")["recording_id"].to_list())
        if ids & recording_ids:
            out.add(part)
    return out


def open_features(ws: Workspace) -> None:
    """Make ``features`` a table before files are staged in it (see :func:`vibra.storage.lake.ensure_table`)."""
    lake.ensure_table(ws.table(FEATURES.name), ("equipment_id", "recording_id"))


def stage_features(ws: Workspace, df, recording_id: str) -> list[Path]:
    """A recording's windows written into ``features``, its own file per partition, but not committed:
    invisible to readers until :func:`commit_features` adds them (many recordings in one commit)."""
    return lake.write_files(df, ws.table(FEATURES.name), recording_id[:16])


def commit_features(ws: Workspace, files: list[Path]) -> None:
    """Add staged ``features`` files to the table in one commit (nothing to do for none)."""
    lake.commit(ws.table(FEATURES.name), add=files)


def write_features(ws: Workspace, df, recording_id: str, table_dir: Path | None = None) -> list[tuple[str, str]]:
    """A recording's windows into ``features`` (one commit), or into a staging folder ``table_dir`` (files
    only, committed later by :func:`vibra.storage.staging.replace_partitions`), in its own file per
    partition; returns the (date, equipment_id) partitions written."""
    if table_dir is None:
        return lake.write_partitioned(df, ws.table(FEATURES.name), recording_id[:16])
    return [lake.partition_of(f) for f in lake.write_files(df, table_dir, recording_id[:16])]


# -- hourly, scores, forecasts, RUL -----------------------------------------------------------------------

def read_hourly(ws: Workspace, equipment_id: str):
    """One machine's hourly aggregates, by hour."""
    import polars as pl

    files = files_of(ws, HOURLY, equipment_id)
    return lake.read_frame(files).sort("hour") if files else pl.DataFrame()


def read_scores(ws: Workspace, equipment_id: str, since: datetime | None = None, columns: list[str] | None = None):
    """One machine's anomaly scores (of every model version), from ``since`` on."""
    import polars as pl

    dates = dates_in(ws, SCORES, equipment_id, since=since) if since is not None else None
    files = files_of(ws, SCORES, equipment_id, dates)
    if not files:
        return pl.DataFrame()
    df = lake.read_frame(files, columns)
    return df.filter(pl.col("window_start") >= since) if since is not None else df


def write_scores(ws: Workspace, df, name: str) -> list[tuple[str, str]]:
    """Scores of one model version into ``scores``, as ``part-<name>.parquet`` per partition."""
    return lake.write_partitioned(df, ws.table(SCORES.name), name) if df.height else []


def read_forecasts(ws: Workspace, equipment_id: str):
    """Every stored forecast row of one machine (every run)."""
    import polars as pl

    files = files_of(ws, FORECASTS, equipment_id, lake.partition_dates(ws.table(FORECASTS.name), equipment_id))
    return lake.read_frame(files) if files else pl.DataFrame()


def write_forecasts(ws: Workspace, df, version: str) -> list[tuple[str, str]]:
    """A forecast run's rows, partitioned by the run's date (``generated_at``) and machine."""
    return lake.write_partitioned(df, ws.table(FORECASTS.name), version, time_column=FORECASTS.time_column) if df.height else []


def write_rul(ws: Workspace, df, version: str) -> list[tuple[str, str]]:
    """A RUL run's rows, partitioned by the run's date (``generated_at``) and machine."""
    return lake.write_partitioned(df, ws.table(RUL.name), version, time_column=RUL.time_column) if df.height else []


# -- versioned tables: clusters and defects (one version is current; the others are superseded) --------

def _drop_others(ws: Workspace, table: Table, version: str) -> None:
    """Remove every file of ``table`` but ``version``'s (once ``version`` is the one readers select), in one
    commit, then delete them."""
    lake.remove_files(f for f in files_of(ws, table) if f.name != f"part-{version}.parquet")


def read_clusters(ws: Workspace, version: str | None = None):
    """The clusters table of one clustering (the latest by default); empty when there is none."""
    import polars as pl

    store = artifacts.store(ws.artifacts, "clustering")
    manifest = store.latest_manifest() if version is None else store.read_manifest(version)
    files = files_of(ws, CLUSTERS)
    if not manifest or not files:
        return pl.DataFrame()
    return _sql(files, where="WHERE clustering_version = ?", params=[manifest["version"]])


def write_clusters(ws: Workspace, df, version: str) -> list[tuple[str, str]]:
    """A clustering's rows (``clustering_version`` = ``version``), superseding the previous one's files.

    Call after its manifest is committed: until then readers keep selecting the previous version."""
    return lake.write_partitioned(df, ws.table(CLUSTERS.name), version)


def drop_superseded_clusters(ws: Workspace, version: str) -> None:
    """Remove the files of every clustering but ``version`` (after ``latest`` names it)."""
    _drop_others(ws, CLUSTERS, version)


def read_defects(ws: Workspace, equipment: list[str] | None = None):
    """The kNN's defect of every window (of some machines, all by default)."""
    import polars as pl

    files = files_of(ws, DEFECTS, equipment)
    return _sql(files) if files else pl.DataFrame()


def write_defects(ws: Workspace, df, knn_version: str) -> list[tuple[str, str]]:
    """Replace the ``defects`` table with one kNN version's assignments."""
    written = lake.write_partitioned(df, ws.table(DEFECTS.name), knn_version)
    lake.write_json(ws.table(DEFECTS.name) / "_current.json", {"knn_version": knn_version})
    _drop_others(ws, DEFECTS, knn_version)
    return written
