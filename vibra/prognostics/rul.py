"""Remaining useful life (RUL) from a library of run-to-failure lives.

Every model takes the library (lives of smoothed health indicators, see :mod:`vibra.prognostics.health`)
in ``fit`` and a machine's current life so far in ``predict``, and returns an
:class:`Estimate`: P10 / P50 / P90 of the remaining life in seconds, and the failure
threshold it used (if any). Time is seconds since the life started.

* :class:`WeibullPrior` — the survival prior: a two-parameter Weibull fitted by maximum
  likelihood to the library's lifetimes (replacements without failure enter as right-censored),
  conditioned on the machine having survived until now:
  ``P(RUL ≤ r | T > t) = 1 − S(t + r) / S(t)``, ``S(x) = exp(−(x/λ)^k)``.
* :class:`ExpDegradation` — Gebraeel's exponential degradation model with Bayesian updating.
  The amplitude's excess over its healthy level grows as ``θ·exp(β·τ)`` (τ: seconds since
  onset), so ``y = ln(exp(HI) − 1)`` is the line ``ln θ + β·τ``. The prior of (ln θ, β) is the
  mean and covariance of per-life least-squares fits over the library after their onset, with the
  slope's SD widened to ``flat`` (one of :data:`FLATS`, chosen by :func:`tune`) × the fastest
  onset-to-failure rate in the library (a machine
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
* :class:`LifeFraction` — the remaining life as a multiple of the time already run, from the
  library's lives at comparable HI and onset share (similarity in life fraction, free of the
  time scale).
* :func:`tune` — nested model choice: leave-one-life-out over the library picks the model and its
  settings (life-fraction kernel and scale; the slope-prior width) whose planning answers have the
  fewest > 50 % late in the last 20 % of a life, then the best PHM 2012 score, each candidate's
  distribution widened by a split-conformal rule over lives.
* :func:`fit_lives` — from raw lives: the HI (and its smoothing span, one of :data:`SMOOTH_SPANS`)
  and the fitted library, the span chosen by the same leave-one-life-out figures as the model.
* :func:`estimate` — the chosen model and why: the survival prior before onset (or with too
  small a library), else the model :func:`tune` chose for this library. Its ``basis`` says which
  (:data:`BASES`), and :func:`rul_text` shows a prior as a prior, never as a bare RUL.

Every model gives a predictive distribution of the RUL (draws and weights). P10 / P50 / P90 are its
quantiles — P50 is the median, named as such — and ``planning_s`` is the answer that maximises the expected
PHM 2012 accuracy under it (:func:`planning_point`): earlier than the median, because the score punishes a
late answer four times an early one.

Pure: arrays in, dataclasses out; no files.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from vibra.errors import InputError
from vibra.prognostics.health import HIParams, Indicator, Life, end_value, onset_index, select

QUANTILES = (0.1, 0.5, 0.9)
MIN_LIVES = 3  # fewer failed lives than this: the library is too small to trust
FLATS = (1.0, 10.0, 100.0)  # the slope prior's SD in units of the fastest onset-to-failure rate of the library:
# chosen among these per library by leave-one-life-out (:func:`tune`), never on the machine being estimated


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


def rul_text(p10_s: float, p50_s: float, p90_s: float, basis: str = "model") -> str:
    """How an answer reads in the fleet table, on the machine page and in ``vibra rul``.

    A model's answer: ``4.2 h (1.0 h–9.0 h)`` (P50 (P10–P90)). The survival prior says what it is:
    ``no onset yet — survival prior P50 12.5 h (3.0 h–20.1 h)``.
    """
    span = f"{format_duration(p50_s)} ({format_duration(p10_s)}–{format_duration(p90_s)})"
    if basis == "model":
        return span
    return f"{PRIOR_WHY.get(basis, basis)} — survival prior P50 {span}"


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


def _reduced(draws, weights=None, n: int = PLANNING_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(values, weights summing to 1) of a weighted sample; more than ``n`` values become ``n`` quantiles."""
    d = np.maximum(np.asarray(draws, dtype=float).ravel(), MIN_RUL_S)
    w = np.ones_like(d) if weights is None else np.asarray(weights, dtype=float).ravel()
    ok = np.isfinite(d) & np.isfinite(w) & (w > 0)
    d, w = d[ok], w[ok]
    if d.size == 0:
        raise InputError("planning answer: the predictive distribution has no finite draw with a positive weight")
    if d.size > n:
        d, w = _weighted_quantiles(d, w, (np.arange(n) + 0.5) / n), np.ones(n)
    return d, w / w.sum()


