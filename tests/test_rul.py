"""RUL models against known ground truth, the PHM 2012 score, the real-data benchmark figure, and the
product path (events → vibra rul) on FEMTO files ingested as they are."""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import run_vibra
from real import FEMTO_MACHINE

from vibra.prognostics import health, rul
from vibra.errors import InputError

P = health.HIParams(baseline_points=40, smooth_points=5, persist_points=5)


# -- PHM 2012 accuracy: hand-computed values ----------------------------------------------------

@pytest.mark.parametrize("true,pred,want", [
    (100, 100, 1.0),
    (100, 105, 0.5),             # Er = -5 (late): exp(ln 0.5 · 5/5)
    (100, 80, 0.5),              # Er = +20 (early): exp(ln 0.5 · 20/20)
    (100, 90, math.sqrt(0.5)),   # Er = +10
    (100, 110, 0.25),            # Er = -10
    (200, 0, 0.5 ** 5),          # Er = +100: predicted failure now
    (50, 100, 0.5 ** 20),        # Er = -100
])
def test_phm_accuracy_hand_values(true, pred, want):
    assert rul.phm_accuracy(true, pred) == pytest.approx(want)


def test_health_indicator_averages_channels_without_warning_on_rows_with_no_value():
    """A window where no channel has a value (a physics column without rpm) is NaN, silently: np.nanmean
    printed "Mean of empty slice" through `vibra rul`."""
    import warnings

    v = np.array([[1.0, 3.0]] * 10 + [[np.nan, np.nan], [np.nan, 4.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = health.raw_hi(v, health.HIParams(baseline_points=5))
    assert np.isnan(got[10]) and got[11] == pytest.approx(np.log(4.0 / 2.0)) and got[0] == pytest.approx(0.0)


def test_phm_accuracy_refuses_a_zero_true_rul():
    with pytest.raises(InputError, match="positive"):
        rul.phm_accuracy(0.0, 10.0)


# -- the planning answer: the expected-score optimum ---------------------------------------------

def test_planning_point_of_a_point_mass_is_that_point():
    assert rul.planning_point([1234.0]) == pytest.approx(1234.0)
    assert rul.planning_point(np.full(50, 777.0)) == pytest.approx(777.0)


@pytest.mark.parametrize("p_short,want", [(0.45, 1000.0), (0.55, 100.0)])
def test_planning_point_of_a_two_point_distribution(p_short, want):
    """RUL 100 s with probability p, else 1,000 s. Answering 100 scores p + (1 − p)·0.5^(5·0.9) (early by
    90 % on the long one), answering 1,000 scores (1 − p) + p·0.5^(20·9) ≈ 1 − p: 1,000 wins iff
    p < (1 − 0.5^4.5) / (2 − 0.5^4.5) = 0.4887."""
    got = rul.planning_point([100.0, 1000.0], [p_short, 1 - p_short])
    assert got == want
    assert rul.expected_accuracy(got, [100.0, 1000.0], [p_short, 1 - p_short]) == pytest.approx(
        max(p_short + (1 - p_short) * 0.5 ** 4.5, (1 - p_short) + p_short * 0.5 ** 180))


def test_planning_point_of_a_uniform_distribution_matches_the_integral():
    """RUL uniform on [1,000, 3,000] s: the optimum of E[A(r)] = ∫ A(r, s) ds / 2,000, found by quadrature on
    a fine grid, is below the median (late answers cost 4× early ones) and the planning point finds it."""
    from scipy.integrate import quad

    def expected(r):
        return quad(lambda x: rul.phm_accuracy(x, r), 1000.0, 3000.0, points=[r])[0] / 2000.0

    grid = np.linspace(1000.0, 3000.0, 2001)
    want = grid[int(np.argmax([expected(r) for r in grid]))]
    got = rul.planning_point(1000.0 + 2000.0 * (np.arange(4000) + 0.5) / 4000)  # the uniform's quantiles
    assert got == pytest.approx(want, rel=0.01)
    assert want < 2000.0 - 100.0  # clearly below the median
    assert expected(got) >= expected(want) - 1e-3


def test_every_estimate_carries_its_median_and_planning_answer():
    """Weighted or not, a distribution's answer is the best draw for E[A]; P50 stays the median."""
    rng = np.random.default_rng(1)
    d = rng.lognormal(np.log(5000.0), 0.6, 3000)
    e = rul.from_draws("x", d)
    assert e.p50_s == pytest.approx(np.median(d), rel=0.01)
    assert e.planning_s < e.p50_s
    grid = np.quantile(d, np.linspace(0.01, 0.99, 99))
    best = max(grid, key=lambda r: rul.expected_accuracy(r, d))
    assert rul.expected_accuracy(e.planning_s, d) >= rul.expected_accuracy(best, d) - 2e-3
    assert "draws_s" not in e.as_dict() and e.as_dict()["planning_s"] == e.planning_s


# -- survival prior -----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weibull_recovers_its_parameters(seed):
    rng = np.random.default_rng(seed)
    k, lam = 2.5, 10_000.0
    t = lam * rng.weibull(k, 3000)
    prior = rul.WeibullPrior().fit_lengths(t)
    assert prior.shape_ == pytest.approx(k, rel=0.06) and prior.scale_s_ == pytest.approx(lam, rel=0.03)
    # right-censoring at 9,000 s (a third of the units replaced before failing): still recovered
    cens = rul.WeibullPrior().fit_lengths(np.minimum(t, 9000.0), t < 9000.0)
    assert cens.shape_ == pytest.approx(k, rel=0.1) and cens.scale_s_ == pytest.approx(lam, rel=0.05)


def test_weibull_conditional_quantiles():
    prior = rul.WeibullPrior().fit_lengths([1000.0, 2000.0, 3000.0])
    k, lam = prior.shape_, prior.scale_s_
    assert prior.rul_quantile(0.0, 0.5) == pytest.approx(lam * math.log(2) ** (1 / k))
    # conditioned on survival to t: P(T > t + r | T > t) = 0.5 at the median
    t = 1500.0
    r = prior.rul_quantile(t, 0.5)
    assert prior.survival(t + r) / prior.survival(t) == pytest.approx(0.5)


# -- exponential degradation, Bayesian -----------------------------------------------------------

def _exp_life(rng, name, healthy_s, a, b, threshold, noise=0.02, step=10.0) -> rul.LifeHI:
    """Gebraeel's model with a healthy floor: the amplitude's excess over baseline grows as
    exp(a + b·τ) after onset (τ: s since onset), so HI = ln(1 + exp(a + b·τ)); the life ends when HI
    reaches ``threshold``."""
    length = healthy_s + (np.log(np.expm1(threshold)) - a) / b
    t = np.arange(0.0, length + step / 2, step)
    tau = np.maximum(t - healthy_s, 0)
    hi = np.where(t >= healthy_s, np.log1p(np.exp(a + b * tau)), 0.0) + noise * rng.standard_normal(t.size)
    return rul.LifeHI(name, t, hi, float(t[-1]), True)


@pytest.mark.parametrize("seed", [0, 1])
def test_exponential_posterior_recovers_the_degradation_and_its_rul(seed):
    rng = np.random.default_rng(seed)
    lib = [_exp_life(rng, f"l{i}", 3000 + 500 * i, -1.0, 1e-3 * (1 + 0.2 * (i - 2)), 2.0) for i in range(5)]
    library = rul.fit_library(lib, P)
    model = library.degradation
    assert model is not None and model.threshold_ == pytest.approx(np.log(np.expm1(2.0)), abs=0.05)
    # a new machine degrading at a known rate: the posterior finds it and the RUL P50 is near the truth
    new = _exp_life(rng, "new", 4000, -1.0, 1.3e-3, 2.0)
    cut = int(np.searchsorted(new.times_s, new.length_s * 0.85))
    est = rul.estimate(library, new.times_s[:cut], new.hi[:cut])
    assert est.model in ("combined", "exp_degradation", "similarity")
    deg = est.details["models"]["exp_degradation"]
    onset = est.details["onset_s"]
    tau, h = new.times_s[:cut] - onset, new.hi[:cut]
    mean, _ = model.posterior(tau[tau >= 0], rul.excess(h[tau >= 0]))
    assert mean[1] == pytest.approx(1.3e-3, rel=0.15)
    true = new.length_s - new.times_s[cut - 1]
    # the smoothing lags: the library's HI at failure is read a little below the true threshold, so the
    # estimate is a few % early (the cheap side) and its interval narrow with this little noise
    assert deg["p10_s"] <= true <= 1.05 * deg["p90_s"]
    assert deg["p50_s"] == pytest.approx(true, rel=0.1)


def test_similarity_recovers_rul_when_lives_share_their_end():
    """Lives that differ only in how long they stayed healthy: the last stretch matches exactly."""
    rng = np.random.default_rng(3)
    lib = [_exp_life(rng, f"l{i}", 2000 + 1500 * i, 0.5, 1e-3, 2.0, noise=0.01) for i in range(4)]
    library = rul.fit_library(lib, P)
    new = _exp_life(rng, "new", 5000, 0.5, 1e-3, 2.0, noise=0.01)
    for frac in (0.8, 0.9):
        cut = int(np.searchsorted(new.times_s, new.length_s * frac))
        est = library.similarity.predict(rul.LifeHI("x", new.times_s[:cut], new.hi[:cut], None, True,
                                                    rul.onset_time(new.times_s[:cut], new.hi[:cut], P)))
        true = new.length_s - new.times_s[cut - 1]
        assert est.p10_s <= true <= est.p90_s
        assert est.p50_s == pytest.approx(true, rel=0.2)


def test_before_onset_and_with_a_small_library_the_answer_is_the_survival_prior():
    rng = np.random.default_rng(4)
    lib = [_exp_life(rng, f"l{i}", 3000 + 700 * i, 0.6, 1e-3, 2.0) for i in range(4)]
    library = rul.fit_library(lib, P)
    healthy_t = np.arange(0, 2000.0, 10)
    est = rul.estimate(library, healthy_t, 0.02 * rng.standard_normal(healthy_t.size))
    assert est.model == "survival_prior" and est.reason.startswith("survival prior: no degradation onset")
    # an HI still flat is evidence of a longer life than the lifetimes alone say
    assert est.p50_s > library.prior.rul_quantile(healthy_t[-1], 0.5)
    # said as such wherever it is shown: the basis, and the text the fleet table / machine page / CLI print
    assert est.basis == "prior_no_onset"
    text = rul.rul_text(est.p10_s, est.p50_s, est.p90_s, est.basis)
    assert text.startswith("no onset yet — survival prior P50 " + rul.format_duration(est.p50_s))
    small = rul.fit_library(lib[:2], P)
    new = _exp_life(rng, "new", 3000, 0.6, 1e-3, 2.0)
    est = rul.estimate(small, new.times_s[:-50], new.hi[:-50])
    assert est.model == "survival_prior" and "only 2 failed lives" in est.reason
    assert est.basis == "prior_small_library"
    assert rul.rul_text(est.p10_s, est.p50_s, est.p90_s, est.basis).startswith("library too small — survival prior")
    # past onset with a library of four lives: a model's answer, which reads as a RUL, not a prior
    est = rul.estimate(library, new.times_s[:-50], new.hi[:-50])
    assert est.basis == "model" and est.model != "survival_prior"
    text = rul.rul_text(est.p10_s, est.p50_s, est.p90_s, est.basis)
    assert text.startswith(rul.format_duration(est.p50_s) + " (") and "prior" not in text


def test_the_machine_page_says_a_prior_is_a_prior():
    from vibra_pipelines.report import _rul_page

    entry = {"equipment_id": "motor-01", "status": "ok", "model": "survival_prior", "basis": "prior_no_onset",
             "p10_s": 3600.0, "p50_s": 45000.0, "p90_s": 90000.0, "elapsed_s": 7200.0, "onset_s": None,
             "indicator": "rms", "threshold": None, "reason": "survival prior: no degradation onset yet",
             "history": {"elapsed_s": [0.0, 3600.0, 7200.0], "hi": [0.0, 0.01, -0.02]}}
    page, chart = _rul_page(entry, {"trusted": True, "n_failed": 3})
    assert page["rul_state"] == "no_degradation" and page["rul_text"] == "no degradation yet"
    assert page["rul_planning_s"] is None and page["rul_p50_s"] is None  # no RUL number before onset
    assert page["rul_detail"].startswith("typical remaining life 1.0 h–25.0 h (survival prior")
    assert "prior P10" in chart and "P50" not in chart and "RUL, planning" not in chart
    # a manifest written before the basis and planning_s fields: a model's answer, planned on its P10
    old = {k: v for k, v in entry.items() if k != "basis"} | {"model": "life_fraction"}
    page, chart = _rul_page(old, {"trusted": True, "n_failed": 3})
    assert page["rul_state"] == "model" and page["rul_planning_s"] == 3600.0 and page["rul_p50_s"] == 45000.0
    assert page["rul_text"] == "RUL, planning (early): 1.0 h" and "RUL, planning (early)" in chart


# -- life fraction and the nested choice ------------------------------------------------------------

def _fraction_life(rng, name: str, length_s: float, onset_frac: float = 0.6, step: float = 10.0) -> rul.LifeHI:
    """Lives that share their shape in life fraction: flat, then HI = 2·x² over the last (1 − onset_frac)."""
    t = np.arange(0.0, length_s + step / 2, step)
    x = np.clip((t / length_s - onset_frac) / (1 - onset_frac), 0, None)
    return rul.LifeHI(name, t, 2.0 * x ** 2 + 0.02 * rng.standard_normal(t.size), length_s)


def test_life_fraction_recovers_the_remaining_life_of_lives_alike_in_fraction():
    """Lives of 4,000 … 12,000 s that all degrade over their last 40 %: matched on the onset share, the
    library's remaining / elapsed at the same share gives the new life's RUL whatever its length."""
    rng = np.random.default_rng(5)
    lib = [_fraction_life(rng, f"l{i}", 4000.0 + 2000 * i) for i in range(5)]
    lives = [rul.LifeHI(x.name, x.times_s, x.hi, x.length_s, True, rul.onset_time(x.times_s, x.hi, P)) for x in lib]
    model = rul.LifeFraction(P, bandwidth=(None, 0.1)).fit(lives)
    new = _fraction_life(rng, "new", 7000.0)
    for frac in (0.8, 0.9):
        cut = int(np.searchsorted(new.times_s, frac * new.length_s)) + 1
        t, h = new.times_s[:cut], new.hi[:cut]
        est = model.predict(rul.LifeHI("x", t, h, None, True, rul.onset_time(t, h, P)))
        true = new.length_s - t[-1]
        assert est.p50_s == pytest.approx(true, rel=0.15)  # P50 is the median of the predictive distribution
        assert est.p10_s <= true <= est.p90_s


@pytest.mark.parametrize("family", ["hi_regression", "fraction_similarity"])
def test_hi_models_read_the_life_fraction_from_lives_alike_in_fraction(family):
    """Lives of 4,000 … 12,000 s that all degrade over their last 40 % (HI = 2·x²): the HI level tells the life
    fraction, so both the regression of ln(RUL / t) and the matching in life fraction find the new life's RUL."""
    from vibra.prognostics.rul import regression

    rng = np.random.default_rng(5)
    lib = [_fraction_life(rng, f"l{i}", 4000.0 + 2000 * i) for i in range(5)]
    model = (rul.HIRegression("linear", ratio=True, elapsed=False, alpha=0.0) if family == "hi_regression"
             else rul.FractionSimilarity()).fit(lib)
    new = _fraction_life(rng, "new", 7000.0)
    for frac in (0.8, 0.9):
        cut = int(np.searchsorted(new.times_s, frac * new.length_s)) + 1
        est = model.predict(rul.LifeHI("x", new.times_s[:cut], new.hi[:cut], None, True))
        true = new.length_s - new.times_s[cut - 1]
        # the matching is near (1 % grid; the HI is flat just after onset); a linear fit of ln(RUL / t) on a quadratic HI is near, not exact
        assert est.p50_s == pytest.approx(true, rel=0.1 if family == "fraction_similarity" else 0.15)
        # the interval within 20 % of the truth
        assert est.p10_s <= 1.2 * true and est.p90_s >= 0.8 * true and est.planning_s <= est.p50_s * (1 + 1e-9)
    # causal features: a point's row does not change when the future is appended
    x_all = regression.causal_features(new.times_s, new.hi)
    x_cut = regression.causal_features(new.times_s[:300], new.hi[:300])
    assert np.array_equal(x_all[:300], x_cut)


def test_life_fraction_over_whole_lives_takes_a_life_without_onset():
    """A library life whose HI never left its band (onset None) is a life too: fitted over whole lives it counts
    with the onset share of a machine at its onset, as predict takes a machine without one (it raised before)."""
    rng = np.random.default_rng(8)
    lib = [_fraction_life(rng, f"l{i}", 4000.0 + 2000 * i) for i in range(3)]
    lives = [rul.LifeHI(x.name, x.times_s, x.hi, x.length_s, True, rul.onset_time(x.times_s, x.hi, P)) for x in lib]
    lives[0].onset_s = None
    model = rul.LifeFraction(P, points="life", bandwidth=(None, 0.5)).fit(lives)
    assert model.lives_ == ["l0", "l1", "l2"] and np.isfinite(model.u_).all()


def test_the_model_is_chosen_inside_the_library_and_the_late_rule_comes_first():
    rng = np.random.default_rng(6)
    lib = [_fraction_life(rng, f"l{i}", 4000.0 + 2000 * i) for i in range(5)]
    library = rul.fit_library(lib, P)
    c = library.choice
    assert c["tuned"] and c["held_out_lives"] == 5 and c["model"] in ("life_fraction", "similarity",
                                                                       "exp_degradation", "combined")
    # the winner has the fewest late answers of all candidates, and its interval the conformal widening
    assert c["late_near_end"] == min(v["late_near_end"] for v in c["candidates"].values())
    assert c["widen"] in rul.WIDENINGS and c["coverage"] >= rul.TARGET_COVERAGE
    new = _fraction_life(rng, "new", 7000.0)
    cut = int(np.searchsorted(new.times_s, 0.85 * new.length_s))
    est = rul.estimate(library, new.times_s[:cut], new.hi[:cut])
    # the official-grid comparison (prior + model against the life ratio) is made inside the library too
    g = c["official_grid"]
    assert c["answer"] in ("incumbent", "life_ratio") and "incumbent_score" in g and "life_ratio_score" in g
    assert est.model == (c["model"] if c["answer"] == "incumbent" else "life_ratio") and "leave-one-life-out" in est.reason
    assert 0 <= est.p10_s <= est.p50_s <= est.p90_s
    # nested: the choice depends on the library only; two lives cannot be held out one by one
    small = rul.fit_library(lib[:2], P)
    assert not small.choice["tuned"] and small.choice["model"] == "combined"


def test_life_ratio_is_the_best_ratio_over_the_library_cuts_and_keeps_the_late_rule(monkeypatch):
    """Uncapped, the life ratio's ρ is the PHM 2012 optimum over the library's own 55–95 % cuts (no grid ρ does
    better); capped (the product), no library cut at ≥ 85 % of its life is answered more than 50 % late."""
    from vibra.prognostics.rul import life_ratio

    rng = np.random.default_rng(8)
    lib = [_fraction_life(rng, f"l{i}", 4000.0 + 2000 * i, onset_frac=0.99) for i in range(4)]
    lives = [rul.LifeHI(x.name, x.times_s, x.hi, x.length_s, True, rul.onset_time(x.times_s, x.hi, P)) for x in lib]
    cuts = [(x.length_s * f, x.length_s * (1 - f), f) for x in lib for f in life_ratio.OFFICIAL_FRACTIONS]

    def score(rho):
        return np.mean([rul.phm_accuracy(true, rho * t) for t, true, _ in cuts])

    monkeypatch.setattr(life_ratio, "LATE_CAP", False)
    free = rul.LifeRatio(P).fit(lives).sets_["elapsed"][3]
    assert all(score(free) >= score(r) - 1e-3 for r in np.linspace(0.01, 1.0, 200))
    monkeypatch.setattr(life_ratio, "LATE_CAP", True)
    model = rul.LifeRatio(P).fit(lives)
    capped = model.sets_["elapsed"][3]
    assert capped < free and not any(capped * t > rul.LATE_LIMIT * true * (1 + 1e-9) for t, true, f in cuts if f >= 0.85 - 1e-9)
    e = model.predict(rul.LifeHI("x", np.arange(0.0, 3001.0, 10.0), np.zeros(301)))
    assert e.model == "life_ratio" and e.planning_s == pytest.approx(3000.0 * capped)


# -- one contract over every model family ----------------------------------------------------------

FAMILIES = {"survival_prior": lambda: rul.WeibullPrior(),
            "exp_degradation": lambda: rul.ExpDegradation(smooth_points=P.smooth_points, n_draws=2000),
            "similarity": lambda: rul.Similarity(),
            "life_fraction": lambda: rul.LifeFraction(P, bandwidth=(None, 0.5)),
            "life_ratio": lambda: rul.LifeRatio(P),
            "hi_regression": lambda: rul.HIRegression("linear", ratio=True),
            "fraction_similarity": lambda: rul.FractionSimilarity()}


@pytest.fixture(scope="module")
def contract_lives():
    """Five exponential lives of different healthy spans (onsets detected), and a new machine at 85 % of its life."""
    from dataclasses import replace

    rng = np.random.default_rng(11)
    lives = [_exp_life(rng, f"l{i}", 3000 + 600 * i, -1.0, 1e-3 * (1 + 0.15 * (i - 2)), 2.0) for i in range(5)]
    lives = [replace(x, onset_s=rul.onset_time(x.times_s, x.hi, P)) for x in lives]
    new = _exp_life(rng, "new", 4000, -1.0, 1.1e-3, 2.0)
    cut = int(np.searchsorted(new.times_s, new.length_s * 0.85))
    t, h = new.times_s[:cut], new.hi[:cut]
    return lives, rul.LifeHI("new", t, h, None, True, rul.onset_time(t, h, P)), new.length_s - t[-1]


@pytest.mark.parametrize("family", FAMILIES)
def test_every_model_family_keeps_the_contract(family, contract_lives):
    """fit(lives) → self; predict(current) → an Estimate carrying its predictive distribution, whose quantiles
    are P10 / P50 (the median) / P90 and whose planning answer is the expected-score optimum."""
    lives, current, true = contract_lives
    model = FAMILIES[family]()
    assert isinstance(model, rul.RulModel) and model.fit(lives) is model and model.name == family
    e = model.predict(current)
    assert isinstance(e, rul.Estimate) and e.model == family and e.draws_s is not None
    w = np.ones_like(e.draws_s) if e.draw_weights is None else e.draw_weights
    assert 0 <= e.p10_s <= e.p50_s <= e.p90_s
    median = rul.metric.weighted_quantiles(e.draws_s, w, [0.5])[0]
    assert e.p50_s == pytest.approx(median, rel=0.02)
    if family == "life_ratio":  # its ratio is the optimum capped by the late rule over the library's cuts
        assert e.planning_s <= rul.planning_point(e.draws_s, e.draw_weights) * (1 + 1e-9)
    else:
        assert e.planning_s == pytest.approx(rul.planning_point(e.draws_s, e.draw_weights))
    json.dumps(e.as_dict())  # what the manifest stores: no arrays
    if family != "survival_prior":  # a degradation model sees this machine's end coming
        assert e.p10_s <= 1.5 * true and e.p90_s >= 0.5 * true


@pytest.fixture(scope="module")
def contract_library(contract_lives):
    lives, current, _ = contract_lives
    return rul.fit_library([rul.LifeHI(x.name, x.times_s, x.hi, x.length_s, True) for x in lives], P), current


@pytest.mark.parametrize("family", ["life_fraction", "similarity", "exp_degradation", "combined"])
def test_the_interval_of_every_model_is_widened_by_the_library_factor(family, contract_library):
    """The conformal widening reaches every model's answer: twice the factor, twice the log-distance of P10
    and P90 from the median (deleting the widening in ``estimate`` fails this for every family)."""
    library, current = contract_library
    base = {**library.choice, "model": family, "bandwidth": (None, 0.5), "scale": "elapsed", "planning_widen": 1.0,
            "answer": "incumbent"}
    found = []
    for widen in (1.0, 2.0):
        library.choice = {**base, "widen": widen}
        found.append(rul.estimate(library, current.times_s, current.hi))
    one, two = found
    assert one.model == two.model and one.basis == "model"
    assert two.p50_s == pytest.approx(one.p50_s, rel=0.01)
    assert math.log(two.p50_s / two.p10_s) == pytest.approx(2 * math.log(one.p50_s / one.p10_s), rel=0.05)
    assert math.log(two.p90_s / two.p50_s) == pytest.approx(2 * math.log(one.p90_s / one.p50_s), rel=0.05)
    # the planning answer follows ``planning_widen``: from the model's own distribution here, unchanged
    assert two.planning_s == pytest.approx(one.planning_s, rel=0.01)


# -- the real-data benchmark figure --------------------------------------------------------------

@pytest.fixture(scope="module")
def femto_folds():
    """The six leave-one-bearing-out folds of the benchmark (indicator, smoothing and model fitted and chosen on the
    other five bearings), fitted once for the figures below (the tests take ``real_data`` for its skip rule)."""
    from conftest import REAL

    if not REAL.exists():
        pytest.skip(f"real data not found at {REAL}")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import real_rul

    return real_rul, real_rul.folds(health.HIParams())


def test_femto_official_protocol_figure(real_data, femto_folds):
    """The official PHM 2012 protocol on the six learning bearings (benchmarks/real_rul.py, BENCHMARKS.md)."""
    real_rul, fitted = femto_folds
    answers = real_rul.official(health.HIParams(), fitted)
    o = real_rul.official_summary(answers)
    assert o["n"] == 6 * len(real_rul.OFFICIAL)  # one answer per bearing and truncation
    assert all(a.basis in rul.BASES and math.isfinite(a.planning_s) and a.planning_s >= 0 for a in answers)
    assert {a.basis for a in answers if a.model == "survival_prior"} <= {"prior_no_onset"}
    # measured 0.091 (was 0.068 before the life ratio; 1 answer > 50 % late at ≥ 85 %: Bearing1_2 at 95 %; P10–P90
    # covers 93 %; the life ratio chosen by every fold's inner comparison on the 55–95 % grid): still below the
    # issue's 0.35 target and below the yardsticks on the same points (best constant in hindsight 0.204, elapsed ×
    # the fold's ratio 0.222, condition-matched prior median 0.070): see BENCHMARKS.md
    assert o["score"] >= 0.085
    assert o["late"] <= 1
    assert o["coverage"] >= 0.88
    assert all(x.library.choice["official_grid"]["answer"] in ("incumbent", "life_ratio") for x in fitted)
    # the yardsticks as measured (they use no model: a change here is a change of the protocol or the data)
    assert o["constant_score"] == pytest.approx(0.204, abs=0.002) and o["ratio_fold_score"] == pytest.approx(0.222, abs=0.002)


def test_femto_leave_one_bearing_out_figure(real_data, femto_folds):
    real_rul, fitted = femto_folds
    points, chosen = real_rul.lobo(health.HIParams(), fitted)
    s = real_rul.summary(points)
    assert len(chosen) == 6 and s["n_after"] >= 12
    assert all(x["choice"]["tuned"] for x in chosen)  # every fold chose its model on its own five bearings
    # the HI smoothing span too was chosen inside each fold, and said so
    assert all(x["choice"]["smooth_points"] in rul.SMOOTH_SPANS and len(x["choice"]["spans"]) == len(rul.SMOOTH_SPANS)
               for x in chosen)
    # measured 0.093 with the life ratio (0.087 before), coverage 0.947, no answer > 50 % late in the last 20 %
    # (before: one survival-prior answer, Bearing3_1 at 90 %), yardsticks 0.006 / 0.018 (BENCHMARKS.md, diagnostic table)
    assert s["score_after"] >= 0.08
    assert s["coverage_after"] >= 0.90  # measured 18 of 19 (0.947) with the life ratio
    assert s["late_after_onset"] == 0 and s["late_before_onset"] <= 1
    assert s["score_after"] > 3 * max(s["mean_yardstick_after"], s["prior_yardstick_after"])


# -- the product path: FEMTO files as they are → events → vibra rul ------------------------------



@pytest.mark.slow
def test_vibra_rul_on_femto_files_ingested_as_they_are(real_data, tmp_path):
    from vibra.workspace import init_workspace

    ws, _ = init_workspace(tmp_path / "ws")
    text = ws.config_path.read_text().replace("[features]\n", "[features]\nframe_length = 2560\nhop_length = 2560\n", 1)
    export = tmp_path / "export"
    # three run-to-failure lives (three conditions) and a fourth bearing cut at snapshot 600 of 911
    plan = [("Bearing3_1", 1500, "2011-01-01", None), ("Bearing1_2", 1800, "2011-02-01", None),
            ("Bearing2_2", 1650, "2011-03-01", None), ("Bearing2_1", 1650, "2011-04-01", 600)]
    events = ["equipment_id,at,kind,note"]
    for name, rpm, origin, cut in plan:
        eid = name.lower()
        files = sorted((real_data / "femto_learning" / name).glob("acc_*.csv.gz"))
        files = [f for f in files if cut is None or int(f.name[4:9]) <= cut]
        (export / eid).mkdir(parents=True)
        for f in files:
            shutil.copy(f, export / eid / f.name)
        text += FEMTO_MACHINE.format(eid=eid, rpm=rpm, origin=f"{origin}T09:00:00Z")
        if cut is None:  # the last snapshot is the end of life (README: life_s = (n − 1) × 10 s)
            last = int(files[-1].name[4:9])
            at = np.datetime64(f"{origin}T09:00:00") + np.timedelta64(10 * last, "s")
            events.append(f"{eid},{at}Z,failure,end of test")
    ws.config_path.write_text(text)
    (tmp_path / "events.csv").write_text("\n".join(events) + "\n")
    home = ["--home", str(ws.root)]
    run_vibra("ingest", str(export), *home, check=True)
    before = json.loads(run_vibra("rul", "--json", *home, check=True).stdout)
    assert {m["status"] for m in before["machines"]} == {"no_library"}
    out = run_vibra("label", "import-events", str(tmp_path / "events.csv"), "--json", *home, check=True)
    assert json.loads(out.stdout)["imported"] == 3
    again = run_vibra("label", "import-events", str(tmp_path / "events.csv"), "--json", *home, check=True)
    assert json.loads(again.stdout)["already_recorded"] == 3
    payload = json.loads(run_vibra("rul", "--json", *home, check=True).stdout)
    lib = payload["library"]
    assert lib["n_failed"] == 3 and lib["trusted"]
    assert sorted(round(x["length_s"]) for x in lib["lives"]) == [5140, 7960, 8700]
    assert {c["name"] for c in lib["indicator"]["candidates"]} >= {"rms", "kurtosis"}
    current = {m["equipment_id"]: m for m in payload["machines"]}["bearing2_1"]
    assert current["status"] == "ok" and current["elapsed_s"] == pytest.approx(5900, abs=1)  # acc_00591: the last kept file ≤ 600
    assert 0 <= current["p10_s"] <= current["p50_s"] <= current["p90_s"]
    assert current["model"] in ("survival_prior", "similarity", "exp_degradation", "combined", "life_fraction", "life_ratio")
    assert current["basis"] in rul.BASES and (current["basis"] == "model") == (current["model"] != "survival_prior")
    assert current["text"] == rul.rul_text(current["p10_s"], current["p50_s"], current["p90_s"], current["basis"])
    assert current["reason"]
    manifest = Path(payload["manifest"])
    assert manifest.exists() and json.loads(manifest.read_text())["version"] == payload["version"]
    assert list((ws.root / "data" / "lake" / "rul").rglob("*.parquet"))
    human = run_vibra("rul", *home, check=True).stdout
    assert "bearing2_1" in human and "RUL, planning (early)" in human and "RUL P50" not in human


def test_label_failure_errors_name_the_value_and_the_fix(tmp_path):
    from vibra.workspace import init_workspace

    ws, _ = init_workspace(tmp_path / "ws")
    home = ["--home", str(ws.root)]
    bad = run_vibra("label", "failure", "pump-99", "--at", "2026-01-01T00:00:00Z", *home)
    assert bad.returncode == 1 and "pump-99" in bad.stderr and "no recordings" in bad.stderr
    log = tmp_path / "log.csv"
    log.write_text("equipment_id,at,kind\npump-99,yesterday,failure\n")
    bad = run_vibra("label", "import-events", str(log), *home)
    assert bad.returncode == 1 and "line 2" in bad.stderr
    log.write_text("machine,when\nx,y\n")
    bad = run_vibra("label", "import-events", str(log), *home)
    assert bad.returncode == 1 and "equipment_id, at, kind" in bad.stderr


@pytest.mark.parametrize("cmd", [["rul"], ["label", "failure"], ["label", "import-events"]], ids=" ".join)
def test_rul_commands_have_help_with_an_example(cmd):
    from typer.testing import CliRunner

    from vibra_cli.main import app

    result = CliRunner().invoke(app, [*cmd, "--help"])
    assert result.exit_code == 0 and "Example: vibra" in result.output


# -- the near-end regression: short raw levels that keep the last rise ------------------------------------------

def _abrupt_life(rng, name: str, length_s: float, step: float = 10.0) -> rul.LifeHI:
    """A raw indicator (positive, two columns) flat with 5 % noise until 90 % of the life, then growing 8× by its
    end: the abrupt end of a FEMTO life, which a smoothed HI blurs."""
    t = np.arange(0.0, length_s + step / 2, step)
    rise = np.exp(np.log(8.0) * np.clip((t / length_s - 0.9) / 0.1, 0, None))
    x = np.column_stack([rise, rise ** 0.5]) * np.exp(0.05 * rng.standard_normal((t.size, 2)))
    return rul.LifeHI(name, t, x, length_s)


def test_near_end_regression_tells_where_in_its_final_stage_a_life_is():
    """Lives of 4,000 … 12,000 s, flat until 90 % then rising 8×: the short levels and their onset age tell 93 %
    from 97 % of a life, so the regression of ln(RUL / t) finds the new life's RUL there (measured: P50 within
    4 % at 93 % and 97 %); its features are causal (a prefix's rows do not change when the future is appended)."""
    from vibra.prognostics.rul import near_end

    rng = np.random.default_rng(3)
    lib = [_abrupt_life(rng, f"l{i}", 4000.0 + 2000 * i) for i in range(5)]
    model = near_end.NearEndRegression("boosting", elapsed=False).fit(lib)
    new = _abrupt_life(rng, "new", 7000.0)
    for frac in (0.93, 0.97):
        cut = int(np.searchsorted(new.times_s, frac * new.length_s, side="right"))
        est = model.predict(rul.LifeHI("x", new.times_s[:cut], new.hi[:cut], None, True))
        true = new.length_s - new.times_s[cut - 1]
        assert est.model == "near_end_regression" and est.p50_s == pytest.approx(true, rel=0.15)
        assert est.p10_s <= true * 1.15 and est.p90_s >= true * 0.85 and est.planning_s <= est.p50_s * (1 + 1e-9)
    x_all = near_end.near_end_features(new.times_s, new.hi, short_s=(60.0, 30.0))
    x_cut = near_end.near_end_features(new.times_s[:500], new.hi[:500], short_s=(60.0, 30.0))
    assert np.array_equal(x_all[:500], x_cut)


def test_near_end_choice_is_made_by_leave_one_life_out_and_refitted_on_all():
    from vibra.prognostics.rul import near_end

    rng = np.random.default_rng(4)
    lib = [_abrupt_life(rng, f"l{i}", 2000.0 + 1000 * i, step=20.0) for i in range(3)]
    model, info = near_end.choose(lib, variants=({"kind": "linear", "elapsed": True},
                                                 {"kind": "boosting", "elapsed": False}), grid=(0.5, 0.99, 0.05))
    assert isinstance(model, near_end.NearEndRegression) and model.n_lives_ == 3 and model.grid == (0.5, 0.99, 0.05)
    assert {"score", "late"} <= set(info["chosen"]) and len(info["tried"]) == 2
    assert model.kind == info["chosen"]["kind"]
