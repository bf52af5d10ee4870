"""Quantile regression of the log remaining life on causal features of the health indicators at time t.

Every point of every failed library life between :data:`FIT_FROM` and :data:`FIT_TO` of its life is one
training row (each life weighs the same in total): the features are what a machine shows at that time — its
elapsed time, each HI's level (relative to its own early baseline, log scale: :mod:`vibra.prognostics.health`),
its running maximum, and its rise over the last 20 % and 50 % of the elapsed time (scale-free windows, as lives
differ 5× in length), optionally the operating condition (ln rpm, ln load) — and the target is ``ln(L − t)``.
One model per quantile level (:data:`LEVELS`) — scikit-learn's gradient boosting with the pinball loss, shallow
and shrunk, or a linear quantile regression with an L1 penalty (small data: five or six lives); the quantiles
are sorted (no crossing) and read as the predictive distribution of ``ln RUL``, from which the planning answer
is the expected-score optimum (:func:`vibra.prognostics.rul.metric.planning_point`).

Causal by construction: the features at point i use the points ≤ i only.
"""

from __future__ import annotations

import numpy as np

from vibra.errors import InputError
from vibra.prognostics.rul.core import Estimate, LifeHI, from_draws

LEVELS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
FIT_FROM, FIT_TO = 0.5, 0.97  # the training rows: points between these fractions of each library life (the PHM 2012
# truncations are 55–95 %: the rows span what is asked, a little wider)
WINDOWS = (0.8, 0.5)  # the rise of each HI since these fractions of the elapsed time
KINDS = ("boosting", "linear")


def causal_features(times_s: np.ndarray, hi: np.ndarray, *, rpm: float | None = None, load_n: float | None = None,
                    condition: bool = False, elapsed: bool = True) -> np.ndarray:
    """Feature rows (n, f) of a life at each of its points: ``ln t``; per HI column its level, running maximum
    and rise since ``w·t`` for ``w`` in :data:`WINDOWS`; with ``condition``, ``ln rpm`` and ``ln load``.

    ``hi``: (n,) or (n, k) smoothed health indicators. Point i depends on points ≤ i only.
    """
    t = np.asarray(times_s, dtype=float)
    h = np.asarray(hi, dtype=float)
    h = h[:, None] if h.ndim == 1 else h
    h = np.where(np.isfinite(h), h, 0.0)
    cols = [np.log(np.maximum(t, 1.0))] if elapsed else []
    for j in range(h.shape[1]):
        x = h[:, j]
        cols += [x, np.maximum.accumulate(x)]
        for w in WINDOWS:
            back = np.clip(np.searchsorted(t, w * t, side="right") - 1, 0, None)
            cols.append(x - x[back])
    if condition:
        if not (rpm and load_n):
            raise InputError("HI regression with the operating condition needs rpm and load_n for every life")
        cols += [np.full(t.shape, np.log(rpm)), np.full(t.shape, np.log(load_n))]
    return np.column_stack(cols)


def draws_of(log_quantiles: np.ndarray) -> np.ndarray:
    """200 equally weighted draws of exp(·) of the quantile function through ``log_quantiles`` at :data:`LEVELS`
    (interpolated between the levels, flat beyond the outer ones)."""
    return np.exp(np.interp((np.arange(200) + 0.5) / 200, LEVELS, log_quantiles))


def fit_quantiles(rows: list[tuple[np.ndarray, np.ndarray]], *, kind: str, alpha: float, seed: int,
                  what: str) -> tuple[np.ndarray, np.ndarray, list, int]:
    """One quantile model per level of :data:`LEVELS` on the (features, target) rows of each library life, every
    life weighted equally, features standardised: ``(mean, scale, models, lives used)``. ``kind``: ``"boosting"``
    (gradient boosting, pinball loss) or linear L1 (``alpha`` its penalty); ``what`` names the model in errors."""
    rows = [(x, y) for x, y in rows if y.size]
    if len(rows) < 2:
        raise InputError(f"{what}: {len(rows)} failed lives with points to learn from; needs 2")
    x = np.concatenate([r[0] for r in rows])
    y = np.concatenate([r[1] for r in rows])
    w = np.concatenate([np.full(r[1].size, 1.0 / r[1].size) for r in rows])
    w = w * w.size / w.sum()
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    models = []
    for q in LEVELS:
        if kind == "boosting":
            from sklearn.ensemble import GradientBoostingRegressor

            m = GradientBoostingRegressor(loss="quantile", alpha=q, n_estimators=150, max_depth=2,
                                          learning_rate=0.05, min_samples_leaf=10, subsample=0.8, random_state=seed)
        else:
            from sklearn.linear_model import QuantileRegressor

            m = QuantileRegressor(quantile=q, alpha=alpha, solver="highs")
        models.append(m.fit(z, y, sample_weight=w))
    return mean, scale, models, len(rows)


