"""Changing a table: files added and removed in one Delta commit signed by this workspace's writer id; a
table created, converted from plain files, compacted and vacuumed."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Iterable

from vibra.storage import remote
from vibra.storage.atomic import temp_path
from vibra.storage.lake.files import _PUSHED, PARTITION_BY, RAW, partition_of, push, table_dir_of, unlink
from vibra.storage.lake.log import (_commit_lock, _table, active, is_table, on_disk, partition_files, reading,
                                    translated)


WRITER_FILE = ".writer-id"  # in the workspace's data folder (beside the lake): this workspace's writer id


def writer_id(table_dir: Path) -> str:
    """The id this workspace signs its commits with (a random id made once, kept in ``data/.writer-id``;
    the lake folder's parent is the data folder)."""
    path = Path(table_dir).absolute().parent.parent / WRITER_FILE
    known = _WRITERS.get(str(path))
    if known:
        return known
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        value = ""
    if not value:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(path)
        tmp.write_text(uuid.uuid4().hex)
        try:
            os.link(tmp, path)  # first writer wins; a concurrent one reads the winner's
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        value = path.read_text().strip()
    _WRITERS[str(path)] = value
    return value


_WRITERS: dict[str, str] = {}


def _signed(table_dir: Path, writer: str | None = None):
    """delta-rs commit properties recording the commit's writer in its ``commitInfo``."""
    from deltalake.transaction import CommitProperties

    from vibra.storage.deltalog import WRITER_KEY

    return CommitProperties(custom_metadata={WRITER_KEY: writer or writer_id(table_dir)})


def _delta_type(t):
    """An Arrow type Delta can hold: nanosecond timestamps as microseconds, all-null columns as strings."""
    import pyarrow as pa

    if pa.types.is_timestamp(t) and t.unit != "us":
        return pa.timestamp("us", t.tz)
    if pa.types.is_null(t):
        return pa.string()
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.list_(_delta_type(t.value_type))
    return t


def _schema_of(files: list[Path]):
    """The union of the files' schemas, in Delta's types, with the partition columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields: dict[str, object] = {}
    for f in files:
        store = remote.of(f)
        schema = (pq.read_schema(store.key(f), filesystem=store.fs) if store is not None and not Path(f).exists()
                  else pq.read_schema(f))
        for field in schema:
            if field.name not in fields and field.name not in PARTITION_BY:
                fields[field.name] = pa.field(field.name, _delta_type(field.type))
    return pa.schema(list(fields.values()) + [pa.field(p, pa.string()) for p in PARTITION_BY])


def _add_action(table_dir: Path, f: Path, data_change: bool = True):
    import pyarrow.parquet as pq
    from deltalake.transaction import AddAction

    date, equipment = partition_of(f)
    store = remote.of(table_dir)
    try:
        st = f.stat()
        size, mtime, rows = st.st_size, int(st.st_mtime * 1000), pq.read_metadata(f).num_rows
    except FileNotFoundError:
        if store is None:
            raise
        # written and uploaded by another process (a Dask worker): described from the store
        size, mtime = store.size(f), int(time.time() * 1000)
        if size is None:
            raise
        rows = pq.read_metadata(store.key(f), filesystem=store.fs).num_rows
    return AddAction(f.relative_to(table_dir).as_posix(), size, {"date": date, "equipment": equipment},
                     mtime, data_change, json.dumps({"numRecords": rows}))


def _remove_action(table_dir: Path, f: Path, data_change: bool = True):
    from deltalake.transaction import RemoveAction

    date, equipment = partition_of(f)
    try:
        size = f.stat().st_size
    except OSError:
        size = None
    return RemoveAction(path=f.relative_to(table_dir).as_posix(), data_change=data_change,
                        deletion_timestamp=int(time.time() * 1000), size=size,
                        partition_values={"date": date, "equipment": equipment})


def _create(table_dir: Path, files: list[Path], writer: str | None = None) -> None:
    """Start the table's log with ``files`` (every one already in its partition folder)."""
    from deltalake import Schema
    from deltalake.transaction import create_table_with_add_actions

    store = remote.of(table_dir)
    create_table_with_add_actions(store.url(table_dir) if store else str(table_dir), Schema.from_arrow(_schema_of(files)),
                                  [_add_action(table_dir, f) for f in files], mode="error",
                                  partition_by=PARTITION_BY, name=table_dir.name,
                                  storage_options=store.storage_options() if store else None,
                                  commit_properties=_signed(table_dir, writer))


def create(table_dir: Path, files: list[Path], writer: str | None = None) -> None:
    """Start the table's log with ``files`` (already in their partition folders), signed by ``writer``: a log
    rebuilt by ``vibra doctor --repair``. Holds the table's commit lock; storage errors are translated."""
    with translated(table=table_dir), _commit_lock(table_dir):
        _create(table_dir, files, writer)


def convert(table_dir: Path) -> int:
    """Make a folder of hive-partitioned Parquet files a Delta table in place (its files stay where they
    are; one commit adds them all). Returns the files adopted; 0 when it is one already or empty."""
    table_dir = Path(table_dir)
    with _commit_lock(table_dir):
        if is_table(table_dir):
            return 0
        files = on_disk(table_dir)
        if files:
            with translated(files=files):  # a file that does not read is named, never a traceback
                _create(table_dir, files)
        return len(files)


def ensure_table(table_dir: Path, columns: Iterable[str]) -> None:
    """Make ``table_dir`` a Delta table before writers stage files in it: a folder of plain files is converted
    (:func:`convert`), an empty one gets a log whose schema holds the string ``columns`` (each commit then adds the
    columns its files bring). Without it, the first commit into a folder that is no table yet takes every file
    lying there, so files other threads have staged but not settled would become visible with it."""
    import pyarrow as pa
    from deltalake import Schema
    from deltalake.transaction import create_table_with_add_actions

    table_dir = Path(table_dir)
    if convert(table_dir) or is_table(table_dir):
        return
    store = remote.of(table_dir)
    schema = pa.schema([pa.field(c, pa.string()) for c in columns] + [pa.field(p, pa.string()) for p in PARTITION_BY])
    with _commit_lock(table_dir), translated(table=table_dir):
        if is_table(table_dir):
            return
        try:
            create_table_with_add_actions(store.url(table_dir) if store else str(table_dir), Schema.from_arrow(schema),
                                          [], mode="error", partition_by=PARTITION_BY, name=table_dir.name,
                                          storage_options=store.storage_options() if store else None,
                                          commit_properties=_signed(table_dir, None))
        except Exception as exc:  # noqa: BLE001 - another process made the first commit meanwhile
            if "exists" not in str(exc).lower():
                raise


def _evolve(dt, files: list[Path]) -> bool:
    """Add to the table's schema the columns ``files`` have and it has not yet (schemas grow over versions)."""
    import pyarrow as pa
    from deltalake import Schema

    have = {f.name for f in dt.schema().fields}
    new = [f for f in _schema_of(files) if f.name not in have]
    if new:
        dt.alter.add_columns(Schema.from_arrow(pa.schema(new)).fields)
    return bool(new)


def commit(table_dir: Path, add: Iterable[Path] = (), remove: Iterable[Path] = (), *, data_change: bool = True,
           writer: str | None = None) -> None:
    """Add and remove files of the table in one transaction: readers see all of it or none of it.

    Files to add must already be in their partition folders (an added file whose path the
    table already holds replaces that entry). The removed files stay on disk for readers
    that listed them; :func:`remove_files` and :func:`vacuum` delete them. The commit records
    its writer (``writer``, by default this workspace's :func:`writer_id`): on a store several
    workspaces share, each judges and repairs only the files it committed.

    Raises
    ------
    LakeCorruptError
        The table's log does not read (a commit or checkpoint missing or damaged).
    StoreError
        The object store failed.
    """
    table_dir = Path(table_dir)
    add, remove = [Path(f) for f in add], [Path(f) for f in remove]
    if not add and not remove:
        return
    with translated(table=table_dir):
        _commit(table_dir, add, remove, data_change, writer)


def _commit(table_dir: Path, add: list[Path], remove: list[Path], data_change: bool, writer: str | None) -> None:
    _upload(add)
    with _commit_lock(table_dir):
        if not is_table(table_dir):
            # a folder of plain files (``raw``, or a table written before Delta): removing is the caller's
            # unlink; the first file added makes it a table of what lies there
            files = sorted(set(on_disk(table_dir)) - set(remove))
            if add and files:
                try:
                    _create(table_dir, files, writer)
                    return
                except Exception as exc:  # noqa: BLE001 - another process made the first commit meanwhile
                    if "exists" not in str(exc).lower():
                        raise  # (else: appended to the table the other process made, below)
            else:
                return
        dt = _table(table_dir)
        if add and _evolve(dt, add):
            dt = _table(table_dir)
        held = {p for _, _, p in active(table_dir)} if remove else set()
        actions = [_add_action(table_dir, f, data_change) for f in add]
        actions += [_remove_action(table_dir, f, data_change) for f in remove if f in held]
        if not actions:  # only files the table does not hold were to go: nothing to commit
            return
        dt.create_write_transaction(actions, mode="append", schema=dt.schema(), partition_by=PARTITION_BY,
                                    commit_properties=_signed(table_dir, writer))


def _upload(files: list[Path]) -> None:
    """Put on the store the files to commit that this process wrote and has not uploaded yet."""
    for f in files:
        store = remote.of(f)
        if store is None:
            return
        try:
            st = f.stat()
        except FileNotFoundError:
            continue  # written and uploaded elsewhere (a Dask worker)
        if _PUSHED.get(str(f)) != (st.st_size, st.st_mtime_ns):
            push(f)


def remove_files(files: Iterable[Path]) -> None:
    """Remove lake files from their tables (one commit per table), then delete them."""
    by_table: dict[Path, list[Path]] = {}
    for f in files:
        table = table_dir_of(Path(f))
        if table is not None:
            by_table.setdefault(table, []).append(Path(f))
    for table, gone in by_table.items():
        commit(table, remove=gone)
        unlink(gone)


def compact(table_dir: Path, date: str, equipment_id: str) -> dict:
    """Merge one partition's files with Delta's optimize (one commit); the merged-away files are deleted
    at once. Returns {files_before, files_after, rows}."""
    before = set(partition_files(table_dir, equipment_id, [date]))
    with reading(sorted(before)), _commit_lock(table_dir):
        _table(table_dir).optimize.compact(
            partition_filters=[("date", "=", date), ("equipment", "=", equipment_id)], max_concurrent_tasks=1,
            commit_properties=_signed(table_dir))
    after = set(partition_files(table_dir, equipment_id, [date]))
    unlink(before - after)
    import pyarrow.parquet as pq

    return {"files_before": len(before), "files_after": len(after),
            "rows": sum(pq.read_metadata(f).num_rows for f in after)}


def delete_partitions(table_dir: Path, dates: list[str]) -> int:
    """Remove every file of the given dates in one commit, then delete them (and their emptied folders) and
    vacuum what older runs left unreferenced; returns the files removed."""
    gone = [p for d, _, p in active(table_dir) if d in set(dates)]
    commit(table_dir, remove=gone)
    unlink(gone)
    for d in dates:
        for folder in [*Path(table_dir).glob(f"date={d}/equipment=*"), Path(table_dir) / f"date={d}"]:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    vacuum(table_dir, retention_hours=VACUUM_HOURS)
    return len(gone)


VACUUM_HOURS = 1  # a file no commit holds is deleted by vacuum once it is this old (never a writer's file in flight)


def vacuum(table_dir: Path, retention_hours: float = VACUUM_HOURS) -> list[str]:
    """Delete files the log no longer holds, older than ``retention_hours``; returns their paths."""
    if not is_table(table_dir):
        return []
    with translated(table=table_dir), _commit_lock(table_dir):
        return list(_table(table_dir).vacuum(retention_hours=int(retention_hours), dry_run=False,
                                             enforce_retention_duration=False, commit_properties=_signed(table_dir)))


def untracked(table_dir: Path) -> list[Path]:
    """Files in the table's partition folders that its log does not hold (a writer killed before its commit, or
    a commit file lost).

    On object storage only objects older than :data:`VACUUM_HOURS` count: the ingest lock is a local file,
    so a younger one may be a writer's on another machine, uploaded and about to be committed. There a
    folder without a log holds only such uploads (a first ingest killed before its first commit)."""
    store = remote.of(table_dir)
    if not is_table(table_dir):
        return on_disk(table_dir, VACUUM_HOURS * 3600) if store is not None and Path(table_dir).name != RAW else []
    held = {p for _, _, p in active(table_dir)}
    age = VACUUM_HOURS * 3600 if store is not None else None
    return [f for f in on_disk(table_dir, age) if f not in held]
