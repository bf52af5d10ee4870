"""Slow, obviously-correct references for the indicator kernels (plain loops and numpy)."""

from __future__ import annotations

import math

import numpy as np


def time_indicators(window) -> list[float]:
    """TIME_COLUMNS of one window, straight from the definitions (two passes, float math)."""
    x = [float(v) for v in window]
    n = len(x)
    mean = sum(x) / n
    m2 = sum((v - mean) ** 2 for v in x) / n
    m3 = sum((v - mean) ** 3 for v in x) / n
    m4 = sum((v - mean) ** 4 for v in x) / n
    rms = math.sqrt(sum(v * v for v in x) / n)
    peak = max(abs(v) for v in x)
    mean_abs = sum(abs(v) for v in x) / n
    mean_sqrt = sum(math.sqrt(abs(v)) for v in x) / n
    nan = float("nan")
    return [
        mean,
        math.sqrt(m2),
        rms,
        peak,
        max(x) - min(x),
        peak / rms if rms > 0 else nan,
        m4 / m2 ** 2 if m2 > 0 else nan,
        m3 / m2 ** 1.5 if m2 > 0 else nan,
        rms / mean_abs if mean_abs > 0 else nan,
        peak / mean_abs if mean_abs > 0 else nan,
        peak / mean_sqrt ** 2 if mean_sqrt > 0 else nan,
    ]


def spectral_indicators(window, sample_rate_hz: float, bands_hz) -> list[float]:
    """Dominant frequency, centroid and band powers from numpy's FFT, one window at a time."""
    x = np.asarray(window, dtype=float)
    n = len(x)
    w = np.array([0.5 - 0.5 * math.cos(2 * math.pi * i / n) for i in range(n)])  # periodic Hann
    spec = np.fft.rfft((x - x.mean()) * w)
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate_hz)
    power = np.abs(spec) ** 2 / (n * n * np.mean(w * w))
    power[1:] *= 2.0
    if n % 2 == 0:
        power[-1] /= 2.0
    ac = power[1:]
    dominant = freqs[1 + int(np.argmax(ac))]
    centroid = float((ac * freqs[1:]).sum() / ac.sum()) if ac.sum() > 0 else float("nan")
    out = [float(dominant), centroid]
    for low, high in bands_hz:
        if low >= sample_rate_hz / 2:
            out.append(float("nan"))
        else:
            out.append(float(sum(p for f, p in zip(freqs, power) if low <= f < high)))
    return out
