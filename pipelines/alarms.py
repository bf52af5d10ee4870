"""The alarm-list stage (`vibra alarms`): alarm episodes synced into the catalog's alarm list, listed with
their states, and acknowledged by name (:mod:`vibra.anomaly.alarm_list`, :mod:`vibra.storage.alarms`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from vibra.anomaly import alarm_list
from vibra.report import summaries
from vibra.settings import Settings
from vibra.storage import alarms as alarm_rows
from vibra.workspace import Workspace

from vibra_pipelines.runs import StageResult, recorded


@dataclass
class AlarmsResult(StageResult):
    """The alarm list (open first) and, after ``--ack``, the alarm acknowledged."""

    COUNTS = ("new", "acknowledged", "cleared")

    alarms: list[dict] = field(default_factory=list)
    acknowledged_now: dict | None = None

    def _count(self, state: str) -> int:
        return sum(1 for a in self.alarms if a["state"] == state)

    def counts(self) -> dict:
        return {s: self._count(s) for s in alarm_list.STATES}


def sync(ws: Workspace, settings: Settings, equipment: list[str] | None = None) -> int:
    """Bring the alarm list up to date with the alarm episodes; returns the rows written."""
    episodes = summaries.episodes(ws, settings, equipment=equipment)
    last = {e["equipment_id"]: e["last_recorded_at"] for e in summaries.status(ws, equipment)["equipment"]}
    rows = alarm_list.reconcile(episodes, last, alarm_rows.stored(ws), datetime.now(timezone.utc))
    alarm_rows.write(ws, rows)
    return len(rows)


@recorded("alarms")
def run(ws: Workspace, settings: Settings, *, equipment: list[str] | None = None, states: list[str] | None = None,
        ack: str | None = None, by: str | None = None) -> AlarmsResult:
    """Sync, acknowledge ``ack`` as ``by`` when given, and list the alarms (of ``equipment``, in ``states``)."""
    sync(ws, settings, equipment)
    result = AlarmsResult()
    if ack is not None:
        result.acknowledged_now = alarm_rows.acknowledge(ws, ack, by or "unknown")
    result.alarms = alarm_rows.listing(ws, equipment=equipment, states=states)
    return result
