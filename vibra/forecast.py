"""Forecasting core: series on a regular grid, statsforecast models chosen per series by
rolling-origin cross-validation, a naive fallback, and the time until a limit is crossed.

Pure functions over arrays and Polars frames; nothing here reads or writes files.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

CANDIDATES = ("AutoETS", "AutoTheta", "AutoARIMA")
LEVELS = (80, 95)


@dataclass
class Series:
    """One equipment × channel × indicator series on its grid."""

    key: str
    start_us: int          # epoch µs of the first grid point
    step_s: float
    values: np.ndarray     # on the grid, gaps filled by the stated rule
    missing: int = 0
    fill_rule: str = "none"


def to_grid(times_us: np.ndarray, values: np.ndarray, step_s: float, *, key: str,
            max_missing: float = 0.25) -> tuple[Series | None, str]:
    """Put (time, value) points on a regular grid of ``step_s``.

    Points falling into one grid cell are averaged. Missing cells inside the series are
    filled by linear interpolation between their neighbours (the stated rule, counted in
    ``missing``); a series missing more than ``max_missing`` of its cells is refused — it is
    never silently shortened or compacted (the statsforecast#564 trap: a gap dropped from the
    frame makes the model see consecutive points that are not).
    Returns (series or None, reason).
    """
    ok = np.isfinite(values)
    times_us, values = times_us[ok], values[ok]
    if times_us.shape[0] == 0:
        return None, "no finite values"
    step_us = int(round(step_s * 1e6))
    cell = (times_us - times_us.min()) // step_us
    n = int(cell.max()) + 1
    sums = np.bincount(cell, weights=values, minlength=n)
    counts = np.bincount(cell, minlength=n)
    grid = np.full(n, np.nan)
    have = counts > 0
    grid[have] = sums[have] / counts[have]
    missing = int((~have).sum())
    if n and missing / n > max_missing:
        return None, f"{missing} of {n} grid points missing (> {100 * max_missing:.0f} %); refused rather than filled"
    if missing:
        idx = np.arange(n)
        grid[~have] = np.interp(idx[~have], idx[have], grid[have])
    start = int(times_us.min() // step_us * step_us)
    return Series(key, start, step_s, grid, missing, "linear interpolation" if missing else "none"), ""


@dataclass
class Forecast:
    key: str
    status: str                    # ok | insufficient_data
    model: str = ""
    fallback: bool = False
    mean: np.ndarray = field(default_factory=lambda: np.empty(0))
    bounds: dict = field(default_factory=dict)   # "lo-80" → array …
    cv_mae: dict = field(default_factory=dict)
    mase: float = float("nan")
    needed: int = 0


def _models(season_length: int):
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta

    # AutoARIMA without seasonal search and with the stepwise approximation: ~100× cheaper than
    # the default on hourly series, at little cost in accuracy on slowly degrading indicators.
    return [AutoETS(season_length=season_length), AutoTheta(season_length=season_length),
            AutoARIMA(season_length=season_length, seasonal=season_length > 1, approximation=True,
                      max_p=3, max_q=3, max_P=1, max_Q=1)]


def forecast_many(series: list[Series], horizon: int, *, levels=LEVELS, season_length: int = 1,
                  min_points: int = 48, cv_windows: int = 2, n_jobs: int = 1) -> list[Forecast]:
    """Forecast every series; the model of each is the candidate with the lowest rolling-origin
    MAE on its tail (``cv_windows`` origins, each ``horizon`` long, capped to a quarter of the
    series). Series with fewer than ``min_points`` points get ``insufficient_data``; a series
    whose models all fail gets the naive forecast (``fallback``)."""
    import polars as pl
    from statsforecast import StatsForecast
    from statsforecast.models import Naive

    out: dict[str, Forecast] = {}
    usable = []
    for s in series:
        if s.values.shape[0] < min_points:
            out[s.key] = Forecast(s.key, "insufficient_data", needed=min_points - s.values.shape[0])
        else:
            usable.append(s)
    if usable:
        frames = []
        for s in usable:
            ds = (s.start_us + np.arange(s.values.shape[0]) * int(round(s.step_s * 1e6))).astype("datetime64[us]")
            frames.append(pl.DataFrame({"unique_id": [s.key] * s.values.shape[0], "ds": ds, "y": s.values}))
        df = pl.concat(frames)
        freq = f"{int(round(usable[0].step_s))}s"
        sf = StatsForecast(models=_models(season_length) + [Naive()], freq=freq, n_jobs=n_jobs,
                           fallback_model=Naive())
        shortest = min(s.values.shape[0] for s in usable)
        h_cv = max(1, min(horizon, shortest // (2 * cv_windows)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cv = sf.cross_validation(df=df, h=h_cv, n_windows=cv_windows, step_size=h_cv)
            fc = sf.forecast(df=df, h=horizon, level=list(levels))
        names = [m for m in CANDIDATES] + ["Naive"]
        errors = cv.group_by("unique_id").agg(
            [(pl.col(m) - pl.col("y")).abs().mean().alias(m) for m in names])
        for row in errors.iter_rows(named=True):
            key = row["unique_id"]
            maes = {m: row[m] for m in names if row[m] is not None and math.isfinite(row[m])}
            chosen = min((m for m in CANDIDATES if m in maes), key=lambda m: maes[m], default=None)
            fallback = chosen is None
            chosen = chosen or "Naive"
            part = fc.filter(pl.col("unique_id") == key)
            mean = part[chosen].to_numpy()
            if not np.isfinite(mean).all():
                chosen, fallback, mean = "Naive", True, part["Naive"].to_numpy()
            bounds = {f"{side}-{lv}": part[f"{chosen}-{side}-{lv}"].to_numpy() for lv in levels for side in ("lo", "hi")}
            naive = maes.get("Naive")
            mase = maes[chosen] / naive if naive else float("nan")
            out[key] = Forecast(key, "ok", chosen, fallback, mean, bounds, maes, mase)
    return [out[s.key] for s in series]


def trend_test(values: np.ndarray, tail: int) -> tuple[float, float]:
    """Slope per step and its two-sided p-value over the last ``tail`` points (least squares)."""
    from scipy.stats import linregress

    y = values[-tail:]
    if y.shape[0] < 3 or np.ptp(y) == 0:
        return 0.0, 1.0
    fit = linregress(np.arange(y.shape[0]), y)
    return float(fit.slope), float(fit.pvalue)


def time_to_threshold(forecast: Forecast, limit: float, step_s: float) -> dict:
    """Hours until the forecast crosses ``limit`` (upwards) as P10 / P50 / P90, and the
    probability of being above it at the horizon.

    P50 is the first step whose mean reaches the limit; P10 the first whose upper 80 % bound
    does (a 10 % chance of being there by then), P90 the first whose lower 80 % bound does.
    ``None`` means not within the horizon. The probability assumes a normal forecast
    distribution at the last step, its spread taken from the 80 % interval.
    """
    from scipy.stats import norm

    def first(arr: np.ndarray) -> float | None:
        hit = np.nonzero(arr >= limit)[0]
        return float((hit[0] + 1) * step_s / 3600.0) if hit.shape[0] else None

    mean, hi, lo = forecast.mean, forecast.bounds["hi-80"], forecast.bounds["lo-80"]
    sigma = max(float(hi[-1] - mean[-1]) / 1.2816, 1e-12)
    return {"p10_h": first(hi), "p50_h": first(mean), "p90_h": first(lo),
            "crossing_probability": float(1.0 - norm.cdf((limit - mean[-1]) / sigma))}
