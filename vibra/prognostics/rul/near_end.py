"""Quantile regression of ln(RUL / t) on short, un-smoothed levels of the raw indicators: the near-end information.

:class:`~vibra.prognostics.rul.regression.HIRegression` reads smoothed HIs (running median + EWMA over several
minutes); on lives that degrade abruptly in their last 5–15 % that blurs exactly what tells 85 % from 95 % of a
life. This model reads the raw indicator values at every point instead, each as ``z = ln(x / baseline)``
(baseline: the median over the first ``baseline_s`` seconds) and, per indicator:

* its short robust level — the median of ``z`` over the last ``short_s`` seconds (a few snapshots);
* the running maximum of that level;
* its rise over the last 1, 5 and 10 % of the elapsed time (:data:`RISES`; scale-free windows, as lives differ
  5× in length);
* the onset age: the share of the elapsed time since the level first exceeded ``ln(onset_factor)``
  (0 before; the first crossing of a median level, so a lone spike does not start it);

plus ``ln t`` (optional) and the operating condition (``ln rpm``, ``ln load``; optional). Each feature at point i
reads the points ≤ i only.

Training rows: every library life cut on a dense grid of fractions (default every 1 % from 30 to 99 % of its
life; each life weighs the same), target ``ln((L − t) / t)``. One model per quantile level
(:data:`~vibra.prognostics.rul.regression.LEVELS`) — gradient boosting with the pinball loss or an L1-penalised
linear quantile regression; the sorted quantiles are the predictive distribution, the planning answer its
expected-score optimum (:func:`vibra.prognostics.rul.metric.planning_point`).
:func:`choose` picks the variant by leave-one-life-out over the library
(:func:`vibra.prognostics.rul.regression.choose`).
"""

from __future__ import annotations

import warnings

import numpy as np

from vibra.errors import InputError
from vibra.prognostics.rul.core import Estimate, LifeHI, from_draws
from vibra.prognostics.rul.regression import draws_of, fit_quantiles

RISES = (0.01, 0.05, 0.10)  # the rise of each level since (1 − w)·t
GRID = (0.30, 0.99, 0.01)  # training cuts: from, to, step (fractions of each library life)
KINDS = ("boosting", "linear")


def _short_median(t: np.ndarray, z: np.ndarray, short_s: float) -> np.ndarray:
    """Median of ``z`` over the points in (t_i − short_s, t_i], for every i (causal; NaN where all are NaN)."""
    start = np.searchsorted(t, t - short_s, side="right")
    width = np.arange(t.size) - start + 1
    out = np.full(t.size, np.nan)
    for w in np.unique(width):  # one vectorised median per window length (a regular grid has one, plus its start)
        i = np.flatnonzero(width == w)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN window: NaN, silently
            out[i] = np.nanmedian(np.lib.stride_tricks.sliding_window_view(z, w)[i - w + 1], axis=1)
    return out


def near_end_features(times_s: np.ndarray, values: np.ndarray, *, short_s=60.0, baseline_s: float = 600.0,
                      onset_factor: float = 2.0, elapsed: bool = True, rpm: float | None = None,
                      load_n: float | None = None, condition: bool = False) -> np.ndarray:
    """Feature rows (n, f) of a life at each of its points (see the module docstring).

    ``values``: (n,) or (n, k) raw positive indicator values (one column per indicator, e.g. the geometric mean of
    the channels); ``short_s``: the short window in s, one for all columns or one per column. Point i depends on
    points ≤ i only.
    """
    t = np.asarray(times_s, dtype=float)
    v = np.asarray(values, dtype=float)
    v = v[:, None] if v.ndim == 1 else v
    shorts = np.broadcast_to(np.asarray(short_s, dtype=float), (v.shape[1],))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log(np.where(v > 0, v, np.nan))
    cols = [np.log(np.maximum(t, 1.0))] if elapsed else []
    for j in range(v.shape[1]):
        base = z[t <= max(baseline_s, t[0]), j]
        base = float(np.nanmedian(base)) if np.isfinite(base).any() else 0.0
        level = _short_median(t, z[:, j] - base, float(shorts[j]))
        level = np.where(np.isfinite(level), level, 0.0)
        cols += [level, np.maximum.accumulate(level)]
        for w in RISES:
            back = np.clip(np.searchsorted(t, (1.0 - w) * t, side="right") - 1, 0, None)
            cols.append(level - level[back])
        above = np.maximum.accumulate(level > np.log(onset_factor))
        first = np.where(above, np.argmax(above) if above.any() else 0, 0)
        cols.append(np.where(above, (t - t[first]) / np.maximum(t, 1.0), 0.0))
    if condition:
        if not (rpm and load_n):
            raise InputError("near-end regression with the operating condition needs rpm and load_n for every life")
        cols += [np.full(t.shape, np.log(rpm)), np.full(t.shape, np.log(load_n))]
    return np.column_stack(cols)