def expected_accuracy(r: float, draws, weights=None) -> float:
    """E[A(r, RUL)]: the PHM 2012 accuracy of the answer ``r`` averaged over the predictive distribution."""
    d, w = _reduced(draws, weights, n=10 ** 9)
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
    d, w = _reduced(draws, weights)
    candidates = np.unique(d)
    expected = phm_accuracies(d[None, :], candidates[:, None]) @ w
    return float(candidates[int(np.argmax(expected))])


def widen_draws(draws, widen: float, weights=None) -> np.ndarray:
    """The draws moved away from their (weighted) median by ``widen`` on the log scale: the interval
    calibration (:func:`tune`) applied to the whole distribution, so the planning answer sees it too."""
    d = np.maximum(np.asarray(draws, dtype=float), MIN_RUL_S)
    if widen == 1.0:
        return d
    w = np.ones_like(d) if weights is None else np.asarray(weights, dtype=float)
    m = math.log(float(_weighted_quantiles(d, w, [0.5])[0]))
    return np.exp(m + widen * (np.log(d) - m))


def from_draws(model: str, draws, weights=None, *, widen: float = 1.0, **kw) -> Estimate:
    """An :class:`Estimate` from a predictive distribution: P10 / P50 / P90 its quantiles, ``planning_s`` its
    expected-score optimum (:func:`planning_point`), the draws kept; widened about its median by ``widen``."""
    d = np.asarray(draws, dtype=float).ravel()
    w = None if weights is None else np.asarray(weights, dtype=float).ravel()
    if widen != 1.0:
        d = widen_draws(d, widen, w)
    p10, p50, p90 = _quantiles(d, w)
    return Estimate(model, p10, p50, p90, planning_s=planning_point(d, w), draws_s=d, draw_weights=w, **kw)


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
        levels = (np.arange(PLANNING_POINTS) + 0.5) / PLANNING_POINTS
        draws = np.array([self.rul_quantile(elapsed, q) for q in levels])
        e = from_draws(self.name, draws, threshold=None, threshold_source="none: lifetimes only",
                       reason=f"Weibull over {self.n_lives_} lives (shape {self.shape_:.2f}, scale {self.scale_s_:.0f} s), "
                              f"conditioned on {elapsed:.0f} s survived",
                       details={"shape": self.shape_, "scale_s": self.scale_s_}, basis="prior_no_onset")
        # the quantiles exactly, not interpolated between draws
        e.p10_s, e.p50_s, e.p90_s = (self.rul_quantile(elapsed, q) for q in QUANTILES)
        return e


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
                 forget_frac: float = 0.25, min_p_rising: float = 0.8, min_half_life_points: int = 10,
                 flat: float = 10.0):
        self.flat = flat
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
        # ``flat``): slopes fitted over whole post-onset spans are small and alike, while the final stage
        # of a bearing can be much steeper, and a tight prior would overrule the machine's own points
        beta_sd = max(float(np.sqrt(cov[1, 1])), max(fastest), 1e-12) * self.flat
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
        # usable only when the HI is rising (P(β > 0) ≥ min_p_rising): a flat HI says nothing about when
        # it will reach the threshold, and the capped answer would be a late warning
        e = from_draws(self.name, rul, threshold=self.threshold_hi,
                       threshold_source=f"HI at failure over {self.n_lives_} lives: {self.threshold_hi:.3f} "
                                        f"(ln(e^HI − 1) = {self.threshold_:.3f} ± {self.threshold_sd_:.3f})",
                       reason=f"ln(e^HI − 1) = ln θ + β·τ, posterior β = {mean[1]:.3g}/s from {tau.size} points since onset")
        e.details = {"posterior_mean": mean.tolist(), "p_rising": float((draws[:, 1] > 0).mean()),
                     "usable": bool((draws[:, 1] > 0).mean() >= self.min_p_rising and e.p50_s < cap)}
        return e


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
        return from_draws(self.name, samples, np.repeat(w, z.size), threshold=self.threshold_,
                          threshold_source="mean HI at failure of the library (for reference)",
                          reason=f"the last {-rel_t[0]:.0f} s ({rel_t.size} points) of HI matched against {len(rul)} lives",
                          details={"lives": [{"name": life.name, "distance": float(dd), "rul_s": float(r),
                                              "weight": float(ww)}
                                             for life, dd, r, ww in zip([x for x, f in zip(self.library_, finite) if f],
                                                                        d, rul, w / w.sum())]})


