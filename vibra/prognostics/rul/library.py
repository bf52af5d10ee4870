"""The fitted library of lives and the answer for one machine: the survival prior before onset, else the
model the library chose for itself."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from vibra.errors import InputError
from vibra.prognostics.health import HIParams, Indicator, Life, onset_index, select
from vibra.prognostics.rul.core import MIN_LIVES, Estimate, LifeHI, from_draws
from vibra.prognostics.rul.degradation import ExpDegradation
from vibra.prognostics.rul.life_fraction import LifeFraction
from vibra.prognostics.rul.life_ratio import LifeRatio
from vibra.prognostics.rul.priors import WeibullPrior
from vibra.prognostics.rul.similarity import Similarity
from vibra.prognostics.rul.tuning import answer_of, tune


@dataclass
class Library:
    """Fitted models over a library of lives, ready to estimate any machine's RUL."""

    lives: list[LifeHI]
    params: HIParams
    prior: WeibullPrior
    degradation: ExpDegradation | None
    similarity: Similarity | None
    life_fraction: LifeFraction | None = None
    choice: dict = field(default_factory=dict)
    life_ratio: LifeRatio | None = None

    @property
    def n_failed(self) -> int:
        return sum(1 for life in self.lives if life.failed)


def onset_time(times_s: np.ndarray, hi: np.ndarray, params: HIParams) -> float | None:
    i = onset_index(hi, params)
    return None if i is None else float(times_s[i])


def fit_library(lives: list[LifeHI], params: HIParams = HIParams(), *, window_s: float | None = None) -> Library:
    """Fit the survival prior, the degradation model and the similarity model over ``lives``.

    Onsets are detected with the same rule as for the machine being predicted. Models that
    cannot be fitted (too few lives with an onset) are left out and said so by :func:`estimate`.
    """
    lives = [replace(life, onset_s=onset_time(life.times_s, life.hi, params)) for life in lives]
    prior = WeibullPrior().fit(lives)
    choice = tune(lives, params)
    try:
        degradation = ExpDegradation(smooth_points=params.smooth_points, flat=choice["flat"]).fit(lives)
    except InputError:
        degradation = None
    try:
        similarity = Similarity(**({"window_s": window_s} if window_s else {})).fit(lives)
    except InputError:
        similarity = None
    try:
        life_fraction = LifeFraction(params, scale=choice.get("scale", "elapsed"), points=choice.get("points", "onset"),
                                     bandwidth=choice.get("bandwidth")).fit(lives)
        life_fraction.tuning_ = choice
    except InputError:
        life_fraction = None
    try:
        life_ratio = LifeRatio(params).fit(lives)
    except InputError:
        life_ratio = None
    return Library(lives, params, prior, degradation, similarity, life_fraction, choice, life_ratio)


#: spans (points) of the causal HI smoothing tried per library: a long span steadies the HI, a short one
#: lags less at the end of a life, where the remaining life can be shorter than the smoothing lag
SMOOTH_SPANS = (9, 5)


def fit_lives(lives: list[Life], params: HIParams = HIParams(), *, spans: tuple[int, ...] = SMOOTH_SPANS,
              candidates: tuple[str, ...] | None = None) -> tuple[Indicator, Library]:
    """The health indicator and the fitted library of raw ``lives``, the HI smoothing span chosen inside
    the library.

    For each span in ``spans`` the indicator is selected (:func:`vibra.prognostics.health.select`) and the models
    tuned by leave-one-life-out (:func:`tune`); the span whose tuned choice has the fewest answers more
    than 50 % late near the end of a life, then the best inner PHM 2012 score, wins (ties: the longer
    span, listed first). Nested like :func:`tune`: the machine being estimated takes no part. Every
    span's inner figures are in ``library.choice["spans"]``.
    """
    best, tried = None, []
    for span in spans:
        p = replace(params, smooth_points=span)
        indicator = select(lives, params=p, candidates=candidates)
        his = [LifeHI(x.name, x.times_s, indicator.transform(x.columns), x.length_s, x.failed, rpm=x.rpm,
                      load_n=x.load_n) for x in lives]
        library = fit_library(his, p)
        c = library.choice
        key = (c["late_near_end"], -c["score"]) if c.get("tuned") else (math.inf, 0.0)
        tried.append({"smooth_points": span, "indicator": indicator.name, "model": c["model"],
                      "score": c.get("score"), "late_near_end": c.get("late_near_end")})
        if best is None or key < best[0]:
            best = (key, indicator, library)
    _, indicator, library = best
    library.choice = {**library.choice, "smooth_points": library.params.smooth_points, "spans": tried}
    return indicator, library


