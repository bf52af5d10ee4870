"""Early warning: the baseline period a machine is trained on (cut, refused, said), the spike rule of the
threshold, and the first alarm on real run-to-failure bearings."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from conftest import run_vibra
from real import FEMTO_MACHINE

from vibra.anomaly import FAMILIES, make, period
from vibra.anomaly.alarms import k_of_m

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _starts(hours: float, step_min: float = 10.0, channels: int = 2) -> list[datetime]:
    n = int(hours * 60 / step_min) + 1
    return [T0 + timedelta(minutes=step_min * i) for i in range(n) for _ in range(channels)]


def test_baseline_days_longer_than_the_data_are_cut_to_the_first_share_and_said():
    starts = _starts(10.0)  # 10 h of data, baseline_days = 2
    b = period.choose("rig-1", starts, days=2.0, max_share=0.2, min_windows=20)
    assert b.cut and not b.refusal
    assert b.end == T0 + timedelta(hours=2)  # 20 % of 10 h
    assert b.windows == sum(t < b.end for t in starts) == 24
    assert b.warning.startswith("rig-1: baseline_days = 2 would cover 100 % of its 10.0 h of data; trained on its "
                                "first 20 % (2.0 h)")
    # a baseline inside the share is kept as asked, silently
    long = _starts(24 * 20, step_min=60)
    kept = period.choose("rig-1", long, days=2.0, max_share=0.2, min_windows=20)
    assert not kept.cut and not kept.warning and kept.end == T0 + timedelta(days=2)
    # 1 = never cut: the old behaviour, on purpose
    assert not period.choose("rig-1", starts, days=2.0, max_share=1.0, min_windows=20).cut
    # the user's own period is never cut
    assert not period.choose("rig-1", starts, days=2.0, max_share=0.2, min_windows=20, explicit=True).cut


def test_a_baseline_with_too_few_windows_is_refused_with_the_setting_that_lowers_the_bar():
    starts = _starts(2.0)  # 13 recordings × 2 channels; 20 % of 2 h: 3 recordings, 6 windows
    b = period.choose("rig-1", starts, days=2.0, max_share=0.2, min_windows=20)
    assert b.windows == 6
    assert b.refusal == ("its first 20 % of data holds 6 windows (< baseline_min_windows = 20); ingest more data, "
                         "widen --since/--until, or lower [anomaly] baseline_min_windows")
    assert not period.choose("rig-1", starts, days=2.0, max_share=0.2, min_windows=6).refusal
    assert period.choose("rig-1", [], days=2.0, max_share=0.2, min_windows=6).refusal


def test_baseline_settings_are_validated_once():
    from vibra.errors import ConfigError
    from vibra.settings import load_settings

    s = load_settings(None, {"VIBRA_ANOMALY_BASELINE_MIN_WINDOWS": "8", "VIBRA_ANOMALY_BASELINE_MAX_SHARE": "0.5"})
    assert s.anomaly.baseline_min_windows == 8 and s.anomaly.baseline_max_share == 0.5
    assert load_settings(None, {}).anomaly.baseline_max_share == 0.2
    with pytest.raises(ConfigError, match="baseline_max_share"):
        load_settings(None, {"VIBRA_ANOMALY_BASELINE_MAX_SHARE": "0"})
    with pytest.raises(ConfigError, match="baseline_min_windows"):
        load_settings(None, {"VIBRA_ANOMALY_BASELINE_MIN_WINDOWS": "1.5"})


@pytest.fixture(scope="module")
def short_plant(tmp_path_factory):
    """Two seeded machines with 10 hours of data (5 recordings an hour): far shorter than baseline_days = 2."""
    from vibra.settings import load_settings
    from vibra.workspace import init_workspace
    from vibra_pipelines import ingest, synth

    root = tmp_path_factory.mktemp("short")
    ws, _ = init_workspace(root / "ws")
    synth.run(root / "export", n_equipment=2, days=10 / 24, seed=5, start=T0, recordings_per_hour=5,
              sensor_faults=False, workspace=ws)
    ingest.run(ws, load_settings(ws.config_path, {}), root / "export")
    return ws


def test_train_cli_says_it_cut_the_baseline_and_refuses_when_too_short(short_plant):
    ws = short_plant
    home = ["--home", str(ws.root)]
    out = run_vibra("train", "--model", "baseline", *home)
    assert out.returncode == 0, out.stderr
    cut = [line for line in out.stderr.splitlines() if line.startswith("warning: ")]
    assert len(cut) == 2 and all("baseline_days = 2 would cover 100 % of its" in line and "first 20 %" in line
                                 for line in cut), out.stderr
    payload = json.loads(run_vibra("train", "--model", "baseline", "--json", *home, check=True).stdout)
    assert len(payload["warnings"]) == 2 and all(b["cut"] for b in payload["baselines"].values())
    # a bar the data cannot meet: no model, one line per machine naming the setting, exit 3 (not ready)
    refused = run_vibra("train", "--model", "baseline", *home, env={"VIBRA_ANOMALY_BASELINE_MIN_WINDOWS": "500"})
    assert refused.returncode == 3
    lines = [line for line in refused.stdout.splitlines() if line.startswith("skipped ")]
    assert len(lines) == 2 and all("(< baseline_min_windows = 500)" in line for line in lines), refused.stdout


def _spiky_life(seed: int):
    """Two channels, 200 windows each: healthy for 160 (baseline: the first 60), then a fault growing
    to 6 σ; three isolated spikes (8 σ) inside the baseline of one channel, as a knock or a loose cable
    that the sensor-fault rule does not catch."""
    rng = np.random.default_rng(seed)
    n, fault_at, base_n = 200, 160, 60
    X = rng.standard_normal((n, 2, 4))
    ramp = np.clip((np.arange(n) - fault_at) / (n - fault_at), 0, None)
    X[:, :, :2] += 6.0 * ramp[:, None, None]
    for i in (10, 30, 50):  # isolated: never 3 of 5 consecutive windows
        X[i, 0, :] += 8.0
    rows = X.reshape(n * 2, 4)  # time-major: window i of channel c is row 2 i + c
    groups = np.tile(np.array(["x", "y"]), n)
    return rows, groups, base_n * 2, fault_at


def _first_alarm(model, rows, groups, k=3, m=5):
    import polars as pl

    over = model.score(rows) > model.threshold_
    df = pl.DataFrame({"channel": groups, "i": np.repeat(np.arange(rows.shape[0] // 2), 2), "is_anomaly": over})
    alarms = k_of_m(df.sort("channel", "i"), k=k, m=m).filter(pl.col("alarm"))
    return int(alarms["i"].min()) if alarms.height else None


@pytest.mark.parametrize("family", FAMILIES)
def test_a_few_spikes_in_the_baseline_do_not_set_the_threshold(family):
    for seed in (0, 1, 2):
        rows, groups, base, fault_at = _spiky_life(seed)
        robust = make(family, seed=seed, alarm_k=3, alarm_m=5).fit(rows[:base], groups[:base])
        assert robust.spikes_.sum() >= 3  # the three knocks are left out of the threshold
        first = _first_alarm(robust, rows, groups)
        # alarms on the fault (which starts at window 160) and not before it; measured 168–180 over seeds/families
        assert first is not None and fault_at <= first <= fault_at + 25, (family, seed, first)
    # the line this protects: with every training score in the threshold (k = 1: nothing is a spike), the
    # knocks set it so high that the fault alarms late or never (measured, seed 0: never for iforest and
    # baseline, window 192 of 200 for hst)
    naive = make(family, seed=0, alarm_k=1, alarm_m=5).fit(*[a[:base] for a in _spiky_life(0)[:2]])
    rows, groups, base, fault_at = _spiky_life(0)
    late = _first_alarm(naive, rows, groups)
    assert late is None or late > fault_at + 25, late




@pytest.mark.slow
def test_femto_bearings_warn_early_with_the_defaults(real_data, tmp_path):
    """Two real lives run to failure (PHM 2012 learning set), ingested as they are, trained and scored
    with the workspace defaults (baseline_days = 2 is longer than both lives: the baseline is cut)."""
    from vibra.workspace import init_workspace

    ws, _ = init_workspace(tmp_path / "ws")
    text = ws.config_path.read_text().replace("[features]\n", "[features]\nframe_length = 2560\nhop_length = 2560\n", 1)
    export = tmp_path / "export"
    plan = {"Bearing1_2": (1800, "2011-02-01", 871), "Bearing3_1": (1500, "2011-03-01", 515)}
    for name, (rpm, origin, _) in plan.items():
        (export / name.lower()).mkdir(parents=True)
        for f in sorted((real_data / "femto_learning" / name).glob("acc_*.csv.gz")):
            shutil.copy(f, export / name.lower() / f.name)
        text += FEMTO_MACHINE.format(eid=name.lower(), rpm=rpm, origin=f"{origin}T09:00:00Z")
    ws.config_path.write_text(text)
    home = ["--home", str(ws.root)]
    run_vibra("ingest", str(export), *home, check=True)
    trained = run_vibra("train", "--model", "iforest", *home, check=True)
    assert trained.stderr.count("baseline_days = 2 would cover 100 %") == 2
    run_vibra("detect", *home, check=True)
    episodes = json.loads(run_vibra("anomalies", "--json", *home, check=True).stdout)
    for name, (_, origin, n) in plan.items():
        first = datetime.fromisoformat(f"{origin}T09:00:10+00:00")  # acc_00001
        life_s = (n - 1) * 10.0
        starts = sorted((datetime.fromisoformat(e["start"]) - first).total_seconds()
                        for e in episodes["episodes"] if e["equipment_id"] == name.lower())
        assert starts, f"{name} never alarmed"
        lead = (life_s - starts[0]) / life_s
        # measured (benchmarks/real_warning.py): lead 34 % and 34 % (Bearing1_2, Bearing3_1); 3 % and 5 % while
        # env_ftf was the level of FTF's 3rd harmonic alone on these 0.1 s snapshots (its first is not resolved: now
        # NaN, vibra.physics.indicators.fault_band_levels). Pinned a margin below 34 % (target 10 %), none < 40 %.
        assert lead >= 0.30, (name, lead)
        assert starts[0] >= 0.40 * life_s, (name, starts[0] / life_s)
