"""The ledger: every question and change the stages put to the catalog (``data/catalog.duckdb``), typed,
and the workspace's ingest lock.

:mod:`vibra.storage.catalog` is the file (its short connections, its schema, the one write of ledger
rows); this module is what is asked of it: the current row of each source file, the machines seen,
the run history, the defect catalog, labels and alarms. A stage imports this module, never SQL. Every function
takes the :class:`~vibra.workspace.Workspace`; an absent catalog reads as empty.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from vibra import errors
from vibra.storage import catalog
from vibra.storage.catalog import CURRENT, RECORDING_COLUMNS

if TYPE_CHECKING:
    from vibra.settings import Settings
    from vibra.workspace import Workspace

NAMES = tuple(n for n, _ in RECORDING_COLUMNS)
LABEL_COLUMNS = ("label_id", "kind", "defect", "equipment_id", "recording_id", "start_at", "end_at",
                 "clustering_version", "cluster_id", "n_windows", "source", "created_by", "created_at", "note")
ALARM_COLUMNS = ("alarm_id", "equipment_id", "channel", "level", "started_at", "last_at", "peak_score", "state",
                 "acked_by", "acked_at", "cleared_at", "updated_at")
RUN_COLUMNS = ("run_id", "command", "arguments", "started_at", "finished_at", "status", "counts", "error",
               "vibra_version", "pid", "host")


def ensure(ws: Workspace) -> None:
    """Create or migrate the catalog's tables (idempotent; once per process)."""
    catalog.ensure(ws.catalog_path)


def migrate(ws: Workspace) -> tuple[int, int]:
    """Bring the catalog's schema to this vibra's version now (``vibra migrate``); (from, to) versions."""
    from vibra.storage.migrations import migrate as run_migrations

    ws.catalog_path.parent.mkdir(parents=True, exist_ok=True)
    with catalog.connect(ws.catalog_path) as con:
        return run_migrations(con)


# -- the ingest lock ------------------------------------------------------------------------------

