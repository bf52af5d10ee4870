"""The survival prior: the library's lifetimes, conditioned on the time the machine has survived."""

from __future__ import annotations

import math

import numpy as np

from vibra.errors import InputError
from vibra.prognostics.rul.core import QUANTILES, Estimate, LifeHI, from_draws
from vibra.prognostics.rul.metric import PLANNING_POINTS


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