# -- life fraction (similarity in life fraction), tuned inside the library ----------------------

#: The HI kernel's width, the scale and the interval's widening are chosen by leave-one-life-out over the
#: library itself (nested: never on the machine being scored). These are the grids searched.
# kernel widths (HI in ln units, ln(time since onset / elapsed)); None: that feature is not used
BANDWIDTHS = tuple((bh, bu) for bh in (None, 0.5) for bu in (None, 1.0, 0.5))
SCALES = ("elapsed", "onset")  # ρ = RUL / elapsed time, or RUL / time since onset
WIDENINGS = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0)
TARGET_COVERAGE = 0.8  # the P10–P90 interval is widened until it covers this share of held-out lives' points
# the questions a held-out library life is asked: at these fractions of its life when past its onset, and
# at these fractions of the span from its onset to its end (so a late onset still gives points)
EVAL_LIFE_FRACTIONS = tuple(float(round(f, 2)) for f in np.arange(0.5, 0.951, 0.05))
EVAL_ONSET_FRACTIONS = (0.25, 0.5, 0.75)
# the constraint: no answer more than 50 % late (point > 1.5 × true RUL) in the last 20 % of a life
LATE_ZONE, LATE_LIMIT = 0.8, 1.5


def _weighted_quantiles(samples: np.ndarray, weights: np.ndarray, levels) -> np.ndarray:
    order = np.argsort(samples)
    s, w = samples[order], weights[order]
    cdf = (np.cumsum(w) - 0.5 * w) / w.sum()
    return np.interp(np.asarray(levels, dtype=float), cdf, s)


def _onset_known_index(life: LifeHI, params: HIParams) -> int | None:
    """The first index at which the onset rule has decided (the onset plus ``persist_points − 1``)."""
    if life.onset_s is None:
        return None
    return int(np.searchsorted(life.times_s, life.onset_s)) + params.persist_points - 1


