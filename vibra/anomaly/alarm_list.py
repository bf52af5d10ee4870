"""The alarm list: every alarm episode (:func:`vibra.report.summaries.episodes`) as an alarm an analyst
works through — machine, channel, level, since when, and its state:

* ``new`` — raised, nobody has acknowledged it;
* ``acknowledged`` — someone said they have seen it (who and when are kept);
* ``cleared`` — the episode ended (the machine has recordings after its last alarm window); an
  acknowledgement made before stays recorded beside it.

Pure rules here; the rows live in the catalog's ``alarms`` table (:mod:`vibra.storage.alarms`).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

STATES = ("new", "acknowledged", "cleared")
LEVEL = "anomaly"  # the level of an anomaly-model episode (velocity levels are the fleet table's)


def alarm_id(equipment_id: str, channel: str, level: str, started_at: str) -> str:
    """A stable id (12 hex digits): the same episode keeps its id from one sync to the next."""
    return hashlib.sha256(f"{equipment_id}|{channel}|{level}|{started_at}".encode()).hexdigest()[:12]


def reconcile(episodes: list[dict], last_recorded: dict[str, str | None], stored: dict[str, dict],
              now: datetime) -> list[dict]:
    """The alarm rows to write: one per episode, new ones ``new``, ended ones ``cleared``; an alarm
    already stored keeps its acknowledgement and is written only when its state or end changed.

    ``last_recorded``: each machine's newest recording start (ISO); an episode whose last window is
    before it has ended. ``stored``: alarm id → stored row."""
    out = []
    for e in episodes:
        aid = alarm_id(e["equipment_id"], e["channel"], LEVEL, e["start"])
        last = last_recorded.get(e["equipment_id"]) or ""
        ended = e["end"] < last
        before = stored.get(aid)
        state = "cleared" if ended else (before["state"] if before else "new")
        row = {"alarm_id": aid, "equipment_id": e["equipment_id"], "channel": e["channel"], "level": LEVEL,
               "started_at": e["start"], "last_at": e["end"], "peak_score": e["peak_score"], "state": state,
               "acked_by": before["acked_by"] if before else None, "acked_at": before["acked_at"] if before else None,
               "cleared_at": (before or {}).get("cleared_at") or (e["end"] if ended else None), "updated_at": now}
        if before is None or before["state"] != state or str(before["last_at"]) != str(row["last_at"]):
            out.append(row)
    return out
