"""Physics indicators: ISO 20816 velocity severity, running-speed orders, bearing envelope bands
(the envelope itself is :mod:`vibra.signal.envelope`; the defect frequencies :mod:`vibra.physics.bearing`).

Everything here works on the spectra the base indicators already compute
(:func:`vibra.signal.indicators.window_spectra`), so the physics costs one
extra inverse FFT and one envelope FFT per window, not a second pass over the
signal.

References
----------
* ISO 20816-3:2022 zone boundaries (r.m.s. velocity, 10–1000 Hz; 2–1000 Hz below 600 r/min),
  shipped in ``vibra/data/iso20816_limits.csv``.
* Spectral kurtosis / kurtogram band selection: Antoni, MSSP 20 (2006) 308–331; the fast
  kurtogram's dyadic bands (Antoni, MSSP 21, 2007) are the candidates here.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass, replace
from importlib import resources

import numpy as np

from vibra.equipment import Bearing, Equipment
from vibra.physics.bearing import fault_frequencies_hz
from vibra.signal import envelope

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
)
ZONES = ("A", "B", "C", "D")

ORDER_TOLERANCE = 0.02   # ±2 % around k·f_r before re-centring on the local peak
HARMONICS = 3            # harmonics of each defect frequency averaged into its indicator
SELECTION_WINDOWS = 4    # windows per recording used to pick the envelope band


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
class PhysicsInputs:
    """What the physics indicators need to know about one recording of a machine: the machine's
    :class:`~vibra.equipment.Equipment` settings (units, bearing, ISO class, envelope band) with the rpm the
    recording ran at. Built by :meth:`of`; the machine itself is always an ``Equipment``."""

    units: str | None = None
    rpm: float | None = None
    bearing: Bearing | None = None
    limits: IsoLimits | None = None
    envelope_band_hz: tuple[float, float] | None = None
    rpm_stated: bool = True  # the recording's own rpm (False: the machine's configured, nominal rpm or none)
    point_bearings: tuple[tuple[str, Bearing], ...] = ()  # (channel, geometry) where a measurement point has its own

    @classmethod
    def of(cls, equipment: Equipment, rpm: float | None) -> "PhysicsInputs":
        # an rpm equal to the machine's configured one is taken as that nominal value, not the recording's own
        stated = bool(rpm) and rpm != equipment.rpm
        own = tuple((c, p.bearing) for p in equipment.points if p.bearing is not None for c in p.channels)
        return cls(units=equipment.units, rpm=rpm or equipment.rpm, bearing=equipment.bearing,
                   limits=iso_limits(equipment), envelope_band_hz=equipment.envelope_band_hz, rpm_stated=stated,
                   point_bearings=own)

    def for_channel(self, channel: str) -> "PhysicsInputs":
        """These inputs for one channel: the geometry of the bearing its measurement point names, if any."""
        own = dict(self.point_bearings).get(channel)
        return self if own is None or own == self.bearing else replace(self, bearing=own)

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
        elif self.bearing is None and not self.point_bearings:
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


def candidate_bands(sample_rate_hz: float, faults_hz: dict[str, float], rpm: float) -> list[tuple[float, float]]:
    """The kurtogram's candidate bands (:func:`vibra.signal.envelope.candidate_bands`) for a bearing: wide
    enough for the 3rd harmonic of its fastest defect line (BPFI or 2×BSF), above the shaft harmonics."""
    fastest = max(faults_hz["bpfi"], 2 * faults_hz["bsf"])
    return envelope.candidate_bands(sample_rate_hz, fastest, rpm / 60.0, HARMONICS)


def fault_band_levels(env_freqs: np.ndarray, env_amp: np.ndarray, faults_hz: dict[str, float]) -> np.ndarray:
    """Normalised envelope level at each defect frequency, per window: (n, 4) for FAULTS.

    For each of the first three harmonics h·f (ball faults: h·2·BSF) the largest envelope
    amplitude within ±2 % (at least ±1 bin) is divided by the median envelope amplitude of
    the surrounding ±20 % (at least ±12 bins) outside that search zone — the local noise
    floor, :func:`vibra.signal.envelope.line_ratio` — and the three ratios are averaged. A value near 1 means no line at that
    frequency; a bearing defect gives several. A family whose first harmonic the window cannot resolve (it falls
    below the envelope spectrum's first usable bin: a short window, a slow line such as FTF) has no level (NaN) —
    its higher harmonics alone are not its evidence (on FEMTO's 0.1 s snapshots FTF's 3rd harmonic alone made a
    noisy indicator that delayed the anomaly alarms: BENCHMARKS.md, early warning).
    """
    df = env_freqs[1] - env_freqs[0]
    out = np.full((env_amp.shape[0], len(FAULTS)), np.nan)
    bases = [2.0 * faults_hz["bsf"] if name == "bsf" else faults_hz[name] for name in FAULTS]
    every = envelope.line_ratios(env_amp, [h * base / df for base in bases for h in range(1, HARMONICS + 1)])
    for j in range(len(FAULTS)):
        ratios = every[j * HARMONICS:(j + 1) * HARMONICS]
        if ratios[0] is not None:  # the fundamental is resolved
            out[:, j] = np.mean([r for r in ratios if r is not None], axis=0)
    return out


class ChannelPhysics:
    """Physics indicators of one channel of one recording, block by block.

    The envelope band is chosen once, on the first block's first windows (or taken
    from ``[equipment.<id>] envelope_band_hz``), and kept for the whole recording.
    (The fault-family evidence is not here: :mod:`vibra.diagnosis.bearing` reads the whitened full band.)
    """

    def __init__(self, machine: PhysicsInputs, sample_rate_hz: float, frame_length: int):
        self.machine = machine
        self.sample_rate_hz = sample_rate_hz
        self.frame_length = frame_length
        unit = (machine.units or "").strip()
        self.velocity = unit in ACCELERATION_MM_S2 or unit in VELOCITY_MM_S
        self.faults = (fault_frequencies_hz(machine.bearing, machine.rpm)
                       if machine.bearing is not None and machine.rpm else None)
        self.band = machine.envelope_band_hz
        self.kurtosis = float("nan")
        self.chosen = False

    def block(self, freqs: np.ndarray, spec: np.ndarray, power: np.ndarray) -> np.ndarray:
        """(n_windows, len(PHYSICS_COLUMNS)) for windows whose spectra are given."""
        out = np.full((power.shape[0], len(PHYSICS_COLUMNS)), np.nan)
        m = self.machine
        if self.velocity:
            out[:, 0] = velocity_rms_mm_s(freqs, power, m.units, m.rpm)
        if m.rpm:
            out[:, 1:4] = order_amplitudes(freqs, power, m.rpm)
        if self.faults is None:
            return out
        if not self.chosen:
            sample = spec[:SELECTION_WINDOWS]
            if self.band is None:
                self.band, self.kurtosis = envelope.spectral_kurtosis_band(
                    freqs, sample, candidate_bands(self.sample_rate_hz, self.faults, m.rpm))
            else:
                _, self.kurtosis = envelope.spectral_kurtosis_band(freqs, sample, [self.band])
            self.chosen = True
        if self.band is None:
            return out
        env_freqs, env = envelope.envelope_spectra(freqs, spec, self.band)
        out[:, 4:8] = fault_band_levels(env_freqs, env, self.faults)
        out[:, 8] = self.kurtosis
        out[:, 9], out[:, 10] = self.band
        return out


def zones(velocity: np.ndarray, limits: IsoLimits | None, sample_rate_hz: float) -> list[str | None]:
    """ISO zone per window; None without limits, without velocity, or when Nyquist < 1 kHz."""
    if limits is None or sample_rate_hz / 2 < 1000.0:
        return [None] * velocity.shape[0]
    return [limits.zone(v) for v in velocity]
