"""Evaluation of forecasts on run-to-failure series: rolling-origin MASE and time to end of life."""

from __future__ import annotations

import numpy as np

from vibra.prognostics.forecast import Series, forecast_many, time_to_threshold


def rolling_mase(y: np.ndarray, step_s: float, horizon: int, origins: int = 8, start: float = 0.3) -> float:
    """MAE of the h-step-ahead forecast over ``origins`` cut points ÷ MAE of the naive forecast."""
    n = y.shape[0]
    cuts = np.linspace(start * n, n - horizon - 1, origins).astype(int)
    fcs = forecast_many([Series(f"o{c}", 0, step_s, y[:c]) for c in cuts], horizon, min_points=48)
    err = np.mean([abs(fc.mean[horizon - 1] - y[c + horizon - 1]) for fc, c in zip(fcs, cuts)])
    naive = np.mean([abs(y[c - 1] - y[c + horizon - 1]) for c in cuts])
    return float(err / naive) if naive > 0 else float("nan")


def end_of_life(y: np.ndarray, fraction: float = 0.5) -> tuple[float, int]:
    """The end-of-life threshold (``fraction`` × the highest 5-point median level) and the index
    where the smoothed level first reaches it."""
    from scipy.ndimage import median_filter

    level = median_filter(y, size=5, mode="nearest")
    threshold = fraction * float(level.max())
    return threshold, int(np.nonzero(level >= threshold)[0][0])


def remaining_life(y: np.ndarray, step_s: float, life_fraction: float, threshold: float, crossing: int) -> dict:
    """At ``life_fraction`` of the time to the crossing: true hours left vs predicted P10/P50/P90."""
    cut = int(life_fraction * crossing)
    horizon = int(min(2 * (crossing - cut) + 10, 3 * cut))
    (fc,) = forecast_many([Series("cut", 0, step_s, y[:cut])], horizon, min_points=48)
    ttt = time_to_threshold(fc, threshold, step_s)
    true_h = (crossing - cut) * step_s / 3600
    covered = ttt["p10_h"] is not None and ttt["p10_h"] <= true_h <= (ttt["p90_h"] or float("inf"))
    return {"true_h": true_h, **ttt, "covered": covered, "model": fc.model}
