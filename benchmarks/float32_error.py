"""Indicator error of float32 spectra against float64 (issue 21): every ``features`` column.

Computes the same recordings' indicators three ways — everything float64; window spectra
(spectral, band and physics indicators) float32; spectra and the fault-family evidence chain
float32 — and prints each column's largest relative error against float64. The relative error
of a value is ``|a32 − a64| / (|a64| + 1e-9·max|a64| of its column)`` (the floor keeps a band
that holds nothing, ~1e-30, from reading as a huge ratio). Recordings: the synthetic plant's
six fault kinds late in life (12.8 kHz, 2 channels) and four CWRU drive-end files (12 kHz).

    .venv/bin/python benchmarks/float32_error.py
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from vibra.ingest import features as F
from vibra.physics.indicators import PhysicsInputs
from vibra.settings import Bearing, Equipment, FeatureSettings

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real" / "cwru_12k_de"
CWRU_FILES = ("IR007_1.mat", "OR007@6_1.mat", "B007_1.mat", "IR021_0.mat")
CWRU_BEARING = Bearing(n_elements=9, ball_diameter_mm=7.94, pitch_diameter_mm=39.04, contact_angle_deg=0)
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
FLOOR = 1e-9


@contextlib.contextmanager
def precision(spectra, evidence):
    saved = F.SPECTRA_DTYPE, F.EVIDENCE_DTYPE
    F.SPECTRA_DTYPE, F.EVIDENCE_DTYPE = spectra, evidence
    try:
        yield
    finally:
        F.SPECTRA_DTYPE, F.EVIDENCE_DTYPE = saved


def recordings(real: Path | None = REAL):
    """(name, samples (n, channels), sample rate, PhysicsInputs) of the synthetic and CWRU recordings."""
    from vibra import synth

    plan = synth.make_plan(6, 1.0, seed=3, start=START, seconds=2.0)
    rng = np.random.default_rng(5)
    for m in plan.machines:
        yield f"synth {m.fault}", synth.signal(m, 0.95 * m.span_s, plan, rng), plan.sample_rate_hz, \
            PhysicsInputs.of(m.equipment, m.equipment.rpm)
    if real is None:
        return
    import scipy.io

    for name in CWRU_FILES:
        mat = scipy.io.loadmat(real / name)
        de = next(v for k, v in mat.items() if k.endswith("_DE_time")).ravel()
        rpm = float(next(v for k, v in mat.items() if k.endswith("RPM")).ravel()[0])
        eq = Equipment(equipment_id="cwru", sample_rate_hz=12_000.0, units="g", rpm=rpm, bearing=CWRU_BEARING)
        yield f"cwru {name}", de[:, None], 12_000.0, PhysicsInputs.of(eq, rpm)


def table(x, rate, machine, params):
    return F.compute([x], [f"ch{i}" for i in range(x.shape[1])], sample_rate_hz=rate, start=START, params=params,
                     equipment_id="e", recording_id="r", machine=machine).table


def errors(spectra, evidence, real: Path | None = REAL) -> dict[str, float]:
    """Largest relative error per indicator column of (spectra, evidence) dtypes against float64
    (``real``: the CWRU folder, None for the synthetic recordings only)."""
    params = FeatureSettings()
    worst: dict[str, float] = {}
    for _, x, rate, machine in recordings(real):
        with precision(np.float64, np.float64):
            ref = table(x, rate, machine, params)
        with precision(spectra, evidence):
            got = table(x, rate, machine, params)
        for col in F.indicator_columns(params):
            a, b = got[col].to_numpy(), ref[col].to_numpy()
            both = np.isfinite(a) & np.isfinite(b)
            if not (np.isnan(a) == np.isnan(b)).all():
                worst[col] = np.inf
                continue
            if not both.any():
                continue
            scale = FLOOR * np.abs(b[both]).max()
            rel = float((np.abs(a[both] - b[both]) / (np.abs(b[both]) + scale + 1e-300)).max())
            worst[col] = max(worst.get(col, 0.0), rel)
    return worst


def main() -> None:
    for label, dtypes in (("spectra float32, evidence float64", (np.float32, np.float64)),
                          ("spectra and evidence float32", (np.float32, np.float32))):
        worst = errors(*dtypes)
        print(f"\n{label}: max relative error per column")
        for col, err in sorted(worst.items(), key=lambda kv: -kv[1]):
            print(f"  {col:32s} {err:.2e}")


if __name__ == "__main__":
    main()
