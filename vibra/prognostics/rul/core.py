"""What every RUL model shares: a life as the models see it, the answer (:class:`Estimate`) built from a
predictive distribution, the model protocol, and the questions a library life is asked."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol, runtime_checkable

import numpy as np

from vibra.prognostics.health import HIParams
from vibra.prognostics.rul.metric import MIN_RUL_S, planning_point, weighted_quantiles


QUANTILES = (0.1, 0.5, 0.9)
MIN_LIVES = 3  # fewer failed lives than this: the library is too small to trust

@dataclass
class LifeHI:
    """One life as the RUL models see it: times (s since the life started), smoothed HI, and its end.

    For the machine being predicted, ``length_s`` is None (its end is what we want). ``rpm`` and ``load_n``:
    its operating condition (shaft speed, radial load in N) when known; the survival prior uses them
    (:class:`vibra.prognostics.rul.priors.WeibullPrior`).
    """

    name: str
    times_s: np.ndarray
    hi: np.ndarray
    length_s: float | None = None
    failed: bool = True
    onset_s: float | None = None
    rpm: float | None = None
    load_n: float | None = None


#: What an answer rests on: a degradation model after onset (``model``), or the survival prior of the
#: library's lifetimes — before onset, with too small a library, or when no model applies. A prior is not
#: a prediction of this machine and is shown as such wherever the answer is (:func:`rul_text`).
BASES = ("model", "prior_no_onset", "prior_small_library", "prior_no_model")
PRIOR_WHY = {"prior_no_onset": "no onset yet", "prior_small_library": "library too small",
             "prior_no_model": "no degradation model applies"}

@dataclass
class Estimate:
    """P10 / P50 / P90 of the remaining life (s) — quantiles of the model's predictive distribution, P50
    its median —, the planning answer ``planning_s`` (the point that maximises the expected PHM 2012
    accuracy under that distribution: :func:`planning_point`; earlier than the median, because a late
    answer costs four times an early one), the model that gave it, the threshold used, and its ``basis``
    (one of :data:`BASES`).

    ``draws_s`` / ``draw_weights`` hold the predictive distribution itself (samples of the RUL in s and
    their weights); they are not part of :meth:`as_dict`.
    """

    model: str
    p10_s: float
    p50_s: float
    p90_s: float
    threshold: float | None = None
    threshold_source: str = ""
    reason: str = ""
    details: dict = field(default_factory=dict)
    basis: str = "model"
    planning_s: float = math.nan
    draws_s: np.ndarray | None = field(default=None, repr=False, compare=False)
    draw_weights: np.ndarray | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict:
        out = asdict(replace(self, draws_s=None, draw_weights=None))
        out.pop("draws_s"), out.pop("draw_weights")
        return out

@runtime_checkable
class RulModel(Protocol):
    """One RUL model family: ``fit`` learns from the library's lives (nothing else), ``predict`` answers for a
    machine's current life with an :class:`Estimate` that carries its predictive distribution (``draws_s``,
    ``draw_weights``), its quantiles and its planning answer. Every family satisfies the same contract test
    (``tests/test_rul.py``)."""

    name: str

    def fit(self, lives: list[LifeHI]) -> "RulModel": ...

    def predict(self, current: LifeHI) -> Estimate: ...

def quantiles(samples: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float, float]:
    s = np.asarray(samples, dtype=float)
    if weights is None:
        q = np.quantile(s, QUANTILES)
        return float(q[0]), float(q[1]), float(q[2])
    order = np.argsort(s)
    s, w = s[order], np.asarray(weights, dtype=float)[order]
    cdf = (np.cumsum(w) - 0.5 * w) / w.sum()
    q = np.interp(QUANTILES, cdf, s)
    return float(q[0]), float(q[1]), float(q[2])

def widen_draws(draws, widen: float, weights=None) -> np.ndarray:
    """The draws moved away from their (weighted) median by ``widen`` on the log scale: the interval
    calibration (:func:`tune`) applied to the whole distribution, so the planning answer sees it too."""
    d = np.maximum(np.asarray(draws, dtype=float), MIN_RUL_S)
    if widen == 1.0:
        return d
    w = np.ones_like(d) if weights is None else np.asarray(weights, dtype=float)
    m = math.log(float(weighted_quantiles(d, w, [0.5])[0]))
    return np.exp(m + widen * (np.log(d) - m))


def from_draws(model: str, draws, weights=None, *, widen: float = 1.0, planning_widen: float | None = None,
               **kw) -> Estimate:
    """An :class:`Estimate` from a predictive distribution: P10 / P50 / P90 its quantiles, ``planning_s`` its
    expected-score optimum (:func:`planning_point`), the draws kept; widened about its median by ``widen``
    (the planning answer from the distribution widened by ``planning_widen``, default the same)."""
    raw = np.asarray(draws, dtype=float).ravel()
    w = None if weights is None else np.asarray(weights, dtype=float).ravel()
    d = widen_draws(raw, widen, w) if widen != 1.0 else raw
    pw = widen if planning_widen is None else planning_widen
    plan = planning_point(d if pw == widen else widen_draws(raw, pw, w), w)
    p10, p50, p90 = quantiles(d, w)
    return Estimate(model, p10, p50, p90, planning_s=plan, draws_s=d, draw_weights=w, **kw)


# the questions a held-out library life is asked: at these fractions of its life when past its onset, and
# at these fractions of the span from its onset to its end (so a late onset still gives points)
EVAL_LIFE_FRACTIONS = tuple(float(round(f, 2)) for f in np.arange(0.5, 0.951, 0.05))
EVAL_ONSET_FRACTIONS = (0.25, 0.5, 0.75)
#: the PHM 2012 protocol's truncations (fractions of a life), asked of every library life by the life-ratio model
#: and by the official-grid comparison of :func:`vibra.prognostics.rul.tune`
OFFICIAL_FRACTIONS = tuple(float(round(f, 2)) for f in np.arange(0.55, 0.951, 0.05))
OFFICIAL_LATE_FROM = 0.85  # on that grid, no answer more than 50 % late from this truncation on
# the constraint: no answer more than 50 % late (point > 1.5 × true RUL) in the last 20 % of a life
LATE_ZONE, LATE_LIMIT = 0.8, 1.5

def onset_known_index(life: LifeHI, params: HIParams) -> int | None:
    """The first index at which the onset rule has decided (the onset plus ``persist_points − 1``)."""
    if life.onset_s is None:
        return None
    return int(np.searchsorted(life.times_s, life.onset_s)) + params.persist_points - 1

def onset_share(t: np.ndarray, onset_s: float) -> np.ndarray:
    """``ln(time since onset / elapsed)``: near 0 long after an early onset, very negative just after a late one
    (the time since onset is floored at 1 % of the elapsed time)."""
    t = np.asarray(t, dtype=float)
    return np.log(np.maximum(t - onset_s, 0.01 * t) / np.maximum(t, 1e-9))

def eval_points(life: LifeHI, params: HIParams) -> list[int]:
    """Indices of the questions a held-out library life is asked (see :data:`EVAL_LIFE_FRACTIONS`)."""
    k = onset_known_index(life, params)
    if k is None or not life.length_s:
        return []
    last = int(np.searchsorted(life.times_s, life.length_s, side="left")) - 1  # true RUL > 0
    if last < k:
        return []
    onset = float(life.times_s[k])
    at = [f * life.length_s for f in EVAL_LIFE_FRACTIONS] + [onset + f * (life.length_s - onset)
                                                             for f in EVAL_ONSET_FRACTIONS]
    idx = {int(np.searchsorted(life.times_s, x, side="right")) - 1 for x in at}
    return sorted(i for i in idx if k <= i <= last)
