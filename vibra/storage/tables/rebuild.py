"""The storage half of a features rebuild (:mod:`vibra.ingest.rebuild` computes, this keeps the lake
whole): recomputed recordings are written to a staging folder under ``data/.rebuild/<id>/``, a recording
that cannot be recomputed keeps its old rows there, and :meth:`FeaturesRebuild.commit` replaces every
touched (date, equipment) partition in one commit of the table's log, then rebuilds their ``hourly``
(:mod:`vibra.storage.staging`)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from vibra.storage import hourly
from vibra.storage import staging as staging_area
from vibra.storage.tables.readers import write_features

if TYPE_CHECKING:
    from vibra.workspace import Workspace


class FeaturesRebuild:
    """One rebuild of some machines' ``features`` partitions; use as a context manager (the work folder
    goes at its end, whatever happened). The caller holds the ingest lock."""

    def __init__(self, ws: Workspace, equipment_ids: list[str]):
        staging_area.recover(ws)  # what a killed rebuild left
        self.ws = ws
        self.table = ws.table("features")
        self.work = ws.data / staging_area.REBUILD_DIR / uuid.uuid4().hex[:8]
        self.staging = self.work / "staging"
        self.where_now = staging_area.recording_files(self.table, sorted(set(equipment_ids)))
        self.touched: set[tuple[str, str]] = set()

    def __enter__(self) -> "FeaturesRebuild":
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.work, ignore_errors=True)

    def old(self, recording_id: str, equipment_id: str) -> dict[Path, list[Path]]:
        """The recording's partitions now (folder → its files), which the commit replaces."""
        found = self.where_now.get(recording_id, {})
        self.touched |= {(p.parent.name.split("=", 1)[1], equipment_id) for p in found}
        return found

    def write(self, table, recording_id: str) -> None:
        """A recomputed recording's rows, staged."""
        self.touched |= set(write_features(self.ws, table, recording_id, table_dir=self.staging))

    def keep(self, recording_id: str, equipment_id: str) -> None:
        """Stage the recording's old rows unchanged (nothing to recompute it from)."""
        for part, files in self.old(recording_id, equipment_id).items():
            staging_area.copy_recording_rows(
                files, recording_id, self.staging / part.relative_to(self.table) / f"part-{recording_id[:16]}.parquet")

    def commit(self) -> int:
        """Replace the touched partitions in one commit and rebuild their hourly rows; returns how many."""
        staging_area.replace_partitions(self.table, self.staging, self.touched)
        hourly.rebuild(self.ws.lake, self.touched)
        return len(self.touched)
