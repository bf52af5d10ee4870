"""Envelope analysis, the one place it is written: the band envelope (band-pass Hilbert), cepstral
pre-whitening, the squared envelope spectrum, the kurtogram's band choice and the line search that
reads a spectral line against its local floor.

Pure functions of arrays; nothing here knows about bearings — the lines to read are given as bin
positions by :mod:`vibra.diagnosis.bearing` and :mod:`vibra.physics.indicators`.

References: Randall & Antoni, "Rolling element bearing diagnostics — a tutorial", MSSP 25 (2011);
Antoni, MSSP 20 (2006) 308–331 and MSSP 21 (2007) (spectral kurtosis, the fast kurtogram);
Sawalhi & Randall (cepstral pre-whitening).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from vibra.signal.windows import hann, tukey

SLIP = 0.02          # ±2 % of a line's position: rolling elements slip 1–2 % (Randall & Antoni 2011, §2)
FLOOR_REACH = 0.2    # the local floor: ±20 % of the line's position around it …
FLOOR_MIN_BINS = 12  # … and at least this many bins a side
# Envelope-spectrum bins below this hold the envelope's DC lobe. Both envelopes here are Hann-shaped
# (the SES is Hann-tapered; the band envelope comes from Hann-windowed spectra), and a periodic Hann's
# transform of a constant is non-zero at bins 0 and ±1 only: bin 2 is the first clean one, bin 3 keeps
# one bin of margin for slow drifts of the envelope. (Two near-twin helpers used 3 and 4; 4 also
# dropped bin 3 from the floor of the lowest lines — only env_ftf, ~bin 4 at 1797 rpm and 12 kHz /
# 4096, ever reads there; no verdict reads below bin 30.)
MIN_ENV_BIN = 3
MIN_FLOOR_BINS = 8   # a floor from fewer bins is not a median of anything
TAPER = 0.1          # Tukey taper share of the diagnosis windows (see :func:`tapered_spectra`)


# -- spectra, whitening, squared envelope ----------------------------------------------------------

def tapered_spectra(frames: np.ndarray, sample_rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies (L//2+1,), one-sided complex spectra (n, L//2+1)) of demeaned, lightly tapered frames.

    A Hann window would halve the signal at a quarter of the window from each edge; after whitening that
    amplitude modulation competes with the bearing's own, so the frames get only a 10 % Tukey taper
    (flat over 90 % of the window) — whitening spreads a window's edge step over every frequency, so
    the edges are softened, no more. float32 frames stay float32 (the chain then runs in single precision).
    """
    import scipy.fft

    frames = np.asarray(frames)
    if frames.dtype != np.float32:
        frames = frames.astype(np.float64, copy=False)
    x = (frames - frames.mean(axis=1, keepdims=True)) * tukey(frames.shape[1], TAPER).astype(frames.dtype)
    return scipy.fft.rfftfreq(frames.shape[1], 1.0 / sample_rate_hz), scipy.fft.rfft(x, axis=1)


def whiten(spec: np.ndarray) -> np.ndarray:
    """Cepstral pre-whitening of one-sided complex spectra: ``X / |X|`` (zero where ``X`` is 0).

    Equivalent to zeroing the real cepstrum everywhere but at zero quefrency and transforming back with
    the original phase (Sawalhi & Randall; Randall & Antoni 2011, §3.3): shaft, gear and electrical
    lines lose their dominance and what is impulsive in time carries the envelope.
    """
    mag = np.abs(spec)
    mag[mag == 0] = np.inf  # 0 / inf = 0: a bin with nothing stays nothing
    return spec / mag


