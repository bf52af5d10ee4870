"""Which files a run does: the ledger's skip index settles the unchanged, done ones (a failed one is retried
when its cause may have passed or its settings changed); each file to do learns the versions it replaces."""

from __future__ import annotations

from typing import Callable

from vibra.settings import Settings
from vibra.ingest.sources import RETRY, SourceFile, display
from vibra.ingest.staleness import settings_hash



def _to_do(files: list[SourceFile], index) -> list[SourceFile]:
    """The files to ingest, each told which earlier versions of itself to remove (``old_ids``: content no other
    file's current row stands on) and which completed recording it replaces (``previous_id``)."""
    held: dict[str, set[str]] = {}
    for path, prev in index.current.items():
        if prev.status in ("completed", "duplicate", "expired") and prev.recording_id:
            held.setdefault(prev.recording_id, set()).add(path)
    for f in files:
        key = display(f.path)
        prev = index.current.get(key)
        versions = index.versions.get(key, set())
        f.old_ids = tuple(sorted(r for r in versions if not (held.get(r, set()) - {key})))
        if prev is not None and prev.status in ("completed", "pending", "processing") and versions:
            f.previous_id = index.latest_completed.get(key)
    return files


def skip_rule(settings: Settings, index, include_expired: bool,
              retry_failed: bool) -> tuple[Callable[[str], str], Callable[[str, int, float, str], bool]]:
    """``digest(equipment_id)``: the hash of the settings that concern a machine's files (computed once per
    machine); ``settled(path, size, mtime, equipment_id)``: whether the ledger's row (``index``,
    :func:`vibra.storage.ledger.skip_index`) lets this run skip the file."""
    done = ("completed", "duplicate", "failed") + (() if include_expired else ("expired",))
    digests: dict[str, str] = {}

    def digest(equipment_id: str) -> str:
        if equipment_id not in digests:
            digests[equipment_id] = settings_hash(settings, equipment_id)
        return digests[equipment_id]

    def settled(path: str, size: int, mtime: float, equipment_id: str) -> bool:
        prev = index.current.get(path)
        if prev is None or prev.status not in done or prev.size_bytes != size or abs(prev.mtime - mtime) >= 1e-5:
            return False
        if prev.status == "failed":
            return not (retry_failed or prev.error_kind == RETRY or prev.settings_hash != digest(equipment_id))
        return True

    return digest, settled
