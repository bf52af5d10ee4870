"""Remaining useful life (RUL) from a library of run-to-failure lives.

Every model (:class:`RulModel`) takes the library (lives of smoothed health indicators, see
:mod:`vibra.prognostics.health`) in ``fit`` and a machine's current life so far in ``predict``, and returns
an :class:`Estimate`: the predictive distribution of the remaining life in seconds, its P10 / P50 / P90,
the planning answer, and the failure threshold it used (if any). Time is seconds since the life started.

* :class:`WeibullPrior` — the survival prior: a two-parameter Weibull fitted by maximum
  likelihood to the library's lifetimes (replacements without failure enter as right-censored),
  conditioned on the machine having survived until now:
  ``P(RUL ≤ r | T > t) = 1 − S(t + r) / S(t)``, ``S(x) = exp(−(x/λ)^k)``; for the machine's operating
  condition (per-condition fit, else the bearing life law in speed and load) and weighted by what its HI
  shows (no onset yet, or the onset's time) against the library's onset fractions.
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
* :class:`LifeRatio` — RUL = ρ × elapsed before onset, ρ' × time since onset after it, each ratio the
  best PHM 2012 ratio over the library's own 55–95 % cuts; its distribution the spread of those cuts' ratios.
* :class:`HIRegression` (:mod:`~vibra.prognostics.rul.regression`) — quantile regression of ln(RUL / t) on
  causal features of the HIs (level, running maximum, recent rise; optionally ln t and the condition), one
  model per quantile level; :func:`~vibra.prognostics.rul.regression.choose` picks its variant by
  leave-one-life-out. Measured on the official protocol, not in the nested choice (``BENCHMARKS.md``).
* :class:`~vibra.prognostics.rul.near_end.NearEndRegression` (:mod:`~vibra.prognostics.rul.near_end`) — quantile
  regression of ln(RUL / t) on short raw-indicator levels (median of the last few snapshots, no EWMA), their rise
  over the last 1–10 % of t and onset age, trained on dense cuts of each library life: the abrupt end of a life
  kept. Measured on the official protocol, not in the nested choice (``BENCHMARKS.md``).
* :class:`FractionSimilarity` (:mod:`~vibra.prognostics.rul.trajectory`) — the life fraction at which the
  library lives, stretched onto the machine's clock, best match its whole HI history. Measured, not chosen.
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

Where each part lives: :mod:`~vibra.prognostics.rul.core` (lives, the estimate, the model protocol),
:mod:`~vibra.prognostics.rul.metric` (the PHM 2012 accuracy and the planning answer),
:mod:`~vibra.prognostics.rul.priors`, :mod:`~vibra.prognostics.rul.degradation`,
:mod:`~vibra.prognostics.rul.similarity`, :mod:`~vibra.prognostics.rul.life_fraction` (one module per model
family), :mod:`~vibra.prognostics.rul.tuning` (the nested choice), :mod:`~vibra.prognostics.rul.library` (fit
and estimate), :mod:`~vibra.prognostics.rul.text` (how an answer reads). The names below are the package's API.

Pure: arrays in, dataclasses out; no files.
"""

from vibra.prognostics.rul.core import (BASES, EVAL_LIFE_FRACTIONS, EVAL_ONSET_FRACTIONS, LATE_LIMIT, LATE_ZONE,
                                        MIN_LIVES, PRIOR_WHY, QUANTILES, Estimate, LifeHI, RulModel, eval_points,
                                        from_draws, widen_draws)
from vibra.prognostics.rul.degradation import FLATS, ExpDegradation, excess
from vibra.prognostics.rul.library import SMOOTH_SPANS, Library, estimate, fit_library, fit_lives, onset_time
from vibra.prognostics.rul.life_fraction import BANDWIDTHS, SCALES, LifeFraction
from vibra.prognostics.rul.life_ratio import LifeRatio
from vibra.prognostics.rul.metric import (PLANNING_POINTS, expected_accuracy, phm_accuracies, phm_accuracy,
                                          planning_point)
from vibra.prognostics.rul.priors import WeibullPrior
from vibra.prognostics.rul.regression import HIRegression
from vibra.prognostics.rul.similarity import Similarity
from vibra.prognostics.rul.text import format_duration, rul_text
from vibra.prognostics.rul.trajectory import FractionSimilarity
from vibra.prognostics.rul.tuning import TARGET_COVERAGE, WIDENINGS, tune

__all__ = ["BANDWIDTHS", "BASES", "EVAL_LIFE_FRACTIONS", "EVAL_ONSET_FRACTIONS", "FLATS", "LATE_LIMIT", "LATE_ZONE",
           "MIN_LIVES", "PLANNING_POINTS", "PRIOR_WHY", "QUANTILES", "SCALES", "SMOOTH_SPANS", "TARGET_COVERAGE",
           "WIDENINGS", "Estimate", "ExpDegradation", "FractionSimilarity",
           "HIRegression", "Library", "LifeFraction", "LifeRatio", "LifeHI", "RulModel", "Similarity",
           "WeibullPrior", "estimate", "eval_points", "excess", "expected_accuracy", "fit_library", "fit_lives",
           "format_duration", "from_draws", "onset_time", "phm_accuracies", "phm_accuracy", "planning_point",
           "rul_text", "tune", "widen_draws"]
