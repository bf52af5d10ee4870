"""The estimator contract every anomaly family follows (scikit-learn conventions).

``__init__`` stores parameters only; ``fit(X)`` learns and returns self; learned state ends
in ``_``; ``score(X)`` is higher for more anomalous rows; ``predict(X)`` applies
``threshold_``. The threshold is learned state but is stored apart from the weights (in the
manifest), so it can be retuned without retraining. ``save(folder)`` writes the weights and
returns the file names; ``load(folder)`` reads them back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MAD_SCALE = 1.4826  # MAD × 1.4826 estimates σ for Gaussian data


def robust_stats(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column median and σ-scaled MAD (floored so constant columns do not divide by 0)."""
    med = np.nanmedian(X, axis=0)
    mad = np.nanmedian(np.abs(X - med), axis=0) * MAD_SCALE
    floor = 1e-9 * np.maximum(np.abs(med), 1.0)
    return med, np.maximum(mad, floor)


def robust_z(X: np.ndarray, med: np.ndarray, mad: np.ndarray) -> np.ndarray:
    """Signed robust z-scores (x − median) / (1.4826·MAD)."""
    return (X - med) / mad


def threshold_from(scores: np.ndarray, rule: str, value: float) -> float:
    """A threshold from training scores: ``quantile`` (value in (0, 1)) or ``z`` (median + value·MAD)."""
    if rule == "quantile":
        return float(np.quantile(scores, value))
    if rule == "z":
        med, mad = robust_stats(scores[:, None])
        return float(med[0] + value * mad[0])
    if rule == "value":
        return float(value)
    raise ValueError(f"unknown threshold rule {rule!r}; use quantile, z or value")


SPIKE_Z = 6.0  # a training score this many robust σ over the median is an excursion (see AnomalyModel.fit)


def spikes(scores: np.ndarray, groups: np.ndarray | None, *, k: int, m: int) -> np.ndarray:
    """Training scores that are isolated excursions (see :meth:`AnomalyModel.fit`), as a bool mask."""
    from vibra.anomaly.alarms import isolated

    med, mad = robust_stats(np.asarray(scores, dtype=np.float64)[:, None])
    return isolated(scores, groups, k=k, m=m, above=float(med[0] + SPIKE_Z * mad[0]))


class AnomalyModel:
    """Base class; families implement ``_fit``, ``_score``, ``save`` and ``load``."""

    model_type = "base"

    def __init__(self, *, seed: int = 0, threshold_rule: str = "quantile", threshold_value: float = 0.98,
                 cv_folds: int = 3, standardised: bool = False, alarm_k: int = 1, alarm_m: int = 1):
        self.seed = seed
        # inputs already robust z-scores (1 = one baseline σ): a family must not shrink that unit
        self.standardised = standardised
        self.threshold_rule = threshold_rule
        self.threshold_value = threshold_value
        self.cv_folds = cv_folds
        # the alarm rule the scores will meet (k of m windows): isolated spikes in training are judged by it
        self.alarm_k = alarm_k
        self.alarm_m = alarm_m

    def params(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    def fit(self, X: np.ndarray, groups: np.ndarray | None = None) -> "AnomalyModel":
        """Learn from the baseline rows ``X`` (in time order) and set ``threshold_``.

        ``groups`` (shape (n,), e.g. the channel of each row): the series the alarm rule runs over.
        A training score far over the baseline's own spread (median + ``SPIKE_Z``·1.4826·MAD of the
        training scores) that fewer than ``alarm_k`` of any ``alarm_m`` consecutive windows of its
        group share is a spike: it could never raise an alarm alone, so it does not set the threshold
        either (``spikes_``; the threshold is the rule over ``threshold_scores_``, the other scores).
        Without that, three spiky windows in 118 set a 0.98-quantile threshold above everything a
        failing machine later showed (issue 27). The normal tail of the scores stays in.

        The threshold comes from out-of-sample scores: with ``cv_folds`` ≥ 2 the rows are cut
        into that many contiguous time blocks and each block is scored by a model fitted on
        the others, so the threshold reflects how new normal data scores (slow drift within the
        baseline included), not how well the model remembers its own training rows. (Interleaved
        folds were tried: on the CWRU normal recording they leave a third of its later half
        flagged.) A fault already growing through the baseline raises this threshold: train on
        a healthy period.
        """
        X = self._check(X)
        self._fit(X)
        self.train_scores_ = self._out_of_sample(X) if self.cv_folds >= 2 and X.shape[0] >= 10 * self.cv_folds \
            else self._score(X)
        self.spikes_ = spikes(self.train_scores_, groups, k=self.alarm_k, m=self.alarm_m)
        self.threshold_scores_ = self.train_scores_[~self.spikes_]
        self.threshold_ = threshold_from(self.threshold_scores_, self.threshold_rule, self.threshold_value)
        return self

    def _out_of_sample(self, X: np.ndarray) -> np.ndarray:
        scores = np.empty(X.shape[0])
        for block in np.array_split(np.arange(X.shape[0]), self.cv_folds):
            rest = np.setdiff1d(np.arange(X.shape[0]), block)
            fold = type(self)(**self.params())
            fold._fit(X[rest])
            scores[block] = fold._score(X[block])
        return scores

    def score(self, X: np.ndarray) -> np.ndarray:
        return self._score(self._check(X))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.score(X) > self.threshold_

    @staticmethod
    def _check(X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"X must be a non-empty 2-D array, got shape {X.shape}")
        return np.nan_to_num(X, nan=0.0, posinf=0.0, neginf=0.0)

    # families implement these
    def _fit(self, X: np.ndarray) -> None:
        raise NotImplementedError

    def _score(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def save(self, folder: Path) -> list[str]:
        raise NotImplementedError

    @classmethod
    def load(cls, folder: Path, params: dict) -> "AnomalyModel":
        raise NotImplementedError
