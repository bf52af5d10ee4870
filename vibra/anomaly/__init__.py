"""Anomaly detection: one estimator API over IsolationForest, Half-Space Trees and a robust baseline,
their versioned registry, and the k-of-m alarm rule."""

from __future__ import annotations

from vibra.anomaly.base import AnomalyModel, robust_stats, robust_z

FAMILIES = ("iforest", "hst", "baseline")


def make(model_type: str, *, seed: int = 0, **params) -> AnomalyModel:
    """A fresh estimator of a family by name."""
    if model_type == "iforest":
        from vibra.anomaly.iforest import IsolationForestModel as cls
    elif model_type == "hst":
        from vibra.anomaly.hst import HalfSpaceTreesModel as cls
    elif model_type == "baseline":
        from vibra.anomaly.baseline import RobustBaselineModel as cls
    else:
        raise ValueError(f"unknown model type {model_type!r}; choose one of {FAMILIES}")
    return cls(seed=seed, **params)


__all__ = ["FAMILIES", "AnomalyModel", "make", "robust_stats", "robust_z"]