@contextmanager
def ingest_lock(ws: Workspace, settings: Settings, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold ``data/.ingest.lock`` for the body: one ingest, rebuild, compaction, retention or repair at a time.

    Waits up to ``ingest.lock_timeout_s``, telling ``on_wait`` once that it waits; then
    :class:`~vibra.errors.BusyError` naming the holder's pid.
    """
    from vibra.storage.locks import exclusive

    with exclusive(ws.data / ".ingest.lock", timeout_s=settings.ingest.lock_timeout_s, what="vibra ingest",
                   on_wait=on_wait):
        yield


# -- source files and their recordings --------------------------------------------------------------

def _in(column: str, values: Iterable[str] | None, where: list[str], params: list) -> None:
    if values is not None:
        where.append(f"{column} IN (SELECT unnest(?))")
        params.append(list(values))


def current(ws: Workspace, *, status: str | tuple[str, ...] | None = None, equipment: Iterable[str] | None = None,
            recording_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The current row (every column of :data:`RECORDING_COLUMNS`) of each source file, oldest recording first;
    only those of ``status`` (one or several), of the machines ``equipment`` and the ``recording_ids`` given."""
    where: list[str] = []
    params: list = []
    _in("status", [status] if isinstance(status, str) else status, where, params)
    _in("equipment_id", equipment, where, params)
    _in("recording_id", recording_ids, where, params)
    rows = catalog.query(ws.catalog_path, f"SELECT {', '.join(NAMES)} FROM {CURRENT} c "
                                          f"{'WHERE ' + ' AND '.join(where) if where else ''} "
                                          "ORDER BY recorded_at, source_path", params)
    return [dict(zip(NAMES, r)) for r in rows]


def completed_by_prefix(ws: Workspace, prefixes: Iterable[str]) -> list[dict[str, Any]]:
    """The current completed rows whose recording id starts with one of these 16-character prefixes (the
    prefix a lake file's name carries)."""
    rows = catalog.query(ws.catalog_path, f"SELECT {', '.join(NAMES)} FROM {CURRENT} c WHERE status = 'completed' "
                                          "AND substr(recording_id, 1, 16) IN (SELECT unnest(?))", [sorted(prefixes)])
    return [dict(zip(NAMES, r)) for r in rows]


def ever_completed(ws: Workspace) -> set[str]:
    """Every recording id any row of the ledger's history holds as completed (current or not: a file whose content
    changed since keeps its earlier version's row)."""
    return {r[0] for r in catalog.query(ws.catalog_path,
                                        "SELECT DISTINCT recording_id FROM recordings WHERE status = 'completed'")}


def schema_version(ws: Workspace) -> int:
    """The catalog's recorded schema version (0 when none is recorded)."""
    rows = catalog.query(ws.catalog_path, "SELECT value FROM meta WHERE key = 'schema_version'")
    return int(rows[0][0]) if rows else 0


def expire(ws: Workspace, recording_ids: list[str], reason: str) -> int:
    """Mark these completed recordings ``expired`` (their windows are gone); returns how many were."""
    now = datetime.now(timezone.utc)
    rows = current(ws, status="completed", recording_ids=recording_ids)
    catalog.write_rows(ws.catalog_path, [{**r, "status": "expired", "updated_at": now, "error": reason} for r in rows])
    return len(rows)


def write_rows(ws: Workspace, rows: list[dict[str, Any]]) -> None:
    """Insert or replace ledger rows (see :func:`vibra.storage.catalog.write_rows`)."""
    catalog.write_rows(ws.catalog_path, rows)


def remember_settings(ws: Workspace, payloads: dict[str, str]) -> None:
    """Keep what each settings hash stands for (``settings_seen``: hash → JSON payload; idempotent)."""
    if not payloads:
        return
    now = datetime.now(timezone.utc)
    with catalog.connect(ws.catalog_path) as con:
        con.executemany("INSERT INTO settings_seen VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                        [[h, body, now] for h, body in payloads.items()])


def completed_settings(ws: Workspace, *, equipment: Iterable[str] | None = None,
                       source_paths: Iterable[str] | None = None) -> list[tuple[str, str, int]]:
    """``(equipment_id, settings payload JSON, completed files)`` of the current completed rows whose hash
    has a payload kept (:func:`remember_settings`); rows without one are left out."""
    where: list[str] = ["c.status = 'completed'"]
    params: list = []
    _in("c.equipment_id", equipment, where, params)
    _in("c.source_path", source_paths, where, params)
    return [tuple(r) for r in catalog.query(
        ws.catalog_path, f"SELECT c.equipment_id, s.payload, count(*) FROM {CURRENT} c JOIN settings_seen s "
                         f"USING (settings_hash) WHERE {' AND '.join(where)} GROUP BY ALL ORDER BY 1", params)]


def equipment_ids(ws: Workspace) -> set[str]:
    """Every machine the ledger has seen a file of."""
    return {r[0] for r in catalog.query(ws.catalog_path, "SELECT DISTINCT equipment_id FROM recordings "
                                                         "WHERE equipment_id IS NOT NULL AND equipment_id <> ''")}


def files(ws: Workspace, *, failed: bool = False, warnings: bool = False, equipment: list[str] | None = None,
          limit: int | None = None) -> list[dict[str, Any]]:
    """Current rows newest first (``vibra files``): only failed ones, only those with warnings (both: either)."""
    where: list[str] = []
    params: list = []
    if failed or warnings:
        where.append("(" + " OR ".join(
            (["status = 'failed'"] if failed else []) + (["len(coalesce(warnings, [])) > 0"] if warnings else [])) + ")")
    _in("equipment_id", equipment or None, where, params)
    rows = catalog.query(ws.catalog_path, f"SELECT {', '.join(NAMES)} FROM {CURRENT} c "
                                          f"{'WHERE ' + ' AND '.join(where) if where else ''} "
                                          f"ORDER BY updated_at DESC, source_path {f'LIMIT {int(limit)}' if limit else ''}",
                         params)
    return [dict(zip(NAMES, r)) for r in rows]


def resolve_recording(ws: Workspace, ident: str) -> tuple[str, str]:
    """(recording_id, equipment_id) of a recording id, an unambiguous id prefix, or a source file name."""
    hits = {(r["recording_id"], r["equipment_id"]) for r in current(ws, status="completed")
            if r["recording_id"] == ident or (len(ident) >= 6 and r["recording_id"].startswith(ident))
            or r["source_path"].replace("\\", "/").rsplit("/", 1)[-1] == ident}
    if len(hits) == 1:
        return hits.pop()
    if not hits:
        raise errors.InputError(f"recording {ident!r}: no completed recording has this id, id prefix or file name; "
                                "give the name of its source file as it is in the export, or its recording id (the "
                                "sha256 of the file, e.g. from `sha256sum`)")
    raise errors.InputError(f"recording {ident!r} is ambiguous ({len(hits)} recordings match); give more of the id")


def source_paths(ws: Workspace, recording_ids: Iterable[str]) -> dict[str, str]:
    """``{recording_id: source path}`` of these recordings (any row that names them)."""
    ids = list(recording_ids)
    if not ids:
        return {}
    return dict(catalog.query(ws.catalog_path, "SELECT recording_id, any_value(source_path) FROM recordings "
                                               "WHERE recording_id IN (SELECT unnest(?)) GROUP BY 1", [ids]))


def channel_stats(ws: Workspace, equipment: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """``(recording_id, channel_stats JSON)`` of every completed recording that has them."""
    where = ["status = 'completed'", "channel_stats IS NOT NULL"]
    params: list = []
    _in("equipment_id", equipment, where, params)
    return catalog.query(ws.catalog_path, f"SELECT recording_id, channel_stats FROM recordings "
                                          f"WHERE {' AND '.join(where)}", params)


@dataclass(frozen=True)
class StatusCounts:
    """:func:`status_counts`: files per status, and per machine its completed and failed files and the
    newest completed recording's time."""

    by_status: dict[str, int]
    per_equipment: list[tuple[str, int, int, datetime | None]]


def status_counts(ws: Workspace, equipment: list[str] | None = None) -> StatusCounts:
    where: list[str] = []
    params: list = []
    _in("equipment_id", equipment or None, where, params)
    sql_where = f"WHERE {' AND '.join(where)}" if where else ""
    by_status = dict(catalog.query(ws.catalog_path, f"SELECT status, count(*) FROM {CURRENT} c {sql_where} "
                                                    "GROUP BY status", params))
    per_eq = catalog.query(ws.catalog_path,
                           f"SELECT equipment_id, count(*) FILTER (status = 'completed'), "
                           f"count(*) FILTER (status = 'failed'), max(recorded_at) FILTER (status = 'completed') "
                           f"FROM {CURRENT} c {sql_where} GROUP BY equipment_id ORDER BY equipment_id", params)
    return StatusCounts(by_status, [tuple(r) for r in per_eq if r[0]])


# -- what ingest asks of the ledger ------------------------------------------------------------------

@dataclass(frozen=True)
class Previous:
    """What the ledger holds for one source file (its current row)."""

    size_bytes: int
    mtime: float              # epoch seconds
    status: str
    recording_id: str
    settings_hash: str | None
    error_kind: str | None


@dataclass
class SkipIndex:
    """What a new ingest needs from the ledger, read in one query.

    ``current``: the current row of every source file; ``completed``: content hash → source path of
    completed recordings (for content dedup); ``versions``: source path → every recording id the file
    was ever completed as (its earlier versions, whose windows a new version replaces);
    ``latest_completed``: source path → the id it was last completed as.
    """

    current: dict[str, Previous]
    completed: dict[str, str]
    versions: dict[str, set[str]]
    latest_completed: dict[str, str]


def skip_index(ws: Workspace) -> SkipIndex:
    """The ledger as :class:`SkipIndex` (empty for an absent catalog)."""
    rows = catalog.query(ws.catalog_path,
                         "SELECT source_path, size_bytes, epoch_us(mtime), status, recording_id, settings_hash, "
                         "error_kind, row_number() OVER (PARTITION BY source_path ORDER BY updated_at DESC, "
                         "status = 'pending') AS rn FROM recordings ORDER BY updated_at")
    now: dict[str, Previous] = {}
    versions: dict[str, set[str]] = {}
    latest: dict[str, str] = {}
    for p, size, mtime, status, rid, digest, kind, rn in rows:
        if rn == 1:
            now[p] = Previous(size or 0, (mtime or 0) / 1e6, status, rid or "", digest, kind)
        if status == "completed" and rid:
            versions.setdefault(p, set()).add(rid)
            latest[p] = rid  # rows come oldest first
    completed = {prev.recording_id: p for p, prev in now.items() if prev.status == "completed"}
    return SkipIndex(now, completed, versions, latest)


def drop_pending(ws: Workspace, source_paths: list[str]) -> None:
    """Remove the pending/processing rows of these files, so their previous row is current again."""
    if not source_paths:
        return
    with catalog.connect(ws.catalog_path) as con:
        con.execute("DELETE FROM recordings WHERE status IN ('pending', 'processing') "
                    "AND source_path IN (SELECT unnest(?))", [source_paths])


def adopt(ws: Workspace, recording_id: str, now) -> None:
    """A recording whose file moved on to new content passes to the first file holding a copy
    of it (a ``duplicate`` row): that row becomes the completed one, with the recording's details."""
    kept = ("source_path", "equipment_id", "size_bytes", "mtime")
    with catalog.connect(ws.catalog_path) as con:
        heir = con.execute(f"SELECT source_path, equipment_id, size_bytes, mtime FROM {CURRENT} c WHERE status = "
                           "'duplicate' AND recording_id = ? ORDER BY source_path LIMIT 1", [recording_id]).fetchone()
        done = con.execute(f"SELECT {', '.join(NAMES)} FROM recordings WHERE status = 'completed' AND recording_id = ? "
                           "ORDER BY updated_at DESC LIMIT 1", [recording_id]).fetchone()
        if heir is None or done is None:
            return
        row = {**dict(zip(NAMES, done)), **dict(zip(kept, heir)), "status": "completed", "duplicate_of": None,
               "updated_at": now}
    catalog.write_rows(ws.catalog_path, [row])


def mark_processing(ws: Workspace, source_paths: list[str], now) -> None:
    """The pending rows of these files become ``processing`` (a worker has them)."""
    if not source_paths:
        return
    with catalog.connect(ws.catalog_path) as con:
        con.execute("UPDATE recordings SET status = 'processing', updated_at = ? "
                    "WHERE status = 'pending' AND source_path IN (SELECT unnest(?))", [now, source_paths])


# -- the run history -----------------------------------------------------------------------------------

def record_run(ws: Workspace, run: dict[str, Any]) -> None:
    """Insert or update one row of the ``runs`` table."""
    with catalog.connect(ws.catalog_path) as con:
        con.execute(
            "INSERT OR REPLACE INTO runs (run_id, command, started_at, finished_at, status, counts, settings, "
            "vibra_version, arguments, error, pid, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run["run_id"], run["command"], run["started_at"], run.get("finished_at"), run["status"],
             json.dumps(run.get("counts", {}), default=str), json.dumps(run.get("settings", {}), default=str),
             run["vibra_version"], run.get("arguments"), run.get("error"), run.get("pid"), run.get("host")],
        )


def open_runs(ws: Workspace) -> list[dict[str, Any]]:
    """The runs still marked ``running``: ``run_id, command, started_at, pid, host`` (pid/host None on old rows)."""
    names = ("run_id", "command", "started_at", "pid", "host")
    rows = catalog.query(ws.catalog_path, f"SELECT {', '.join(names)} FROM runs WHERE status = 'running' "
                                          "ORDER BY started_at")
    return [dict(zip(names, r)) for r in rows]


def close_runs(ws: Workspace, closed: list[tuple[str, str, str]], finished_at: datetime) -> None:
    """Close runs left ``running``: each ``(run_id, status, reason)``; a run that closed itself meanwhile is kept."""
    if not closed:
        return
    with catalog.connect(ws.catalog_path) as con:
        con.execute("BEGIN")
        for run_id, status, reason in closed:
            con.execute("UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE run_id = ? AND status = 'running'",
                        [status, finished_at, reason, run_id])
        con.execute("COMMIT")


def runs(ws: Workspace, limit: int = 20, command: str | None = None) -> list[dict[str, Any]]:
    """The newest runs first (:data:`RUN_COLUMNS`; ``counts`` decoded)."""
    where, params = ("WHERE command = ?", [command]) if command else ("", [])
    rows = catalog.query(ws.catalog_path, f"SELECT {', '.join(RUN_COLUMNS)} FROM runs {where} "
                                          "ORDER BY started_at DESC LIMIT ?", params + [limit])
    out = [dict(zip(RUN_COLUMNS, r)) for r in rows]
    for item in out:
        item["counts"] = json.loads(item["counts"]) if item["counts"] else {}
    return out


# -- the defect catalog and labels ---------------------------------------------------------------------

def defect_types(ws: Workspace) -> list[dict[str, Any]]:
    """The defect catalog, seeded types first: ``name, description, source, created_by, created_at``."""
    ensure(ws)
    names = ("name", "description", "source", "created_by", "created_at")
    rows = catalog.query(ws.catalog_path, f"SELECT {', '.join(names)} FROM defect_types "
                                          "ORDER BY source = 'seed' DESC, name")
    return [dict(zip(names, r)) for r in rows]


def add_defect_type(ws: Workspace, name: str, description: str, created_by: str) -> bool:
    """Add a user defect type; False (and nothing written) when the name is taken."""
    ensure(ws)
    with catalog.connect(ws.catalog_path) as con:
        if con.execute("SELECT 1 FROM defect_types WHERE name = ?", [name]).fetchone():
            return False
        con.execute("INSERT INTO defect_types VALUES (?, ?, 'user', ?, now())", [name, description, created_by])
    return True


def insert_label(ws: Workspace, row: dict[str, Any], windows=None) -> None:
    """Store one label (every :data:`LABEL_COLUMNS` key) and, for a cluster label, the windows it covers
    (a Polars frame of the window keys) in one transaction."""
    with catalog.connect(ws.catalog_path) as con:
        con.execute("BEGIN")
        con.execute(f"INSERT INTO labels VALUES ({', '.join('?' * len(LABEL_COLUMNS))})", [row[c] for c in LABEL_COLUMNS])
        if windows is not None and windows.height:
            import polars as pl

            from vibra.storage.tables.registry import WINDOW_KEYS

            con.register("new_windows", windows.select(pl.lit(row["label_id"]).alias("label_id"), *WINDOW_KEYS).to_arrow())
            con.execute("INSERT INTO label_windows SELECT * FROM new_windows")
        con.execute("COMMIT")


def labels(ws: Workspace) -> list[dict[str, Any]]:
    """Every label, oldest first."""
    ensure(ws)
    rows = catalog.query(ws.catalog_path, f"SELECT {', '.join(LABEL_COLUMNS)} FROM labels ORDER BY created_at")
    return [dict(zip(LABEL_COLUMNS, r)) for r in rows]


def event_keys(ws: Workspace) -> set[tuple[str, str, datetime]]:
    """``(kind, equipment_id, time in UTC)`` of every failure and replacement event recorded."""
    rows = catalog.query(ws.catalog_path, "SELECT kind, equipment_id, start_at FROM labels "
                                          "WHERE kind IN ('failure', 'replacement')")
    return {(k, e, t.astimezone(timezone.utc)) for k, e, t in rows}


def label_frames(ws: Workspace):
    """``labels`` and ``label_windows`` (the windows of cluster labels) as two Polars frames, read in one
    read-only connection (:func:`vibra.storage.labels.labelled_windows` joins windows to them)."""
    with catalog.connect(ws.catalog_path, read_only=True) as con:
        return catalog.frame(con, "SELECT * FROM labels"), catalog.frame(con, "SELECT * FROM label_windows")


def label_ids(ws: Workspace) -> list[str]:
    """Every label's id, sorted."""
    return [r[0] for r in catalog.query(ws.catalog_path, "SELECT label_id FROM labels ORDER BY label_id")]


def cluster_labels(ws: Workspace) -> list[str]:
    """``<clustering_version>:<cluster_id>`` of every cluster label, sorted."""
    rows = catalog.query(ws.catalog_path, "SELECT DISTINCT clustering_version || ':' || cluster_id FROM labels "
                                          "WHERE kind = 'cluster' ORDER BY 1")
    return [r[0] for r in rows]


def events(ws: Workspace) -> list[tuple]:
    """Failure and replacement events, per machine in time order:
    ``(equipment_id, kind, start_at, source, created_by, note)``."""
    ensure(ws)
    return catalog.query(ws.catalog_path, "SELECT equipment_id, kind, start_at, source, created_by, note FROM labels "
                                          "WHERE kind IN ('failure', 'replacement') ORDER BY equipment_id, start_at")


def find_labels(ws: Workspace, ident: str, columns: tuple[str, ...]) -> list[tuple]:
    """``columns`` of the labels whose id is ``ident`` or, for 6+ characters, starts with it."""
    ensure(ws)
    return catalog.query(ws.catalog_path, f"SELECT {', '.join(columns)} FROM labels WHERE label_id = ? "
                                          "OR (length(?) >= 6 AND starts_with(label_id, ?))", [ident, ident, ident])


def delete_label(ws: Workspace, label_id: str) -> None:
    """Delete one label and the windows it covered, in one transaction."""
    with catalog.connect(ws.catalog_path) as con:
        con.execute("BEGIN")
        con.execute("DELETE FROM label_windows WHERE label_id = ?", [label_id])
        con.execute("DELETE FROM labels WHERE label_id = ?", [label_id])
        con.execute("COMMIT")


def recorded_span(ws: Workspace, equipment_id: str) -> tuple[datetime, datetime] | None:
    """(start of the first, end of the last) completed recording of a machine, UTC; None without any."""
    rows = catalog.query(ws.catalog_path, f"SELECT min(recorded_at), max(epoch(recorded_at) + n_samples / sample_rate_hz) "
                                          f"FROM {CURRENT} c WHERE status = 'completed' AND equipment_id = ?",
                         [equipment_id])
    if not rows or rows[0][0] is None:
        return None
    first, last_s = rows[0]
    return first.astimezone(timezone.utc), datetime.fromtimestamp(float(last_s), tz=timezone.utc)


# -- alarms ---------------------------------------------------------------------------------------------

def alarm_rows(ws: Workspace) -> list[tuple]:
    """Every row of the ``alarms`` table (:data:`ALARM_COLUMNS`)."""
    ensure(ws)
    return catalog.query(ws.catalog_path, f"SELECT {', '.join(ALARM_COLUMNS)} FROM alarms")


def write_alarms(ws: Workspace, rows: list[dict]) -> None:
    """Insert or replace alarm rows (dicts of :data:`ALARM_COLUMNS`)."""
    if not rows:
        return
    ensure(ws)
    with catalog.connect(ws.catalog_path) as con:
        con.executemany(f"INSERT OR REPLACE INTO alarms ({', '.join(ALARM_COLUMNS)}) "
                        f"VALUES ({', '.join('?' * len(ALARM_COLUMNS))})", [[r.get(c) for c in ALARM_COLUMNS] for r in rows])
