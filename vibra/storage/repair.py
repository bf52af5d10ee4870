"""Rebuilding a table whose transaction log is damaged, from what survives and the data files' own footers.

A commit file deleted, truncated or overwritten, or a checkpoint that ``_last_checkpoint`` names
gone or unreadable, makes delta-rs refuse the whole table. :func:`plan` reads the log entry by
entry (:mod:`vibra.storage.deltalog`) and decides, for every data file in the table's partition
folders:

- **keep** — held by the entries that survive, still there and still what its commit described
  (the size the log recorded; its footer reads);
- **adopt** — named by no surviving entry after the first lost version (it may come from the lost
  commit): its footer reads and it has the table's key columns;
- **leave** — removed by a surviving commit later than every lost one: it is not the table's
  (a leftover, judged by ``vibra doctor`` as any other);
- **quarantine** — cannot be placed (its footer does not read, another schema, overwritten since
  its commit): moved to ``data/.quarantine/``, never deleted.

:func:`apply` moves the damaged log aside (kept in the quarantine folder too) and writes a new log
whose commits add the kept and adopted files, grouped by the writer that committed them. When the
plan would have to guess (:attr:`Plan.uncertain`: a lost commit that may have replaced a derived
table's file by another, an upload too young to tell from another machine's write in flight, a
damaged file another writer committed) nothing is changed unless the caller forces it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from vibra.storage import deltalog, lake, remote

LEDGER_JUDGED = ("features",)  # tables whose duplicates and orphans the ledger settles after a rebuild
REBUILT = ("hourly",)          # tables recomputed from features after a rebuild


@dataclass
class Plan:
    """What rebuilding a damaged table's log would do (see the module docstring)."""

    table: Path
    problems: list[str]
    keep: list[tuple[Path, str]] = field(default_factory=list)     # (file, writer)
    adopt: list[tuple[Path, str]] = field(default_factory=list)    # (file, writer it is committed as)
    quarantine: dict[Path, str] = field(default_factory=dict)      # file → why it cannot be placed
    gone: list[Path] = field(default_factory=list)                 # held by the surviving log, not there
    uncertain: list[str] = field(default_factory=list)             # why rebuilding would guess

    def summary(self) -> str:
        parts = [f"rebuild {self.table.name}'s log with {len(self.keep)} file(s) the surviving log holds and "
                 f"{len(self.adopt)} it lost"]
        if self.quarantine:
            parts.append(f"move {len(self.quarantine)} file(s) that cannot be placed to the quarantine folder")
        if self.gone:
            parts.append(f"{len(self.gone)} file(s) the log held are gone (their recordings are re-ingested "
                         "where the source is still there)")
        return "; ".join(parts)


def _key_columns(table_dir: Path) -> set[str]:
    from vibra.storage.tables.registry import TABLES

    table = TABLES.get(Path(table_dir).name)
    return set(table.keys) if table is not None else {"equipment_id"}


def verify(path: Path, size: int | None = None, columns: set[str] = frozenset()) -> str | None:
    """Why a data file cannot be placed in its table (another size than its commit said, no footer, lacks the
    table's key columns), else None."""
    import pyarrow.parquet as pq

    store = remote.of(path)
    try:
        if store is not None and not path.exists():
            have = store.size(path)
            if size is not None and have != size:
                return f"changed since its commit: {have} bytes, the table's log said {size}"
            schema = pq.read_schema(store.key(path), filesystem=store.fs)
        else:
            have = path.stat().st_size
            if size is not None and have != size:
                return f"changed since its commit: {have} bytes, the table's log said {size}"
            schema = pq.read_schema(path)
    except FileNotFoundError:
        return lake.GONE
    except Exception as exc:  # noqa: BLE001 - every kind of damage: pyarrow raises ArrowInvalid/OSError
        return f"damaged: its Parquet footer does not read ({str(exc).splitlines()[0][:160]})"
    missing = sorted(columns - set(schema.names))
    if missing:
        return f"not this table's schema: lacks {', '.join(missing)} (overwritten by another file?)"
    return None


