"""What every reader returns: metadata plus an iterator of bounded chunks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Iterator

from vibra.storage.hashing import ReadHash

if TYPE_CHECKING:
    import numpy as np

TIME_NAMES = {"time", "timestamp", "t"}
# The fastest sample rate a reader accepts from a file (as [ingest] sample_rate_hz's range): a time
# increment of 1e-300 s is a broken header, not a 1e300 Hz recorder.
MAX_SAMPLE_RATE_HZ = 10_000_000.0
# How many times its own size a file may expand to when read (float64 samples): compressed HDF5 or FLAC
# holds a few times its size; a 2.5 KB file that declares terabytes holds only fill values.
MAX_EXPANSION = 1000


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
    # samples per channel the file's header declares, known before any sample is read (None: only known by
    # reading, as for text): the ingest checks it against [ingest] max_span_s before reading
    declared_samples: int | None = None


def rate_from_increment(path, increment, what: str) -> float | None:
    """The sample rate of a file's time increment (seconds per sample), refused when no recorder could have it.

    ``what`` names the header field (``wf_increment``, ``abscissa_inc``) in the message. None stays None."""
    import math

    from vibra.errors import InputError

    if increment is None:
        return None
    value = float(increment)
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{path}: {what} = {increment!r} s is not a positive time step; the file has no usable "
                         "sample rate — re-export it with its true increment")
    rate = 1.0 / value
    if not rate <= MAX_SAMPLE_RATE_HZ:
        raise InputError(f"{path}: {what} = {increment!r} s means {rate:.3g} Hz, above the "
                         f"{MAX_SAMPLE_RATE_HZ:.3g} Hz any recorder reaches; re-export it with its true increment")
    return rate


def check_expansion(path, samples: int, channels: int) -> None:
    """Refuse a file that declares far more samples than its bytes can hold (see :data:`MAX_EXPANSION`)."""
    import os

    from vibra.errors import InputError

    size = max(os.path.getsize(path), 1)
    need = samples * channels * 8
    if need > MAX_EXPANSION * size:
        raise InputError(f"{path}: declares {samples:,} samples × {channels} channel(s) ({need / 2**30:.3g} GiB as "
                         f"float64) in a {size:,}-byte file, over {MAX_EXPANSION}× its size: a damaged or hostile "
                         "header; re-export the recording")
