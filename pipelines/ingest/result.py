"""What ingest produces: one file's outcome (its ledger row, its staged ``features`` files) and a run's
counts (:class:`IngestResult`, the stage's result)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from vibra import __version__
from vibra.ingest.recordings import utc_of
from vibra.ingest.sources import SourceFile, display

from vibra_pipelines.runs import StageResult



@dataclass
class FileResult:
    """One file's outcome. ``row`` is its ledger row; ``keep_previous``: the new version failed or
    was refused and the row is not written (the version completed before stays current);
    ``deferred``: the file changed while being read; ``adopt``: earlier versions held by
    duplicates of this file, whose ownership passes to them; ``files``: its ``features`` files,
    written but not yet committed to the table (its batch's commit adds them); ``raw``: its kept raw
    waveform, when ``[ingest] keep_raw`` wrote one."""

    row: dict
    partitions: list[tuple[str, str]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    keep_previous: bool = False
    deferred: bool = False
    adopt: list[str] = field(default_factory=list)
    raw: Path | None = None


@dataclass
class IngestResult(StageResult):
    """Counts of one run; ``failures`` maps file → reason; ``notes``: what the scan and the run
    want the user to know (unreadable folders, vanished files, deferred files)."""

    COUNTS = ("new", "skipped", "duplicates", "failed", "deferred", "windows")

    source: str
    files_seen: int = 0
    new: int = 0
    skipped: int = 0
    duplicates: int = 0
    failed: int = 0
    ignored: int = 0
    deferred: int = 0
    windows: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    warnings: int = 0
    workers: int = 1  # processes that worked the files (1: this one, on threads)
    failures: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    recomputed: int = 0
    stale: list[dict] = field(default_factory=list)

    def counts(self) -> dict:
        return {**super().counts(), "recomputed": self.recomputed, "stale": sum(s["files"] for s in self.stale),
                **({"status": "partial"} if self.failed else {})}


def _base_row(item: SourceFile, status: str, now: datetime) -> dict:
    return {
        "recording_id": "", "equipment_id": item.equipment_id, "source_path": display(item.path),
        "size_bytes": item.size_bytes, "mtime": utc_of(item.mtime), "status": status, "error": None,
        "n_samples": None, "channels": None, "sample_rate_hz": None, "recorded_at": None,
        "ingested_at": None, "n_windows": None, "warnings": [], "vibra_version": __version__, "rpm": None,
        "duplicate_of": None, "updated_at": now,
    }


def _count(result: IngestResult, fr: FileResult, item: SourceFile) -> None:
    row = fr.row
    if fr.deferred:
        result.deferred += 1
        result.notes.append(row["error"])
        return
    result.bytes_read += row["size_bytes"] or 0
    if row["status"] == "completed":
        result.new += 1
        result.windows += row["n_windows"] or 0
        result.warnings += len(row["warnings"] or [])
    elif row["status"] == "duplicate":
        result.duplicates += 1
    else:
        result.failed += 1
        result.failures[row["source_path"]] = row["error"]
