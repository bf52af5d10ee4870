"""The lake: ``data/lake/<table>/date=YYYY-MM-DD/equipment=<id>/part-*.parquet``.

Every file is written to a hidden temporary name in its final folder and
renamed into place, so readers see the old file or the new one, never half.
"""

from __future__ import annotations

import os
import re
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable

TMP_MARK = ".tmp-"
# DuckDB over a list of lake files (bound as the parameter): schemas of any age, no columns from folder names
READ_FILES = "read_parquet(?, union_by_name = true, hive_partitioning = false)"
TABLE_LOCK = ".lock"  # in each table folder: writers hold it shared, compaction's swap exclusively


def table_of(final: Path) -> Path | None:
    """The table folder of a partition file (``<table>/date=…/equipment=…/<file>``), else None."""
    if final.parent.name.startswith("equipment=") and final.parent.parent.name.startswith("date="):
        return final.parent.parent.parent
    return None


def writing(final: Path):
    """The lock a writer of ``final`` holds: its table's lock, shared (a no-op outside the lake)."""
    from contextlib import nullcontext

    from vibra.storage.locks import shared

    table = table_of(final)
    return shared(table / TABLE_LOCK) if table is not None else nullcontext()


def exchange(a: Path, b: Path) -> None:
    """Swap two directories in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``).

    Where the kernel or filesystem cannot, falls back to three renames through a
    side name (``a`` then briefly absent); callers recover from that side name.
    """
    import ctypes
    import errno

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        fn = None
    if fn is not None:
        if fn(-100, os.fsencode(a), -100, os.fsencode(b), 2) == 0:  # AT_FDCWD, RENAME_EXCHANGE
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), str(a))
    side = a.with_name(a.name + ".exchange")
    os.rename(a, side)
    os.rename(b, a)
    os.rename(side, b)


