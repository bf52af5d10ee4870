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


# -- envelope analysis (vibra.signal.envelope) ------------------------------------------------------

def squared_envelope_spectrum(x, band_hz=None, sample_rate_hz: float = 1.0) -> np.ndarray:
    """|FFT| of the Hann-tapered, demeaned squared envelope of one window x (L samples), from the
    definition: the analytic signal by scipy's Hilbert transform of x with DC and Nyquist (and
    everything outside ``band_hz``) removed first."""
    import scipy.signal

    x = np.asarray(x, dtype=float)
    n = len(x)
    spec = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate_hz)
    for k in range(len(spec)):
        outside = band_hz is not None and not (band_hz[0] <= freqs[k] <= band_hz[1])
        if k == 0 or k == len(spec) - 1 or outside:
            spec[k] = 0.0
    clean = np.fft.irfft(spec, n)
    se = [abs(v) ** 2 for v in scipy.signal.hilbert(clean)]
    mean = sum(se) / n
    w = [0.5 - 0.5 * math.cos(2 * math.pi * i / n) for i in range(n)]
    return np.abs(np.fft.rfft([(se[i] - mean) * w[i] for i in range(n)]))


def band_envelope_magnitude(x, band_hz, sample_rate_hz: float) -> np.ndarray:
    """|analytic signal| of the Hann-windowed x band-passed to [lo, hi) by zeroing FFT bins, at full length
    (the kernel decimates; the magnitude at the same instants must agree)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    w = np.array([0.5 - 0.5 * math.cos(2 * math.pi * i / n) for i in range(n)])
    spec = np.fft.fft((x - x.mean()) * w)
    freqs = np.fft.fftfreq(n, 1.0 / sample_rate_hz)
    keep = [(band_hz[0] <= f < band_hz[1]) for f in freqs]  # positive band only: the analytic signal
    analytic = np.fft.ifft([2 * s if k else 0.0 for s, k in zip(spec, keep)])
    return np.abs(analytic)


def line_ratio(spectrum, centre: float, slip: float = 0.02, reach: float = 0.2, min_reach_bins: int = 12,
               min_bin: int = 3, min_floor_bins: int = 8) -> float | None:
    """Peak within ±slip·centre (≥ ±1 bin) of one spectrum over the median of the bins within
    ±reach·centre (≥ min_reach_bins a side) outside that zone and at or above min_bin; plain loops."""
    s = [float(v) for v in spectrum]
    half = max(slip * centre, 1.0)
    lo, hi = math.ceil(centre - half), math.floor(centre + half)
    if lo < min_bin or hi >= len(s) - 1 or lo > hi:
        return None
    r = max(int(round(reach * centre)), min_reach_bins)
    around = [s[k] for k in range(max(min_bin, lo - r), lo)] + [s[k] for k in range(hi + 1, min(len(s), hi + 1 + r))]
    if len(around) < min_floor_bins:
        return None
    around.sort()
    m = len(around)
    floor = around[m // 2] if m % 2 else (around[m // 2 - 1] + around[m // 2]) / 2
    peak = max(s[lo:hi + 1])
    return peak / floor if floor > 0 else float("nan")
