"""Physics indicators: ISO 20816 velocity severity, running-speed orders, bearing envelope bands.

Everything here works on the spectra the base indicators already compute
(:func:`vibra.signal.indicators.window_spectra`), so the physics costs one
extra inverse FFT and one envelope FFT per window, not a second pass over the
signal.

References
----------
* Bearing defect frequencies, k = d/D·cos α: FTF = f_r/2·(1−k), BPFO = n·f_r/2·(1−k),
  BPFI = n·f_r/2·(1+k), BSF = D/(2d)·f_r·(1−k²) (e.g. Randall & Antoni, MSSP 25, 2011).
* ISO 20816-3:2022 zone boundaries (r.m.s. velocity, 10–1000 Hz; 2–1000 Hz below 600 r/min),
  shipped in ``vibra/data/iso20816_limits.csv``.
* Spectral kurtosis / kurtogram band selection: Antoni, MSSP 20 (2006) 308–331; the fast
  kurtogram's dyadic bands (Antoni, MSSP 21, 2007) are the candidates here.
"""

from __future__ import annotations

import csv
import functools
import math
from dataclasses import dataclass
from importlib import resources

import numpy as np

from vibra.diagnosis.bearing import EVIDENCE_COLUMNS, Geometry, median_rows, window_evidence
from vibra.equipment import Bearing, Equipment

G_MM_S2 = 9806.65  # standard gravity, mm/s²

# Conversion of each supported unit to mm/s² (acceleration) or mm/s (velocity).
ACCELERATION_MM_S2 = {"g": G_MM_S2, "m/s^2": 1000.0, "m/s2": 1000.0, "mm/s^2": 1.0, "mm/s2": 1.0,
                      "in/s^2": 25.4, "in/s2": 25.4}
VELOCITY_MM_S = {"mm/s": 1.0, "m/s": 1000.0, "in/s": 25.4, "ips": 25.4}

FAULTS = ("bpfo", "bpfi", "bsf", "ftf")
PHYSICS_COLUMNS = (
    "velocity_rms_mm_s", "order_1x", "order_2x", "order_3x",
    "env_bpfo", "env_bpfi", "env_bsf", "env_ftf",
    "spectral_kurtosis_max", "envelope_band_lo_hz", "envelope_band_hi_hz",
    *EVIDENCE_COLUMNS,
)
ZONES = ("A", "B", "C", "D")

ORDER_TOLERANCE = 0.02   # ±2 % around k·f_r before re-centring on the local peak
FAULT_TOLERANCE = 0.02   # ±2 % around each defect-frequency harmonic
HARMONICS = 3            # harmonics of each defect frequency averaged into its indicator
SELECTION_WINDOWS = 4    # windows per recording used to pick the envelope band
MIN_ENV_BIN = 4          # envelope bins below this hold the tapered envelope's DC lobe


def bearing_orders(b: Bearing) -> dict[str, float]:
    """Defect frequencies as multiples of shaft speed (orders)."""
    k = b.ball_diameter_mm / b.pitch_diameter_mm * math.cos(math.radians(b.contact_angle_deg))
    return {
        "ftf": 0.5 * (1 - k),
        "bpfo": b.n_elements / 2 * (1 - k),
        "bpfi": b.n_elements / 2 * (1 + k),
        "bsf": b.pitch_diameter_mm / (2 * b.ball_diameter_mm) * (1 - k * k),
    }


def fault_frequencies_hz(b: Bearing, rpm: float) -> dict[str, float]:
    """Defect frequencies in Hz at shaft speed ``rpm``; ``bsf`` is the ball's spin frequency
    (a ball defect strikes both races, so its envelope line is at 2×BSF)."""
    fr = rpm / 60.0
    return {name: order * fr for name, order in bearing_orders(b).items()}


@dataclass(frozen=True)
class IsoLimits:
    """Zone boundaries A/B, B/C, C/D in mm/s r.m.s. and where they come from."""

    ab: float
    bc: float
    cd: float
    source: str

    def zone(self, velocity_mm_s: float) -> str | None:
        if not np.isfinite(velocity_mm_s):
            return None
        if velocity_mm_s < self.ab:
            return "A"
        if velocity_mm_s < self.bc:
            return "B"
        return "C" if velocity_mm_s < self.cd else "D"


@functools.lru_cache(maxsize=1)
def iso_table() -> tuple[dict, ...]:
    """The shipped, versioned ISO 20816-3 limits table."""
    text = resources.files("vibra.data").joinpath("iso20816_limits.csv").read_text()
    return tuple(dict(row) for row in csv.DictReader(text.splitlines()))


