"""Gebraeel's exponential degradation model with a library prior and Bayesian updating."""

from __future__ import annotations

import numpy as np

from vibra.errors import InputError
from vibra.prognostics.health import end_value
from vibra.prognostics.rul.core import Estimate, LifeHI, from_draws


FLATS = (1.0, 10.0, 100.0)  # the slope prior's SD in units of the fastest onset-to-failure rate of the library:
# chosen among these per library by leave-one-life-out (:func:`vibra.prognostics.rul.tuning.tune`), never on the
# machine being estimated

def since_onset(life: LifeHI, upto: int | None = None) -> tuple[np.ndarray, np.ndarray]:
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
            tau, h = since_onset(life)
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
        tau, h = since_onset(current)
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