def estimate(library: Library, times_s: np.ndarray, hi: np.ndarray, *, rpm: float | None = None,
             load_n: float | None = None) -> Estimate:
    """The RUL of a machine whose current life has run ``times_s`` (s since its start) with HI ``hi``, at the
    operating condition ``rpm`` / ``load_n`` when known.

    Before onset, or when the library holds fewer than :data:`MIN_LIVES` failed lives, the
    answer is the survival prior, said as such in ``reason`` and ``basis``.
    """
    times_s, hi = np.asarray(times_s, dtype=float), np.asarray(hi, dtype=float)
    onset = onset_time(times_s, hi, library.params)
    current = LifeHI("current", times_s, hi, None, True, onset, rpm=rpm, load_n=load_n)
    prior = library.prior.predict(current)
    base = {"onset_s": onset, "elapsed_s": float(times_s[-1]), "survival_prior": prior.as_dict()}
    choice = library.choice
    if (choice.get("answer") == "life_ratio" and library.life_ratio is not None
            and library.n_failed >= MIN_LIVES):
        # the inner leave-one-life-out on the PHM 2012 grid preferred the life ratio to prior + model
        e = library.life_ratio.predict(current, widen=choice.get("ratio_widen", 1.0))
        g = choice["official_grid"]
        e.reason = (("no degradation onset yet (HI inside its healthy band); " if onset is None else "after onset: ")
                    + e.reason + f"; chosen by leave-one-life-out on the library's 55–95 % cuts (score "
                    f"{g['life_ratio_score']:.2f} vs {g['incumbent_score']:.2f} for prior + {choice['model']})")
        e.details.update(base)
        e.basis = "prior_no_onset" if onset is None else "model"
        return e
    if onset is None:
        prior.reason = "survival prior: no degradation onset yet (HI inside its healthy band); " + prior.reason
        prior.details.update(base)
        prior.basis = "prior_no_onset"
        return prior
    if library.n_failed < MIN_LIVES:
        prior.reason = (f"survival prior: only {library.n_failed} failed lives in the library (< {MIN_LIVES}); "
                        + prior.reason)
        prior.details.update(base)
        prior.basis = "prior_small_library"
        return prior
    found = {}
    for model in (library.life_fraction, library.similarity, library.degradation):
        if model is not None:
            found[model.name] = model.predict(current)
    models = {k: e.as_dict() for k, e in found.items()}
    choice = library.choice
    e = answer_of(choice, found.get("life_fraction"), found.get("similarity"), found.get("exp_degradation"))
    if e is None:
        prior.reason = "survival prior: no degradation model applies (" + (
            "; ".join(f"{k}: HI not rising" for k in models) or "none fitted on the library") + "); " + prior.reason
        prior.details.update(base, models=models)
        prior.basis = "prior_no_model"
        return prior
    why = (f"chosen by leave-one-life-out over the library (PHM 2012 score {choice['score']:.2f}, "
           f"{choice['late_near_end']} answers > 50 % late near the end, P10–P90 coverage "
           f"{100 * choice['coverage']:.0f} % with widening ×{choice['widen']:g})" if choice.get("tuned")
           else f"untuned ({choice.get('reason', '')})")
    threshold, source = e.threshold, e.threshold_source
    if e.model == "combined":
        threshold = library.degradation.threshold_hi if library.degradation else None
        source = (found.get("exp_degradation") or found["similarity"]).threshold_source
    # the chosen model's distribution, widened by the library's conformal factor: P10–P90 and the planning
    # answer both come from it
    e = from_draws(e.model, e.draws_s, e.draw_weights, widen=choice.get("widen", 1.0),
                   planning_widen=choice.get("planning_widen"), threshold=threshold,
                   threshold_source=source, reason=f"after onset: {e.model}, {why}; {e.reason}",
                   details={**base, **e.details, "models": models})
    return e
