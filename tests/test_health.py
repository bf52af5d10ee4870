"""Health indicators: the Coble & Hines scores on cases with known answers, selection, onset, causality."""

from __future__ import annotations

import numpy as np
import pytest

from vibra.prognostics import health
from vibra.errors import InputError

P = health.HIParams(baseline_points=40, smooth_points=5, persist_points=5)


def _life(rng, n_healthy: int, n_degrading: int, rate: float, name: str = "l", noise: float = 0.05) -> health.Life:
    """rms flat at 1 g, then growing as exp(rate·k); a pure-noise column; times every 10 s."""
    n = n_healthy + n_degrading
    k = np.arange(n)
    rms = np.exp(np.where(k >= n_healthy, rate * (k - n_healthy), 0.0)) * (1 + noise * rng.standard_normal(n))
    junk = 3.0 + 0.3 * rng.standard_normal(n)
    return health.Life(name, k * 10.0, {"rms": rms, "kurtosis": junk})


def test_scores_on_known_shapes():
    up = [np.arange(50.0), np.arange(80.0) * 2]
    assert health.monotonicity(up) == 1.0
    assert health.monotonicity([np.tile([0.0, 1.0], 25)]) == pytest.approx(1 / 49)  # 25 ups, 24 downs
    # same shape on life fraction, different lengths and scales: perfectly trendable
    assert health.trendability([np.linspace(0, 1, 50) ** 2, 3 * np.linspace(0, 1, 90) ** 2]) == pytest.approx(1.0)
    assert health.trendability([np.linspace(0, 1, 50), np.sin(np.linspace(0, 6 * np.pi, 50))]) < 0.5
    # every life fails at the same value: prognosability 1; failure values spread as wide as the rise: exp(-…)
    def ramp(top, n):  # flat start and end (5 points each, the values the score averages)
        return np.concatenate([np.zeros(5), np.linspace(0, top, n), np.full(5, float(top))])

    assert health.prognosability([ramp(2, 30), ramp(2, 60)]) == pytest.approx(1.0)
    spread = [ramp(1, 30), ramp(3, 30)]  # std of ends 1, mean rise 2
    assert health.prognosability(spread) == pytest.approx(np.exp(-1.0 / 2.0))


def test_causal_smooth_ignores_the_future_and_removes_spikes():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(200)
    y = x.copy()
    y[150:] += 100.0
    assert np.array_equal(health.causal_smooth(x, 9)[:150], health.causal_smooth(y, 9)[:150])
    spiky = np.zeros(100)
    spiky[50] = 40.0  # one isolated spike (as FEMTO's > 20 g peaks before the end)
    assert np.abs(health.causal_smooth(spiky, 9)).max() == 0.0


def test_select_prefers_the_degrading_column_and_says_why():
    rng = np.random.default_rng(1)
    lives = [_life(rng, 200 + 50 * i, 60 + 20 * i, 0.03 + 0.01 * i, f"l{i}") for i in range(4)]
    ind = health.select(lives, params=P)
    assert ind.columns[0] == "rms" or ind.name == "rms"
    table = {c["name"]: c for c in ind.candidates}
    assert table["rms"]["usable"] and table["rms"]["prognosability"] > 0.5
    assert not table["kurtosis"]["usable"] and "rise" in table["kurtosis"]["reason"]
    assert sum(c["chosen"] for c in ind.candidates) == 1
    again = health.Indicator.from_dict(ind.as_dict())
    assert np.allclose(again.transform(lives[0].columns), ind.transform(lives[0].columns), equal_nan=True)
    with pytest.raises(InputError, match="at least 2"):
        health.select(lives[:1], params=P)


def test_fused_component_rises_with_wear():
    rng = np.random.default_rng(2)
    lives = []
    for i in range(4):
        life = _life(rng, 150, 80, 0.04, f"l{i}")
        life.columns["peak"] = life.columns["rms"] * 4 * (1 + 0.05 * rng.standard_normal(230))
        lives.append(life)
    fused = health._fuse(["rms", "peak"], {c: [health.raw_hi(x.columns[c], P) for x in lives] for c in ("rms", "peak")},
                         P)
    assert all(w > 0 for w in fused.weights)
    h = fused.transform(lives[0].columns)
    assert h[-1] > h[100] + 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_onset_found_soon_after_the_knee_and_never_on_noise(seed):
    rng = np.random.default_rng(seed)
    life = _life(rng, 300, 100, 0.05)
    h = health.hi_of(life.columns["rms"], P)
    i = health.onset_index(h, P)
    # ln(x) passes min_rise 0.3 six steps after the knee; smoothing and persistence add a few more
    assert i is not None and 300 <= i <= 300 + 25
    flat = health.hi_of(1 + 0.05 * rng.standard_normal(2000), P)
    assert health.onset_index(flat, P) is None
