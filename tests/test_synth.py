"""vibra synth: determinism, ground truth, and the physics it claims."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest

from vibra.settings import Bearing, load_settings
from vibra.physics.bearing import bearing_orders
from vibra.synth import make_plan, signal
from vibra.workspace import init_workspace
from vibra_pipelines import synth

START = datetime(2026, 5, 1, tzinfo=timezone.utc)


def _digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    for name, seed in (("a", 4), ("b", 4), ("c", 5)):
        synth.run(tmp_path / name, n_equipment=3, days=0.5, seed=seed, start=START)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_truth_and_equipment_metadata(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    ws.config_path.write_text(ws.config_path.read_text() + '\n[equipment.motor-01]\nrpm = 999\n')
    res = synth.run(tmp_path / "out", n_equipment=6, days=1, seed=1, start=START, workspace=ws)
    truth = pl.read_csv(res.truth_path)
    assert truth.height == res.files == 6 * 24
    assert set(truth["fault_type"]) == {"normal", "bearing_outer_race", "imbalance", "bearing_inner_race",
                                        "looseness", "bearing_ball"}
    assert set(truth["sensor_fault"].drop_nulls()) == {"spikes", "flatline", "clipping", "nan_gap", "truncated"}
    assert all((tmp_path / "out" / f).exists() for f in truth["file"])
    settings = load_settings(ws.config_path, {})
    assert settings.equipment_for("motor-01").rpm == 999.0  # existing section kept
    assert settings.equipment_for("pump-02").bearing is not None
    assert "motor-01" not in res.workspace_sections_added and "pump-02" in res.workspace_sections_added
    outer = truth.filter(pl.col("fault_type") == "bearing_outer_race")["severity"]
    assert outer[0] == 0.0 and outer[-1] > 0.5 and outer.is_sorted()


def test_6205_orders_golden():
    orders = bearing_orders(Bearing(9, 7.94, 39.04, 0.0))
    assert orders["ftf"] == pytest.approx(0.3983, abs=1e-4)
    assert orders["bpfo"] == pytest.approx(3.5848, abs=1e-4)
    assert orders["bpfi"] == pytest.approx(5.4152, abs=1e-4)
    assert orders["bsf"] == pytest.approx(2.3567, abs=1e-4)


def _envelope_peak_order(x, fs, fr):
    from scipy.signal import butter, hilbert, sosfiltfilt

    sos = butter(4, [1500, 4500], btype="band", fs=fs, output="sos")
    env = np.abs(hilbert(sosfiltfilt(sos, x)))
    spec = np.abs(np.fft.rfft(env - env.mean()))
    freqs = np.fft.rfftfreq(len(env), 1 / fs)
    band = (freqs > 0.3 * fr) & (freqs < 8 * fr)
    return freqs[band][np.argmax(spec[band])] / fr


@pytest.mark.parametrize("index, order_key", [(1, "bpfo"), (3, "bpfi")])
def test_bearing_fault_shows_at_its_defect_frequency(index, order_key):
    plan = make_plan(6, 10, 0, START, seconds=2.0)
    machine = plan.machines[index]
    x = signal(machine, machine.span_s, plan, np.random.default_rng(0))[:, 0]
    fr = machine.equipment.rpm / 60
    want = bearing_orders(machine.equipment.bearing)[order_key]
    assert _envelope_peak_order(x, plan.sample_rate_hz, fr) == pytest.approx(want, rel=0.03)


def test_degradation_raises_kurtosis_and_imbalance_raises_1x():
    from scipy.stats import kurtosis

    plan = make_plan(3, 10, 0, START)
    rng = np.random.default_rng(0)
    pump, fan = plan.machines[1], plan.machines[2]
    early, late = (signal(pump, t, plan, rng)[:, 0] for t in (0.0, pump.span_s))
    assert kurtosis(late, fisher=False) > kurtosis(early, fisher=False) + 2
    fr = fan.equipment.rpm / 60
    amp = []
    for t in (0.0, fan.span_s):
        x = signal(fan, t, plan, rng)[:, 0]
        spec = np.abs(np.fft.rfft(x)) * 2 / len(x)
        freqs = np.fft.rfftfreq(len(x), 1 / plan.sample_rate_hz)
        amp.append(spec[np.argmin(np.abs(freqs - fr))])
    assert amp[1] > 3 * amp[0]


def test_past_lives_run_to_failure_before_the_period(tmp_path):
    plain = synth.run(tmp_path / "plain", n_equipment=3, days=0.5, seed=4, start=START)
    res = synth.run(tmp_path / "lives", n_equipment=3, days=0.5, seed=4, start=START, n_past_lives=2)
    # the period itself is byte-for-byte the one written without past lives
    same = _digest(tmp_path / "plain")
    lives = _digest(tmp_path / "lives")
    assert all(lives[k] == v for k, v in same.items() if k not in ("truth.csv",))
    events = pl.read_csv(res.events_path)
    faulty = ["pump-02", "fan-03"]  # motor-01 is the healthy one: it never failed
    assert sorted(set(events["equipment_id"])) == sorted(faulty) and events.height == 2 * 2 * 2
    truth = pl.read_csv(res.truth_path)
    assert res.files == truth.height > plain.files
    for eid in faulty:
        ev = events.filter(pl.col("equipment_id") == eid).sort("at")
        assert ev["kind"].to_list() == ["failure", "replacement"] * 2
        assert ev["at"].to_list()[-1] == START.isoformat()  # the last replacement starts the period
        past = truth.filter(pl.col("equipment_id") == eid, pl.col("file").str.contains(START.strftime("%Y-%m-%d")).not_())
        sev = past["severity"].to_numpy()
        assert sev.min() == 0.0 and sev.max() > 1.2  # healthy at install, near failure (1.5) at its last hourly recording
