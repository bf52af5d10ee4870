"""The PHM 2012 accuracy of a remaining-life answer, and the answer that maximises its expectation.

The challenge's score (Nectoux et al., IEEE PHM 2012, the PRONOSTIA / FEMTO bearings): the percent error
``Er = 100·(ActRUL − RUL̂)/ActRUL``; ``A = exp(−ln(0.5)·Er/5)`` when Er ≤ 0 (late), ``exp(+ln(0.5)·Er/20)``
when Er > 0 (early); the score is the mean of A over the answers. A late answer costs four times an early one.
"""

from __future__ import annotations

import math

import numpy as np

from vibra.errors import InputError


def weighted_quantiles(samples: np.ndarray, weights: np.ndarray, levels) -> np.ndarray:
    """Quantiles at ``levels`` of a weighted sample (the mid-point rule: each value holds its weight centred
    on it)."""
    order = np.argsort(samples)
    s, w = np.asarray(samples, dtype=float)[order], np.asarray(weights, dtype=float)[order]
    cdf = (np.cumsum(w) - 0.5 * w) / w.sum()
    return np.interp(np.asarray(levels, dtype=float), cdf, s)

def phm_accuracy(true_rul: float, predicted_rul: float) -> float:
    """PHM 2012 challenge accuracy of one prediction.

    ``Er = 100·(true − predicted)/true`` (percent); ``A = exp(−ln(0.5)·Er/5)`` when Er ≤ 0 (late:
    predicted more life than there was), ``exp(+ln(0.5)·Er/20)`` when Er > 0 (early). A late
    prediction by 5 % and an early one by 20 % both score 0.5.
    """
    if not true_rul > 0:
        raise InputError(f"true RUL {true_rul!r}: the PHM 2012 score needs a positive true remaining life")
    er = 100.0 * (true_rul - predicted_rul) / true_rul
    if er <= 0:
        return float(math.exp(-math.log(0.5) * er / 5.0))
    return float(math.exp(math.log(0.5) * er / 20.0))


def phm_accuracies(true_rul, predicted_rul) -> np.ndarray:
    """:func:`phm_accuracy` over arrays (broadcast); ``true_rul`` > 0."""
    true = np.asarray(true_rul, dtype=float)
    er = 100.0 * (true - np.asarray(predicted_rul, dtype=float)) / true
    # one exponent, always ≤ 0 (late: ln 2·Er/5 with Er ≤ 0; early: −ln 2·Er/20), so nothing overflows
    return np.exp(np.where(er <= 0, math.log(2.0) * er / 5.0, -math.log(2.0) * er / 20.0))


#: the predictive distribution is reduced to this many equally weighted quantiles before the planning search
PLANNING_POINTS = 400
MIN_RUL_S = 1e-3  # a drawn RUL of 0 (failure now) is taken as this, so the relative error stays defined


def reduced(draws, weights=None, n: int = PLANNING_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(values, weights summing to 1) of a weighted sample; more than ``n`` values become ``n`` quantiles."""
    d = np.maximum(np.asarray(draws, dtype=float).ravel(), MIN_RUL_S)
    w = np.ones_like(d) if weights is None else np.asarray(weights, dtype=float).ravel()
    ok = np.isfinite(d) & np.isfinite(w) & (w > 0)
    d, w = d[ok], w[ok]
    if d.size == 0:
        raise InputError("planning answer: the predictive distribution has no finite draw with a positive weight")
    if d.size > n:
        d, w = weighted_quantiles(d, w, (np.arange(n) + 0.5) / n), np.ones(n)
    return d, w / w.sum()


def expected_accuracy(r: float, draws, weights=None) -> float:
    """E[A(r, RUL)]: the PHM 2012 accuracy of the answer ``r`` averaged over the predictive distribution."""
    d, w = reduced(draws, weights, n=10 ** 9)
    return float(phm_accuracies(d, r) @ w)


def planning_point(draws, weights=None) -> float:
    """The answer ``r`` that maximises E[A(r, RUL)] under the predictive distribution (draws of the RUL in s,
    optionally weighted).

    Exact over the draws: between two neighbouring draws every term ``A(r, s)`` is the exponential of a
    linear function of ``r`` (convex), so their weighted sum is convex there and its maximum lies on a
    draw; below the smallest draw every term rises with ``r``, above the largest every term falls. A
    sample of more than :data:`PLANNING_POINTS` values is first reduced to that many quantiles. A point mass
    answers itself; a wide distribution answers below its median (late costs 4× early).
    """
    d, w = reduced(draws, weights)
    candidates = np.unique(d)
    expected = phm_accuracies(d[None, :], candidates[:, None]) @ w
    return float(candidates[int(np.argmax(expected))])