class NearEndRegression:
    """Quantile regression of ``ln(RUL / t)`` on :func:`near_end_features` (see the module docstring).

    ``kind``: ``"boosting"`` (gradient boosting, pinball loss; depth 2, 150 trees, rate 0.05, leaves ≥ 10 rows,
    subsample 0.8, ``seed``) or ``"linear"`` (L1-penalised linear quantile regression on standardised features,
    penalty ``alpha``). ``grid``: (from, to, step) fractions of each library life cut for the training rows.
    The life's ``hi`` holds the raw indicator values, (n,) or (n, k).
    """

    name = "near_end_regression"

    def __init__(self, kind: str = "boosting", *, elapsed: bool = True, condition: bool = False,
                 short_s=60.0, baseline_s: float = 600.0, grid: tuple[float, float, float] = GRID,
                 alpha: float = 0.05, seed: int = 0):
        if kind not in KINDS:
            raise InputError(f"near-end regression kind {kind!r}: use one of {', '.join(KINDS)}")
        self.kind, self.elapsed, self.condition, self.short_s = kind, elapsed, condition, short_s
        self.baseline_s, self.grid, self.alpha, self.seed = baseline_s, grid, alpha, seed

    def _features(self, life: LifeHI) -> np.ndarray:
        return near_end_features(life.times_s, life.hi, short_s=self.short_s, baseline_s=self.baseline_s,
                                 elapsed=self.elapsed, rpm=life.rpm, load_n=life.load_n, condition=self.condition)

    def _rows(self, life: LifeHI) -> tuple[np.ndarray, np.ndarray]:
        x = self._features(life)
        t = np.asarray(life.times_s, dtype=float)
        lo, hi, step = self.grid
        fracs = np.arange(lo, hi + step / 2, step)
        idx = np.unique(np.searchsorted(t, fracs * life.length_s, side="right") - 1)
        idx = idx[(idx >= 0) & (t[np.clip(idx, 0, None)] < life.length_s) & (t[np.clip(idx, 0, None)] > 0)]
        return x[idx], np.log((life.length_s - t[idx]) / t[idx])

    def fit(self, library: list[LifeHI]) -> "NearEndRegression":
        self.mean_, self.scale_, self.models_, self.n_lives_ = fit_quantiles(
            [self._rows(x) for x in library if x.failed and x.length_s], kind=self.kind, alpha=self.alpha,
            seed=self.seed, what="near-end regression")
        return self

    def log_ratio_quantiles(self, current: LifeHI) -> np.ndarray:
        """The sorted quantiles of ``ln(RUL / t)`` at :data:`LEVELS` for the life's last point."""
        z = (self._features(current)[-1:] - self.mean_) / self.scale_
        return np.sort([float(m.predict(z)[0]) for m in self.models_])

    def predict(self, current: LifeHI, *, widen: float = 1.0) -> Estimate:
        draws = draws_of(self.log_ratio_quantiles(current)) * max(float(current.times_s[-1]), 1.0)
        return from_draws(self.name, draws, widen=widen, threshold=None,
                          threshold_source="none: remaining life regressed on short raw-indicator levels",
                          reason=f"{self.kind} quantile regression of ln(RUL / t) on short indicator levels, "
                                 f"their rise and onset age over {self.n_lives_} library lives",
                          details={"kind": self.kind, "elapsed": self.elapsed})


#: the variants :func:`choose` compares: linear or boosted, with or without ln t
VARIANTS = ({"kind": "linear", "elapsed": False}, {"kind": "linear", "elapsed": True},
            {"kind": "boosting", "elapsed": False}, {"kind": "boosting", "elapsed": True})


def choose(library: list[LifeHI], variants: tuple[dict, ...] = VARIANTS, **settings) -> tuple[NearEndRegression,
                                                                                                 dict]:
    """The variant of :class:`NearEndRegression` chosen by leave-one-life-out over ``library`` (fewest answers
    > 50 % late at the PHM 2012 truncations ≥ 85 %, then the best mean accuracy: the rule of
    :func:`vibra.prognostics.rul.regression.choose`), refitted on all of it, and the inner figures. ``settings``
    go to every variant (e.g. ``short_s``, ``grid``, ``seed``)."""
    from vibra.prognostics.rul.regression import choose as choose_by_lolo

    return choose_by_lolo(library, variants, factory=lambda **v: NearEndRegression(**v, **settings))
