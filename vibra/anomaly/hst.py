"""Streaming Half-Space Trees (river), scaled to [0, 1] by limits learned on the baseline.

The river model is kept whole (its mass profiles), so ``learn`` continues online from where
training stopped (``vibra detect --update``).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from vibra.anomaly.base import AnomalyModel


class HalfSpaceTreesModel(AnomalyModel):
    model_type = "hst"

    def __init__(self, *, seed: int = 0, n_trees: int = 25, height: int = 8, window_size: int = 250, **kw):
        super().__init__(seed=seed, **kw)
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size

    def _scale(self, X: np.ndarray) -> np.ndarray:
        return (X - self.low_) / self.span_

    def _fit(self, X: np.ndarray) -> None:
        from river.anomaly import HalfSpaceTrees

        # limits from the baseline's 1st–99th percentiles, widened so normal data sits inside
        lo, hi = np.percentile(X, 1, axis=0), np.percentile(X, 99, axis=0)
        if self.standardised:  # never narrower than ±3 baseline σ around the median
            mid = np.median(X, axis=0)
            lo, hi = np.minimum(lo, mid - 3.0), np.maximum(hi, mid + 3.0)
        pad = np.maximum(hi - lo, 1e-9) * 0.5
        self.low_, self.span_ = lo - pad, (hi - lo) + 2 * pad
        window = int(min(self.window_size, max(10, X.shape[0] // 2)))
        self.river_ = HalfSpaceTrees(n_trees=self.n_trees, height=self.height, window_size=window, seed=self.seed)
        self.learn(X, scaled=False)

    def learn(self, X: np.ndarray, scaled: bool = False) -> None:
        """Keep learning online (mass profiles roll every window_size rows)."""
        Z = X if scaled else self._scale(np.asarray(X, dtype=np.float64))
        for row in Z:
            self.river_.learn_one(dict(enumerate(row.tolist())))

    def _score(self, X: np.ndarray) -> np.ndarray:
        return np.array([self.river_.score_one(dict(enumerate(r.tolist()))) for r in self._scale(X)])

    def save(self, folder: Path) -> list[str]:
        with open(folder / "hst.pkl", "wb") as fh:
            pickle.dump({"river": self.river_, "low": self.low_, "span": self.span_}, fh)
        return ["hst.pkl"]

    @classmethod
    def load(cls, folder: Path, params: dict) -> "HalfSpaceTreesModel":
        model = cls(**params)
        with open(folder / "hst.pkl", "rb") as fh:
            state = pickle.load(fh)  # noqa: S301 — only after the manifest's sha256 matched
        model.river_, model.low_, model.span_ = state["river"], state["low"], state["span"]
        return model
