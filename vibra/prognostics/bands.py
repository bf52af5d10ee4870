"""Health-indicator candidates from one short snapshot of raw vibration: RMS, kurtosis and the RMS in octave
bands of the spectrum and of the envelope.

Why bands: on run-to-failure bearings the first energy to grow is often high in frequency (the structure's
resonances, excited by the first impacts) long before the overall RMS moves; and a band RMS, unlike a peak
or a crest factor, does not jump on one isolated impact. The envelope's bands (the demodulated high band) carry
the repetition rates of those impacts (Randall & Antoni 2011).

* spectrum bands: ``band_<lo>_<hi>_hz`` — octaves ending at the Nyquist frequency (``fs/2^(k+1)`` …
  ``fs/2^k``), the lowest from 0; band RMS by Parseval, so the squares of all bands sum to the variance;
* envelope bands: ``envband_<lo>_<hi>_hz`` — the magnitude of the complex envelope of the band
  ``envelope_band_hz`` (default: the top octave, fs/4 … fs/2), demeaned, its RMS in octaves up to
  ``envelope_top_hz``;
* ``rms`` (g, about the mean) and ``kurtosis`` (Pearson, Gaussian = 3).

Pure functions of arrays: frames (n_snapshots, frame_length) of one channel in, one array per column out.
"""

from __future__ import annotations

import numpy as np

from vibra.errors import InputError
from vibra.signal.indicators import band_column


def octave_edges(top_hz: float, n_bands: int) -> list[tuple[float, float]]:
    """``n_bands`` octave bands ending at ``top_hz`` (highest first), the lowest extended down to 0 Hz."""
    edges = [(top_hz / 2 ** (k + 1), top_hz / 2 ** k) for k in range(n_bands)]
    edges[-1] = (0.0, edges[-1][1])
    return edges[::-1]


def _spectra(frames: np.ndarray, sample_rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies, one-sided spectra) of the demeaned frames, unwindowed (Parseval holds)."""
    import scipy.fft

    x = np.asarray(frames, dtype=float)
    if x.ndim != 2 or x.shape[1] < 4:
        raise InputError(f"band RMS: frames of shape {x.shape}; need (n_frames, ≥ 4 samples)")
    return (scipy.fft.rfftfreq(x.shape[1], 1.0 / sample_rate_hz),
            scipy.fft.rfft(x - x.mean(axis=1, keepdims=True), axis=1))


def _band_rms_of(freqs: np.ndarray, spec: np.ndarray, n: int, bands_hz: list[tuple[float, float]]) -> np.ndarray:
    power = np.abs(spec) ** 2 / n ** 2
    power[:, 1:(n + 1) // 2] *= 2.0  # one-sided: every bin but DC and (even n) Nyquist stands for two
    out = np.empty((spec.shape[0], len(bands_hz)))
    for j, (lo, hi) in enumerate(bands_hz):
        # the top band closes at Nyquist (inclusive), every other one is [lo, hi)
        sel = (freqs >= lo) & ((freqs < hi) | ((hi >= freqs[-1]) & (freqs <= hi)))
        out[:, j] = np.sqrt(power[:, sel].sum(axis=1))
    return out


def band_rms(frames: np.ndarray, sample_rate_hz: float, bands_hz: list[tuple[float, float]]) -> np.ndarray:
    """RMS of each demeaned frame within each band ``[lo, hi)`` (Parseval: no window, so the squares of bands
    that tile 0 … fs/2 sum to the frame's variance). Shape (n_frames, n_bands), in the frames' units."""
    freqs, spec = _spectra(frames, sample_rate_hz)
    return _band_rms_of(freqs, spec, np.asarray(frames).shape[1], bands_hz)


def _envelope(freqs: np.ndarray, spec: np.ndarray, n: int, band_hz: tuple[float, float]) -> np.ndarray:
    """Magnitude of the analytic signal of ``band_hz``, (frames, M) samples at fs·M/n: the project's one band
    envelope (:func:`vibra.signal.envelope.band_envelope`, decimated), scaled to the signal's units (× 2M/n)."""
    from vibra.signal.envelope import band_envelope

    z = band_envelope(freqs, spec, band_hz)
    return np.abs(z) * (2.0 * z.shape[1] / n)


def snapshot_indicators(frames: np.ndarray, sample_rate_hz: float, *, n_bands: int = 6,
                        envelope_band_hz: tuple[float, float] | None = None, envelope_top_hz: float = 1600.0,
                        n_envelope_bands: int = 5) -> dict[str, np.ndarray]:
    """The candidate columns of :mod:`vibra.prognostics.health` from raw snapshots of one channel.

    Parameters
    ----------
    frames : (n_snapshots, frame_length) raw samples of one channel (e.g. FEMTO: 2,560 samples, 0.1 s).
    sample_rate_hz : their sampling rate.
    n_bands : octave bands of the spectrum, ending at Nyquist (the lowest reaches 0 Hz).
    envelope_band_hz : the band demodulated for the envelope; default the top octave (fs/4 … fs/2).
    envelope_top_hz, n_envelope_bands : the envelope's octave bands end at this frequency.

    Returns
    -------
    {column: (n_snapshots,) array}: ``rms``, ``kurtosis`` (Pearson), ``band_*_hz``, ``envband_*_hz``.
    """
    x = np.asarray(frames, dtype=float)
    if x.ndim != 2:
        raise InputError(f"snapshot indicators: frames of shape {x.shape}; need (n_snapshots, frame_length)")
    nyquist = sample_rate_hz / 2.0
    centred = x - x.mean(axis=1, keepdims=True)
    m2 = (centred ** 2).mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {"rms": np.sqrt(m2), "kurtosis": (centred ** 4).mean(axis=1) / m2 ** 2}
    freqs, spec = _spectra(x, sample_rate_hz)  # one spectrum: the bands and the envelope both read it
    bands = octave_edges(nyquist, n_bands)
    for (lo, hi), v in zip(bands, _band_rms_of(freqs, spec, x.shape[1], bands).T):
        out[band_column(lo, hi)] = v
    env = _envelope(freqs, spec, x.shape[1], envelope_band_hz or (nyquist / 2.0, nyquist))
    env_rate = sample_rate_hz * env.shape[1] / x.shape[1]
    env_bands = octave_edges(min(envelope_top_hz, env_rate / 2.0), n_envelope_bands)
    for (lo, hi), v in zip(env_bands, band_rms(env, env_rate, env_bands).T):
        out["env" + band_column(lo, hi)] = v
    return out
