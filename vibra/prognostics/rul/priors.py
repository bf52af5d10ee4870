"""The survival prior: the library's lifetimes for the machine's operating condition, conditioned on the time
it has survived and on what its health indicator shows now.

* **Lifetimes**: a two-parameter Weibull fitted by maximum likelihood (replacements without failure enter
  as right-censored), ``S(x) = exp(−(x/λ)^k)``, conditioned on survival to ``t``:
  ``P(RUL ≤ r | T > t) = 1 − S(t + r) / S(t)``.
* **Operating condition**: where the library holds :data:`~vibra.prognostics.rul.core.MIN_LIVES` failed lives
  at the machine's own condition (same speed and load), the Weibull is fitted to those alone. Otherwise
  every lifetime is moved to the machine's condition by the bearing life law (Lundberg–Palmgren, ISO 281:
  life in revolutions ∝ (C/P)^p, p = 3 for ball bearings), so life in seconds ∝ 1 / (rpm · P^p): a life
  ``L`` seen at (rpm₀, P₀) counts as ``L · (rpm₀/rpm) · (P₀/P)^p``. The exponent is fixed beforehand, not
  fitted (two or three conditions cannot fit it); a missing speed or load leaves that factor out.
* **What the machine shows now**: the onset of degradation comes at some fraction of a life
  (``f = onset / length``, from the library's lives; a life that failed without a detected onset counts
  as f = 1). A machine with no onset yet at ``t`` makes lives with ``t / L`` beyond most onset fractions
  unlikely (an HI still flat at 80 % of the typical life is evidence of a longer life): each draw of the
  life ``L = t + r`` is weighted by ``P(f > t / L)``. After an onset at ``t₀`` the weight is the density of
  ``ln f`` at ``ln(t₀ / L)``. Both from a Gaussian kernel (width :data:`ONSET_KERNEL` in ln f) over the
  library's onset fractions.
"""

from __future__ import annotations

import math

import numpy as np

from vibra.errors import InputError
from vibra.prognostics.rul.core import MIN_LIVES, QUANTILES, Estimate, LifeHI, from_draws
from vibra.prognostics.rul.metric import PLANNING_POINTS

LOAD_EXPONENT = 3.0  # ISO 281 / Lundberg–Palmgren: ball bearings' life in revolutions ∝ (C/P)^3
ONSET_KERNEL = 0.25  # width of the kernel over ln(onset fraction)


def weibull_mle(lengths_s, failed=None) -> tuple[float, float]:
    """(shape k, scale λ in s) of a right-censored two-parameter Weibull by maximum likelihood."""
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
    return float(math.exp(res.x[0])), float(math.exp(res.x[1]) * scale0)


def condition_factor(rpm: float | None, load_n: float | None, ref_rpm: float | None, ref_load_n: float | None,
                     exponent: float = LOAD_EXPONENT) -> float:
    """How much longer (in seconds) a life at (rpm, load) lasts than at the reference condition:
    ``(ref_rpm / rpm) · (ref_load / load)^p``; a factor whose values are missing is 1."""
    f = 1.0
    if rpm and ref_rpm:
        f *= ref_rpm / rpm
    if load_n and ref_load_n:
        f *= (ref_load_n / load_n) ** exponent
    return f