def iso_limits(equipment: Equipment) -> IsoLimits | None:
    """Limits for a machine: its own ``alarm_limits_mm_s`` if set, else ISO by group and support."""
    if equipment.alarm_limits_mm_s:
        ab, bc, cd = equipment.alarm_limits_mm_s
        return IsoLimits(ab, bc, cd, f"[equipment.{equipment.equipment_id}] alarm_limits_mm_s")
    if equipment.iso_group is None or equipment.iso_support is None:
        return None
    for row in iso_table():
        if int(row["group"]) == equipment.iso_group and row["support"] == equipment.iso_support:
            return IsoLimits(float(row["ab_mm_s"]), float(row["bc_mm_s"]), float(row["cd_mm_s"]),
                             f"{row['edition']} group {row['group']} {row['support']}")
    return None


@dataclass(frozen=True)
class Machine:
    """What the physics indicators need to know about a machine and a recording."""

    units: str | None = None
    rpm: float | None = None
    bearing: Bearing | None = None
    limits: IsoLimits | None = None
    envelope_band_hz: tuple[float, float] | None = None

    @classmethod
    def of(cls, equipment: Equipment, rpm: float | None) -> "Machine":
        return cls(units=equipment.units, rpm=rpm or equipment.rpm, bearing=equipment.bearing,
                   limits=iso_limits(equipment), envelope_band_hz=equipment.envelope_band_hz)

    def checks(self, sample_rate_hz: float, equipment_id: str) -> list[str]:
        """Why some physics indicators cannot be computed for this recording (ledger warnings)."""
        out = []
        unit = (self.units or "").strip()
        if not unit:
            out.append(f"no units for [equipment.{equipment_id}]: velocity_rms_mm_s and ISO zone not computed; "
                       "set units = \"g\" (or m/s^2, mm/s, …)")
        elif unit not in ACCELERATION_MM_S2 and unit not in VELOCITY_MM_S:
            out.append(f"units {unit!r} is not a vibration unit ({', '.join([*ACCELERATION_MM_S2, *VELOCITY_MM_S])}): "
                       "velocity_rms_mm_s not computed")
        elif sample_rate_hz / 2 < 1000.0:
            out.append(f"Nyquist {sample_rate_hz / 2:g} Hz is below 1 kHz: ISO 20816 zoning refused "
                       "(velocity is computed up to Nyquist)")
        if self.rpm is None:
            out.append(f"no rpm for [equipment.{equipment_id}]: orders and bearing fault bands not computed")
        elif self.bearing is None:
            out.append(f"no bearing geometry for [equipment.{equipment_id}]: bearing fault bands not computed")
        return out


def velocity_rms_mm_s(freqs: np.ndarray, power: np.ndarray, units: str, rpm: float | None) -> np.ndarray:
    """Band-limited r.m.s. velocity per window, by integration in the frequency domain.

    ``power`` is the one-sided power spectrum (unit², bins adding up to the variance);
    acceleration bins are divided by (2π f)². Band: 10–1000 Hz, or 2–1000 Hz below 600 r/min.
    """
    low = 2.0 if rpm is not None and rpm < 600 else 10.0
    band = (freqs >= low) & (freqs <= 1000.0)
    unit = units.strip()
    if unit in VELOCITY_MM_S:
        weight = np.full(int(band.sum()), VELOCITY_MM_S[unit] ** 2)
    else:
        weight = (ACCELERATION_MM_S2[unit] / (2 * np.pi * freqs[band])) ** 2
    return np.sqrt(power[:, band] @ weight)


_LOBE = np.arange(-2, 3)  # a Hann main lobe: the peak bin ±2


def order_amplitudes(freqs: np.ndarray, power: np.ndarray, rpm: float, orders=(1, 2, 3)) -> np.ndarray:
    """Amplitude (signal units, 0-peak) at each order of shaft speed, per window.

    The search spans ±2 % (at least ±1 bin) around k·f_r; the amplitude is taken on the
    local peak from the energy of the Hann main lobe (peak ±2 bins): A = sqrt(2·ΣP).
    """
    df = freqs[1] - freqs[0]
    fr = rpm / 60.0
    out = np.full((power.shape[0], len(orders)), np.nan)
    for j, k in enumerate(orders):
        centre = k * fr
        half = max(ORDER_TOLERANCE * centre, df)
        lo, hi = int(np.ceil((centre - half) / df)), int(np.floor((centre + half) / df))
        lo, hi = max(lo, 1), min(hi, power.shape[1] - 1)
        if lo > hi:
            continue
        peak = lo + np.argmax(power[:, lo:hi + 1], axis=1)
        # the 5 bins of each window's lobe in one gather, added in the same order as one at a time
        near = power[np.arange(power.shape[0])[:, None], np.clip(peak[:, None] + _LOBE, 0, power.shape[1] - 1)]
        lobe = np.zeros(power.shape[0])
        for offset in range(_LOBE.shape[0]):
            lobe += near[:, offset]
        out[:, j] = np.sqrt(2.0 * lobe)
    return out


