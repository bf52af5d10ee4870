"""A Delta table's transaction log read entry by entry, for ``vibra doctor``: what is damaged, what survives.

delta-rs reads a log whole and refuses it at the first bad entry (a commit file missing from the
sequence, a truncated commit, a checkpoint ``_last_checkpoint`` names that is gone or does not
read). This module reads each entry on its own — commits ``<version>.json`` (one JSON action per
line), checkpoints ``<version>.checkpoint.parquet`` and the ``_last_checkpoint`` pointer — and
replays the ones that read: from version 0 when every commit up to the newest is there, else from
the newest readable checkpoint that covers the lost ones. The result (:class:`LogReport`) says
which entries are damaged, which versions are lost, which files the surviving entries hold (with
the writer that committed each: ``vibra.writer`` in the commit's ``commitInfo``) and the last
action naming each path. :mod:`vibra.storage.repair` plans a new log from it and the data files' footers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

LOG_DIR = "_delta_log"
COMMIT = re.compile(r"^(\d{20})\.json$")
CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(?:\.\d+\.\d+)?\.parquet$")
LAST_CHECKPOINT = "_last_checkpoint"
WRITER_KEY = "vibra.writer"  # in each commit's commitInfo (delta-rs's custom metadata): the workspace that wrote it


@dataclass
class Entry:
    """One file of the log: a commit, a checkpoint or the ``_last_checkpoint`` pointer."""

    path: Path
    kind: str               # commit | checkpoint | last_checkpoint
    version: int | None
    problem: str | None = None


@dataclass
class Held:
    """A data file the surviving entries hold: its path relative to the table, size, the version that added it
    and the writer of that commit ("" when unknown: a checkpoint's, or written before writers were recorded)."""

    path: str
    size: int | None
    version: int
    writer: str = ""


@dataclass
class LogReport:
    table: Path
    entries: list[Entry] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)      # versions whose commit is missing or does not read
    files: dict[str, Held] = field(default_factory=dict)  # the table's files per the entries that read
    last: dict[str, tuple[int, str]] = field(default_factory=dict)  # path → (version, add|remove) of its last mention
    newest: int = -1
    base: int | None = None                             # the checkpoint the replay started from, if any
    schema: str | None = None                           # the table's schema (metaData.schemaString), if read

    @property
    def damaged(self) -> list[Entry]:
        return [e for e in self.entries if e.problem]

    @property
    def ok(self) -> bool:
        return not self.damaged and not self.lost

    def problems(self) -> list[str]:
        """One line per damaged entry or lost version."""
        out = [f"{e.path}: {e.problem}" for e in self.damaged]
        missing = [v for v in self.lost if not any(e.version == v and e.kind == "commit" for e in self.entries)]
        out += [f"{self.table / LOG_DIR / f'{v:020d}.json'}: missing (version {v} of {self.newest})"
                for v in missing]
        return out


def _listing(table_dir: Path, store) -> list[Path]:
    if store is not None:
        return [p for p, _ in store.listing(Path(table_dir) / LOG_DIR)]
    log = Path(table_dir) / LOG_DIR
    return sorted(p for p in log.iterdir() if p.is_file()) if log.is_dir() else []


def _read(path: Path, store=None) -> bytes:
    if store is not None and not path.exists():
        with store.fs.open_input_stream(store.key(path)) as src:
            return src.read()
    return path.read_bytes()


def _commit_actions(data: bytes) -> list[dict]:
    """The actions of a commit file; raises ValueError naming the line that does not read."""
    text = data.decode("utf-8")  # UnicodeDecodeError is a ValueError
    lines = text.splitlines()
    if not lines:
        raise ValueError("empty")
    actions = []
    for n, line in enumerate(lines, 1):
        try:
            action = json.loads(line)
        except ValueError:
            raise ValueError(f"line {n} of {len(lines)} is not JSON (truncated or overwritten)") from None
        if not isinstance(action, dict) or len(action) != 1:
            raise ValueError(f"line {n} of {len(lines)} is not one Delta action")
        actions.append(action)
    return actions


