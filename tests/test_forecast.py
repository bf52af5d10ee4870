"""Forecasting: grids with honest gaps, model selection with intervals, time to threshold, the stage."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from vibra.prognostics.forecast import Series, forecast_many, time_to_threshold, to_grid, trend_test
from vibra.settings import load_settings
from vibra.workspace import init_workspace
from vibra_pipelines import forecast, ingest, synth
from conftest import run_vibra

START = datetime(2026, 5, 1, tzinfo=timezone.utc)
HOUR_US = 3_600_000_000


def test_grid_fills_interior_gaps_by_the_stated_rule_and_counts_them():
    t = np.arange(100) * HOUR_US
    v = np.arange(100, dtype=float)
    keep = np.ones(100, bool)
    keep[[10, 11, 50]] = False
    series, _ = to_grid(t[keep], v[keep], 3600.0, key="k")
    assert series.values.shape[0] == 100 and series.missing == 3 and series.fill_rule == "linear interpolation"
    np.testing.assert_allclose(series.values, v)  # a line is interpolated exactly
    # several points in one cell are averaged
    series, _ = to_grid(np.r_[t, t + 60_000_000], np.r_[v, v + 2], 3600.0, key="k")
    np.testing.assert_allclose(series.values, v + 1)


def test_grid_refuses_a_mostly_missing_series_instead_of_compacting_it():
    t = np.r_[np.arange(10), np.arange(90, 100)] * HOUR_US
    series, reason = to_grid(t, np.ones(20), 3600.0, key="k")
    assert series is None and "80 of 100 grid points missing" in reason


def _line(n: int, slope: float, noise: float, seed: int = 0) -> Series:
    rng = np.random.default_rng(seed)
    return Series("k", 0, 3600.0, 1.0 + slope * np.arange(n) + noise * rng.standard_normal(n))


def test_forecasts_have_ordered_intervals_and_beat_naive_on_a_trend():
    (fc,) = forecast_many([_line(300, 0.01, 0.02)], 48)
    assert fc.status == "ok" and fc.model in {"AutoETS", "AutoTheta", "AutoARIMA"}
    b = fc.bounds
    assert (b["lo-95"] <= b["lo-80"] + 1e-9).all() and (b["lo-80"] <= fc.mean + 1e-9).all()
    assert (fc.mean <= b["hi-80"] + 1e-9).all() and (b["hi-80"] <= b["hi-95"] + 1e-9).all()
    assert fc.mase < 0.1  # rolling-origin MAE against the naive forecast's: measured 0.074
    assert fc.mean[-1] == pytest.approx(1.0 + 0.01 * 347, rel=0.05)


def test_insufficient_history_is_a_status_with_the_points_needed():
    short, long = Series("short", 0, 3600.0, np.ones(2)), _line(100, 0.0, 0.1)
    short_fc, long_fc = forecast_many([short, Series("long", 0, 3600.0, long.values)], 24, min_points=48)
    assert short_fc.status == "insufficient_data" and short_fc.needed == 46
    assert long_fc.status == "ok"


def test_time_to_threshold_on_a_known_line():
    (fc,) = forecast_many([_line(300, 0.01, 0.02)], 200)
    limit = 1.0 + 0.01 * 399  # the line reaches it 100 steps after the last point
    ttt = time_to_threshold(fc, limit, 3600.0)
    assert ttt["p10_h"] <= ttt["p50_h"] <= ttt["p90_h"]
    assert ttt["p50_h"] == pytest.approx(100, abs=3)  # measured 101 (P10 99, P90 104)
    assert ttt["crossing_probability"] > 0.99  # measured 1.0
    slope, p = trend_test(_line(300, 0.01, 0.02).values, 100)
    assert slope == pytest.approx(0.01, rel=0.2) and p < 1e-6
    assert trend_test(_line(300, 0.0, 0.1, seed=4).values, 100)[1] > 0.05


def _breaks_above(limit: float):
    """An AutoARIMA (same name in the output) that raises on any series reaching ``limit``."""
    from statsforecast.models import AutoARIMA

    class BreaksAbove(AutoARIMA):
        def fit(self, y, *args, **kwargs):
            if np.max(y) >= limit:
                raise ValueError(f"refuses values >= {limit}")
            return super().fit(y, *args, **kwargs)

        def forecast(self, y, h, *args, **kwargs):
            if np.max(y) >= limit:
                raise ValueError(f"refuses values >= {limit}")
            return super().forecast(y, h, *args, **kwargs)

    return BreaksAbove(alias="AutoARIMA")


def test_a_failing_candidate_is_counted_and_never_chosen():
    """statsforecast's ``fallback_model`` would write Naive's output under the failed model's name;
    here the failure is recorded per series and the model cannot be chosen for it."""
    from statsforecast.models import AutoETS

    calm = Series("calm", 0, 3600.0, _line(200, 0.0, 0.1, seed=2).values)
    big = Series("big", 0, 3600.0, 100.0 + _line(200, 0.01, 0.02, seed=3).values)
    calm_fc, big_fc = forecast_many([calm, big], 24, candidates=[AutoETS(), _breaks_above(50.0)])
    assert set(big_fc.failed_models) == {"AutoARIMA"} and "refuses values" in big_fc.failed_models["AutoARIMA"]
    assert big_fc.model == "AutoETS" and not big_fc.fallback and "AutoARIMA" not in big_fc.cv_mae
    assert calm_fc.failed_models == {} and {"AutoETS", "AutoARIMA", "Naive"} <= set(calm_fc.cv_mae)
    # every candidate failed: the Naive forecast, said so
    (alone,) = forecast_many([big], 24, candidates=[_breaks_above(50.0)])
    assert alone.model == "Naive" and alone.fallback and set(alone.failed_models) == {"AutoARIMA"}
    assert np.isfinite(alone.mean).all() and alone.mean[0] == pytest.approx(big.values[-1])


@pytest.fixture(scope="module")
def plant(tmp_path_factory):
    """Seeded plant over 6 days; the last 2 days are held back to check the forecasts against."""
    root = tmp_path_factory.mktemp("fplant")
    ws, _ = init_workspace(root / "ws")
    src = root / "export"
    synth.run(src, n_equipment=4, days=6, seed=8, start=START, sensor_faults=False, workspace=ws)
    held = root / "held"
    cut = START + timedelta(days=4)
    for path in sorted(src.glob("*/*")):
        when = datetime.strptime(path.name.split("_")[1].split(".")[0], "%Y-%m-%dT%H-%M-%S").replace(tzinfo=timezone.utc)
        if when >= cut:
            (held / path.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.move(path, held / path.parent.name / path.name)
    short = src / "new-99"
    short.mkdir()
    for f in sorted((src / "motor-01").glob("*.csv"))[:2]:  # a machine with two hours of data
        (short / f.name.replace("motor-01", "new-99")).write_bytes(f.read_bytes() + b"0.0,0.0\n")
    with open(ws.config_path, "a") as fh:
        fh.write('\n[equipment.new-99]\nsample_rate_hz = 12800\nunits = "g"\n')
    settings = load_settings(ws.config_path, {})
    ingest.run(ws, settings, src)
    result = forecast.run(ws, settings, indicators=["rms"], horizon_s=72 * 3600)
    return ws, settings, src, held, result


def test_forecast_statuses_on_seeded_plant(plant):
    ws, settings, src, _, result = plant
    by = {s["key"]: s for s in result.series}
    assert by["new-99|x|rms"]["status"] == "insufficient_data" and by["new-99|x|rms"]["points_needed"] == 46
    assert by["motor-01|x|rms"]["status"] == "no_trend" and by["motor-01|y|rms"]["status"] == "no_trend"
    # measured: pump-02 ok (P10/P50/P90 3/4/6 h) to its alert level; gearbox-04 is past its alert
    # level, so its time is measured to the next one, danger
    assert by["pump-02|x|rms"]["status"] == "ok" and by["pump-02|x|rms"]["limit_source"].startswith("alert")
    ttt = by["pump-02|x|rms"]["time_to_threshold"]
    assert ttt["p10_h"] is not None and ttt["p10_h"] <= ttt["p50_h"] <= ttt["p90_h"]
    gear = by["gearbox-04|x|rms"]
    # measured: ok, danger 0.248 in P10/P50/P90 22/28/44 h, crossing probability 0.97
    assert gear["limit_source"].startswith("danger") and gear["status"] == "ok"
    assert gear["time_to_threshold"]["p10_h"] <= gear["time_to_threshold"]["p50_h"] <= gear["time_to_threshold"]["p90_h"]
    manifest = json.loads(open(result.manifest).read())
    assert manifest["fallbacks"] == result.fallbacks and manifest["series"]
    assert manifest["model_failures"] == result.model_failures == sum(
        len(s.get("failed_models", {})) for s in result.series)
    assert all("mase" in s for s in manifest["series"] if s["status"] in {"ok", "no_trend", "exceeded"})
    again = forecast.run(ws, settings, indicators=["rms"], horizon_s=72 * 3600)
    assert again.series == [] and again.skipped_unchanged == len([s for s in result.series])


def test_time_to_threshold_against_the_held_back_truth(plant):
    """The P50 crossing time of a degrading machine, checked against when its rms really crossed."""
    ws, settings, src, held, result = plant
    ingest.run(ws, settings, held)
    feats = pl.read_parquet(ws.lake / "features" / "*" / "*" / "*.parquet", hive_partitioning=False)
    checked = 0
    for s in result.series:
        if s["status"] != "ok" or s["time_to_threshold"]["p50_h"] is None:
            continue
        eid, channel, _ = s["key"].split("|")
        part = (feats.filter((pl.col("equipment_id") == eid) & (pl.col("channel") == channel))
                .group_by(pl.col("window_start").dt.truncate("1h")).agg(pl.col("rms").mean()).sort("window_start")
                .with_columns(pl.col("rms").rolling_mean(5, center=True, min_samples=1)))  # the level, not one noisy hour
        last = datetime.fromisoformat(s["data_end"])
        after = part.filter((pl.col("window_start") > last) & (pl.col("rms") >= s["limit"]))
        if after.height == 0:
            continue
        true_h = (after["window_start"][0] - last).total_seconds() / 3600
        ttt = s["time_to_threshold"]
        # measured errors 2 / 11 / 1 / 3 h to the alert level (fan-03 x / y, pump-02 x / y; true 15 / 16 / 3 / 7 h)
        # and 10 / 13 h to the danger level (gearbox-04 x / y, past its alert; true 18 / 20 h)
        assert abs(ttt["p50_h"] - true_h) <= 14.0, (s["key"], ttt, true_h)
        checked += 1
    assert checked >= 6  # measured 6: every ok series with a P50 crossed in the held-back days


def test_forecast_cli_and_show(plant):
    ws, _, _, _, _ = plant
    proc = run_vibra("forecast", "--equipment", "pump-02", "--indicator", "rms", "--force", "--json",
                     "--home", str(ws.root))
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(run_vibra("forecast", "show", "pump-02", "--channel", "x", "--json", "--home", str(ws.root),
                                   check=True).stdout)
    (series,) = [s for s in payload["series"] if s["indicator"] == "rms"]
    assert series["history"] and len(series["forecast"]) == 72
    assert {"mean", "lo-80", "hi-80", "lo-95", "hi-95"} <= set(series["forecast"][0])
    name, rest = series["limit_source"].split(" ", 1)
    assert name in ("alert", "danger") and "baseline" in rest and "p99" in rest, series["limit_source"]
