"""The catalog's ``alarms`` table (:mod:`vibra.anomaly.alarm_list` says what the states mean): its rows as
dicts, listed and acknowledged; the SQL is the ledger's (:func:`vibra.storage.ledger.alarm_rows`)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from vibra.errors import InputError
from vibra.storage import ledger

if TYPE_CHECKING:
    from vibra.workspace import Workspace

COLUMNS = ledger.ALARM_COLUMNS
TIMES = ("started_at", "last_at", "acked_at", "cleared_at", "updated_at")


def _iso(value) -> Any:
    return value.astimezone(timezone.utc).isoformat() if isinstance(value, datetime) else value


def stored(ws: Workspace) -> dict[str, dict]:
    """Every alarm row by id."""
    rows = ledger.alarm_rows(ws)
    return {r[0]: {k: _iso(v) for k, v in zip(COLUMNS, r)} for r in rows}


def write(ws: Workspace, rows: list[dict]) -> None:
    """Insert or replace alarm rows."""
    ledger.write_alarms(ws, rows)


def listing(ws: Workspace, *, equipment: list[str] | None = None, states: list[str] | None = None) -> list[dict]:
    """Alarms, the open ones first (new, then acknowledged), newest first within each."""
    rank = {"new": 0, "acknowledged": 1, "cleared": 2}
    rows = [r for r in stored(ws).values() if (not equipment or r["equipment_id"] in equipment)
            and (not states or r["state"] in states)]
    return sorted(rows, key=lambda r: (rank.get(r["state"], 3), _neg(r["started_at"]), r["equipment_id"], r["channel"]))


def _neg(text: str) -> str:
    return "".join(chr(0x10FFFF - ord(c)) for c in text or "")


def acknowledge(ws: Workspace, alarm_id: str, by: str) -> dict:
    """Mark one alarm acknowledged by ``by`` now (a cleared one keeps ``cleared`` and records who saw it)."""
    rows = stored(ws)
    if alarm_id not in rows:
        known = ", ".join(sorted(r for r, v in rows.items() if v["state"] != "cleared")[:5]) or "none open"
        raise InputError(f"no alarm {alarm_id!r}; list them with `vibra alarms` (open: {known})")
    now = datetime.now(timezone.utc)
    row = {**rows[alarm_id], "acked_by": by, "acked_at": now, "updated_at": now}
    if row["state"] != "cleared":
        row["state"] = "acknowledged"
    write(ws, [row])
    return {**row, "acked_at": _iso(now), "updated_at": _iso(now)}
