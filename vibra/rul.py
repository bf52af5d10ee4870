"""Remaining useful life (RUL) from a library of run-to-failure lives.

Every model takes the library (lives of smoothed health indicators, see :mod:`vibra.health`)
in ``fit`` and a machine's current life so far in ``predict``, and returns an
:class:`Estimate`: P10 / P50 / P90 of the remaining life in seconds, and the failure
threshold it used. Time is absolute seconds since the life started (lives differ in length
by a factor of five and more, so nothing is rescaled by a life length the machine cannot know).

* :class:`WeibullPrior` — the survival prior: a two-parameter Weibull fitted by maximum
  likelihood to the library's lifetimes (replacements without failure enter as right-censored),
  conditioned on the machine having survived until now:
  ``P(RUL ≤ r | T > t) = 1 − S(t + r) / S(t)``, ``S(x) = exp(−(x/λ)^k)``.
* :class:`ExpDegradation` — Gebraeel's exponential degradation model with Bayesian updating.
  The amplitude's excess over its healthy level grows as ``θ·exp(β·τ)`` (τ: seconds since
  onset), so ``y = ln(exp(HI) − 1)`` is the line ``ln θ + β·τ``. The prior of (ln θ, β) is the
  mean and covariance of per-life least-squares fits over the library after their onset, with the
  slope's SD widened to :data:`FLAT` × the fastest onset-to-failure rate in the library (a machine
  degrading faster than any before must be believed); it is updated with the machine's points
  since onset by the conjugate normal rule (noise variance from the library's healthy stretches;
  the likelihood divided by the smoothing span, because smoothed points are not independent;
  recent points weigh more, half-life a quarter of the time since onset, at least 10 points).
  The failure threshold is random: normal with the mean and spread of the library's ``y`` at
  failure. RUL quantiles come from Monte-Carlo draws of (ln θ, β, threshold); the model is left
  out when P(β > 0) < 0.8 or its median passes the cap (3 × the longest library life).
* :class:`Similarity` — the machine's recent HI trajectory (the last ``window_s`` seconds) slid
  along every library life; the best-matching position gives that life's RUL, the match error
  its weight ``exp(−(d/d_min)²/2)``; quantiles from the weighted lives, each spread by a
  log-normal kernel so that five lives still give an interval.
* :func:`estimate` — the chosen model and why: the survival prior before onset (or with too
  small a library), else the similarity and degradation estimates combined (their P10/P50/P90
  averaged on a log scale) when both are available, else the one that is.

Pure: arrays in, dataclasses out; no files.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from vibra.errors import InputError
from vibra.health import HIParams, end_value, onset_index

QUANTILES = (0.1, 0.5, 0.9)
MIN_LIVES = 3  # fewer failed lives than this: the library is too small to trust
FLAT = 10.0  # the slope prior's SD in units of the fastest onset-to-failure rate of the library (chosen
# from 1, 10, 100 on the FEMTO leave-one-bearing-out benchmark: the one constant set by looking at it)


@dataclass
class LifeHI:
    """One life as the RUL models see it: times (s since the life started), smoothed HI, and its end.

    For the machine being predicted, ``length_s`` is None (its end is what we want).
    """

    name: str
    times_s: np.ndarray
    hi: np.ndarray
    length_s: float | None = None
    failed: bool = True
    onset_s: float | None = None


@dataclass
class Estimate:
    """P10 / P50 / P90 of the remaining life (s), the model that gave it and the threshold used."""

    model: str
    p10_s: float
    p50_s: float
    p90_s: float
    threshold: float | None = None
    threshold_source: str = ""
    reason: str = ""
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


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


def _quantiles(samples: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float, float]:
    s = np.asarray(samples, dtype=float)
    if weights is None:
        q = np.quantile(s, QUANTILES)
        return float(q[0]), float(q[1]), float(q[2])
    order = np.argsort(s)
    s, w = s[order], np.asarray(weights, dtype=float)[order]
    cdf = (np.cumsum(w) - 0.5 * w) / w.sum()
    q = np.interp(QUANTILES, cdf, s)
    return float(q[0]), float(q[1]), float(q[2])


# -- survival prior ----------------------------------------------------------------------------

class WeibullPrior:
    """Two-parameter Weibull over the library's lifetimes; ``shape_``, ``scale_s_`` after fit."""

    name = "survival_prior"

    def fit(self, lengths_s, failed=None) -> "WeibullPrior":
        from scipy.optimize import minimize

        t = np.asarray(lengths_s, dtype=float)
        d = np.ones_like(t, dtype=bool) if failed is None else np.asarray(failed, dtype=bool)
        if d.sum() < 1 or (t <= 0).any():
            raise InputError(f"survival prior: needs at least one failed life with a positive length; got {t.tolist()}")
        scale0 = float(np.mean(t))

        def nll(p):  # right-censored Weibull log-likelihood, parameters on a log scale
            k, lam = math.exp(p[0]), math.exp(p[1]) * scale0
            z = (t / lam) ** k
            return -(np.sum(d * (math.log(k) - math.log(lam) + (k - 1) * np.log(t / lam))) - np.sum(z))

        # shape is bounded (0.5 … 20): with two or three lives the MLE can run off to a step
        res = minimize(nll, x0=[math.log(2.0), 0.0], method="L-BFGS-B",
                       bounds=[(math.log(0.5), math.log(20.0)), (math.log(0.05), math.log(20.0))])
        self.shape_, self.scale_s_ = float(math.exp(res.x[0])), float(math.exp(res.x[1]) * scale0)
        self.n_lives_, self.n_failed_ = int(t.size), int(d.sum())
        return self

    def survival(self, t_s: float) -> float:
        return float(math.exp(-((max(t_s, 0.0) / self.scale_s_) ** self.shape_)))

    def rul_quantile(self, elapsed_s: float, q: float) -> float:
        """The q-quantile of the remaining life of a machine that has run ``elapsed_s`` s."""
        z = (max(elapsed_s, 0.0) / self.scale_s_) ** self.shape_ - math.log(1.0 - q)
        return max(self.scale_s_ * z ** (1.0 / self.shape_) - elapsed_s, 0.0)

    def predict(self, current: LifeHI) -> Estimate:
        elapsed = float(current.times_s[-1])
        p10, p50, p90 = (self.rul_quantile(elapsed, q) for q in QUANTILES)
        return Estimate(self.name, p10, p50, p90, None, "none: lifetimes only",
                        f"Weibull over {self.n_lives_} lives (shape {self.shape_:.2f}, scale {self.scale_s_:.0f} s), "
                        f"conditioned on {elapsed:.0f} s survived",
                        {"shape": self.shape_, "scale_s": self.scale_s_})


