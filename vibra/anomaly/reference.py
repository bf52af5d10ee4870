"""A machine's chosen baseline recording (`vibra baseline set`): where its anomaly baseline period starts.

Without a choice the period starts at the machine's first window, which may belong to an earlier life (before a
replacement) or to a sensor fault. The default choice is the first healthy recording of the current life: the
first completed recording at or after the machine's last failure or replacement whose channels carry no sensor
fault in the ledger (flat line, clipping, NaN gap). The choice is kept as an artifact (kind ``reference``, one
store per machine), so ``doctor`` checks it and ``maintain gc`` keeps its history short; `vibra train` reads it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable

from vibra.storage import artifacts

KIND = "reference"
RULE = ("the first completed recording at or after the machine's last failure or replacement (its current life) "
        "with no sensor fault in the ledger (flat line, clipping, NaN gap)")


def first_healthy(rows: Iterable[dict], events: Iterable[dict], faulty: set[str]) -> dict | None:
    """The default baseline recording of one machine.

    Parameters
    ----------
    rows : ledger rows of the machine's completed recordings (``recording_id``, ``recorded_at``)
    events : its failure and replacement events (``at``, UTC datetimes)
    faulty : recording ids with a sensor fault on some channel
    """
    life = max((e["at"] for e in events), default=None)
    for r in sorted(rows, key=lambda r: r["recorded_at"]):
        if (life is None or _utc(r["recorded_at"]) >= life) and r["recording_id"] not in faulty:
            return r
    return None


def read(artifacts_root, equipment_id: str) -> dict | None:
    """The machine's current choice (``recording_id``, ``source_path``, ``start``, ``chosen``, ``set_by``), or None."""
    return artifacts.store(artifacts_root, KIND, equipment_id).latest_manifest()


def start_of(artifacts_root, equipment_id: str) -> datetime | None:
    """Where the machine's baseline period starts by its choice (UTC), or None without one."""
    chosen = read(artifacts_root, equipment_id)
    return datetime.fromisoformat(chosen["start"].replace("Z", "+00:00")) if chosen else None


def write(artifacts_root, choice: dict) -> dict:
    """Keep ``choice`` as the machine's new version; returns the stored manifest."""
    store = artifacts.store(artifacts_root, KIND, choice["equipment_id"])
    return store.put(artifacts.new_version(), choice)


def _utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
