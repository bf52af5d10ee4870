"""Windowed condition indicators: public, validating wrappers over the kernels.

Vocabulary: ``frame_length`` and ``hop_length`` in samples, ``sample_rate_hz``
in Hz. Every windowed indicator is computed over the windows given by
:func:`window_starts` — the one place that decides where windows lie.
"""

from __future__ import annotations

import functools

import numpy as np

from vibra.signal._kernels import TIME_COLUMNS, _flat_runs, _time_indicators
from vibra.signal.windows import hann

SPECTRAL_COLUMNS = ("dominant_freq_hz", "spectral_centroid_hz")


def n_windows(n_samples: int, frame_length: int, hop_length: int) -> int:
    """Number of complete windows in ``n_samples`` samples (librosa's framing rule)."""
    if n_samples < frame_length:
        return 0
    return 1 + (n_samples - frame_length) // hop_length


def window_starts(n_samples: int, frame_length: int, hop_length: int) -> np.ndarray:
    """Start sample of every complete window, shape (n_windows,), int64."""
    return np.arange(n_windows(n_samples, frame_length, hop_length), dtype=np.int64) * hop_length


def frame(x: np.ndarray, frame_length: int, hop_length: int, starts: np.ndarray | None = None) -> np.ndarray:
    """``x`` as (n_windows, frame_length) windows: the one place a signal is cut into windows.

    Parameters
    ----------
    x : (n_samples,) signal.
    frame_length, hop_length : window length and step, samples.
    starts : optional (n_windows,) increasing start samples (e.g. a slice of :func:`window_starts`, or
        starts shifted past a break in the time base); default every complete window.

    Returns
    -------
    (n_windows, frame_length) array: a read-only strided view of ``x`` (librosa's ``util.frame``)
    when the windows are ``hop_length`` apart, else a copy gathered at ``starts``.
    """
    if x.shape[0] < frame_length:
        if starts is not None and len(starts):
            raise ValueError("window starts fall outside the signal")
        return np.empty((0, frame_length), dtype=x.dtype)
    view = np.lib.stride_tricks.sliding_window_view(x, frame_length)
    if starts is None:
        return view[::hop_length]
    starts = np.asarray(starts, dtype=np.int64)
    if starts.shape[0] == 0:
        return view[:0]
    if starts[0] < 0 or starts[-1] + frame_length > x.shape[0]:
        raise ValueError("window starts fall outside the signal")
    if starts.shape[0] == 1 or np.all(np.diff(starts) == hop_length):
        return view[starts[0]:starts[-1] + 1:hop_length]  # evenly spaced: no copy
    return view[starts]


def band_column(low_hz: float, high_hz: float) -> str:
    return f"band_{low_hz:g}_{high_hz:g}_hz".replace(".", "p")


def _check(x: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"signal must be 1-D, got shape {x.shape}")
    if frame_length < 2 or hop_length < 1:
        raise ValueError(f"frame_length must be >= 2 and hop_length >= 1, got {frame_length}, {hop_length}")
    return x


def time_indicators(x: np.ndarray, frame_length: int, hop_length: int,
                    starts: np.ndarray | None = None) -> np.ndarray:
    """Time-domain indicators per window in one pass.

    Parameters
    ----------
    x : (n_samples,) float signal, finite.
    frame_length, hop_length : window length and step, samples.
    starts : optional (n_windows,) start samples; default every complete window.

    Returns
    -------
    (n_windows, 11) float64 in the order of ``TIME_COLUMNS``: mean, std
    (population), rms, peak = max|x|, peak_to_peak, crest_factor = peak/rms,
    kurtosis (Pearson, Gaussian = 3), skewness, shape_factor = rms/mean|x|,
    impulse_factor = peak/mean|x|, clearance_factor = peak/mean(sqrt|x|)².
    """
    x = _check(x, frame_length, hop_length)
    if starts is None:
        starts = window_starts(x.shape[0], frame_length, hop_length)
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    out = np.empty((starts.shape[0], len(TIME_COLUMNS)), dtype=np.float64)
    if starts.shape[0]:
        if starts.min() < 0 or starts.max() + frame_length > x.shape[0]:
            raise ValueError("window starts fall outside the signal")
        _time_indicators(x, x.view(np.int64), starts, frame_length, out)
    return out


