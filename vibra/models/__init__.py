"""Anomaly models: one estimator API over IsolationForest, Half-Space Trees and a robust baseline."""

from __future__ import annotations

from vibra.models.base import AnomalyModel, robust_stats, robust_z

FAMILIES = ("iforest", "hst", "baseline")


def make(model_type: str, *, seed: int = 0, **params) -> AnomalyModel:
    """A fresh estimator of a family by name."""
    if model_type == "iforest":
        from vibra.models.iforest import IsolationForestModel as cls
    elif model_type == "hst":
        from vibra.models.hst import HalfSpaceTreesModel as cls
    elif model_type == "baseline":
        from vibra.models.baseline import RobustBaselineModel as cls
    else:
        raise ValueError(f"unknown model type {model_type!r}; choose one of {FAMILIES}")
    return cls(seed=seed, **params)


__all__ = ["FAMILIES", "AnomalyModel", "make", "robust_stats", "robust_z"]
