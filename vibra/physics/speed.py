"""Running speed from the spectrum: the shaft rate whose harmonics stand out most.

Method (a harmonic sum, as pitch estimators do): the recording's averaged Hann power spectrum in dB over
its running median (±MEDIAN_BINS bins: the local floor) gives each frequency's line prominence, capped at
CAP_DB so one very strong line (mains, a gear mesh) cannot outvote the rest. A candidate shaft rate f
scores the mean prominence at f, 2f, … HARMONICS·f (read by linear interpolation between bins); the
candidates span the search range on a grid of GRID_STEP of f, and the best one is refined by a parabola
through its neighbours. The odd harmonics are what tell the shaft from a mains line at twice its rate
(at 1797 r/min 2× = 59.9 Hz ≈ 60 Hz): a candidate explained by mains alone scores at its even harmonics
only.

The estimate is trusted when its score — the mean prominence of its harmonics — is at least MIN_SCORE_DB, set
above the best score white noise reaches, and the spectrum's bin is at most 1 % of the shaft rate; an untrusted
estimate is never used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HARMONICS = 8
MEDIAN_BINS = 25
CAP_DB = 20.0
GRID_STEP = 2e-4     # relative step of the candidate grid (0.02 %)
# a speed is read from the spectrum only when its harmonics stand this much over the floor: white noise's best
# candidate scores 2.4–5.6 dB (45 noise recordings of 0.1–10 s at 12–25.6 kHz); the CWRU files 13–19 dB
MIN_SCORE_DB = 8.0
# … and only when the spectrum resolves the shaft rate to 1 % (its bin at most 1 % of the lowest rate searched):
# a 0.1 s snapshot (10 Hz bins at a 30 Hz shaft) cannot say 1797 from 1772 r/min, however clear its lines
MAX_BIN_SHARE = 0.01


@dataclass(frozen=True)
class SpeedEstimate:
    rpm: float
    score_db: float   # mean prominence of its harmonics over the local floor, dB
    trusted: bool

    def as_dict(self) -> dict:
        return {"rpm": round(self.rpm, 1), "score_db": round(self.score_db, 1), "trusted": self.trusted}


def prominence_db(freqs_hz: np.ndarray, power: np.ndarray, top_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies, line prominence in dB over the running median, capped at CAP_DB) up to ``top_hz``."""
    from scipy.ndimage import median_filter

    keep = freqs_hz <= top_hz + MEDIAN_BINS * (freqs_hz[1] - freqs_hz[0])
    f, p = freqs_hz[keep], np.asarray(power, dtype=np.float64)[keep]
    db = 10.0 * np.log10(np.maximum(p, np.max(p) * 1e-15 if np.max(p) > 0 else 1e-300))
    floor = median_filter(db, size=2 * MEDIAN_BINS + 1, mode="nearest")
    return f, np.clip(db - floor, 0.0, CAP_DB)


def estimate_rpm(freqs_hz: np.ndarray, power: np.ndarray, rpm_low: float, rpm_high: float) -> SpeedEstimate | None:
    """The running speed (r/min) in [rpm_low, rpm_high] whose harmonics stand out most in ``power``
    (one averaged power spectrum, (L//2+1,), bins at ``freqs_hz``); None when the range does not fit the
    spectrum (its lowest candidate below 2 bins, or HARMONICS × its highest above Nyquist)."""
    df = freqs_hz[1] - freqs_hz[0]
    lo_hz, hi_hz = rpm_low / 60.0, rpm_high / 60.0
    if lo_hz < 2 * df or hi_hz <= lo_hz:
        return None
    harmonics = min(HARMONICS, int(freqs_hz[-1] / hi_hz))
    if harmonics < 2:
        return None
    f, prom = prominence_db(freqs_hz, power, harmonics * hi_hz)
    cand = lo_hz * (1 + GRID_STEP) ** np.arange(int(np.log(hi_hz / lo_hz) / np.log1p(GRID_STEP)) + 1)
    h = np.arange(1, harmonics + 1)
    score = np.interp(cand[:, None] * h[None, :], f, prom).mean(axis=1)
    i = int(np.argmax(score))
    best = cand[i]
    if 0 < i < cand.shape[0] - 1:  # parabola through the peak and its neighbours (log-spaced grid: in log f)
        a, b, c = score[i - 1], score[i], score[i + 1]
        den = a - 2 * b + c
        if den < 0:
            best = cand[i] * (1 + GRID_STEP) ** (0.5 * (a - c) / den)
    trusted = score[i] >= MIN_SCORE_DB and df <= MAX_BIN_SHARE * lo_hz
    return SpeedEstimate(rpm=float(best * 60.0), score_db=float(score[i]), trusted=bool(trusted))