class HIRegression:
    """Quantile regression of ``ln RUL`` on :func:`causal_features` (see the module docstring).

    ``kind``: ``"boosting"`` (gradient boosting, pinball loss; depth 2, 150 trees, rate 0.05, leaves ≥ 10 rows,
    subsample 0.8, ``seed``) or ``"linear"`` (L1-penalised linear quantile regression on standardised features,
    penalty ``alpha``); ``condition``: add the operating condition to the features; ``ratio``: regress
    ``ln(RUL / t)`` instead of ``ln RUL`` (the remaining life as a multiple of the time run, free of the time scale).
    """

    name = "hi_regression"

    def __init__(self, kind: str = "boosting", *, condition: bool = False, ratio: bool = False, elapsed: bool = True,
                 alpha: float = 0.05, seed: int = 0):
        if kind not in KINDS:
            raise InputError(f"HI regression kind {kind!r}: use one of {', '.join(KINDS)}")
        self.kind, self.condition, self.ratio, self.alpha, self.seed = kind, condition, ratio, alpha, seed
        self.elapsed = elapsed

    def _rows(self, life: LifeHI) -> tuple[np.ndarray, np.ndarray]:
        x = causal_features(life.times_s, life.hi, rpm=life.rpm, load_n=life.load_n, condition=self.condition,
                            elapsed=self.elapsed)
        t = np.asarray(life.times_s, dtype=float)
        keep = (t >= FIT_FROM * life.length_s) & (t <= FIT_TO * life.length_s) & (t < life.length_s)
        y = np.log(life.length_s - t[keep])
        return x[keep], y - np.log(np.maximum(t[keep], 1.0)) if self.ratio else y

    def fit(self, library: list[LifeHI]) -> "HIRegression":
        self.mean_, self.scale_, self.models_, self.n_lives_ = fit_quantiles(
            [self._rows(x) for x in library if x.failed and x.length_s], kind=self.kind, alpha=self.alpha,
            seed=self.seed, what="HI regression")
        return self

    def log_quantiles(self, times_s: np.ndarray, hi: np.ndarray, *, rpm: float | None = None,
                      load_n: float | None = None) -> np.ndarray:
        """The sorted quantiles of ``ln RUL`` at :data:`LEVELS` for a life's last point."""
        x = causal_features(times_s, hi, rpm=rpm, load_n=load_n, condition=self.condition,
                            elapsed=self.elapsed)[-1:]
        z = (x - self.mean_) / self.scale_
        return np.sort([float(m.predict(z)[0]) for m in self.models_])

    def predict(self, current: LifeHI, *, widen: float = 1.0) -> Estimate:
        draws = draws_of(self.log_quantiles(current.times_s, current.hi, rpm=current.rpm, load_n=current.load_n))
        if self.ratio:
            draws = draws * max(float(current.times_s[-1]), 1.0)
        return from_draws(self.name, draws, widen=widen, threshold=None,
                          threshold_source="none: remaining life regressed on the HI's level and rise",
                          reason=f"{self.kind} quantile regression of ln RUL on the HI level, rise and elapsed "
                                 f"time over {self.n_lives_} library lives",
                          details={"kind": self.kind, "condition": self.condition})


#: the variants :func:`choose` compares (all regress ln(RUL / t)): linear or boosted, with or without ln t
VARIANTS = ({"kind": "linear", "elapsed": False}, {"kind": "linear", "elapsed": True},
            {"kind": "boosting", "elapsed": False}, {"kind": "boosting", "elapsed": True})


def choose(library: list[LifeHI], variants: tuple[dict, ...] = VARIANTS, *, factory=None) -> tuple[HIRegression, dict]:
    """The variant of :class:`HIRegression` (ratio target) chosen by leave-one-life-out over ``library``, refitted
    on all of it, and the inner figures. ``factory(**variant)`` builds a candidate (default
    ``HIRegression(ratio=True, **variant)``; :func:`vibra.prognostics.rul.near_end.choose` passes its own).

    Each variant, fitted on all lives but one, answers the left-out life at every PHM 2012 truncation
    (:data:`~vibra.prognostics.rul.core.OFFICIAL_FRACTIONS`) from its points up to the cut (the planning
    answer); the winner has the fewest answers more than 50 % late at truncations ≥
    :data:`~vibra.prognostics.rul.core.OFFICIAL_LATE_FROM`, then the best mean PHM 2012 accuracy (ties: the
    first listed). Nested: the machine being estimated takes no part.
    """
    from vibra.prognostics.rul.core import LATE_LIMIT, OFFICIAL_FRACTIONS, OFFICIAL_LATE_FROM
    from vibra.prognostics.rul.metric import phm_accuracy

    factory = factory or (lambda **v: HIRegression(ratio=True, **v))
    failed = [x for x in library if x.failed and x.length_s]
    if len(failed) < 3:
        raise InputError(f"HI regression choice: {len(failed)} failed lives; leave-one-life-out needs 3")
    tried = []
    for v in variants:
        acc, late = [], 0
        for k, held in enumerate(failed):
            model = factory(**v).fit([x for j, x in enumerate(failed) if j != k])
            for f in OFFICIAL_FRACTIONS:
                n = int(np.searchsorted(held.times_s, f * held.length_s, side="right"))
                if n < 2:
                    continue
                t = float(held.times_s[n - 1])
                e = model.predict(LifeHI(held.name, held.times_s[:n], held.hi[:n], None, True, rpm=held.rpm,
                                         load_n=held.load_n))
                true = held.length_s - t
                acc.append(phm_accuracy(true, e.planning_s))
                late += int(f >= OFFICIAL_LATE_FROM - 1e-9 and e.planning_s > LATE_LIMIT * true)
        tried.append({**v, "score": float(np.mean(acc)), "late": late})
    best = min(range(len(tried)), key=lambda i: (tried[i]["late"], -tried[i]["score"], i))
    return factory(**variants[best]).fit(failed), {"chosen": tried[best], "tried": tried}
