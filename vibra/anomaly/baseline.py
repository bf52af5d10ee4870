"""Robust statistical baseline: per-indicator median/MAD z-scores, combined as their r.m.s."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vibra.anomaly.base import AnomalyModel, robust_stats, robust_z


class RobustBaselineModel(AnomalyModel):
    """score = sqrt(mean(z²)) over indicators, z = (x − median) / (1.4826·MAD) of the baseline."""

    model_type = "baseline"

    def _fit(self, X: np.ndarray) -> None:
        self.median_, self.mad_ = robust_stats(X)
        if self.standardised:
            self.mad_ = np.maximum(self.mad_, 1.0)

    def _score(self, X: np.ndarray) -> np.ndarray:
        z = robust_z(X, self.median_, self.mad_)
        return np.sqrt(np.mean(z * z, axis=1))

    def save(self, folder: Path) -> list[str]:
        (folder / "baseline.json").write_text(json.dumps({"median": self.median_.tolist(), "mad": self.mad_.tolist()}))
        return ["baseline.json"]

    @classmethod
    def load(cls, folder: Path, params: dict) -> "RobustBaselineModel":
        model = cls(**params)
        state = json.loads((folder / "baseline.json").read_text())
        model.median_, model.mad_ = np.array(state["median"]), np.array(state["mad"])
        return model