def window_spectra(windows: np.ndarray, sample_rate_hz: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spectra of demeaned, Hann-windowed frames.

    Returns (frequencies_hz (L//2+1,), complex one-sided spectra (n, L//2+1), power (n, L//2+1)).
    The power is scaled so the bins of one window add up to its variance (unit²):
    ``P[k] = c_k |X[k]|² / (L² · mean(w²))`` with ``c_k = 2`` except at DC and Nyquist.
    """
    import scipy.fft

    n, length = windows.shape
    frames = windows - windows.mean(axis=1, keepdims=True)
    frames *= hann(length, frames.dtype)
    spec = scipy.fft.rfft(frames, axis=1, overwrite_x=True)
    power = np.square(spec.real)
    power += np.square(spec.imag)
    power *= _power_scale(length, power.dtype)
    return scipy.fft.rfftfreq(length, 1.0 / sample_rate_hz), spec, power


@functools.lru_cache(maxsize=16)
def _power_scale(length: int, dtype: np.dtype) -> np.ndarray:
    """Per-bin factor of :func:`window_spectra`'s power: ``c_k / (L² · mean(w²))`` (read-only)."""
    w = hann(length)
    scale = np.full(length // 2 + 1, 2.0)
    scale[0] = 1.0
    if length % 2 == 0:
        scale[-1] = 1.0
    scale = (scale / (length * length * float(np.mean(w * w)))).astype(dtype)
    scale.flags.writeable = False
    return scale


def power_spectra(windows: np.ndarray, sample_rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies_hz, power) of :func:`window_spectra`."""
    freqs, _, power = window_spectra(windows, sample_rate_hz)
    return freqs, power


def spectral_indicators(windows: np.ndarray, sample_rate_hz: float,
                        bands_hz: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Frequency-domain indicators of (n_windows, frame_length) frames.

    Returns (n_windows, 2 + n_bands): dominant frequency (Hz, DC excluded),
    spectral centroid (Hz), then the power in each ``[low, high)`` band (unit²;
    NaN when the band starts above Nyquist).
    """
    freqs, power = power_spectra(windows, sample_rate_hz)
    return spectral_from_power(freqs, power, sample_rate_hz, bands_hz)


def spectral_from_power(freqs: np.ndarray, power: np.ndarray, sample_rate_hz: float,
                        bands_hz: tuple[tuple[float, float], ...]) -> np.ndarray:
    """:func:`spectral_indicators` from power spectra already computed."""
    out = np.empty((power.shape[0], 2 + len(bands_hz)), dtype=np.float64)
    ac = power[:, 1:]
    out[:, 0] = freqs[1:][np.argmax(ac, axis=1)]
    total = ac.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, 1] = np.where(total > 0, (ac * freqs[1:]).sum(axis=1) / total, np.nan)
    nyquist = sample_rate_hz / 2.0
    for j, (low, high) in enumerate(bands_hz):
        if low >= nyquist:
            out[:, 2 + j] = np.nan
            continue
        lo, hi = np.searchsorted(freqs, low), np.searchsorted(freqs, high)  # [low, high): a slice, no copy
        out[:, 2 + j] = power[:, lo:hi].sum(axis=1)
    return out


def flat_and_clipped(x: np.ndarray, min_clip_run: int = 3, min_flat_run: int = 64) -> tuple[int, int]:
    """Samples in clipped plateaus (at the extremes) and in flat-line runs elsewhere."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.shape[0] < 2 or not np.any(x[1:] == x[:-1]):  # no repeated neighbour: no run at all (fast path)
        return 0, 0
    return _flat_runs(x, min_clip_run, min_flat_run)
