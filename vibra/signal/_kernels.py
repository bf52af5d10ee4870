"""numba kernels: private, arrays and scalars only. Public wrappers validate first.

Time-domain indicators come from one pass over each window accumulating power
sums about a shift ``c = x[start]``. Shifting keeps the sums close to the
central moments (``|mean - c|`` is a few standard deviations at most for a
vibration signal), so the raw-to-central conversion loses no useful precision,
while the loop stays a plain reduction that LLVM vectorises (``fastmath``).
Inputs must be finite: callers drop windows holding NaN before calling.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Column order of the output of ``_time_indicators``.
TIME_COLUMNS = (
    "mean", "std", "rms", "peak", "peak_to_peak", "crest_factor", "kurtosis",
    "skewness", "shape_factor", "impulse_factor", "clearance_factor",
)


# Extremes are tracked on an order-preserving int64 key of each float's bits
# (negative floats get their magnitude bits flipped): LLVM vectorises integer
# max/min reductions, but not floating-point ones under numba's flags, and the
# key keeps max/min exact (the result is a sample's own value).
_MAGNITUDE = 0x7FFFFFFFFFFFFFFF


@njit(cache=True, inline="always")
def _key(bits):
    return bits ^ ((bits >> 63) & _MAGNITUDE)


@njit(cache=True, fastmath=True, nogil=True)
def _window_sums(x, bits, start, frame_length):
    c = x[start]
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    s4 = 0.0
    sabs = 0.0
    ssqrt = 0.0
    kmax = _key(bits[start])
    kmin = kmax
    for i in range(start, start + frame_length):
        v = x[i]
        d = v - c
        d2 = d * d
        s1 += d
        s2 += d2
        s3 += d2 * d
        s4 += d2 * d2
        a = abs(v)
        sabs += a
        ssqrt += np.sqrt(a)
        k = _key(bits[i])
        kmax = k if k > kmax else kmax
        kmin = k if k < kmin else kmin
    return c, s1, s2, s3, s4, sabs, ssqrt, _key(kmax), _key(kmin)


@njit(cache=True, inline="always")
def _as_float(bits):
    return np.array([bits]).view(np.float64)[0]


@njit(cache=True, nogil=True)
def _time_indicators(x, bits, starts, frame_length, out):
    """Fill ``out[w, :]`` with TIME_COLUMNS for the window at ``starts[w]``.

    ``bits`` is ``x.view(np.int64)`` (the same memory), for the exact extremes.

    Moments are population moments (ddof = 0); kurtosis is Pearson (Gaussian = 3).
    Undefined ratios (zero variance, zero rms, zero mean |x|) are NaN.
    """
    n = float(frame_length)
    nan = np.nan
    for w in range(starts.shape[0]):
        c, s1, s2, s3, s4, sabs, ssqrt, kmax, kmin = _window_sums(x, bits, starts[w], frame_length)
        mx = _as_float(kmax)
        mn = _as_float(kmin)
        d = s1 / n
        e2 = s2 / n
        e3 = s3 / n
        e4 = s4 / n
        m2 = max(e2 - d * d, 0.0)
        m3 = e3 - 3.0 * d * e2 + 2.0 * d * d * d
        m4 = e4 - 4.0 * d * e3 + 6.0 * d * d * e2 - 3.0 * d * d * d * d
        mean = c + d
        rms = np.sqrt(m2 + mean * mean)
        peak = max(abs(mx), abs(mn))
        mean_abs = sabs / n
        mean_sqrt = ssqrt / n
        out[w, 0] = mean
        out[w, 1] = np.sqrt(m2)
        out[w, 2] = rms
        out[w, 3] = peak
        out[w, 4] = mx - mn
        out[w, 5] = peak / rms if rms > 0.0 else nan
        out[w, 6] = m4 / (m2 * m2) if m2 > 0.0 else nan
        out[w, 7] = m3 / m2 ** 1.5 if m2 > 0.0 else nan
        out[w, 8] = rms / mean_abs if mean_abs > 0.0 else nan
        out[w, 9] = peak / mean_abs if mean_abs > 0.0 else nan
        out[w, 10] = peak / (mean_sqrt * mean_sqrt) if mean_sqrt > 0.0 else nan


@njit(cache=True, nogil=True)
def _flat_runs(x, min_clip_run, min_flat_run):
    """Samples lying in runs of identical consecutive values.

    Returns (samples in runs of >= ``min_clip_run`` at the signal's extreme
    values: clipping; samples in other runs of >= ``min_flat_run``: flat line). NaN never equals
    itself, so NaN gaps do not count here.
    """
    n = x.shape[0]
    if n == 0:
        return 0, 0
    mx = -np.inf
    mn = np.inf
    for i in range(n):
        v = x[i]
        if v > mx:
            mx = v
        if v < mn:
            mn = v
    clipped = 0
    flat = 0
    run = 1
    for i in range(1, n + 1):
        if i < n and x[i] == x[i - 1]:
            run += 1
            continue
        v = x[i - 1]
        if (v == mx or v == mn) and mx > mn:
            if run >= min_clip_run:
                clipped += run
        elif run >= min_flat_run:
            flat += run
        run = 1
    return clipped, flat