def _checkpoint_actions(path: Path, store) -> list[dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # an Arrow buffer, not a Python file object: Arrow's reader threads would release a Python object after
    # the read, and one still doing so at interpreter exit aborts the process (SIGABRT, `std::terminate`)
    rows = pq.read_table(pa.BufferReader(_read(path, store)), use_threads=False).to_pylist()
    out = []
    for row in rows:
        for kind in ("add", "remove", "metaData", "protocol"):
            if row.get(kind):
                out.append({kind: row[kind]})
    return out


def read(table_dir: Path, store=None) -> LogReport:
    """Every entry of the table's log, read on its own, and the state the readable ones replay to.

    ``store`` is the :class:`vibra.storage.remote.Remote` the table is mirrored to (None: a local table)."""
    table_dir = Path(table_dir)
    report = LogReport(table_dir)
    commits: dict[int, list[dict]] = {}
    checkpoints: dict[int, list[dict]] = {}
    pointer: Entry | None = None
    for path in _listing(table_dir, store):
        name = path.name
        if m := COMMIT.match(name):
            entry = Entry(path, "commit", int(m.group(1)))
            try:
                commits[entry.version] = _commit_actions(_read(path, store))
            except (ValueError, OSError) as exc:
                entry.problem = f"commit {entry.version} does not read: {exc}"
        elif m := CHECKPOINT.match(name):
            entry = Entry(path, "checkpoint", int(m.group(1)))
            try:
                checkpoints[entry.version] = _checkpoint_actions(path, store)
            except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid/OSError for every kind of damage
                entry.problem = f"checkpoint {entry.version} does not read ({str(exc).splitlines()[0][:160]})"
        elif name == LAST_CHECKPOINT:
            entry = pointer = Entry(path, "last_checkpoint", None)
            try:
                entry.version = int(json.loads(_read(path, store))["version"])
            except (ValueError, KeyError, TypeError, OSError) as exc:
                entry.problem = f"_last_checkpoint does not read ({type(exc).__name__}: {str(exc)[:120]})"
        else:
            continue
        report.entries.append(entry)
    if pointer is not None and pointer.version is not None and not pointer.problem and \
            pointer.version not in checkpoints:
        named = [e for e in report.entries if e.kind == "checkpoint" and e.version == pointer.version]
        target = table_dir / LOG_DIR / f"{pointer.version:020d}.checkpoint.parquet"
        pointer.problem = (f"_last_checkpoint names checkpoint {pointer.version} ({target}), which "
                           + ("does not read" if named else "is missing"))
    readable = set(commits)
    versions = readable | {e.version for e in report.entries if e.kind == "commit"} | set(checkpoints) | \
        {e.version for e in report.entries if e.kind == "checkpoint"}
    if pointer is not None and pointer.version is not None:
        versions.add(pointer.version)
    if not versions:
        return report
    report.newest = max(versions)
    # start from 0, or from the newest readable checkpoint after the last commit lost before it
    missing = [v for v in range(report.newest + 1) if v not in readable]
    base = None
    covering = [c for c in checkpoints if missing and c >= missing[0]]
    if covering:  # the newest one after which every commit reads, else simply the newest
        whole = [c for c in covering if all(v in readable for v in range(c + 1, report.newest + 1))]
        base = max(whole or covering)
    report.base = base
    state: dict[str, Held] = {}

    def apply(actions: list[dict], version: int, writer: str) -> None:
        for action in actions:
            if "add" in action:
                add = action["add"]
                report.last[add["path"]] = (version, "add")
                state[add["path"]] = Held(add["path"], add.get("size"), version, writer)
            elif "remove" in action:
                report.last[action["remove"]["path"]] = (version, "remove")
                state.pop(action["remove"]["path"], None)
            elif "metaData" in action and action["metaData"].get("schemaString"):
                report.schema = action["metaData"]["schemaString"]

    start = 0
    if base is not None:
        apply(checkpoints[base], base, "")
        start = base + 1
    for v in range(start, report.newest + 1):
        if v not in readable:
            report.lost.append(v)
            continue
        info = next((a["commitInfo"] for a in commits[v] if "commitInfo" in a), {})
        apply(commits[v], v, str(info.get(WRITER_KEY, "")))
    report.files = state
    return report


UNKNOWN = "unknown"  # the writer of a file adopted by a log rebuild on a store other writers share


def writers(table_dir: Path, store=None) -> dict[str, str]:
    """{file path relative to the table: writer id} for every file the table holds ("" when unknown)."""
    return {p: h.writer for p, h in read(table_dir, store).files.items()}
