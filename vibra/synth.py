"""Seeded, physically plausible accelerometer signals (in g) with ground truth.

Each machine runs at a fixed shaft speed ``f_r = rpm / 60`` and shows
running-speed harmonics (1×, 2×, 3×) over broadband noise. Faults:

* imbalance — a 1× component that appears at its onset and grows over the days;
* looseness — many harmonics of f_r plus half-orders (0.5×, 1.5×, …);
* bearing defects — an impulse train at the defect frequency (plus, as wear grows, a
  rising broadband floor and 1× line), each impact
  ringing a structural resonance ``f_n`` with exponential decay
  ``h(t) = exp(-ζ·2π·f_n·t)·sin(2π·f_n·t)``; the inner-race train is
  amplitude-modulated at shaft speed (the defect turns through the load
  zone), the ball train at the cage frequency (FTF). Impact times jitter by
  ~1 % (rolling elements slip), as in real bearings.

Bearing frequencies (k = d/D·cos α): FTF = f_r/2·(1−k), BPFO = n·f_r/2·(1−k),
BPFI = n·f_r/2·(1+k), BSF = D/(2d)·f_r·(1−k²).
Degrading machines follow ``severity = s_end · exp((t − t_end)/τ)`` after onset.

Past lives (:func:`past_lives`): before the period, every faulty machine ran earlier lives to
failure (severity 1 at the failure) and was replaced; they give RUL a library to learn from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from vibra.physics.bearing import bearing_orders
from vibra.equipment import Bearing, Equipment

FAULT_CYCLE = ("normal", "bearing_outer_race", "imbalance", "bearing_inner_race", "looseness", "bearing_ball")
KIND_BY_FAULT = {"normal": "motor", "bearing_outer_race": "pump", "imbalance": "fan",
                 "bearing_inner_race": "gearbox", "looseness": "compressor", "bearing_ball": "motor"}
SENSOR_FAULTS = ("spikes", "flatline", "clipping", "nan_gap", "truncated")
BEARING_6205 = Bearing(9, 7.94, 39.04, 0.0)
BEARING_6206 = Bearing(9, 9.53, 46.5, 0.0)
BEARING_6308 = Bearing(8, 15.0, 65.0, 0.0)


@dataclass(frozen=True)
class SynthMachine:
    equipment: Equipment
    fault: str
    onset_s: float  # seconds after the first recording when the fault starts (inf: never)
    span_s: float   # length of the whole synthetic period
    resonance_hz: float
    peak: float = 1.0  # severity reached at the end of ``span_s`` (s_end)


@dataclass(frozen=True)
class Plan:
    machines: list[SynthMachine]
    start: datetime
    days: float
    recordings_per_hour: int
    seconds: float
    sample_rate_hz: float
    seed: int

    def times(self) -> list[datetime]:
        n = max(1, int(round(self.days * 24 * self.recordings_per_hour)))
        step = timedelta(hours=1 / self.recordings_per_hour)
        return [self.start + i * step for i in range(n)]


def make_plan(n_equipment: int, days: float, seed: int, start: datetime, *, sample_rate_hz: float = 12_800.0,
              recordings_per_hour: int = 1, seconds: float = 1.0) -> Plan:
    rng = np.random.default_rng(seed)
    span = days * 86_400.0
    machines = []
    for i in range(n_equipment):
        fault = FAULT_CYCLE[i % len(FAULT_CYCLE)]
        eid = f"{KIND_BY_FAULT[fault]}-{i + 1:02d}"
        rpm = float(rng.choice([1480.0, 1780.0, 2950.0, 1180.0]) + rng.integers(-15, 15))
        bearing = (BEARING_6205, BEARING_6206, BEARING_6308)[int(rng.integers(0, 3))]
        onset = math.inf if fault == "normal" else float(rng.uniform(0.2, 0.4)) * span
        equipment = Equipment(
            equipment_id=eid, sample_rate_hz=sample_rate_hz, units="g", rpm=rpm, bearing=bearing,
            iso_group=2, iso_support="flexible", label=f"{KIND_BY_FAULT[fault].title()} {i + 1:02d}",
        )
        resonance = float(min(rng.uniform(2_500.0, 3_500.0), 0.3 * sample_rate_hz))
        machines.append(SynthMachine(equipment, fault, onset, span, resonance))
    return Plan(machines, start, days, recordings_per_hour, seconds, sample_rate_hz, seed)


FAILURE_SEVERITY = 1.5  # severity at which a past life failed


@dataclass(frozen=True)
class PastLife:
    """One earlier life of a machine: from ``start`` (install / replacement) to its failure at
    ``failure`` (severity 1), then replaced at ``replaced``. ``machine`` carries this life's onset and
    length (``onset_s`` and ``span_s`` relative to ``start``)."""

    machine: SynthMachine
    start: datetime
    failure: datetime
    replaced: datetime


def past_lives(plan: Plan, n_lives: int, seed: int) -> list[PastLife]:
    """``n_lives`` earlier lives of every faulty machine, ending one hour before the period starts
    (failure, then the replacement that starts the current life). Lives last 0.8–1.2 × the period,
    with onset at 30–60 % of the life; they fail at severity ``FAILURE_SEVERITY``, beyond the 1.0 the
    current life reaches at the end of the period, so the current machines still have life left."""
    rng = np.random.default_rng(seed + 2)
    out = []
    for m in plan.machines:
        if m.fault == "normal":
            continue
        replaced = plan.start
        for _ in range(n_lives):
            length = float(rng.uniform(0.8, 1.2)) * plan.days * 86_400.0
            failure = replaced - timedelta(hours=1)
            start = failure - timedelta(seconds=length)
            life = SynthMachine(m.equipment, m.fault, float(rng.uniform(0.3, 0.6)) * length, length, m.resonance_hz,
                                FAILURE_SEVERITY)
            out.append(PastLife(life, start, failure, replaced))
            replaced = start
    return out


def severity(machine: SynthMachine, elapsed_s: float) -> float:
    """Fault severity in [0, ``machine.peak``] at ``elapsed_s`` after the first recording."""
    if machine.fault == "normal" or elapsed_s < machine.onset_s:
        return 0.0
    if machine.fault == "imbalance":  # a step (e.g. a lost balance weight) that keeps growing
        return machine.peak * (0.2 + 0.8 * (elapsed_s - machine.onset_s) / max(machine.span_s - machine.onset_s, 1.0))
    remaining = max(machine.span_s - machine.onset_s, 1.0)
    tau = remaining / 3.0
    return float(machine.peak * min(1.0, math.exp((elapsed_s - machine.span_s) / tau)))


def _impacts(rng, n: int, sample_rate_hz: float, rate_hz: float, jitter: float = 0.01) -> np.ndarray:
    """Unit impulses at ``rate_hz`` (impacts per second) with ~1 % slip; returns an array of ``n`` samples."""
    out = np.zeros(n)
    period = 1.0 / rate_hz
    t = rng.uniform(0, period)
    while t < n / sample_rate_hz:
        out[int(t * sample_rate_hz)] += 1.0
        t += period * (1.0 + jitter * rng.standard_normal())
    return out


def signal(machine: SynthMachine, elapsed_s: float, plan: Plan, rng) -> np.ndarray:
    """One recording, shape (n_samples, 2): channels x and y, in g."""
    from scipy.signal import fftconvolve

    sample_rate_hz = plan.sample_rate_hz
    n = int(round(plan.seconds * sample_rate_hz))
    t = np.arange(n) / sample_rate_hz
    eq = machine.equipment
    fr = eq.rpm / 60.0
    sev = severity(machine, elapsed_s)
    channels = []
    for gain in (1.0, 0.7):
        phase = rng.uniform(0, 2 * np.pi, 12)
        x = 0.02 * rng.standard_normal(n)
        for k, amp in ((1, 0.05), (2, 0.02), (3, 0.01)):
            x += gain * amp * np.sin(2 * np.pi * k * fr * t + phase[k])
        if machine.fault == "imbalance":
            x += gain * 0.4 * sev * np.sin(2 * np.pi * fr * t + phase[1])  # in phase with the residual 1×
        elif machine.fault == "looseness" and sev > 0:
            for k in range(1, 11):
                x += gain * 0.06 * sev / math.sqrt(k) * np.sin(2 * np.pi * k * fr * t + phase[k % 12])
                x += gain * 0.03 * sev / math.sqrt(k) * np.sin(2 * np.pi * (k - 0.5) * fr * t + phase[(k + 5) % 12])
        elif machine.fault.startswith("bearing") and sev > 0:
            orders = bearing_orders(eq.bearing)
            which = {"bearing_outer_race": "bpfo", "bearing_inner_race": "bpfi", "bearing_ball": "bsf"}[machine.fault]
            train = _impacts(rng, n, sample_rate_hz, orders[which] * fr)
            if machine.fault == "bearing_inner_race":
                train *= 1.0 + 0.8 * np.cos(2 * np.pi * fr * t)
            elif machine.fault == "bearing_ball":
                train *= 1.0 + 0.6 * np.cos(2 * np.pi * orders["ftf"] * fr * t)
            zeta = 0.04
            decay_t = np.arange(int(sample_rate_hz * 5 / (zeta * 2 * np.pi * machine.resonance_hz))) / sample_rate_hz
            ring = np.exp(-zeta * 2 * np.pi * machine.resonance_hz * decay_t) * np.sin(
                2 * np.pi * machine.resonance_hz * decay_t)
            x += gain * 2.0 * sev * fftconvolve(train, ring)[:n]
            # late in life wear also lifts the broadband floor and the running-speed line,
            # so overall (velocity) levels climb too, not only the high-frequency impacts
            x += gain * sev * (0.06 * rng.standard_normal(n) + 0.15 * np.sin(2 * np.pi * fr * t + phase[1]))
        channels.append(x)
    return np.column_stack(channels)


def apply_sensor_fault(x: np.ndarray, fault: str, rng) -> np.ndarray:
    """Corrupt a recording as a failing sensor or cable would."""
    x = x.copy()
    n = x.shape[0]
    if fault == "spikes":
        idx = rng.integers(0, n, 8)
        x[idx, 0] += rng.choice([-1, 1], 8) * 40.0
    elif fault == "flatline":
        a = int(n * 0.3)
        x[a:a + n // 4, :] = x[a, :]
    elif fault == "clipping":
        limit = 0.5 * np.abs(x[:, 0]).max()
        x[:, 0] = np.clip(x[:, 0], -limit, limit)
    elif fault == "nan_gap":
        a = int(n * 0.5)
        x[a:a + n // 20, 0] = np.nan
    return x
