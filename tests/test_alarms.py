"""The k-of-m alarm rule and the forecast status rule, against plain references."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibra.anomaly.alarms import k_of_m


def _naive(flags: list[bool], k: int, m: int) -> list[bool]:
    return [sum(flags[max(0, i - m + 1): i + 1]) >= k for i in range(len(flags))]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=60), st.integers(1, 6), st.integers(0, 4))
def test_k_of_m_matches_a_plain_loop(flags, k, extra):
    m = k + extra
    df = pl.DataFrame({"channel": ["x"] * len(flags) + ["y"] * len(flags), "is_anomaly": flags + flags[::-1]})
    out = k_of_m(df, k=k, m=m)
    assert out.filter(pl.col("channel") == "x")["alarm"].to_list() == _naive(flags, k, m)
    assert out.filter(pl.col("channel") == "y")["alarm"].to_list() == _naive(flags[::-1], k, m)
    # an episode number changes exactly where the alarm state changes
    x = out.filter(pl.col("channel") == "x")
    changes = [i for i in range(1, x.height) if x["alarm"][i] != x["alarm"][i - 1]]
    assert [i for i in range(1, x.height) if x["episode"][i] != x["episode"][i - 1]] == changes


def test_k_of_m_refuses_an_impossible_rule():
    with pytest.raises(ValueError):
        k_of_m(pl.DataFrame({"channel": ["x"], "is_anomaly": [True]}), k=4, m=3)


def test_forecast_status_rule():
    from vibra.prognostics.forecast import Forecast, status_of

    n, h = 60, 12
    rising = np.linspace(1.0, 2.0, n)
    fc = Forecast(key="k", status="ok", model="AutoETS", mean=np.linspace(2.0, 3.2, h),
                  bounds={"lo-80": np.linspace(1.9, 3.0, h), "hi-80": np.linspace(2.1, 3.4, h)})
    status, ttt, (slope, p) = status_of(fc, rising, 2.5, 3600.0, h)
    assert status == "ok" and slope > 0 and p < 0.05
    assert ttt["p10_h"] <= ttt["p50_h"] <= ttt["p90_h"]
    assert status_of(fc, rising, 1.5, 3600.0, h)[0] == "exceeded"
    flat = np.random.default_rng(0).normal(1.0, 0.01, n)
    status, ttt, _ = status_of(fc, flat, 2.5, 3600.0, h)
    assert status == "no_trend" and ttt["p50_h"] is None


def _naive_isolated(scores: list[float], k: int, m: int, above: float) -> list[bool]:
    """Over ``above`` and in no run of min(m, n) consecutive windows with ≥ k over ``above``."""
    n = len(scores)
    width = min(m, n)
    over = [s > above for s in scores]
    busy = [sum(over[j:j + width]) >= k for j in range(n - width + 1)]
    return [over[i] and not any(busy[j] for j in range(max(0, i - width + 1), min(i, n - width) + 1))
            for i in range(n)]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(0, 10), min_size=1, max_size=40), st.integers(1, 5), st.integers(0, 4), st.floats(0, 10))
def test_isolated_matches_a_plain_loop(scores, k, extra, above):
    from vibra.anomaly.alarms import isolated

    m = k + extra
    groups = np.array(["x"] * len(scores) + ["y"] * len(scores))
    out = isolated(np.array(scores + scores[::-1]), groups, k=k, m=m, above=above)
    assert out[:len(scores)].tolist() == _naive_isolated(scores, k, m, above)
    assert out[len(scores):].tolist() == _naive_isolated(scores[::-1], k, m, above)
    if k == 1:
        assert not out.any()  # one window is an alarm under 1-of-m: nothing is isolated
