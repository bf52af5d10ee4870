"""The features-rebuild stage: recompute the ``features`` table after an indicator definition
(or a machine's settings) changed, from the kept raw waveforms or the recorded source files
(:mod:`vibra.ingest.rebuild`, under the ingest lock). ``vibra ingest`` runs the same rebuild for the
machines whose settings changed since their files were ingested.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from vibra.ingest.rebuild import recompute
from vibra.settings import Settings
from vibra.storage import ledger
from vibra.storage.staging import recover  # noqa: F401 - re-exported (doctor --repair calls it)
from vibra.workspace import Workspace

from vibra_pipelines.runs import StageResult, recorded


@dataclass
class RebuildResult(StageResult):
    COUNTS = ("recordings", "from_raw", "from_source", "kept_stale", "windows")

    recordings: int = 0
    from_raw: int = 0
    from_source: int = 0
    kept_stale: int = 0
    partitions: int = 0
    windows: int = 0
    seconds: float = 0.0
    problems: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict:
        return {**super().counts(), **({"status": "partial"} if self.kept_stale else {})}


@recorded("features rebuild")
def rebuild(ws: Workspace, settings: Settings, equipment_ids: list[str] | None = None, *,
            progress: Callable[[str, dict], None] | None = None) -> RebuildResult:
    """Recompute ``features`` (and ``hourly``) for every completed recording of the given machines."""
    notify = progress or (lambda event, info: None)
    ledger.ensure(ws)
    with ledger.ingest_lock(ws, settings, on_wait=lambda msg: notify("wait", {"message": msg})):
        started = time.perf_counter()
        done = recompute(ws, settings, equipment_ids, notify)
        return RebuildResult(done.recordings, done.from_raw, done.from_source, done.kept_stale, done.partitions,
                             done.windows, time.perf_counter() - started, done.problems)