class LifeFraction:
    """RUL as a multiple of the time the machine has already run, learned from the library's lives.

    Every library life contributes the points it is asked at in :func:`tune` (after its onset is known:
    see :func:`_eval_points`), each with ``ρ = RUL / elapsed`` — the life fraction ``f = 1 / (1 + ρ)`` —,
    its HI ``h`` and its onset share ``u = ln(time since onset / elapsed)``. For a machine at elapsed
    ``t`` the distribution of ``ln ρ`` is the library's, each life with the same total weight and each
    point weighted by a Gaussian kernel on ``h`` and on ``u`` (``bandwidth`` = (width on h, width on
    u); None: that feature unused); ``RUL = t·ρ`` (``scale="onset"``: ρ is a multiple of the time since
    onset instead). The onset share tells a machine just past a late onset (u ≪ 0: a short final stage)
    from one long past an early one (u ≈ 0: a long plateau). Life fraction is free of the time scale, so
    lives of hours (FEMTO) and of days (IMS) inform each other, and of the operating condition as far as
    the life's shape is. The predictive distribution is that weighted sample.
    """

    name = "life_fraction"

    def __init__(self, params: HIParams, *, bandwidth: tuple[float | None, float | None] | None = None,
                 scale: str = "elapsed"):
        self.scale = scale
        self.params = params
        self.bandwidth = bandwidth
        self.tuning_: dict = {"tuned": False}

    def fit(self, library: list[LifeHI]) -> "LifeFraction":
        h, u, rho, w = [], [], [], []
        names = []
        for life in library:
            idx = _eval_points(life, self.params) if life.failed and life.length_s else []
            t, hi = life.times_s[idx], life.hi[idx]
            keep = (t > 0) & np.isfinite(hi)
            t, hi = t[keep], hi[keep]
            if t.size == 0:
                continue
            h.append(hi)
            u.append(_onset_share(t, life.onset_s))
            rho.append(np.log((life.length_s - t) / self._base(t, life.onset_s)))
            w.append(np.full(t.size, 1.0 / t.size))
            names.append(life.name)
        if len(h) < 2:
            raise InputError(f"life fraction: {len(h)} failed lives with a detected onset; needs 2")
        self.h_, self.u_ = np.concatenate(h), np.concatenate(u)
        self.log_rho_, self.w_ = np.concatenate(rho), np.concatenate(w)
        self.lives_ = names
        return self

    def weights(self, h_now: float, u_now: float) -> np.ndarray:
        """The weight of every library point of ln ρ for a machine with HI ``h_now`` and onset share ``u_now``."""
        w = self.w_
        z2 = np.zeros_like(w)
        for bw, x, now in zip(self.bandwidth or (None, None), (self.h_, self.u_), (h_now, u_now)):
            if bw is not None and np.isfinite(now):
                z2 = z2 + ((x - now) / bw) ** 2
        return w * np.exp(-0.5 * (z2 - z2.min()))  # shifted: a machine beyond the library's range keeps its nearest

    def _base(self, t: np.ndarray | float, onset_s: float | None):
        """The time ρ is a multiple of: the elapsed time, or (``scale="onset"``) the time since onset,
        floored at 1 % of the elapsed time."""
        t = np.asarray(t, dtype=float)
        if self.scale == "elapsed" or onset_s is None:
            return t
        return np.maximum(t - onset_s, 0.01 * t)

    def draws(self, elapsed: float, h_now: float, onset_s: float | None) -> tuple[np.ndarray, np.ndarray]:
        """(RUL draws in s, weights) for a machine at ``elapsed`` s with HI ``h_now``."""
        u_now = float(_onset_share(np.array([elapsed]), onset_s if onset_s is not None else elapsed)[0])
        return float(self._base(elapsed, onset_s)) * np.exp(self.log_rho_), self.weights(h_now, u_now)

    def predict(self, current: LifeHI) -> Estimate:
        elapsed = float(current.times_s[-1])
        finite = current.hi[np.isfinite(current.hi)]
        h_now = float(finite[-1]) if finite.size else math.nan
        d, w = self.draws(elapsed, h_now, current.onset_s)
        bh, bu = self.bandwidth or (None, None)
        kernel = ", ".join(([f"HI kernel width {bh}"] if bh else []) + ([f"onset-share kernel width {bu}"] if bu else [])
                           ) or "all post-onset points alike"
        return from_draws(self.name, d, w, threshold=None,
                          threshold_source="none: remaining life as a multiple of the time run",
                          reason=f"RUL = {'elapsed' if self.scale == 'elapsed' else 'time since onset'} × "
                                 f"(remaining / that time) of {len(self.lives_)} library lives after their onset "
                                 f"({kernel})",
                          details={"bandwidth": self.bandwidth, "scale": self.scale, "tuning": self.tuning_})


def _onset_share(t: np.ndarray, onset_s: float) -> np.ndarray:
    """``ln(time since onset / elapsed)``: near 0 long after an early onset, very negative just after a late one
    (the time since onset is floored at 1 % of the elapsed time)."""
    t = np.asarray(t, dtype=float)
    return np.log(np.maximum(t - onset_s, 0.01 * t) / np.maximum(t, 1e-9))


def _eval_points(life: LifeHI, params: HIParams) -> list[int]:
    """Indices of the questions a held-out library life is asked (see :data:`EVAL_LIFE_FRACTIONS`)."""
    k = _onset_known_index(life, params)
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


def _answer_of(choice: dict, lf: Estimate | None, sim: Estimate | None, deg: Estimate | None) -> Estimate | None:
    """The estimate a model choice gives (before widening): ``life_fraction``; ``similarity``;
    ``exp_degradation`` (similarity when the HI is not rising); ``combined``: the equal mixture of the
    predictive distributions of similarity and (when usable) exponential degradation."""
    usable_deg = deg if deg is not None and deg.details.get("usable", True) else None
    kind = choice["model"]
    if kind == "life_fraction":
        return lf
    if kind == "similarity" or (kind == "exp_degradation" and usable_deg is None):
        return sim
    if kind == "exp_degradation":
        return usable_deg
    found = [e for e in (sim, usable_deg) if e is not None]
    if len(found) < 2:
        return found[0] if found else None
    parts = [_reduced(e.draws_s, e.draw_weights) for e in found]
    return from_draws("combined", np.concatenate([d for d, _ in parts]), np.concatenate([w for _, w in parts]))