def squared_envelope_spectrum(spec: np.ndarray, freqs_hz: np.ndarray,
                              band_hz: tuple[float, float] | None = None) -> np.ndarray:
    """Squared envelope spectrum of each window, from its one-sided complex spectrum.

    Parameters
    ----------
    spec : (n, L//2+1) complex one-sided spectra of windows of L samples.
    freqs_hz : (L//2+1,) their frequencies.
    band_hz : keep only this band before the envelope (None: everything but DC and Nyquist).

    Returns
    -------
    (n, L//2+1) magnitude of the Hann-tapered, demeaned squared envelope's spectrum; bin k is at
    ``freqs_hz[k]`` (the same spacing fs/L). For unit-scaled spectra of a signal x(t), the squared
    envelope is |x + j·H{x}|² (x's units squared).
    """
    import scipy.fft

    n_bins = spec.shape[1]
    length = 2 * (n_bins - 1)
    lo, hi = 1, n_bins - 1  # DC and Nyquist left out
    if band_hz is not None:
        lo = max(lo, int(np.searchsorted(freqs_hz, band_hz[0])))
        hi = min(hi, int(np.searchsorted(freqs_hz, band_hz[1], side="right")))
    # analytic signal: the positive frequencies doubled, the negative ones zero
    full = np.zeros((spec.shape[0], length), dtype=np.result_type(spec.dtype, np.complex64))
    np.multiply(spec[:, lo:hi], 2.0, out=full[:, lo:hi])
    z = scipy.fft.ifft(full, axis=1, overwrite_x=True)
    se = np.square(z.real)
    se += np.square(z.imag)
    se -= se.mean(axis=1, keepdims=True)
    se *= hann(length, se.dtype)
    return np.abs(scipy.fft.rfft(se, axis=1))


# -- the band envelope (band-pass Hilbert) and the kurtogram ---------------------------------------

def _decimation(freqs: np.ndarray, band: tuple[float, float]) -> tuple[int, int, int]:
    """(first bin, bins, decimated length M) of a band's envelope: M the smallest power of two ≥ 8 holding it."""
    lo, hi = np.searchsorted(freqs, band[0]), np.searchsorted(freqs, band[1])
    width = max(int(hi - lo), 1)
    return int(lo), width, 1 << max(3, int(np.ceil(np.log2(width))))


