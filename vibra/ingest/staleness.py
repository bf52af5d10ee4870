"""Settings that take effect: which completed recordings were computed under settings that have
changed since, and why.

Every ledger row keeps ``settings_hash``, the hash of :func:`payload` (the vibra version, the
machine's ``[equipment.<id>]`` section, the window settings, the time limits) at the time the
file was ingested; the catalog's ``settings_seen`` table keeps each hash's payload. A completed
recording is **stale** when the part of its payload its windows depend on (:func:`relevant`:
units, rpm, geometry (the machine's and its measurement points' own), sample rates, channels, ISO class,
window settings — not the machine's label, its alert/danger levels or how its channels group into points,
which the report and ``vibra diagnose`` read at render time, nor the vibra version
or the time limits) differs from today's. A row whose hash has no stored payload (ingested
before the payloads were kept) is never called stale: what it was computed with is unknown.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from vibra import __version__
from vibra.settings import Settings
from vibra.storage import ledger

if TYPE_CHECKING:
    from vibra.workspace import Workspace

# read by the report when it renders, never stored in a window: changing them recomputes nothing
# (nor which channel comes first or how channels group into measurement points: vibra diagnose reads them)
NOT_IN_WINDOWS = ("label", "alert_danger_mm_s", "bearing_channel", "points")
# the window settings that change no value (how many windows one FFT batch holds)
FEATURES_NOT_IN_WINDOWS = ("batch_windows",)


def payload(settings: Settings, equipment_id: str) -> dict:
    """Everything a file's outcome depends on besides its bytes, as plain JSON values."""
    raw = {"vibra": __version__, "equipment": asdict(settings.equipment_for(equipment_id)),
           "sample_rate_hz": settings.ingest.sample_rate_hz, "features": asdict(settings.features),
           "max_span_s": settings.ingest.max_span_s, "max_clock_skew_s": settings.ingest.max_clock_skew_s}
    return json.loads(json.dumps(raw, sort_keys=True, default=str))


def settings_hash(settings: Settings, equipment_id: str) -> str:
    """Hash of :func:`payload` (16 hex digits): what the ledger keeps per file."""
    return hash_of(payload(settings, equipment_id))


def hash_of(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]


def relevant(body: dict) -> dict:
    """The part of a payload the stored windows depend on, flattened to ``section.key`` names."""
    equipment = body.get("equipment") or {}
    flat = {f"equipment.{k}": v for k, v in equipment.items() if k not in NOT_IN_WINDOWS and k != "equipment_id"}
    # a measurement point's own bearing geometry is in its channels' evidence
    own = {c: p["bearing"] for p in equipment.get("points") or () if p.get("bearing") for c in p["channels"]}
    if own:
        flat["equipment.point_bearings"] = own
    flat.update({f"features.{k}": v for k, v in (body.get("features") or {}).items()
                 if k not in FEATURES_NOT_IN_WINDOWS})
    flat["ingest.sample_rate_hz"] = body.get("sample_rate_hz")
    return flat


def differences(before: dict, now: dict) -> list[str]:
    """What changed between two payloads' relevant parts: ``["units: none → 'g'"]``."""
    old, new = relevant(before), relevant(now)
    out = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            out.append(f"{key.split('.', 1)[1] if key.startswith('equipment.') else key}: "
                       f"{_show(old.get(key))} → {_show(new.get(key))}")
    return out


def _show(value) -> str:
    return "none" if value is None else repr(value) if isinstance(value, str) else json.dumps(value)


def remember(ws: Workspace, payloads: dict[str, dict]) -> None:
    """Keep each hash's payload in the catalog (idempotent)."""
    ledger.remember_settings(ws, {h: json.dumps(body, sort_keys=True) for h, body in payloads.items()})


@dataclass
class Stale:
    """One machine's completed recordings computed under other settings than today's."""

    equipment_id: str
    files: int
    why: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        return "; ".join(self.why)


def find(ws: Workspace, settings: Settings, equipment_ids: list[str] | None = None,
         source_paths: list[str] | None = None) -> list[Stale]:
    """The machines with stale completed recordings (ordered by machine), each with the changes; only
    those of ``source_paths`` when given (ingest asks about the files its scan found: a file whose
    source is gone and that kept no raw waveform cannot be recomputed, and must not make every run try)."""
    if equipment_ids is not None and not equipment_ids:
        return []
    rows = ledger.completed_settings(ws, equipment=equipment_ids, source_paths=source_paths)
    out: dict[str, Stale] = {}
    current: dict[str, dict] = {}
    for eid, body, n in rows:
        now = current.setdefault(eid, payload(settings, eid))
        changes = differences(json.loads(body), now)
        if not changes:
            continue
        entry = out.setdefault(eid, Stale(eid, 0))
        entry.files += n
        entry.why += [c for c in changes if c not in entry.why]
    return list(out.values())


def rebuild_command(stale: list[Stale]) -> str:
    """The command that recomputes them."""
    return "vibra features rebuild " + " ".join(f"--equipment {s.equipment_id}" for s in stale)
