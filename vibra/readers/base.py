"""What every reader returns: metadata plus an iterator of bounded chunks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Iterator

from vibra.storage.hashing import ReadHash

if TYPE_CHECKING:
    import numpy as np

TIME_NAMES = {"time", "timestamp", "t"}


@dataclass
class Recording:
    """An opened source file.

    ``chunks`` yields float64 arrays of shape (rows, len(channels)); rows are
    at most the reader's chunk size, so memory does not grow with file size.
    ``sample_rate_hz`` and ``start`` are what the file itself says (None when
    it says nothing); the ingest stage applies the equipment and workspace rules.

    ``warnings`` may grow while ``chunks`` is consumed (what a time column showed
    is known only at its end), and ``gaps`` lists the breaks found in the time
    column as (index of the first sample after the break, seconds beyond one
    sample period); read both after the chunks are exhausted.
    """

    channels: list[str]
    chunks: Iterator[np.ndarray]
    sample_rate_hz: float | None = None
    start: datetime | None = None
    rpm: float | None = None
    warnings: list[str] = field(default_factory=list)
    gaps: list[tuple[int, float]] = field(default_factory=list)
    units: dict[str, str] | None = None  # per channel, when the file says (TDMS, UFF)
    # the file's sha256 taken in the chunks' own pass over its bytes (readers that read front to back once):
    # its ``hexdigest`` is set once the chunks are exhausted; None for readers that seek (hash the file apart)
    content_hash: ReadHash | None = None