def _widen_quantiles(q: tuple[float, float, float], widen: float) -> tuple[float, float]:
    """(P10, P90) of a distribution with quantiles ``q`` = (P10, P50, P90) once widened by ``widen`` about its
    median on the log scale (:func:`widen_draws` is monotone, so quantiles map to quantiles)."""
    lo, mid, hi = (math.log(max(x, MIN_RUL_S)) for x in q)
    return math.exp(mid - widen * (mid - lo)), math.exp(mid + widen * (hi - mid))


def _conformal_widening(per_life: list[list[tuple]]) -> float:
    """Split-conformal over lives (the exchangeable units): each held-out life needs the smallest factor in
    :data:`WIDENINGS` whose P10–P90 covers :data:`TARGET_COVERAGE` of its points; the library's factor is
    the ⌈(n + 1)·0.8⌉-th smallest of the n lives' needs. Rows: (true RUL, near end, (P10, P50, P90), draws)."""
    need = []
    for rows in per_life:
        ok = [wf for wf in WIDENINGS
              if np.mean([lo <= true <= hi for true, _, q, _ in rows for lo, hi in [_widen_quantiles(q, wf)]])
              >= TARGET_COVERAGE]
        need.append(ok[0] if ok else WIDENINGS[-1])
    rank = min(len(need), math.ceil((len(need) + 1) * TARGET_COVERAGE))
    return sorted(need)[rank - 1]


def _candidates_at(held: LifeHI, i: int, lfs: dict, sim, degs: dict) -> dict[tuple, Estimate | tuple]:
    """Every candidate's predictive distribution for ``held`` truncated after point ``i``: life fraction as
    (draws, weights), the others as an :class:`Estimate`."""
    t = float(held.times_s[i])
    cur = LifeHI(held.name, held.times_s[: i + 1], held.hi[: i + 1], None, True, held.onset_s)
    out: dict[tuple, Estimate | tuple] = {}
    for key, lf in lfs.items():
        out[("life_fraction", key)] = lf.draws(t, float(held.hi[i]), held.onset_s)
    se = sim.predict(cur) if sim is not None else None
    out[("similarity", None)] = se
    for flat, deg in degs.items():
        de = deg.predict(cur) if deg is not None else None
        for kind in ("exp_degradation", "combined"):
            out[(kind, flat)] = _answer_of({"model": kind}, None, se, de)
    return out


