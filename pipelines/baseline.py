"""``vibra baseline set``: choose the recording a machine's anomaly baseline period starts at (see
:mod:`vibra.anomaly.reference`); ``vibra train`` reads the choice."""

from __future__ import annotations

from datetime import datetime, timezone

from vibra.anomaly import reference
from vibra.errors import InputError, NotReadyError
from vibra.ingest.quality import read_ledger_faults
from vibra.settings import Settings
from vibra.storage import ledger
from vibra.storage.labels import list_events
from vibra.workspace import Workspace

from vibra_pipelines.runs import recorded


@recorded("baseline set", lambda r: {"equipment_id": r["equipment_id"], "recording_id": r["recording_id"]})
def set_reference(ws: Workspace, settings: Settings, equipment_id: str, *, recording: str | None = None,
                  by: str = "unknown") -> dict:
    """Keep ``recording`` (an id, id prefix or file name; None: the first healthy recording of the current life)
    as the start of ``equipment_id``'s baseline period; returns the stored choice."""
    if recording is not None:
        rid, eid = ledger.resolve_recording(ws, recording)
        if eid != equipment_id:
            raise InputError(f"recording {recording!r} is of {eid!r}, not {equipment_id!r}; give one of "
                             f"{equipment_id}'s recordings (vibra files --equipment {equipment_id})")
        row = ledger.current(ws, status="completed", recording_ids=[rid])[0]
        chosen, rule = "given", f"given by {by}"
    else:
        rows = ledger.current(ws, status="completed", equipment=[equipment_id])
        faulty = {rid for rid, _ in read_ledger_faults(ws, [equipment_id])}
        row = reference.first_healthy(rows, list_events(ws, [equipment_id]), faulty)
        if row is None:
            raise NotReadyError(f"{equipment_id}: no healthy recording in its current life yet (rule: {reference.RULE}); "
                                "ingest its recordings, or give one with --recording FILE")
        chosen, rule = "default", reference.RULE
    start = row["recorded_at"].astimezone(timezone.utc)
    return reference.write(ws.artifacts, {
        "equipment_id": equipment_id, "recording_id": row["recording_id"], "source_path": row["source_path"],
        "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "chosen": chosen, "rule": rule, "set_by": by,
        "set_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")})
