"""WAV files, memory-mapped and read in chunks.

Integer PCM is scaled to [-1, 1) full scale; float WAV is taken as it is.
Physical units come from the equipment's ``units`` setting.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vibra.errors import InputError
from vibra.readers.base import Recording
from vibra.settings import Equipment


def read_wav(path: Path, equipment: Equipment, chunk_rows: int, on_time_gap: str = "split") -> Recording:
    import scipy.io.wavfile

    try:
        try:
            rate, data = scipy.io.wavfile.read(str(path), mmap=True)
        except ValueError as exc:
            if "not compatible" not in str(exc):
                raise
            # 24-bit PCM cannot be memory-mapped; scipy reads it into int32, left-justified
            rate, data = scipy.io.wavfile.read(str(path), mmap=False)
    except Exception as exc:  # ValueError for garbage, EOFError for a cut header
        raise InputError(f"{path}: not a readable WAV file ({type(exc).__name__}: {exc}); "
                         "check the file's format and extension") from None
    if data.ndim == 1:
        data = data[:, None]
    scale = 1.0
    if data.dtype.kind == "i":
        scale = 1.0 / float(2 ** (8 * data.dtype.itemsize - 1))
    elif data.dtype.kind == "u":  # 8-bit WAV is unsigned, centred on 128
        scale = 1.0 / 128.0

    def chunks():
        for offset in range(0, data.shape[0], chunk_rows):
            block = np.asarray(data[offset:offset + chunk_rows], dtype=np.float64)
            if data.dtype.kind == "u":
                block = block - 128.0
            yield block * scale

    channels = [f"ch{i}" for i in range(data.shape[1])]
    return Recording(channels=channels, chunks=chunks(), sample_rate_hz=float(rate))
