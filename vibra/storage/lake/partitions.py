"""A table's rows as frames: a frame written as one Parquet file per (date, equipment) partition and
committed, files read back as one frame, a recording's rows found and removed in one commit."""

from __future__ import annotations

import uuid
from pathlib import Path

from vibra.storage.atomic import replace_into, temp_path
from vibra.storage.lake.commits import commit
from vibra.storage.lake.files import OWN_FILE, RECORDING_FILE, _write_file, partition_dir, partition_of, sql_literal, \
    table_dir_of, unlink
from vibra.storage.lake.log import partition_files, reading


def read_frame(files: list[Path], columns: list[str] | None = None):
    """The rows of lake ``files`` as one Polars frame (schemas of any age: missing columns are null)."""
    import polars as pl

    with reading(files):
        return pl.concat([pl.read_parquet(f, columns=columns, hive_partitioning=False) for f in files],
                         how="diagonal_relaxed")


def write_parquet(df, final: Path) -> Path:
    """Write a Polars frame to ``final`` (temporary name, then rename) and commit it to its table."""
    _write_file(df, final)
    table = table_dir_of(final)
    if table is not None:
        commit(table, add=[final])
    return final


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
