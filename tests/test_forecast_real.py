"""Forecasts on real run-to-failure data (IMS test 2 bearing 1, FEMTO Bearing1_1): honest floors."""

from __future__ import annotations

import polars as pl
import pytest

from vibra.prognostics.forecast_eval import end_of_life, remaining_life, rolling_mase


@pytest.fixture
def ims(real_data):
    df = pl.read_csv(real_data / "ims_test2_features" / "test2_timefeatures.csv")
    return df["B1_rms"].to_numpy()[:-2]  # the last two rows are after the rig stopped (SOURCE.md)


@pytest.fixture
def femto(real_data):
    df = pl.read_csv(real_data / "femto_bearing1_1" / "snapshot_features.csv")
    return df["rms_h"].to_numpy()[::10]  # every 10th snapshot: the raw files kept, one per 100 s


def test_short_horizon_beats_naive_on_ims(ims):
    # measured 0.66 at one step (10 min) ahead
    assert rolling_mase(ims, 600.0, 1) < 0.7


def test_femto_no_worse_than_naive(femto):
    # measured 0.92 / 0.98 at 1 and 6 steps (100 s) ahead: the trend is weak until the end
    assert rolling_mase(femto, 100.0, 1) < 0.95
    assert rolling_mase(femto, 100.0, 6) < 1.0


def test_end_of_life_crossing_is_late_and_abrupt(ims, femto):
    """Both bearings cross half their final level in the last few per cent of life; what the
    forecast says before that is reported in BENCHMARKS.md (it does not see it coming)."""
    for y, step_s in ((ims, 600.0), (femto, 100.0)):
        threshold, crossing = end_of_life(y)
        assert crossing > 0.97 * y.shape[0]  # measured 0.983 (IMS) and 0.982 (FEMTO) of the record
        result = remaining_life(y, step_s, 0.9, threshold, crossing)
        assert result["true_h"] > 0
        # measured: at 90 % of the time to the crossing neither forecast sees it within its horizon
        # (P10/P50/P90 None; crossing probability 0.046 and 3e-14); a forecast that does see it fails
        # here on purpose, so the claim in BENCHMARKS.md and README.md gets revisited
        assert result["p10_h"] is None and result["p50_h"] is None and result["p90_h"] is None, result
        assert result["crossing_probability"] < 0.1, result
