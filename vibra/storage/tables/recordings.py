"""A completed recording read back: from its kept raw waveform (``raw`` table) or else its source file.

The features rebuild reads whole recordings this way and the report one window of one; both
get the samples and what the file said about itself (rate, start, rpm, gaps, units), so the
caller resolves rate, start and rpm with the same rules ingest used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from vibra.errors import InputError
from vibra.storage import raw
from vibra.storage.tables.registry import RAW

if TYPE_CHECKING:
    import numpy as np

    from vibra.settings import Settings
    from vibra.workspace import Workspace


@dataclass
class ReadBack:
    """Samples (chunks of (rows, channels) float arrays) and what the file said about itself."""

    chunks: Iterator[np.ndarray]
    channels: list[str]
    origin: str  # "raw" or "source"
    source_path: Path
    mtime: float  # of the source file when it was ingested (raw) or now (source)
    file_sample_rate_hz: float | None
    file_start: datetime | None
    file_rpm: float | None
    gaps: list = field(default_factory=list)
    units: dict = field(default_factory=dict)


def read_recording(ws: Workspace, settings: Settings, equipment_id: str, recording_id: str, source_path: str | Path,
                   *, expect: tuple[int, datetime] | None = None) -> ReadBack:
    """The recording's samples, from the ``raw`` table when kept, else from ``source_path``.

    ``expect`` = (size_bytes, mtime) the ledger recorded: a source file that no longer matches is
    refused (its windows would not be the recording's). Raises :class:`InputError` when neither
    the raw waveform nor the source file can be read.
    """
    from vibra.readers import open_recording

    raw_file = raw.find(ws.table(RAW.name), equipment_id, recording_id)
    if raw_file is not None:
        meta, chunks = raw.read(raw_file, settings.ingest.chunk_rows)
        return ReadBack(chunks, list(meta.channels), "raw", Path(meta.source_path), meta.mtime,
                        meta.file_sample_rate_hz, meta.start, meta.file_rpm, meta.gaps, meta.units)
    path = Path(source_path)
    try:
        st = path.stat()
    except OSError:
        raise InputError(f"{path}: source file is gone and no raw waveform was kept; "
                         "set [ingest] keep_raw = true before the next ingest") from None
    if expect is not None and (st.st_size != expect[0] or abs(st.st_mtime - expect[1].timestamp()) > 1e-5):
        raise InputError(f"{path}: source file changed since it was ingested; run `vibra ingest` instead")
    equipment = settings.equipment_for(equipment_id)
    recording = open_recording(path, equipment, settings.ingest.chunk_rows, on_time_gap=settings.ingest.on_time_gap)
    return ReadBack(recording.chunks, list(recording.channels), "source", path, st.st_mtime,
                    recording.sample_rate_hz, recording.start, recording.rpm, recording.gaps, recording.units)
