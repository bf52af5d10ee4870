"""Forecast text that is information (issue 28): crossing states instead of 0 h, a forecast that follows
an accelerating trend, intervals of a non-negative indicator never below 0."""

from __future__ import annotations

import numpy as np
import pytest

from vibra.prognostics.forecast import (RECENT_TREND, Forecast, Series, accelerating, crossing_state, follows,
                                        forecast_many, status_of)


def _accelerating(n: int = 240, seed: int = 0) -> np.ndarray:
    """Flat noise, then from 3/4 of the way a rise that grows quadratically (a bearing's last days)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=float)
    onset = 0.75 * n
    return 1.0 + 0.02 * rng.standard_normal(n) + np.where(t > onset, 4e-4 * (t - onset) ** 2, 0.0)


def _flat_candidate():
    from statsforecast.models import HistoricAverage

    return HistoricAverage()  # forecasts the series' mean: cannot follow any trend


def test_a_candidate_that_cannot_follow_an_acceleration_loses_to_one_that_can(monkeypatch):
    from vibra.prognostics import forecast as fc

    monkeypatch.setattr(fc, "ACCELERATION_RULE", True)  # off by default (it lost to naive on real series)
    values = _accelerating()
    slope = accelerating(values)
    assert slope is not None and slope > 0
    (flat_only,) = forecast_many([Series("k", 0, 3600.0, values)], 24, candidates=[_flat_candidate()])
    assert flat_only.model == RECENT_TREND  # nothing followed: the recent window's own line
    assert follows(flat_only.mean, slope) and flat_only.mean[-1] > values[-1]
    (mixed,) = forecast_many([Series("k", 0, 3600.0, values)], 24)
    assert follows(mixed.mean, slope), (mixed.model, mixed.mean[[0, -1]])
    # on a series that does not accelerate, the flat candidate is not overruled
    calm = 1.0 + 0.02 * np.random.default_rng(1).standard_normal(240)
    assert accelerating(calm) is None
    (kept,) = forecast_many([Series("k", 0, 3600.0, calm)], 24, candidates=[_flat_candidate()])
    assert kept.model == "HistoricAverage"


def test_intervals_of_a_non_negative_indicator_never_go_below_zero():
    rng = np.random.default_rng(3)
    values = np.abs(0.05 + 0.05 * rng.standard_normal(200))  # an RMS near 0: wide intervals would dip below
    (fc,) = forecast_many([Series("k", 0, 3600.0, values)], 48)
    assert all((b >= 0).all() for b in fc.bounds.values()) and (fc.mean >= 0).all()
    assert min(b.min() for b in fc.bounds.values()) == 0.0  # the clamp was needed, not idle
    signed = values - 0.2  # an indicator that goes negative keeps its intervals as they are
    (fc2,) = forecast_many([Series("k", 0, 3600.0, signed)], 48)
    assert min(b.min() for b in fc2.bounds.values()) < 0


def _forecast(mean) -> Forecast:
    mean = np.asarray(mean, dtype=float)
    return Forecast("k", "ok", "m", False, mean, {"lo-80": mean - 0.5, "hi-80": mean + 0.5})


@pytest.mark.parametrize("last, limit, state", [(5.0, 4.0, "already_past"), (1.0, 100.0, "beyond_horizon"),
                                                (1.0, 3.0, "within_horizon")])
def test_crossing_states_never_claim_zero_hours(last, limit, state):
    values = np.r_[np.linspace(0.0, last, 60)]
    status, ttt, _ = status_of(_forecast(np.linspace(last, last + 5, 24)), values, limit, 3600.0, 24)
    assert ttt["state"] == state
    if state != "within_horizon":
        assert ttt["p50_h"] is None and ttt["p10_h"] is None or state == "beyond_horizon"
        assert ttt["p50_h"] is None
    else:
        assert ttt["p50_h"] > 0
    assert 0.0 not in (ttt["p10_h"], ttt["p50_h"], ttt["p90_h"])
    # runs stored before the states: an exceeded status reads as already past
    assert crossing_state({"p50_h": 0.0}, "exceeded") == "already_past"