def _band_envelope(freqs: np.ndarray, spec: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    """Complex envelope of the ``band`` of one-sided spectra (n, L//2+1), decimated: (n, M).

    The band's bins are shifted down to 0 Hz (which leaves the envelope's magnitude unchanged)
    and inverse-transformed at the smallest power-of-two length M that holds them, so the
    envelope comes out at fs·M/L samples per second — still enough for the band's own width,
    and 4–16× cheaper than a full-length analytic signal. Its spectrum keeps the bin spacing fs/L.
    """
    import scipy.fft

    lo, hi = np.searchsorted(freqs, band[0]), np.searchsorted(freqs, band[1])
    width = max(int(hi - lo), 1)
    m = 1 << max(3, int(np.ceil(np.log2(width))))
    z = np.zeros((spec.shape[0], m), dtype=np.result_type(spec.dtype, np.complex64))  # float32 spectra stay single
    z[:, :width] = spec[:, lo:lo + width]
    return scipy.fft.ifft(z, axis=1, overwrite_x=True)


def candidate_bands(sample_rate_hz: float, faults_hz: dict[str, float], rpm: float) -> list[tuple[float, float]]:
    """Dyadic (fast-kurtogram) bands, levels 1–3 with half-shifted ones, wide enough to carry
    the modulation of the 3rd harmonic of the fastest defect frequency and above the shaft
    harmonics."""
    nyquist = sample_rate_hz / 2.0
    fastest = max(faults_hz["bpfi"], 2 * faults_hz["bsf"])
    min_width = 2.0 * HARMONICS * fastest
    floor = max(10.0 * rpm / 60.0, 3.0 * fastest)
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

    Kurtosis is taken over the central half of each Hann-tapered window (of the decimated
    envelope), averaged over the windows given. Returns (band, spectral kurtosis of that band).
    """
    if not bands:
        return None, float("nan")
    best, best_sk = None, -np.inf
    for lo, hi in bands:
        c = _band_envelope(freqs, spec, (lo, hi))
        m = c.shape[1]
        c = c[:, m // 4: 3 * m // 4]
        e2 = (c.real ** 2 + c.imag ** 2)
        m2 = e2.mean(axis=1)
        ok = m2 > 0
        if not ok.any():
            continue
        sk = float(np.mean((e2[ok] ** 2).mean(axis=1) / m2[ok] ** 2 - 2.0))
        if sk > best_sk:
            best, best_sk = (lo, hi), sk
    return best, best_sk


def envelope_spectra(freqs: np.ndarray, spec: np.ndarray, band: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude spectra of the Hilbert envelopes of the band-passed windows.

    Returns (envelope frequencies (M//2+1,), amplitudes (n, M//2+1)); the bin spacing is the
    windows' own fs/L. The windows are Hann-tapered before the transform, so the envelope
    comes out tapered the same way — the window one would apply before the envelope's FFT.
    """
    import scipy.fft

    env = np.abs(_band_envelope(freqs, spec, band))
    amp = np.abs(scipy.fft.rfft(env, axis=1))
    return np.arange(amp.shape[1]) * (freqs[1] - freqs[0]), amp


@functools.lru_cache(maxsize=256)
def _fault_bins(n_bins: int, df: float, f: float, half: float) -> tuple[int, int, np.ndarray] | None:
    """(lo, hi, bins around) of :func:`fault_band_levels`' search zone at ``f`` ± ``half`` and its floor."""
    lo, hi = int(np.ceil((f - half) / df)), int(np.floor((f + half) / df))
    if lo < MIN_ENV_BIN or hi >= n_bins - 1 or lo > hi:
        return None
    reach = max(int(round(0.2 * f / df)), 12)
    around = np.r_[max(MIN_ENV_BIN, lo - reach):lo, hi + 1:min(n_bins, hi + 1 + reach)]
    if around.shape[0] < 4:
        return None
    around.flags.writeable = False
    return lo, hi, around


def fault_band_levels(env_freqs: np.ndarray, env_amp: np.ndarray, faults_hz: dict[str, float]) -> np.ndarray:
    """Normalised envelope level at each defect frequency, per window: (n, 4) for FAULTS.

    For each of the first three harmonics h·f (ball faults: h·2·BSF) the largest envelope
    amplitude within ±2 % (at least ±1 bin) is divided by the median envelope amplitude of
    the surrounding ±20 % (at least ±12 bins) outside that search zone — the local noise
    floor — and the three ratios are averaged. A value near 1 means no line at that
    frequency; a bearing defect gives several.
    """
    df = env_freqs[1] - env_freqs[0]
    n_bins = env_amp.shape[1]
    out = np.full((env_amp.shape[0], len(FAULTS)), np.nan)
    for j, name in enumerate(FAULTS):
        base = 2.0 * faults_hz["bsf"] if name == "bsf" else faults_hz[name]
        ratios = []
        for h in range(1, HARMONICS + 1):
            f = h * base
            half = max(FAULT_TOLERANCE * f, df)
            bins = _fault_bins(n_bins, float(df), float(f), float(half))
            if bins is None:
                continue
            lo, hi, around = bins
            peak = env_amp[:, lo:hi + 1].max(axis=1)
            floor = median_rows(env_amp[:, around])
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios.append(np.where(floor > 0, peak / floor, np.nan))
        if ratios:
            out[:, j] = np.mean(ratios, axis=0)
    return out


class ChannelPhysics:
    """Physics indicators of one channel of one recording, block by block.

    The envelope band is chosen once, on the first block's first windows (or taken
    from ``[equipment.<id>] envelope_band_hz``), and kept for the whole recording.
    The fault-family evidence (``evidence_*``, :mod:`vibra.diagnosis.bearing`) needs no band: it is
    the full-band envelope after cepstral pre-whitening.
    """

    def __init__(self, machine: Machine, sample_rate_hz: float, frame_length: int):
        self.machine = machine
        self.sample_rate_hz = sample_rate_hz
        self.frame_length = frame_length
        unit = (machine.units or "").strip()
        self.velocity = unit in ACCELERATION_MM_S2 or unit in VELOCITY_MM_S
        self.faults = (fault_frequencies_hz(machine.bearing, machine.rpm)
                       if machine.bearing is not None and machine.rpm else None)
        self.geometry = Geometry.of(bearing_orders(machine.bearing)) if self.faults is not None else None
        self.band = machine.envelope_band_hz
        self.kurtosis = float("nan")
        self.chosen = False

    def block(self, freqs: np.ndarray, spec: np.ndarray, power: np.ndarray,
              frames: np.ndarray | None = None) -> np.ndarray:
        """(n_windows, len(PHYSICS_COLUMNS)) for windows whose spectra (and samples, ``frames``) are given.

        Without ``frames`` the fault-family evidence columns stay NaN.
        """
        out = np.full((power.shape[0], len(PHYSICS_COLUMNS)), np.nan)
        m = self.machine
        if self.velocity:
            out[:, 0] = velocity_rms_mm_s(freqs, power, m.units, m.rpm)
        if m.rpm:
            out[:, 1:4] = order_amplitudes(freqs, power, m.rpm)
        if self.faults is None:
            return out
        if frames is not None:
            first = PHYSICS_COLUMNS.index(EVIDENCE_COLUMNS[0])
            out[:, first:first + len(EVIDENCE_COLUMNS)] = window_evidence(
                frames, self.sample_rate_hz, m.rpm, self.geometry)
        if not self.chosen:
            sample = spec[:SELECTION_WINDOWS]
            if self.band is None:
                self.band, self.kurtosis = spectral_kurtosis_band(
                    freqs, sample, candidate_bands(self.sample_rate_hz, self.faults, m.rpm))
            else:
                _, self.kurtosis = spectral_kurtosis_band(freqs, sample, [self.band])
            self.chosen = True
        if self.band is None:
            return out
        env_freqs, env = envelope_spectra(freqs, spec, self.band)
        out[:, 4:8] = fault_band_levels(env_freqs, env, self.faults)
        out[:, 8] = self.kurtosis
        out[:, 9], out[:, 10] = self.band
        return out


def zones(velocity: np.ndarray, limits: IsoLimits | None, sample_rate_hz: float) -> list[str | None]:
    """ISO zone per window; None without limits, without velocity, or when Nyquist < 1 kHz."""
    if limits is None or sample_rate_hz / 2 < 1000.0:
        return [None] * velocity.shape[0]
    return [limits.zone(v) for v in velocity]
