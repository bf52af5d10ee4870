"""Forecasting core: series on a regular grid, statsforecast models chosen per series by
rolling-origin cross-validation, an explicit naive fallback when every candidate fails, and the
time until a limit is crossed.

Pure functions over arrays and Polars frames; nothing here reads or writes files.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

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
    failed_models: dict = field(default_factory=dict)  # candidate → why it gave no forecast


def _models(season_length: int):
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta

    # AutoARIMA without seasonal search and with the stepwise approximation: ~100× cheaper than
    # the default on hourly series, at little cost in accuracy on slowly degrading indicators.
    return [AutoETS(season_length=season_length), AutoTheta(season_length=season_length),
            AutoARIMA(season_length=season_length, seasonal=season_length > 1, approximation=True,
                      max_p=3, max_q=3, max_P=1, max_Q=1)]


def _model_name(model) -> str:
    return getattr(model, "alias", None) or type(model).__name__


def _one_model(model, df, *, freq: str, n_jobs: int, h_cv: int, cv_windows: int, horizon: int, levels):
    """(cross-validation frame, forecast frame) of one model over ``df``; raises when it fails.

    No ``fallback_model``: statsforecast would write the fallback's output under the failed
    model's name, so a failed model could be chosen and its failure never counted.
    """
    from statsforecast import StatsForecast

    sf = StatsForecast(models=[model], freq=freq, n_jobs=n_jobs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cv = sf.cross_validation(df=df, h=h_cv, n_windows=cv_windows, step_size=h_cv)
        fc = sf.forecast(df=df, h=horizon, level=list(levels))
    return cv, fc


def _fit_each(model, df, keys: list[str], failed: dict[str, dict], **kw):
    """``_one_model`` over the batch; if the batch fails, series by series, so one series that
    breaks a model costs only that series its candidate. Failures land in ``failed[key][name]``."""
    import polars as pl

    name = _model_name(model)
    try:
        return _one_model(model, df, **kw)
    except Exception:  # noqa: BLE001 — any model error is this model's failure on some series
        pass
    cvs, fcs = [], []
    for key in keys:
        try:
            cv, fc = _one_model(model, df.filter(pl.col("unique_id") == key), **kw)
        except Exception as exc:  # noqa: BLE001
            failed.setdefault(key, {})[name] = f"{type(exc).__name__}: {exc}"[:200]
            continue
        cvs.append(cv)
        fcs.append(fc)
    if not cvs:
        return None
    return pl.concat(cvs, how="diagonal_relaxed"), pl.concat(fcs, how="diagonal_relaxed")


def forecast_many(series: list[Series], horizon: int, *, levels=LEVELS, season_length: int = 1,
                  min_points: int = 48, cv_windows: int = 2, n_jobs: int = 1, candidates=None,
                  progress: Callable[[int, int, str], None] | None = None) -> list[Forecast]:
    """Forecast every series; the model of each is the candidate with the lowest rolling-origin
    MAE on its tail (``cv_windows`` origins, each ``horizon`` long, capped to a quarter of the
    series). Series with fewer than ``min_points`` points get ``insufficient_data``.

    Each candidate (``candidates``: statsforecast model objects; default AutoETS, AutoTheta,
    AutoARIMA) is fitted on its own, and a candidate that raises or forecasts a non-finite value
    on a series is recorded in that series' ``failed_models`` and never chosen. A series whose
    candidates all fail gets the Naive forecast, marked ``fallback``.

    Every series is fitted in one batch per candidate, so ``progress(done, total, model)`` is
    called before each candidate's batch (and once at the end with ``done == total``).
    """
    import polars as pl
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
        keys = [s.key for s in usable]
        shortest = min(s.values.shape[0] for s in usable)
        kw = {"freq": f"{int(round(usable[0].step_s))}s", "n_jobs": n_jobs, "cv_windows": cv_windows,
              "h_cv": max(1, min(horizon, shortest // (2 * cv_windows))), "horizon": horizon, "levels": levels}
        models = list(candidates) if candidates is not None else _models(season_length)
        names = [_model_name(m) for m in models]
        failed: dict[str, dict] = {}
        tick = progress if progress is not None else (lambda done, total, what: None)
        runs = {}
        for i, (name, model) in enumerate(zip(names, models)):
            tick(i, len(models) + 1, f"{name} on {len(keys)} series")
            runs[name] = _fit_each(model, df, keys, failed, **kw)
        # Naive is the yardstick (MASE) and the fallback: a failure there is a bug, not a model's weakness
        tick(len(models), len(models) + 1, f"Naive on {len(keys)} series")
        naive_cv, naive_fc = _one_model(Naive(), df, **kw)
        tick(len(models) + 1, len(models) + 1, "")
        errors: dict[str, dict[str, float]] = {k: {} for k in keys}
        forecasts: dict[str, dict[str, pl.DataFrame]] = {k: {} for k in keys}
        for name, run in [*runs.items(), ("Naive", (naive_cv, naive_fc))]:
            if run is None:
                continue
            cv, fc = run
            for key, mae in cv.group_by("unique_id").agg((pl.col(name) - pl.col("y")).abs().mean()).iter_rows():
                if key in errors and mae is not None and math.isfinite(mae):
                    errors[key][name] = mae
            for (key,), part in fc.group_by(["unique_id"]):
                if key in forecasts:
                    forecasts[key][name] = part.sort("ds")
        for key in keys:
            maes, fails = errors[key], failed.get(key, {})
            usable_models = []
            for name in names:
                part = forecasts[key].get(name)
                if name in fails or part is None:
                    fails.setdefault(name, "no forecast")
                elif name not in maes or not np.isfinite(part[name].to_numpy()).all():
                    fails[name] = "non-finite cross-validation error or forecast"
                else:
                    usable_models.append(name)
            chosen = min(usable_models, key=lambda m: maes[m], default="Naive")
            part = forecasts[key][chosen]
            bounds = {f"{side}-{lv}": part[f"{chosen}-{side}-{lv}"].to_numpy() for lv in levels for side in ("lo", "hi")}
            naive = maes.get("Naive")
            mase = maes[chosen] / naive if naive and chosen in maes else float("nan")
            out[key] = Forecast(key, "ok", chosen, chosen == "Naive", part[chosen].to_numpy(), bounds,
                                {m: maes[m] for m in [*usable_models, "Naive"] if m in maes}, mase,
                                failed_models=fails)
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


NO_CROSSING = {"p10_h": None, "p50_h": None, "p90_h": None, "crossing_probability": None}
TREND_P = 0.05  # a slope is a trend when its p-value is below this


def status_of(forecast: Forecast, values: np.ndarray, limit: float | None, step_s: float,
              horizon: int) -> tuple[str, dict, tuple[float, float]]:
    """The forecast status rule, its time to threshold and the (slope, p) it rests on.

    ``exceeded``: the last value is at or above the limit already (time 0, probability 1);
    ``no_trend``: the slope over the recent tail (3 horizons, at least 24 points) is not rising
    with p < 0.05 — no crossing time is claimed from noise; otherwise ``ok`` (or the forecast's own
    status) with P10/P50/P90 hours to the limit when there is one.
    """
    slope, p = trend_test(values, min(values.shape[0], max(3 * horizon, 24)))
    if limit is not None and values[-1] >= limit:
        return "exceeded", {"p10_h": 0.0, "p50_h": 0.0, "p90_h": 0.0, "crossing_probability": 1.0}, (slope, p)
    if p >= TREND_P or slope <= 0:
        return "no_trend", dict(NO_CROSSING), (slope, p)
    if limit is not None:
        return forecast.status, time_to_threshold(forecast, limit, step_s), (slope, p)
    return forecast.status, dict(NO_CROSSING), (slope, p)