def tune(lives: list[LifeHI], params: HIParams) -> dict:
    """The model and its settings for this library, chosen by leave-one-life-out over ``lives`` (nested:
    the machine being estimated is never among them).

    For each held-out failed life with an onset, every candidate is fitted on the other lives and asked
    at the points of :func:`_eval_points` (the design of the benchmark's truncation points). Candidates:
    life fraction for every scale in :data:`SCALES` and kernel in :data:`BANDWIDTHS`; similarity;
    exponential degradation and the similarity + degradation mixture for every slope-prior width in
    :data:`FLATS`. Each candidate's interval is widened by a split-conformal rule over lives
    (:func:`_conformal_widening`) and its answer is the planning point of the widened distribution
    (:func:`planning_point`); the winner has the fewest answers more than 50 % late in the last 20 % of a
    life, then the best mean PHM 2012 accuracy (each held-out life weighs the same). Fewer than three
    such lives: the mixture, unwidened, said so (``tuned`` False).
    """
    usable = [life for life in lives if life.failed and life.length_s and _eval_points(life, params)]
    if len(usable) < 3:
        return {"tuned": False, "model": "combined", "flat": 10.0, "widen": 1.0,
                "reason": f"{len(usable)} failed lives with an onset; choosing a model needs 3"}
    # results[candidate key] = per held-out life, rows of (true RUL, near end, (P10, P50, P90), (draws, weights))
    results: dict[tuple, list[list[tuple]]] = {}
    for held in usable:
        train = [x for x in lives if x is not held]
        lfs = {(sc, bw): LifeFraction(params, bandwidth=bw, scale=sc).fit(train) for sc in SCALES for bw in BANDWIDTHS}
        try:
            sim = Similarity().fit(train)
        except InputError:
            sim = None
        degs = {}
        for flat in FLATS:
            try:
                degs[flat] = ExpDegradation(smooth_points=params.smooth_points, flat=flat, n_draws=1000).fit(train)
            except InputError:
                degs[flat] = None
        rows: dict[tuple, list[tuple]] = {}
        for i in _eval_points(held, params):
            t = float(held.times_s[i])
            true, end = held.length_s - t, t >= LATE_ZONE * held.length_s
            for key, e in _candidates_at(held, i, lfs, sim, degs).items():
                if e is None:
                    continue
                d, w = _reduced(*e) if isinstance(e, tuple) else _reduced(e.draws_s, e.draw_weights)
                rows.setdefault(key, []).append((true, end, _quantiles(d, w), (d, w)))
        for key, r in rows.items():
            results.setdefault(key, []).append(r)
    best, per_model = None, {}
    for key, per_life in results.items():
        if len(per_life) < len(usable):
            continue  # a candidate that could not answer for every held-out life is not compared
        widen = _conformal_widening(per_life)
        answers = [[(true, end, planning_point(widen_draws(d, widen, w), w)) for true, end, _, (d, w) in r]
                   for r in per_life]
        score = float(np.mean([np.mean([phm_accuracy(true, a) for true, _, a in r]) for r in answers]))
        late = sum(a > LATE_LIMIT * true for r in answers for true, end, a in r if end)
        coverage = float(np.mean([lo <= true <= hi for r in per_life for true, _, q, _ in r
                                  for lo, hi in [_widen_quantiles(q, widen)]]))
        if best is None or (late, -score) < (best[2], -best[1] - 1e-12):
            best = (key, score, late, widen, coverage)
        if key[0] not in per_model or (late, -score) < (per_model[key[0]]["late_near_end"], -per_model[key[0]]["score"]):
            per_model[key[0]] = {"settings": [key[1]], "score": round(score, 4), "late_near_end": int(late),
                                 "widen": widen}
    key, score, late, widen, coverage = best
    choice = {"tuned": True, "model": key[0], "held_out_lives": len(usable), "score": round(score, 4),
              "late_near_end": int(late), "coverage": round(coverage, 4), "widen": widen, "flat": 10.0,
              "candidates": per_model}
    if key[0] == "life_fraction":
        choice.update(scale=key[1][0], bandwidth=key[1][1])
    else:
        choice.update(flat=key[1] or 10.0)
    return choice


# -- the chosen model --------------------------------------------------------------------------

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
        life_fraction = LifeFraction(params, scale=choice.get("scale", "elapsed"),
                                     bandwidth=choice.get("bandwidth")).fit(lives)
        life_fraction.tuning_ = choice
    except InputError:
        life_fraction = None
    return Library(lives, params, prior, degradation, similarity, life_fraction, choice)


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
        his = [LifeHI(x.name, x.times_s, indicator.transform(x.columns), x.length_s, x.failed) for x in lives]
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


def estimate(library: Library, times_s: np.ndarray, hi: np.ndarray) -> Estimate:
    """The RUL of a machine whose current life has run ``times_s`` (s since its start) with HI ``hi``.

    Before onset, or when the library holds fewer than :data:`MIN_LIVES` failed lives, the
    answer is the survival prior, said as such in ``reason`` and ``basis``.
    """
    times_s, hi = np.asarray(times_s, dtype=float), np.asarray(hi, dtype=float)
    onset = onset_time(times_s, hi, library.params)
    current = LifeHI("current", times_s, hi, None, True, onset)
    prior = library.prior.predict(current)
    base = {"onset_s": onset, "elapsed_s": float(times_s[-1]), "survival_prior": prior.as_dict()}
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
    e = _answer_of(choice, found.get("life_fraction"), found.get("similarity"), found.get("exp_degradation"))
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
    e = from_draws(e.model, e.draws_s, e.draw_weights, widen=choice.get("widen", 1.0), threshold=threshold,
                   threshold_source=source, reason=f"after onset: {e.model}, {why}; {e.reason}",
                   details={**base, **e.details, "models": models})
    return e


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