def band_envelope(freqs: np.ndarray, spec: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    """Complex envelope of the ``band`` of one-sided spectra (n, L//2+1), decimated: (n, M).

    The band's bins are shifted down to 0 Hz (which leaves the envelope's magnitude unchanged) and
    inverse-transformed at the smallest power-of-two length M that holds them, so the envelope comes
    out at fs·M/L samples per second — still enough for the band's own width, and 4–16× cheaper than a
    full-length analytic signal. Its spectrum keeps the bin spacing fs/L.
    """
    import scipy.fft

    lo, width, m = _decimation(freqs, band)
    z = np.zeros((spec.shape[0], m), dtype=np.result_type(spec.dtype, np.complex64))  # float32 spectra stay single
    z[:, :width] = spec[:, lo:lo + width]
    return scipy.fft.ifft(z, axis=1, overwrite_x=True)


def envelope_spectra(freqs: np.ndarray, spec: np.ndarray, band: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude spectra of the Hilbert envelopes of the band-passed windows.

    Returns (envelope frequencies (M//2+1,), amplitudes (n, M//2+1)); the bin spacing is the windows'
    own fs/L. The windows are Hann-tapered before the transform, so the envelope comes out tapered the
    same way — the window one would apply before the envelope's FFT. Amplitudes are raw FFT
    magnitudes; :func:`envelope_amplitude` scales them to the envelope's 0-peak amplitude.
    """
    import scipy.fft

    env = np.abs(band_envelope(freqs, spec, band))
    amp = np.abs(scipy.fft.rfft(env, axis=1))
    return np.arange(amp.shape[1]) * (freqs[1] - freqs[0]), amp


def candidate_bands(sample_rate_hz: float, fastest_hz: float, shaft_hz: float,
                    harmonics: int = 3) -> list[tuple[float, float]]:
    """Dyadic (fast-kurtogram) bands, levels 1–3 with half-shifted ones, wide enough to carry the
    modulation of ``harmonics`` × the fastest line to read and above the shaft harmonics."""
    nyquist = sample_rate_hz / 2.0
    min_width = 2.0 * harmonics * fastest_hz
    floor = max(10.0 * shaft_hz, 3.0 * fastest_hz)
    bands = []
    for level in (1, 2, 3):
        width = nyquist / 2 ** level
        if width < min_width:
            continue
        steps = np.arange(0.0, 2 ** level - 0.49, 0.5) if level > 1 else np.arange(2 ** level)
        for i in steps:
            lo, hi = i * width, min((i + 1) * width, nyquist * 0.98)
            if lo >= floor and hi - lo >= min_width:
                bands.append((float(lo), float(hi)))
    return bands


def spectral_kurtosis_band(freqs: np.ndarray, spec: np.ndarray,
                           bands: list[tuple[float, float]]) -> tuple[tuple[float, float] | None, float]:
    """The band whose complex envelope is most impulsive (kurtosis − 2, Gaussian = 0).

    Kurtosis is taken over the central half of each Hann-tapered window (of the decimated envelope),
    averaged over the windows given. Returns (band, spectral kurtosis of that band); the first band wins
    a tie. Bands whose envelopes have the same decimated length are transformed in one call (the band
    envelope of :func:`band_envelope`, row for row).
    """
    import scipy.fft

    if not bands:
        return None, float("nan")
    n = spec.shape[0]
    dtype = np.result_type(spec.dtype, np.complex64)
    sk = np.full(len(bands), -np.inf)
    groups: dict[int, list[tuple[int, int, int]]] = {}
    for i, band in enumerate(bands):
        lo, width, m = _decimation(freqs, band)
        groups.setdefault(m, []).append((i, lo, width))
    for m, members in groups.items():
        z = np.zeros((len(members), n, m), dtype=dtype)
        for row, (_, lo, width) in enumerate(members):
            z[row, :, :width] = spec[:, lo:lo + width]
        c = scipy.fft.ifft(z, axis=-1, overwrite_x=True)[:, :, m // 4: 3 * m // 4]
        e2 = c.real ** 2 + c.imag ** 2
        m2 = e2.mean(axis=2)
        m4 = (e2 ** 2).mean(axis=2)
        for row, (i, _, _) in enumerate(members):
            ok = m2[row] > 0
            if ok.any():
                sk[i] = float(np.mean(m4[row][ok] / m2[row][ok] ** 2 - 2.0))
    sk[np.isnan(sk)] = -np.inf  # a band whose kurtosis is undefined is never chosen
    best = int(np.argmax(sk))
    if sk[best] == -np.inf:
        return None, -np.inf
    return bands[best], float(sk[best])


# -- reading a line against its local floor --------------------------------------------------------

def median_rows(a: np.ndarray) -> np.ndarray:
    """``np.median(a, axis=-1)`` of a float array, to the bit (NaN where a row holds NaN), without
    np.median's per-call overhead (~15 µs, which the ~25 medians of every block of windows pay)."""
    k = a.shape[-1]
    mid = sorted({(k - 1) // 2, k // 2, k - 1})  # k - 1: a NaN, larger than everything, lands last
    part = np.partition(a, mid, axis=-1)
    med = part[..., k // 2] if k % 2 else (part[..., k // 2 - 1] + part[..., k // 2]) / 2
    last = part[..., -1]
    return np.where(np.isnan(last), last, med)


@functools.lru_cache(maxsize=1024)
def line_bins(n_bins: int, centre: float) -> tuple[int, int, np.ndarray] | None:
    """Where a line at bin position ``centre`` is searched, and its floor: (lo, hi, bins around).

    The search zone is ±SLIP·centre (at least ±1 bin); the floor the bins within ±FLOOR_REACH·centre (at
    least FLOOR_MIN_BINS a side) outside the zone, none below MIN_ENV_BIN. None when the zone does not
    fit between MIN_ENV_BIN and the last bin, or the floor would hold fewer than MIN_FLOOR_BINS bins.
    """
    half = max(SLIP * centre, 1.0)
    lo, hi = int(math.ceil(centre - half)), int(math.floor(centre + half))
    if lo < MIN_ENV_BIN or hi >= n_bins - 1 or lo > hi:
        return None
    reach = max(int(round(FLOOR_REACH * centre)), FLOOR_MIN_BINS)
    around = np.r_[max(MIN_ENV_BIN, lo - reach):lo, hi + 1:min(n_bins, hi + 1 + reach)]
    if around.shape[0] < MIN_FLOOR_BINS:
        return None
    around.flags.writeable = False
    return lo, hi, around


def line_ratio(spectra: np.ndarray, centre: float) -> np.ndarray | None:
    """Per row of (n, bins) spectra: the largest value in the search zone of a line at bin position
    ``centre`` over the median of its floor (:func:`line_bins`); ≈ 1 means no line. None if it does not fit."""
    bins = line_bins(spectra.shape[1], round(float(centre), 9))
    if bins is None:
        return None
    lo, hi, around = bins
    peak = spectra[:, lo:hi + 1].max(axis=1)
    floor = median_rows(spectra[:, around])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(floor > 0, peak / floor, np.nan)


@functools.lru_cache(maxsize=256)
def _ratio_plan(n_bins: int, centres: tuple[float, ...]):
    """Where each line of ``centres`` is read (:func:`line_bins`), with the floors of equal length stacked:
    (zones: per centre (lo, hi) or None, groups: [(centre indices, (g, k) floor bins)])."""
    bins = [line_bins(n_bins, c) for c in centres]
    by_length: dict[int, list[int]] = {}
    for i, b in enumerate(bins):
        if b is not None:
            by_length.setdefault(b[2].shape[0], []).append(i)
    groups = []
    for idx in by_length.values():
        around = np.stack([bins[i][2] for i in idx])
        around.flags.writeable = False
        groups.append((tuple(idx), around))
    return [None if b is None else (b[0], b[1]) for b in bins], groups


def line_ratios(spectra: np.ndarray, centres) -> list[np.ndarray | None]:
    """:func:`line_ratio` of each of several lines at once (the same values, to the bit): the floors of
    lines with equally many floor bins are gathered and their medians taken in one call."""
    zones, groups = _ratio_plan(spectra.shape[1], tuple(round(float(c), 9) for c in centres))
    out: list[np.ndarray | None] = [None] * len(zones)
    with np.errstate(divide="ignore", invalid="ignore"):
        for idx, around in groups:
            floors = median_rows(spectra[:, around])  # (n, g)
            for j, i in enumerate(idx):
                lo, hi = zones[i]
                peak = spectra[:, lo:hi + 1].max(axis=1)
                floor = floors[:, j]
                out[i] = np.where(floor > 0, peak / floor, np.nan)
    return out


def envelope_amplitude_spectrum(frames: np.ndarray, sample_rate_hz: float,
                                band_hz: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude spectrum of the envelope of the ``band_hz`` band, in the signal's own units, averaged
    over windows: (frequencies (L//2+1,), amplitude (L//2+1,)).

    Scaling, stated: each window (demeaned, not tapered) is band-passed by keeping its FFT bins in
    ``[lo, hi)``; its envelope is the magnitude of the analytic signal (for ``A·(1 + m·cos 2π f_m t)·
    sin 2π f_c t`` with f_c in the band: ``A·(1 + m·cos 2π f_m t)``); the envelope, demeaned and
    Hann-tapered, is transformed and scaled by 2 / Σw, so a modulation of 0-peak amplitude ``A·m`` shows
    as a line of height ``A·m`` at f_m (DC, the mean envelope, is removed). In g when the signal is in g.
    """
    import scipy.fft

    frames = np.atleast_2d(np.asarray(frames, dtype=np.float64))
    length = frames.shape[1]
    x = frames - frames.mean(axis=1, keepdims=True)
    spec = scipy.fft.fft(x, axis=1)
    f = scipy.fft.fftfreq(length, 1.0 / sample_rate_hz)
    keep = (f >= band_hz[0]) & (f < band_hz[1])  # positive frequencies only: the analytic signal
    env = np.abs(scipy.fft.ifft(np.where(keep, 2.0 * spec, 0.0), axis=1))
    env -= env.mean(axis=1, keepdims=True)
    w = hann(length)
    amp = np.abs(scipy.fft.rfft(env * w, axis=1)) * (2.0 / w.sum())
    return scipy.fft.rfftfreq(length, 1.0 / sample_rate_hz), amp.mean(axis=0)
