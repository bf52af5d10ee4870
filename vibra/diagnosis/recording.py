"""Recording-level evidence: the whitened squared envelope spectrum averaged over a whole recording.

A bearing's line pattern that stands 5–9× over the floor in the SES of a whole 10 s record can be lost
in the noise of each 0.34 s window judged alone (issue 31). So the verdict reads one spectrum per
recording and channel: the cepstrally pre-whitened SES of windows of ``diagnosis_window_s`` (≥ 1 s by
default; a power of two of samples, hop half a window) averaged over every window of the recording —
Welch's averaging applied to the SES. A recording shorter than one such window is read as one window of
its own length. The per-window evidence columns stay, as secondary evidence (their shares).

The evidence is normalised as the window evidence is: divided by what white Gaussian noise gives through
the same chain, here with the same window length, overlap and number of averaged windows (averaging
narrows the noise, so the null depends on it; the count is bucketed to a power of two, rounded down —
fewer averages, a higher null, the conservative side).
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass

import numpy as np

from vibra.diagnosis.bearing import BALL_ODD, STATISTIC, family_evidence
from vibra.physics.bearing import Geometry
from vibra.signal.envelope import squared_envelope_spectrum, tapered_spectra, whiten
from vibra.signal.indicators import window_spectra

# the features table's recording-level columns (one value per recording × channel, on each of its rows)
RECORDING_EVIDENCE_COLUMNS = tuple(f"recording_evidence_{f}" for f in ("outer_race", "inner_race", "ball"))
READING_COLUMNS = (*RECORDING_EVIDENCE_COLUMNS, "diagnosis_rpm", "rpm_estimated", "diagnosis_windows")

MIN_SAMPLES = 1024       # a recording shorter than this is not read at all
NULL_RECORDINGS = 48     # noise recordings the null level is the median of
MAX_AVERAGES_BUCKET = 32  # more averaged windows than this use this null (conservative)


def frame_length_for(window_s: float, sample_rate_hz: float) -> int:
    """The diagnosis window in samples: the smallest power of two holding ``window_s`` seconds (≥ 256)."""
    return max(256, 1 << int(math.ceil(math.log2(max(window_s * sample_rate_hz, 1.0)))))


SPEED_WINDOW_S = 4.0  # the running-speed spectrum's windows: 0.18 Hz bins at 4 s + power-of-two rounding


@dataclass
class RecordingSpectrum:
    """The averaged spectra of one channel: the whitened SES (for the evidence, diagnosis windows) and the Hann
    power spectrum of longer windows (for the running speed: a bearing line next to a shaft harmonic,
    e.g. a 6203's BPFO = 3.05 orders beside 3×, is two bins from it at 1 s windows, ten at 4 s)."""

    freqs_hz: np.ndarray
    ses: np.ndarray      # (L//2+1,) mean whitened squared envelope spectrum
    n_windows: int
    frame_length: int
    hop_length: int
    speed_freqs_hz: np.ndarray | None = None
    power: np.ndarray | None = None  # mean Hann power spectrum (unit², bins add up to the variance)


class _Windows:
    """Cuts a stream of samples into windows of ``frame_length`` (hop half a window) and hands each batch
    of complete, finite windows to ``add``; the leftover tail is read as one window when none was whole."""

    def __init__(self, frame_length: int, add):
        self.frame_length, self.hop_length, self._add = int(frame_length), int(frame_length) // 2, add
        self._buf = np.empty(0)
        self.n_windows = 0

    def _take(self, frames: np.ndarray) -> None:
        frames = frames[np.isfinite(frames).all(axis=1)]
        if frames.shape[0]:
            self._add(frames)
            self.n_windows += frames.shape[0]

    def feed(self, x: np.ndarray) -> None:
        buf = np.concatenate([self._buf, x]) if self._buf.size else x
        length, hop = self.frame_length, self.hop_length
        if buf.shape[0] >= length:
            count = 1 + (buf.shape[0] - length) // hop
            frames = np.lib.stride_tricks.sliding_window_view(buf, length)[::hop][:count]
            for b in range(0, count, 16):  # 16 windows at a time: bounded memory for long recordings
                self._take(frames[b:b + 16])
            buf = buf[count * hop:]
        self._buf = buf.copy()

    def finish(self) -> None:
        if self.n_windows == 0 and self._buf.shape[0] >= MIN_SAMPLES:
            length = self._buf.shape[0] - self._buf.shape[0] % 2
            self.frame_length = self.hop_length = length
            self._take(self._buf[None, :length])


class SpectrumAccumulator:
    """Streams one channel's samples in and averages the whitened SES of its diagnosis windows and the power
    spectrum of its speed windows. Windows holding a non-finite sample are skipped. ``finish()`` returns
    None when nothing could be read."""

    def __init__(self, sample_rate_hz: float, frame_length: int, dtype=np.float32, speed: bool = True):
        self.sample_rate_hz = float(sample_rate_hz)
        self.dtype = dtype
        self._ses = self._power = self._freqs = self._speed_freqs = None
        self._diag = _Windows(frame_length, self._add_ses)
        self._speed = _Windows(frame_length_for(SPEED_WINDOW_S, sample_rate_hz), self._add_power) if speed else None

    def _add_ses(self, frames: np.ndarray) -> None:
        freqs, spec = tapered_spectra(frames.astype(self.dtype, copy=False), self.sample_rate_hz)
        ses = squared_envelope_spectrum(whiten(spec), freqs).astype(np.float64).sum(axis=0)
        if self._ses is None:
            self._ses, self._freqs = ses, freqs
        else:
            self._ses += ses

    def _add_power(self, frames: np.ndarray) -> None:
        freqs, _, power = window_spectra(np.array(frames, dtype=np.float64), self.sample_rate_hz)
        power = power.sum(axis=0)
        if self._power is None:
            self._power, self._speed_freqs = power, freqs
        else:
            self._power += power

    def feed(self, x: np.ndarray) -> None:
        """Add the next samples of the channel (1-D)."""
        x = np.asarray(x, dtype=np.float64)
        self._diag.feed(x)
        if self._speed is not None:
            self._speed.feed(x)

    def finish(self) -> RecordingSpectrum | None:
        """The averaged spectra; a recording shorter than one window is read as one window of its length."""
        self._diag.finish()
        if self._speed is not None:
            self._speed.finish()
        d = self._diag
        if d.n_windows == 0:
            return None
        power = None if self._power is None else self._power / self._speed.n_windows
        return RecordingSpectrum(self._freqs, self._ses / d.n_windows, d.n_windows, d.frame_length, d.hop_length,
                                 self._speed_freqs, power)


def _bucket(n_windows: int) -> int:
    return min(MAX_AVERAGES_BUCKET, 1 << int(math.floor(math.log2(max(n_windows, 1)))))


@functools.lru_cache(maxsize=64)
def null_level(geometry: Geometry, frame_length: int, hop_length: int, n_windows: int, bin_orders: float,
               statistic: str = STATISTIC, ball_odd: bool = BALL_ODD) -> tuple[float, ...]:
    """Median raw evidence per family of white Gaussian noise recordings of ``n_windows`` averaged windows."""
    rng = np.random.default_rng(20_261_207)
    sample_rate_hz = float(frame_length)  # 1 Hz bins: the shaft is then at 1 / bin_orders Hz
    n_samples = frame_length + (n_windows - 1) * hop_length
    ev = []
    for _ in range(NULL_RECORDINGS):
        acc = SpectrumAccumulator(sample_rate_hz, frame_length, speed=False)
        acc._diag.hop_length = hop_length
        acc.feed(rng.standard_normal(n_samples))
        spec = acc.finish()
        ev.append(family_evidence(spec.ses[None, :], spec.freqs_hz, 1.0 / bin_orders, geometry,
                                  statistic=statistic, ball_odd=ball_odd)[0])
    return tuple(float(v) for v in np.nanmedian(np.array(ev), axis=0))


_NULL_LOCK = threading.Lock()


def recording_evidence(spectrum: RecordingSpectrum, rpm: float, geometry: Geometry, *,
                       statistic: str = STATISTIC, ball_odd: bool = BALL_ODD) -> np.ndarray:
    """(3,) evidence per family (FAMILIES order) of a recording's averaged SES, in multiples of what white
    noise gives through the same chain (1 ≈ noise)."""
    shaft_hz = rpm / 60.0
    raw = family_evidence(spectrum.ses[None, :], spectrum.freqs_hz, shaft_hz, geometry,
                          statistic=statistic, ball_odd=ball_odd)[0]
    bin_orders = float(f"{(spectrum.freqs_hz[1] - spectrum.freqs_hz[0]) / shaft_hz:.3g}")
    with _NULL_LOCK:
        null = null_level(geometry, spectrum.frame_length, spectrum.hop_length, _bucket(spectrum.n_windows),
                          bin_orders, statistic, ball_odd)
    return raw / np.asarray(null)




RPM_WARN = 0.01  # a stated rpm the spectrum disagrees with by more than this share is flagged


@dataclass
class ChannelReading:
    """What a recording's channel gives the diagnosis: its recording-level evidence and running speed."""

    evidence: np.ndarray        # (3,) FAMILIES order, × noise; NaN when not diagnosable
    rpm: float | None           # the speed the evidence was read at (stated, or estimated from the spectrum)
    rpm_estimated: float | None  # the spectrum's estimate (None: not searched or not trusted)
    n_windows: int
    warnings: list[str]

    def row(self) -> list[float]:
        """Values of READING_COLUMNS."""
        return [*(float(v) for v in self.evidence), float(self.rpm or np.nan),
                float(self.rpm_estimated or np.nan), float(self.n_windows)]


def read_channel(spectrum: RecordingSpectrum | None, *, bearing, rpm: float | None, rpm_stated: bool,
                 rpm_search: float, rpm_range: tuple[float, float] | None = None, channel: str = "") -> ChannelReading:
    """The recording-level evidence of one channel, with the running speed estimated or checked.

    Speed (:func:`vibra.physics.speed.estimate_rpm`): searched within ±``rpm_search`` of ``rpm`` (the stated or
    nominal speed), or in ``rpm_range`` when there is no rpm at all. A recording without its own rpm is read at
    the estimate when it is trusted (else at the nominal rpm); a stated rpm is kept, with a warning when the
    spectrum disagrees by more than RPM_WARN.
    """
    from vibra.physics.speed import estimate_rpm

    nan = np.full(3, np.nan)
    if spectrum is None:
        return ChannelReading(nan, rpm, None, 0, [])
    warnings = []
    est = None
    if rpm and rpm_search > 0:
        window = (rpm * (1 - rpm_search), rpm * (1 + rpm_search))
    else:
        window = rpm_range if rpm_range and rpm_range[1] > rpm_range[0] > 0 else None
    if window is not None and spectrum.power is not None:
        e = estimate_rpm(spectrum.speed_freqs_hz, spectrum.power, *window)
        est = e.rpm if e is not None and e.trusted else None
    where = f"channel {channel}: " if channel else ""
    used = rpm
    if est is not None and rpm and rpm_stated and abs(est - rpm) > RPM_WARN * rpm:
        warnings.append(f"{where}running speed from the spectrum {est:.0f} r/min disagrees with the stated {rpm:.0f} "
                        f"r/min by {100 * (est - rpm) / rpm:+.1f} %: check the recording's rpm")
    elif est is not None and not rpm_stated:
        used = est
        base = f"the machine's {rpm:g} r/min ± {100 * rpm_search:g} %" if rpm else f"{window[0]:g}–{window[1]:g} r/min"
        warnings.append(f"{where}no rpm of its own: running speed {est:.0f} r/min read from the spectrum (searched "
                        f"{base})")
    if bearing is None or not used:
        return ChannelReading(nan, used, est, spectrum.n_windows, warnings)
    return ChannelReading(recording_evidence(spectrum, used, Geometry.of(bearing)), used, est, spectrum.n_windows,
                          warnings)