class WeibullPrior:
    """The survival prior (see the module docstring). Learned: ``shape_``, ``scale_s_`` (at the reference
    condition ``ref_rpm_`` / ``ref_load_n_``), the per-condition fits ``by_condition_`` and the library's
    onset fractions ``onset_fractions_``."""

    name = "survival_prior"

    def __init__(self, *, load_exponent: float = LOAD_EXPONENT, onset_kernel: float = ONSET_KERNEL,
                 use_onset: bool = True):
        self.load_exponent = load_exponent
        self.onset_kernel = onset_kernel
        self.use_onset = use_onset

    def fit_lengths(self, lengths_s, failed=None) -> "WeibullPrior":
        """The plain Weibull over lifetimes alone (no condition, no onset evidence)."""
        self.shape_, self.scale_s_ = weibull_mle(lengths_s, failed)
        t = np.asarray(lengths_s, dtype=float)
        self.n_lives_ = int(t.size)
        self.n_failed_ = int(t.size if failed is None else np.sum(failed))
        self.ref_rpm_ = self.ref_load_n_ = None
        self.by_condition_: dict[tuple, tuple[float, float]] = {}
        self.onset_fractions_ = np.array([])
        return self

    def fit(self, lives: list[LifeHI]) -> "WeibullPrior":
        lengths = np.array([float(x.length_s) for x in lives if x.length_s])
        kept = [x for x in lives if x.length_s]
        failed = np.array([x.failed for x in kept])
        rpms = [x.rpm for x in kept if x.rpm]
        loads = [x.load_n for x in kept if x.load_n]
        self.ref_rpm_ = float(np.median(rpms)) if rpms else None
        self.ref_load_n_ = float(np.median(loads)) if loads else None
        to_ref = np.array([1.0 / self._factor(x.rpm, x.load_n) for x in kept])
        self.shape_, self.scale_s_ = weibull_mle(lengths * to_ref, failed)
        self.n_lives_, self.n_failed_ = int(lengths.size), int(failed.sum())
        self.by_condition_ = {}
        for cond in {(x.rpm, x.load_n) for x in kept if x.rpm or x.load_n}:
            mine = [i for i, x in enumerate(kept) if (x.rpm, x.load_n) == cond]
            if failed[mine].sum() >= MIN_LIVES:
                self.by_condition_[cond] = weibull_mle(lengths[mine], failed[mine])
        self.onset_fractions_ = np.array([min((x.onset_s or x.length_s) / x.length_s, 1.0)
                                          for x in kept if x.failed])
        return self

    def _factor(self, rpm, load_n) -> float:
        return condition_factor(rpm, load_n, self.ref_rpm_, self.ref_load_n_, self.load_exponent)

    def params_for(self, rpm: float | None = None, load_n: float | None = None) -> tuple[float, float, str]:
        """(shape, scale in s, how) of the lifetimes at this condition."""
        if (rpm, load_n) in self.by_condition_:
            k, lam = self.by_condition_[(rpm, load_n)]
            return k, lam, "fitted on the library's lives at this condition"
        f = self._factor(rpm, load_n)
        how = ("lifetimes of other conditions scaled by (rpm₀/rpm)·(P₀/P)^"
               f"{self.load_exponent:g} (×{f:.2f})" if f != 1.0 else "all lifetimes alike")
        return self.shape_, self.scale_s_ * f, how

    def survival(self, t_s: float, rpm: float | None = None, load_n: float | None = None) -> float:
        k, lam, _ = self.params_for(rpm, load_n)
        return float(math.exp(-((max(t_s, 0.0) / lam) ** k)))

    def rul_quantile(self, elapsed_s: float, q: float, rpm: float | None = None, load_n: float | None = None) -> float:
        """The q-quantile of the remaining life of a machine that has run ``elapsed_s`` s (lifetimes only)."""
        k, lam, _ = self.params_for(rpm, load_n)
        z = (max(elapsed_s, 0.0) / lam) ** k - math.log(1.0 - q)
        return max(lam * z ** (1.0 / k) - elapsed_s, 0.0)

    def onset_weights(self, elapsed_s: float, onset_s: float | None, rul_s: np.ndarray) -> np.ndarray:
        """The evidence of the HI for lives ``L = elapsed + rul`` (see the module docstring); ones when the
        library has no onset fractions."""
        f = self.onset_fractions_
        if not self.use_onset or f.size == 0:
            return np.ones_like(rul_s)
        from scipy.stats import norm

        life = elapsed_s + np.maximum(rul_s, 1e-9)
        lf = np.log(np.maximum(f, 1e-6))[None, :]
        if onset_s is None:  # P(onset fraction > t / L)
            x = np.log(elapsed_s / life)[:, None]
            return norm.sf((x - lf) / self.onset_kernel).mean(axis=1) + 1e-12
        x = np.log(max(onset_s, 1e-9) / life)[:, None]
        return norm.pdf((x - lf) / self.onset_kernel).mean(axis=1) + 1e-12

    def predict(self, current: LifeHI) -> Estimate:
        elapsed = float(current.times_s[-1])
        k, lam, how = self.params_for(current.rpm, current.load_n)
        levels = (np.arange(PLANNING_POINTS) + 0.5) / PLANNING_POINTS
        draws = np.array([self.rul_quantile(elapsed, q, current.rpm, current.load_n) for q in levels])
        weights = self.onset_weights(elapsed, current.onset_s, draws)
        evidence = ("" if not self.use_onset or self.onset_fractions_.size == 0 else
                    f"; weighted by the onset fractions of {self.onset_fractions_.size} lives "
                    + ("(no onset yet)" if current.onset_s is None else f"(onset at {current.onset_s:.0f} s)"))
        e = from_draws(self.name, draws, weights, threshold=None, threshold_source="none: lifetimes only",
                       reason=f"Weibull over {self.n_lives_} lives (shape {k:.2f}, scale {lam:.0f} s; {how}), "
                              f"conditioned on {elapsed:.0f} s survived{evidence}",
                       details={"shape": k, "scale_s": lam, "condition": how}, basis="prior_no_onset")
        if weights.max() == weights.min():  # lifetimes only: the quantiles exactly, not between draws
            e.p10_s, e.p50_s, e.p90_s = (self.rul_quantile(elapsed, q, current.rpm, current.load_n)
                                         for q in QUANTILES)
        return e
