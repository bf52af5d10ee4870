"""Taper windows, cached and read-only: the periodic Hann of the window spectra and the Tukey taper of the
bearing-diagnosis chain. The one place a window function is written."""

from __future__ import annotations

import functools
import math

import numpy as np


@functools.lru_cache(maxsize=32)
def hann(length: int, dtype: np.dtype = np.dtype(np.float64)) -> np.ndarray:
    """Periodic Hann window of ``length`` samples in ``dtype`` (read-only, cached).

    In the frames' own dtype: numpy multiplies float32 by a float64 array about 9× slower than by a
    float32 one (it casts every element up and back)."""
    w = np.hanning(length + 1)[:-1].astype(dtype)
    w.flags.writeable = False
    return w


@functools.lru_cache(maxsize=16)
def tukey(length: int, alpha: float) -> np.ndarray:
    """Symmetric Tukey window of ``length`` samples with a cosine taper over ``alpha`` of them (read-only).

    ``scipy.signal.windows.tukey(length, alpha)``, written out: importing scipy.signal costs ingest
    ~40 MB of RSS for this one window."""
    m = length
    if m <= 1:
        return np.ones(m)
    n = np.arange(m, dtype=np.float64)
    width = int(math.floor(alpha * (m - 1) / 2.0))
    w = np.ones(m)
    w[:width + 1] = 0.5 * (1 + np.cos(np.pi * (-1 + 2.0 * n[:width + 1] / alpha / (m - 1))))
    w[m - width - 1:] = 0.5 * (1 + np.cos(np.pi * (-2.0 / alpha + 1 + 2.0 * n[m - width - 1:] / alpha / (m - 1))))
    w.flags.writeable = False
    return w
