"""The status stage: ledger counts and lake totals, overall and per equipment."""

from __future__ import annotations

from vibra.storage import catalog
from vibra.storage.lake import has_files, parquet_glob, reading, sql_literal
from vibra.workspace import Workspace


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def run(ws: Workspace, equipment_ids: list[str] | None = None) -> dict:
    """Status payload: keys ``total_files, pending, processing, completed, failed, duplicates,
    features_total, last_recorded_at, equipment`` (per-equipment ``equipment_id, completed,
    failed, windows, last_recorded_at``)."""
    import duckdb

    where = ""
    params: list = []
    if equipment_ids:
        where = "WHERE equipment_id IN (SELECT unnest(?))"
        params = [equipment_ids]
    by_status = dict(catalog.query(ws.catalog_path, f"SELECT status, count(*) FROM {catalog.CURRENT} c {where} "
                                                    "GROUP BY status", params))
    per_eq = catalog.query(
        ws.catalog_path,
        f"SELECT equipment_id, count(*) FILTER (status = 'completed'), count(*) FILTER (status = 'failed'), "
        f"max(recorded_at) FILTER (status = 'completed') FROM {catalog.CURRENT} c {where} "
        "GROUP BY equipment_id ORDER BY equipment_id", params)
    windows: dict[str, int] = {}
    features = ws.table("features")
    if has_files(features):
        with duckdb.connect() as con, reading(features):
            rows = con.execute(f"SELECT equipment_id, count(*) FROM read_parquet({sql_literal(parquet_glob(features))}, "
                               "hive_partitioning = true) GROUP BY equipment_id").fetchall()
        windows = {e: n for e, n in rows if not equipment_ids or e in equipment_ids}
    equipment = [{"equipment_id": e, "completed": c, "failed": f, "windows": windows.get(e, 0),
                  "last_recorded_at": _iso(last)} for e, c, f, last in per_eq if e]
    lasts = [row[3] for row in per_eq if row[3] is not None]
    return {
        "total_files": sum(by_status.values()),
        "pending": by_status.get("pending", 0),
        "processing": by_status.get("processing", 0),
        "completed": by_status.get("completed", 0),
        "failed": by_status.get("failed", 0),
        "duplicates": by_status.get("duplicate", 0),
        "features_total": sum(windows.values()),
        "last_recorded_at": _iso(max(lasts)) if lasts else None,
        "equipment": equipment,
    }


def recordings(ws: Workspace):
    """The ledger's completed and duplicate recordings as a Polars frame: ``recording_id, equipment_id,
    source_path, recorded_at`` (for joining features, scores or ground truth to their files)."""
    import polars as pl

    rows = catalog.query(ws.catalog_path, f"SELECT recording_id, equipment_id, source_path, recorded_at "
                                          f"FROM {catalog.CURRENT} c WHERE status IN ('completed', 'duplicate')")
    schema = {"recording_id": pl.String, "equipment_id": pl.String, "source_path": pl.String,
              "recorded_at": pl.Datetime("us", "UTC")}
    return pl.DataFrame(rows, schema=schema, orient="row")


def known_equipment(ws: Workspace, settings) -> list[str]:
    """Machines the workspace knows: configured in ``vibra.toml`` or seen by ingest."""
    seen: set[str] = set(settings.equipment)
    if ws.catalog_path.exists():
        seen |= {r[0] for r in catalog.query(ws.catalog_path, "SELECT DISTINCT equipment_id FROM recordings "
                                                              "WHERE equipment_id IS NOT NULL")}
    return sorted(seen)


def check_equipment(ws: Workspace, settings, equipment_ids: list[str]) -> list[str]:
    """``equipment_ids`` as given, each known, or an InputError naming the closest known ones.

    A misspelled machine must never silently match nothing (a CI gate on ``pump-2`` would pass).
    """
    import difflib

    from vibra.errors import InputError

    known = known_equipment(ws, settings)
    for eid in equipment_ids:
        if eid not in known:
            close = difflib.get_close_matches(eid, known, n=3, cutoff=0.5)
            hint = (f"did you mean {', '.join(close)}?" if close
                    else f"known: {', '.join(known[:10])}{' …' if len(known) > 10 else ''}" if known
                    else "no machine is configured or ingested yet; run `vibra ingest` first")
            raise InputError(f"unknown equipment '{eid}'; {hint}")
    return equipment_ids
