"""``vibra files``: the ledger's source files, their status, reason and warnings."""

from __future__ import annotations

from vibra.storage import catalog
from vibra.workspace import Workspace


def _iso(value) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def run(ws: Workspace, *, failed: bool = False, warnings: bool = False,
        equipment: list[str] | None = None, limit: int | None = None) -> dict:
    """The current ledger row of each source file, newest first.

    ``failed``: only failed files; ``warnings``: only files with warnings (both: either).
    """
    if not ws.catalog_path.exists():
        return {"schema_version": 1, "command": "files", "files": []}
    catalog.ensure(ws.catalog_path)
    where, params = [], []
    if failed or warnings:
        where.append("(" + " OR ".join(
            (["status = 'failed'"] if failed else []) + (["len(coalesce(warnings, [])) > 0"] if warnings else [])) + ")")
    if equipment:
        where.append("equipment_id IN (SELECT unnest(?))")
        params.append(equipment)
    sql = (f"SELECT source_path, equipment_id, status, error, warnings, recorded_at, updated_at, n_windows "
           f"FROM {catalog.CURRENT} c {'WHERE ' + ' AND '.join(where) if where else ''} "
           f"ORDER BY updated_at DESC, source_path {f'LIMIT {int(limit)}' if limit else ''}")
    rows = catalog.query(ws.catalog_path, sql, params)
    files = [{"path": p, "equipment_id": e, "status": s, "reason": err, "warnings": list(w or []),
              "recorded_at": _iso(rec), "updated_at": _iso(upd), "windows": n}
             for p, e, s, err, w, rec, upd, n in rows]
    return {"schema_version": 1, "command": "files", "files": files}
