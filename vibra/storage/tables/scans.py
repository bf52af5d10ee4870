"""Walks over the whole lake. For ``vibra doctor``: files that do not read or that a table's log lists but
are gone, files written before a column existed, partition folders holding no file (each file is looked at
on its own, so a damaged one is a finding, never a crash). For ``vibra migrate``: :func:`convert_lake`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from vibra.storage import lake
from vibra.storage.tables.registry import Table

if TYPE_CHECKING:
    from vibra.workspace import Workspace


def damaged_files(ws: Workspace) -> dict[Path, str]:
    """{file: problem} for every file of a lake table whose footer does not read (each file on its own), that is
    another size than its commit recorded (overwritten), or that the table's log lists but that is not there."""
    out = {}
    for table in lake.tables_in(ws.lake):
        for f in lake.partition_files(table):
            problem = (lake.changed(f) or lake.damaged(f)) if f.exists() else lake.GONE
            if problem:
                out[f] = problem
    return out


def files_without(ws: Workspace, table: Table, column: str) -> list[Path]:
    """Files of ``table`` whose schema lacks ``column`` (written before it existed); unreadable ones are left
    to :func:`damaged_files`."""
    import pyarrow.parquet as pq

    out = []
    for f in lake.partition_files(ws.table(table.name)):
        try:
            if column not in pq.read_schema(f).names:
                out.append(f)
        except Exception:  # noqa: BLE001 - a damaged file is reported by its own check
            continue
    return out


def empty_partitions(ws: Workspace, names: Iterable[str]) -> list[Path]:
    """Partition folders of the tables ``names`` that hold no file."""
    return [p for t in names for p in ws.table(t).glob("date=*/equipment=*") if p.is_dir() and not any(p.iterdir())]


def remove_empty(partitions: Iterable[Path]) -> None:
    """Remove empty partition folders (and their date folder when it is left empty too)."""
    for p in partitions:
        p.rmdir()
        if not any(p.parent.iterdir()):
            p.parent.rmdir()


def convert_lake(lake_dir: Path) -> dict[str, int]:
    """Make every table folder of a lake written before its tables were Delta tables (hive-partitioned
    Parquet folders) a Delta table in place: each folder gets a transaction log whose first commit adds the
    files as they lie; no file is copied or moved. ``raw`` keeps its plain files. Returns {table: files
    adopted} for the folders converted now (none when they already are). Until then an unconverted table
    reads as its files lie, and its first write converts it."""
    from vibra.storage.tables.registry import RAW

    lake_dir = Path(lake_dir)
    converted = {}
    if not lake_dir.is_dir():
        return converted
    for folder in sorted(p for p in lake_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if folder.name == RAW.name:
            continue
        n = lake.convert(folder)
        if n:
            converted[folder.name] = n
    return converted