def sql_literal(path: Path | str) -> str:
    """A path as a quoted SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def partition_dir(table_dir: Path, date: str, equipment_id: str) -> Path:
    return table_dir / f"date={date}" / f"equipment={equipment_id}"


def temp_path(final: Path) -> Path:
    return final.with_name(f".{final.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def replace_into(tmp: Path, final: Path) -> None:
    """Atomically move a fully written temporary file to its final name."""
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)


def write_bytes(final: Path, payload: bytes) -> Path:
    """Write ``payload`` to ``final`` atomically (temporary name in the same folder, then rename)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    with writing(final):
        tmp = temp_path(final)
        try:
            tmp.write_bytes(payload)
            replace_into(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return final


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
        return None  # gone since it was listed (compaction swapped it): not damage
    except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid/OSError for every kind of damage
        if "magic bytes" in str(exc) or os.path.getsize(path) < 12:
            return f"damaged: no Parquet footer ({os.path.getsize(path)} bytes; truncated, or not a Parquet file)"
        return f"damaged: its Parquet footer does not read ({str(exc).splitlines()[0][:160]})"
    return None


def _reader_error(exc: BaseException) -> bool:
    """An error raised by a Parquet reader (DuckDB, pyarrow, Polars) or the file system — not a bug of ours."""
    return isinstance(exc, OSError) or any(
        (cls.__module__ or "").split(".")[0].lstrip("_") in ("duckdb", "pyarrow", "polars")
        for cls in type(exc).__mro__)


@contextmanager
def reading(files: Iterable[Path | str] | Path):
    """Run a read over lake ``files`` (a list, or a table folder); if it fails and one of the files is
    damaged, raise :class:`~vibra.errors.LakeCorruptError` naming that file instead.

    The one place where DuckDB's "No magic bytes", pyarrow's ``ArrowInvalid`` and Polars'
    ``ComputeError`` about a bad file become one error naming the file and ``vibra doctor --repair``.
    Files are probed only after a failure, so a healthy read costs nothing extra.
    """
    from vibra.errors import LakeCorruptError, VibraError

    try:
        yield
    except (VibraError, MemoryError):
        raise
    except Exception as exc:
        if not _reader_error(exc):
            raise
        candidates = (sorted(Path(files).glob("**/*.parquet")) if isinstance(files, (str, Path))
                      else [Path(f) for f in files])
        for path in candidates:
            problem = damaged(path)
            if problem:
                raise LakeCorruptError(path, problem) from exc
        raise


def read_frame(files: list[Path], columns: list[str] | None = None):
    """The rows of lake ``files`` as one Polars frame (schemas of any age: missing columns are null)."""
    import polars as pl

    with reading(files):
        return pl.concat([pl.read_parquet(f, columns=columns, hive_partitioning=False) for f in files],
                         how="diagonal_relaxed")


def write_parquet(df, final: Path) -> Path:
    """Write a Polars frame to ``final`` atomically (temporary name, then rename)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    with writing(final):
        tmp = temp_path(final)
        try:
            df.write_parquet(tmp, compression="zstd", statistics=True)
            replace_into(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return final


def write_partitioned(df, table_dir: Path, name: str, time_column: str = "window_start") -> list[tuple[str, str]]:
    """Split ``df`` by UTC date of ``time_column`` and ``equipment_id``; write ``part-<name>.parquet`` in each.

    Returns the (date, equipment_id) partitions written.
    """
    import polars as pl

    first, last = df[time_column].min(), df[time_column].max()
    equipment = df["equipment_id"].unique()
    if first.date() == last.date() and equipment.len() == 1:  # the usual case: one file, no split
        date = first.date().isoformat()
        write_parquet(df, partition_dir(table_dir, date, equipment[0]) / f"part-{name}.parquet")
        return [(date, equipment[0])]
    keyed = df.with_columns(_date=pl.col(time_column).dt.convert_time_zone("UTC").dt.date().cast(pl.String))
    written = []
    for (date, equipment_id), part in keyed.group_by(["_date", "equipment_id"], maintain_order=True):
        write_parquet(part.drop("_date"), partition_dir(table_dir, date, equipment_id) / f"part-{name}.parquet")
        written.append((date, equipment_id))
    return written


def parquet_glob(table_dir: Path) -> str:
    return str(table_dir / "**" / "*.parquet")


def has_files(table_dir: Path) -> bool:
    return any(table_dir.glob("date=*/equipment=*/*.parquet")) if table_dir.exists() else False


def partition_files(table_dir: Path, equipment_id: str | None = None, dates: Iterable[str] | None = None) -> list[Path]:
    """Parquet files of the partitions asked for, found from folder names alone (partition pruning)."""
    if not table_dir.exists():
        return []
    eq = f"equipment={equipment_id}" if equipment_id else "equipment=*"
    if dates is None:
        return sorted(table_dir.glob(f"date=*/{eq}/*.parquet"))
    return sorted(p for d in dates for p in table_dir.glob(f"date={d}/{eq}/*.parquet"))


def partition_dates(table_dir: Path, equipment_id: str | None = None) -> list[str]:
    """Dates that have a partition (for ``equipment_id`` when given), newest first."""
    if not table_dir.exists():
        return []
    dates = [p.name.split("=", 1)[1] for p in table_dir.glob("date=*") if p.is_dir()]
    if equipment_id:
        dates = [d for d in dates if (table_dir / f"date={d}" / f"equipment={equipment_id}").is_dir()]
    return sorted(dates, reverse=True)


RECORDING_FILE = "part-{}.parquet"  # one recording's own file in a partition: part-<recording_id[:16]>.parquet
OWN_FILE = re.compile(r"^part-([0-9a-f]{16})\.parquet$")  # group 1: the recording_id prefix


def recording_partitions(table_dir: Path, equipment_id: str, recording_ids: set[str]) -> dict[Path, list[Path]]:
    """Partition folder → the files in it holding rows of these recordings.

    A recording's own ``part-<id[:16]>.parquet`` is found by name; files merged by compaction (any
    other name) are asked for the recordings' rows.
    """
    import duckdb

    own = {RECORDING_FILE.format(r[:16]) for r in recording_ids}
    found: dict[Path, list[Path]] = {}
    for part in sorted(table_dir.glob(f"date=*/equipment={equipment_id}")):
        files = sorted(part.glob("*.parquet"))
        hits = [f for f in files if f.name in own]
        merged = [str(f) for f in files if f.name not in own and not OWN_FILE.match(f.name)]
        if merged:
            with duckdb.connect() as con:
                rows = con.execute("SELECT DISTINCT filename FROM read_parquet(?, filename = true, union_by_name = true, "
                                   "hive_partitioning = false) WHERE recording_id IN (SELECT unnest(?))",
                                   [merged, sorted(recording_ids)]).fetchall()
            hits += [Path(r[0]) for r in rows]
        if hits:
            found[part] = hits
    return found


def remove_recordings(table_dir: Path, found: dict[Path, list[Path]], recording_ids: set[str], work: Path,
                      keep: set[str] = frozenset()) -> None:
    """Remove the rows of ``recording_ids`` from the partitions :func:`recording_partitions` found.

    A recording's own file is deleted (unless its name is in ``keep``: it is about to be
    replaced in one rename). A merged file holding some of their rows is rewritten without
    them in a twin of the partition under ``work``, swapped in by :func:`exchange` under the
    table's exclusive lock, as compaction does, so a reader sees all old rows or none.
    """
    import shutil

    import duckdb

    from vibra.storage.locks import table_exclusive

    for part, files in found.items():
        merged = [f for f in files if not OWN_FILE.match(f.name)]
        if not merged:
            for f in files:
                if f.name not in keep:
                    f.unlink(missing_ok=True)
            continue
        twin = work / "twin" / part.relative_to(table_dir.parent)
        twin.mkdir(parents=True)
        try:
            with duckdb.connect() as con:
                con.execute("SET TimeZone = 'UTC'")
                for f in merged:
                    src = f"read_parquet({sql_literal(f)}, hive_partitioning = false)"
                    left = con.execute(f"SELECT count(*) FROM {src} WHERE recording_id NOT IN (SELECT unnest(?))",
                                       [sorted(recording_ids)]).fetchone()[0]
                    if left:
                        con.execute(f"COPY (SELECT * FROM {src} WHERE recording_id NOT IN "
                                    f"({', '.join(sql_literal(r) for r in sorted(recording_ids))})) "
                                    f"TO {sql_literal(twin / f.name)} (FORMAT parquet, COMPRESSION zstd)")
            with table_exclusive(table_dir / TABLE_LOCK):
                for f in part.glob("*.parquet"):
                    if f not in files or f.name in keep:
                        (twin / f.name).hardlink_to(f)
                exchange(part, twin)
        finally:
            shutil.rmtree(work, ignore_errors=True)

