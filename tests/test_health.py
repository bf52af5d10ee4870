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


# -- band-energy candidates (vibra.prognostics.bands) -------------------------------------------

def test_band_rms_finds_a_sine_in_its_octave_and_sums_to_the_variance():
    from vibra.prognostics import bands

    fs, n = 25600.0, 2560
    t = np.arange(n) / fs
    x = 2.0 * np.sin(2 * np.pi * 5000.0 * t) + 0.5 * np.sin(2 * np.pi * 300.0 * t) + 7.0  # DC is not energy
    edges = bands.octave_edges(fs / 2, 6)
    assert edges[0] == (0.0, 400.0) and edges[-1] == (6400.0, 12800.0)
    r = bands.band_rms(x[None, :], fs, edges)[0]
    assert r[edges.index((3200.0, 6400.0))] == pytest.approx(2.0 / np.sqrt(2), rel=1e-9)
    assert r[0] == pytest.approx(0.5 / np.sqrt(2), rel=1e-9)
    noise = np.random.default_rng(0).standard_normal((3, n))
    assert np.allclose((bands.band_rms(noise, fs, edges) ** 2).sum(axis=1), noise.var(axis=1))  # Parseval


def test_envelope_band_holds_the_modulation():
    from vibra.prognostics import bands

    fs, n = 25600.0, 2560
    t = np.arange(n) / fs
    # a 9 kHz carrier, amplitude 1 + 0.5·cos(2π·150 t): the envelope's 150 Hz line has RMS 0.5/√2
    x = (1 + 0.5 * np.cos(2 * np.pi * 150.0 * t)) * np.sin(2 * np.pi * 9000.0 * t)
    cols = bands.snapshot_indicators(np.vstack([x, np.sin(2 * np.pi * 9000.0 * t)]), fs)
    assert cols["envband_100_200_hz"][0] == pytest.approx(0.5 / np.sqrt(2), rel=1e-6)
    assert cols["envband_100_200_hz"][1] == pytest.approx(0.0, abs=1e-9)  # no modulation, no envelope energy
    assert cols["kurtosis"][1] == pytest.approx(1.5, rel=1e-6)  # a sine's Pearson kurtosis
    assert cols["rms"][1] == pytest.approx(1 / np.sqrt(2), rel=1e-9)
    lives = [health.Life("a", np.arange(1.0), cols), health.Life("b", np.arange(1.0), dict(cols))]
    names = health.band_candidates(lives)
    assert names[:2] == ("rms", "kurtosis") and "band_6400_12800_hz" in names and "envband_0_100_hz" in names


def test_scores_of_a_noisy_trend_and_of_opposite_trends():
    # a rise with one step back in ten: monotonicity (9 − 1)/10 per life, exactly
    h = np.cumsum(np.tile([1.0] * 9 + [-0.5], 10))[:-1]  # 99 points, 98 differences: 89 up, 9 down
    assert health.monotonicity([h]) == pytest.approx((89 - 9) / 98)
    # trendability takes |corr|: a life falling exactly as another rises counts as trendable
    assert health.trendability([np.linspace(0, 1, 40), np.linspace(1, 0, 70)]) == pytest.approx(1.0)


def test_k_of_m_onset_survives_one_dip_and_equals_the_run_rule_when_k_is_m():
    p_run = health.HIParams(baseline_points=20, smooth_points=1, persist_points=5, min_rise=0.3)
    p_kofm = health.HIParams(baseline_points=20, smooth_points=1, persist_points=5, min_rise=0.3, onset_k=4)
    h = np.zeros(60)
    h[30:] = 1.0
    h[32] = 0.0  # one dip back into the band, two points after the HI left it
    assert health.onset_index(h, p_run) == 33  # the run rule restarts after the dip
    assert health.onset_index(h, p_kofm) == 30  # 4 of 5 above: the HI left its band at 30
    rng = np.random.default_rng(3)
    for _ in range(20):  # k = m is the run rule exactly
        x = np.cumsum(rng.standard_normal(200)) * 0.1
        same = health.HIParams(baseline_points=20, smooth_points=1, persist_points=5, onset_k=5)
        assert health.onset_index(x, same) == health.onset_index(x, p_run)
    # causal: the onset found on a prefix that already holds the decision is the same
    assert health.onset_index(h[:35], p_kofm) == 30