def plan(table_dir: Path, me: str, *, young_s: float | None = None) -> Plan | None:
    """How to rebuild ``table_dir``'s log (None when the log reads whole). ``me`` is this workspace's writer id;
    on object storage, objects younger than ``young_s`` that no surviving entry names make the plan uncertain."""
    table_dir = Path(table_dir)
    report = deltalog.read(table_dir, remote.of(table_dir))
    if report.ok:
        return None
    out = Plan(table_dir, report.problems())
    others = {h.writer for h in report.files.values()} - {"", me, deltalog.UNKNOWN}
    last_lost = max(report.lost) if report.lost else -1
    columns = _key_columns(table_dir)
    store = remote.of(table_dir)
    young = set()
    if store is not None and young_s:
        old = set(lake.on_disk(table_dir, young_s))
        disk = lake.on_disk(table_dir)
        young = set(disk) - old
    else:
        disk = lake.on_disk(table_dir)
    on_disk = set(disk)
    for rel, held in sorted(report.files.items()):
        path = table_dir / rel
        if path not in on_disk:
            out.gone.append(path)
            continue
        problem = verify(path, held.size, columns)
        if problem is None:
            out.keep.append((path, held.writer or (deltalog.UNKNOWN if others else me)))
        elif held.writer in ("", me) or not others:
            out.quarantine[path] = problem
        else:
            out.uncertain.append(f"{path}: {problem}; committed by another writer ({held.writer}): left to it")
    kept_parts: dict[Path, int] = {}
    for path, _ in out.keep:
        version = report.files[path.relative_to(table_dir).as_posix()].version
        if version < last_lost:
            kept_parts[path.parent] = max(version, kept_parts.get(path.parent, -1))
    for path in disk:
        rel = path.relative_to(table_dir).as_posix()
        if rel in report.files:
            continue
        last = report.last.get(rel)
        if last is not None and last[0] > last_lost:
            continue  # removed by a surviving commit after every lost one: not the table's
        if path in young:
            out.uncertain.append(f"{path}: uploaded less than {young_s / 3600:g} h ago and named by no surviving "
                                 "commit: perhaps another machine's write about to be committed")
            continue
        problem = verify(path, None, columns)
        if problem is not None:
            out.quarantine[path] = problem
            continue
        out.adopt.append((path, deltalog.UNKNOWN if others else me))
        if table_dir.name not in LEDGER_JUDGED + REBUILT and path.parent in kept_parts:
            out.uncertain.append(f"{path}: from a lost commit, beside a file of the same partition the surviving "
                                 "log holds; the lost commit may have replaced that file by this one")
    return out


def apply(plan: Plan, quarantine_root: Path) -> Path:
    """Carry out ``plan``: the damaged log moved to ``quarantine_root/<table>/_delta_log-<time>/`` (kept), the
    files that cannot be placed moved beside it, a new log adding the kept and adopted files (one commit per
    writer). Returns where the old log went."""
    table = plan.table
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    aside = Path(quarantine_root) / table.name / f"{deltalog.LOG_DIR}-{stamp}"
    aside.mkdir(parents=True, exist_ok=True)
    store = remote.of(table)
    log = table / deltalog.LOG_DIR
    if store is not None:
        objects = [p for p, _ in store.listing(log)]
        for p in objects:
            remote.download(store.key(p), aside / p.name)
        store.delete(objects)
        shutil.rmtree(log, ignore_errors=True)  # the cache's copy, if any
    elif log.exists():
        for p in log.iterdir():
            os.replace(p, aside / p.name)
        log.rmdir()
    (aside / "why.json").write_text(json.dumps({"problems": plan.problems, "plan": plan.summary(),
                                                "quarantined": {str(p): why for p, why in plan.quarantine.items()}},
                                               indent=2))
    for path in plan.quarantine:
        move_aside(path, Path(quarantine_root), table.parent)
    lake.forget(table)
    by_writer: dict[str, list[Path]] = {}
    for path, writer in plan.keep + plan.adopt:
        by_writer.setdefault(writer, []).append(path)
    if not by_writer:  # no file to hold: what lies there was removed by the log (a folder without a log reads as it lies)
        for path in lake.on_disk(table):
            move_aside(path, Path(quarantine_root), table.parent)
    for n, (writer, files) in enumerate(sorted(by_writer.items())):
        if n == 0:
            lake.create(table, sorted(files), writer)
        else:
            lake.commit(table, add=sorted(files), writer=writer)
    lake.forget(table)
    return aside


def move_aside(path: Path, quarantine_root: Path, lake_root: Path) -> Path:
    """Move a lake file (and, on object storage, its object) to ``quarantine_root`` under the same relative path;
    never deleted. Returns where it went."""
    rel = Path(path).relative_to(lake_root)
    target = quarantine_root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}")
    store = remote.of(path)
    if store is not None:
        if Path(path).exists():
            os.replace(path, target)
        else:
            try:
                remote.download(store.key(path), target)
            except FileNotFoundError:
                return target
        store.delete([Path(path)])
    elif Path(path).exists():
        os.replace(path, target)
    return target
