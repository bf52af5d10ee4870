"""IsolationForest (scikit-learn) on robustly standardised indicators."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from vibra.anomaly.base import AnomalyModel, robust_stats, robust_z


class IsolationForestModel(AnomalyModel):
    """score = −score_samples (higher = more anomalous, as for every family)."""

    model_type = "iforest"

    def __init__(self, *, seed: int = 0, n_estimators: int = 200, max_samples: int | str = "auto", **kw):
        super().__init__(seed=seed, **kw)
        self.n_estimators = n_estimators
        self.max_samples = max_samples

    def _fit(self, X: np.ndarray) -> None:
        from sklearn.ensemble import IsolationForest

        self.median_, self.mad_ = robust_stats(X)
        self.forest_ = IsolationForest(n_estimators=self.n_estimators, max_samples=self.max_samples,
                                       random_state=self.seed, n_jobs=1)
        self.forest_.fit(robust_z(X, self.median_, self.mad_))

    def _score(self, X: np.ndarray) -> np.ndarray:
        return -self.forest_.score_samples(robust_z(X, self.median_, self.mad_))

    def save(self, folder: Path) -> list[str]:
        with open(folder / "iforest.pkl", "wb") as fh:
            pickle.dump({"forest": self.forest_, "median": self.median_, "mad": self.mad_}, fh)
        return ["iforest.pkl"]

    @classmethod
    def load(cls, folder: Path, params: dict) -> "IsolationForestModel":
        model = cls(**params)
        with open(folder / "iforest.pkl", "rb") as fh:
            state = pickle.load(fh)  # noqa: S301 — only after the manifest's sha256 matched
        model.forest_, model.median_, model.mad_ = state["forest"], state["median"], state["mad"]
        return model