# -- exponential degradation, Bayesian ---------------------------------------------------------

def _since_onset(life: LifeHI, upto: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    t, h = life.times_s[:upto], life.hi[:upto]
    keep = (t >= life.onset_s) & np.isfinite(h)
    return t[keep] - life.onset_s, h[keep]


def excess(hi: np.ndarray) -> np.ndarray:
    """``ln(x/x₀ − 1)`` from ``HI = ln(x/x₀)``: the log of the amplitude's excess over its healthy level.

    Gebraeel's model ``S = φ + θ·exp(β·τ)`` has a healthy floor φ; with φ = x₀ the excess, not the
    amplitude, grows exponentially, and its log is the straight line the Bayesian update fits. HI is
    floored at 0.01 (x 1 % above baseline), so the log stays finite near the healthy level.
    """
    return np.log(np.expm1(np.maximum(hi, 0.01)))


class ExpDegradation:
    """Exponential degradation with a library prior and Bayesian updating (see the module docstring).

    Learned: ``prior_mean_`` (ln θ, β per s), ``prior_cov_``, ``noise_var_``, ``threshold_`` and
    ``threshold_sd_`` (HI at failure).
    """

    name = "exp_degradation"

    def __init__(self, *, smooth_points: int = 9, n_draws: int = 4000, seed: int = 0, cap_factor: float = 3.0,
                 forget_frac: float = 0.25, min_p_rising: float = 0.8, min_half_life_points: int = 10):
        self.min_half_life_points = min_half_life_points
        self.min_p_rising = min_p_rising
        self.smooth_points = smooth_points
        self.forget_frac = forget_frac
        self.n_draws = n_draws
        self.seed = seed
        self.cap_factor = cap_factor

    def fit(self, library: list[LifeHI]) -> "ExpDegradation":
        coefs, ends, fastest = [], [], []
        for life in library:
            if not life.failed or life.onset_s is None:
                continue
            tau, h = _since_onset(life)
            h = excess(h)
            ends.append(excess(np.array([end_value(life.hi)]))[0])
            if tau.size < 3 or tau[-1] <= 0:
                continue
            a = np.column_stack([np.ones_like(tau), tau])
            c, *_ = np.linalg.lstsq(a, h, rcond=None)
            coefs.append(c)
            fastest.append((h[-1] - h[0]) / tau[-1])  # onset-to-failure rate of this life
        if len(coefs) < 2:
            raise InputError(f"exponential degradation: {len(coefs)} failed lives with a detected onset; needs 2")
        coefs = np.array(coefs)
        self.prior_mean_ = coefs.mean(axis=0)
        # sample covariance plus a floor, so two similar lives do not make the prior a point
        cov = np.cov(coefs.T) if len(coefs) > 2 else np.diag(coefs.var(axis=0))
        # the slope's prior must admit the fastest onset-to-failure rate seen in the library (times
        # FLAT): slopes fitted over whole post-onset spans are small and alike, while the final stage
        # of a bearing can be much steeper, and a tight prior would overrule the machine's own points
        beta_sd = max(float(np.sqrt(cov[1, 1])), max(fastest), 1e-12) * FLAT
        self.prior_cov_ = cov.copy()
        self.prior_cov_[0, 0] += 0.05
        self.prior_cov_[1, 1] = beta_sd ** 2
        # measurement noise from the healthy stretch before each onset, not from the line's residuals
        # (those hold the misfit of the knee and would drown the machine's own points)
        healthy = [np.var(life.hi[: max(3, int(np.searchsorted(life.times_s, life.onset_s)) // 2)])
                   for life in library if life.failed and life.onset_s is not None]
        self.noise_var_ = max(float(np.median(healthy)), 1e-4)
        self.threshold_ = float(np.mean(ends))
        self.threshold_sd_ = float(np.std(ends, ddof=1)) if len(ends) > 1 else 0.1 * abs(self.threshold_)
        self.max_life_s_ = max(float(life.length_s) for life in library if life.length_s)
        self.n_lives_ = len(coefs)
        return self

    @property
    def threshold_hi(self) -> float:
        """The mean failure threshold on the HI scale (``ln(1 + e^y)``)."""
        return float(np.log1p(np.exp(self.threshold_)))

    def posterior(self, tau: np.ndarray, h: np.ndarray, weights: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Conjugate normal update of (ln θ, β) with points (τ, HI), each weighted (default 1);
        returns (mean, covariance)."""
        a = np.column_stack([np.ones_like(tau), tau])
        w = np.ones_like(tau) if weights is None else weights
        prec0 = np.linalg.inv(self.prior_cov_)
        scale = 1.0 / (self.noise_var_ * max(self.smooth_points, 1))
        prec = prec0 + scale * (a * w[:, None]).T @ a
        cov = np.linalg.inv(prec)
        mean = cov @ (prec0 @ self.prior_mean_ + scale * (a * w[:, None]).T @ h)
        return mean, cov

    def predict(self, current: LifeHI) -> Estimate:
        if current.onset_s is None:
            raise InputError("exponential degradation: no onset yet; the survival prior applies")
        tau, h = _since_onset(current)
        h = excess(h)
        now = float(tau[-1]) if tau.size else 0.0
        # forgetting: a point's weight halves every `half_life` s back from now, so the fit follows
        # the current (usually accelerating) stage rather than the whole time since onset
        step = float(np.median(np.diff(tau))) if tau.size > 1 else 1.0
        half_life = max(self.forget_frac * now, self.min_half_life_points * step, 1e-9)
        weights = 0.5 ** ((now - tau) / half_life)
        mean, cov = self.posterior(tau, h, weights)
        rng = np.random.default_rng(self.seed)
        draws = rng.multivariate_normal(mean, cov, self.n_draws)
        thr = rng.normal(self.threshold_, self.threshold_sd_, self.n_draws)
        cap = self.cap_factor * self.max_life_s_
        with np.errstate(divide="ignore", invalid="ignore"):
            cross = (thr - draws[:, 0]) / draws[:, 1]
        rul = np.where(draws[:, 1] > 0, cross - now, cap)
        rul = np.clip(np.nan_to_num(rul, nan=cap), 0.0, cap)
        p10, p50, p90 = _quantiles(rul)
        # usable only when the HI is rising (P(β > 0) ≥ min_p_rising): a flat HI says nothing about when
        # it will reach the threshold, and the capped answer would be a late warning
        return Estimate(self.name, p10, p50, p90, self.threshold_hi,
                        f"HI at failure over {self.n_lives_} lives: {self.threshold_hi:.3f} "
                        f"(ln(e^HI − 1) = {self.threshold_:.3f} ± {self.threshold_sd_:.3f})",
                        f"ln(e^HI − 1) = ln θ + β·τ, posterior β = {mean[1]:.3g}/s from {tau.size} points since onset",
                        {"posterior_mean": mean.tolist(), "p_rising": float((draws[:, 1] > 0).mean()),
                         "usable": bool((draws[:, 1] > 0).mean() >= self.min_p_rising and p50 < cap)})


# -- similarity --------------------------------------------------------------------------------

class Similarity:
    """RUL from the library lives whose HI trajectory best matches the machine's recent one."""

    name = "similarity"

    def __init__(self, *, window_s: float = 600.0, spread_log: float = 0.35, min_points: int = 6):
        self.window_s = window_s
        self.spread_log = spread_log
        self.min_points = min_points

    def fit(self, library: list[LifeHI]) -> "Similarity":
        self.library_ = [life for life in library if life.failed and life.length_s]
        if len(self.library_) < 2:
            raise InputError(f"similarity: {len(self.library_)} failed lives in the library; needs 2")
        self.threshold_ = float(np.mean([end_value(life.hi) for life in self.library_]))
        return self

    def _match(self, life: LifeHI, rel_t: np.ndarray, seg: np.ndarray, after_onset: bool) -> tuple[float, float]:
        """(distance, RUL) of the best position of the recent segment (times ``rel_t`` ≤ 0 before now)
        in ``life``: the segment is slid along the life (after the life's onset when the machine is
        past its own, so a degrading machine is matched with the degrading stage) and the position
        with the smallest RMS difference gives ``RUL = length − position``."""
        t, h = life.times_s, life.hi
        ok = np.isfinite(h)
        t, h = t[ok], h[ok]
        span = -float(rel_t[0])
        ends = t[t >= t[0] + span]
        if life.onset_s is not None and after_onset:
            ends = ends[ends >= life.onset_s]
        if ends.size == 0:
            return math.inf, 0.0
        ends = ends[:: max(1, ends.size // 400)]  # ≤ 400 candidate positions per life
        ref = np.interp(ends[:, None] + rel_t[None, :], t, h)
        d = np.sqrt(np.mean((ref - seg[None, :]) ** 2, axis=1))
        i = int(np.argmin(d))
        return float(d[i]), max(float(life.length_s) - float(ends[i]), 0.0)

    def predict(self, current: LifeHI) -> Estimate:
        t, h = current.times_s, current.hi
        ok = np.isfinite(h)
        t, h = t[ok], h[ok]
        now = float(t[-1])
        keep = t >= now - self.window_s
        if keep.sum() < self.min_points:  # sparse data (e.g. hourly): the last min_points points instead
            keep = np.zeros_like(keep)
            keep[-self.min_points:] = True
        rel_t, seg = t[keep] - now, h[keep]
        matches = [self._match(life, rel_t, seg, current.onset_s is not None) for life in self.library_]
        d = np.array([m[0] for m in matches])
        rul = np.array([m[1] for m in matches])
        finite = np.isfinite(d)
        if not finite.any():
            raise InputError("similarity: no library life is long enough to match the current window")
        d, rul = d[finite], rul[finite]
        d0 = max(float(d.min()), 1e-3)
        w = np.exp(-0.5 * (d / d0) ** 2)
        # each life's RUL spread by a log-normal kernel: samples = rul · exp(spread · z)
        z = np.array([-1.2816, -0.5244, 0.0, 0.5244, 1.2816])  # normal deciles 10/30/50/70/90
        samples = (np.maximum(rul, 1.0)[:, None] * np.exp(self.spread_log * z)[None, :]).ravel()
        p10, p50, p90 = _quantiles(samples, np.repeat(w, z.size))
        return Estimate(self.name, p10, p50, p90, self.threshold_, "mean HI at failure of the library (for reference)",
                        f"the last {-rel_t[0]:.0f} s ({rel_t.size} points) of HI matched against {len(rul)} lives",
                        {"lives": [{"name": life.name, "distance": float(dd), "rul_s": float(r), "weight": float(ww)}
                                   for life, dd, r, ww in zip([x for x, f in zip(self.library_, finite) if f],
                                                              d, rul, w / w.sum())]})


# -- the chosen model --------------------------------------------------------------------------

@dataclass
class Library:
    """Fitted models over a library of lives, ready to estimate any machine's RUL."""

    lives: list[LifeHI]
    params: HIParams
    prior: WeibullPrior
    degradation: ExpDegradation | None
    similarity: Similarity | None

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
    lives = [LifeHI(life.name, life.times_s, life.hi, life.length_s, life.failed,
                    onset_time(life.times_s, life.hi, params)) for life in lives]
    prior = WeibullPrior().fit([life.length_s for life in lives], [life.failed for life in lives])
    try:
        degradation = ExpDegradation(smooth_points=params.smooth_points).fit(lives)
    except InputError:
        degradation = None
    try:
        similarity = Similarity(**({"window_s": window_s} if window_s else {})).fit(lives)
    except InputError:
        similarity = None
    return Library(lives, params, prior, degradation, similarity)


def _log_mean(estimates: list[Estimate]) -> tuple[float, float, float]:
    out = []
    for key in ("p10_s", "p50_s", "p90_s"):
        vals = np.array([max(getattr(e, key), 1.0) for e in estimates])
        out.append(float(np.exp(np.mean(np.log(vals)))))
    return out[0], out[1], out[2]


def estimate(library: Library, times_s: np.ndarray, hi: np.ndarray) -> Estimate:
    """The RUL of a machine whose current life has run ``times_s`` (s since its start) with HI ``hi``.

    Before onset, or when the library holds fewer than :data:`MIN_LIVES` failed lives, the
    answer is the survival prior, said as such in ``reason``.
    """
    times_s, hi = np.asarray(times_s, dtype=float), np.asarray(hi, dtype=float)
    onset = onset_time(times_s, hi, library.params)
    current = LifeHI("current", times_s, hi, None, True, onset)
    prior = library.prior.predict(current)
    base = {"onset_s": onset, "elapsed_s": float(times_s[-1]), "survival_prior": prior.as_dict()}
    if onset is None:
        prior.reason = "survival prior: no degradation onset yet (HI inside its healthy band); " + prior.reason
        prior.details.update(base)
        return prior
    if library.n_failed < MIN_LIVES:
        prior.reason = (f"survival prior: only {library.n_failed} failed lives in the library (< {MIN_LIVES}); "
                        + prior.reason)
        prior.details.update(base)
        return prior
    found, dropped = [], []
    for model in (library.similarity, library.degradation):
        if model is not None:
            e = model.predict(current)
            (found if e.details.get("usable", True) else dropped).append(e)
    models = {e.model: e.as_dict() for e in found + dropped}
    if not found:
        prior.reason = "survival prior: no degradation model applies (" + (
            "; ".join(f"{e.model}: HI not rising" for e in dropped) or "none fitted on the library") + "); " + prior.reason
        prior.details.update(base, models=models)
        return prior
    if len(found) == 1:
        e = found[0]
        e.reason = f"{e.model}: the only degradation model that applies; {e.reason}"
        e.details = {**base, "models": models}
        return e
    # late warnings cost the most (PHM 2012 punishes 5 % late like 20 % early): take the earlier
    # P10 and P50 of the two models and the later P90, so the interval holds both
    thr = library.degradation.threshold_hi if library.degradation else None
    return Estimate("combined", min(e.p10_s for e in found), min(e.p50_s for e in found),
                    max(e.p90_s for e in found), thr, found[-1].threshold_source,
                    "after onset: similarity and exponential degradation combined (earlier P10/P50, later P90)",
                    {**base, "models": models})


def format_duration(seconds: float | None) -> str:
    """``95`` → ``1.6 min``; ``7200`` → ``2.0 h``; ``360000`` → ``4.2 d``; None → ``—``."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
