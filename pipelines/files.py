"""``vibra files``: the ledger's source files, their status, reason and warnings."""

from __future__ import annotations

from vibra.storage import ledger
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
    ledger.ensure(ws)
    rows = ledger.files(ws, failed=failed, warnings=warnings, equipment=equipment, limit=limit)
    files = [{"path": r["source_path"], "equipment_id": r["equipment_id"], "status": r["status"],
              "reason": r["error"], "warnings": list(r["warnings"] or []), "recorded_at": _iso(r["recorded_at"]),
              "updated_at": _iso(r["updated_at"]), "windows": r["n_windows"]} for r in rows]
    return {"schema_version": 1, "command": "files", "files": files}
