"""The forecast stage: per equipment × channel × indicator series, forecasts with intervals,
time to the alarm limit, a manifest per run, and the ``forecasts`` table."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

import numpy as np

from vibra import __version__
from vibra.errors import InputError
from vibra.prognostics.forecast import LEVELS, Series, forecast_many, status_of, to_grid
from vibra.physics import limits
from vibra.prognostics.failure_levels import velocity_at_failures
from vibra.ingest.quality import drop_sensor_faults
from vibra.settings import Settings
from vibra.storage import artifacts, tables
from vibra.storage.tables import equipment_ids, read_features
from vibra.report.summaries import latest_forecast as show  # noqa: F401 - `vibra forecast show`
from vibra.workspace import Workspace

from vibra_pipelines.runs import StageResult, count_forecast, recorded



def forecast_store(ws: Workspace) -> artifacts.VersionedStore:
    return artifacts.store(ws.artifacts, "forecast")


@dataclass
class ForecastRun(StageResult):
    version: str = ""
    series: list[dict] = field(default_factory=list)
    skipped_unchanged: int = 0
    fallbacks: int = 0
    model_failures: int = 0   # (series, candidate) pairs that raised or forecast non-finite values
    duration_s: float = 0.0
    manifest: str = ""

    def counts(self) -> dict:
        return {"series": len(self.series), "skipped": self.skipped_unchanged, "fallbacks": self.fallbacks,
                "model_failures": self.model_failures}


def _default_indicator(df) -> str:
    if "velocity_rms_mm_s" in df.columns and df["velocity_rms_mm_s"].is_not_nan().sum() > 0:
        return "velocity_rms_mm_s"
    return "rms"


def _series(ws: Workspace, settings: Settings, eid: str, indicators: list[str] | None, freq_s: float,
            previous: dict[str, str], force: bool, result: ForecastRun,
            at_failure: dict[str, float] | None = None) -> list[tuple[Series, dict]]:
    """One machine's series to forecast, each with its limit (velocity's lowered to what past failures
    showed, ``at_failure``); unchanged and refused ones go to ``result``."""
    import polars as pl

    df = drop_sensor_faults(ws, read_features(ws, eid))
    if df.height == 0:
        return []
    first = df["window_start"].min()
    todo = []
    for indicator in indicators or [_default_indicator(df)]:
        if indicator not in df.columns:
            raise InputError(f"indicator {indicator!r} is not in the features of {eid}; "
                             f"choose e.g. rms, kurtosis, velocity_rms_mm_s")
        for (channel,), part in df.group_by(["channel"], maintain_order=True):
            key = f"{eid}|{channel}|{indicator}"
            times = part["window_start"].dt.epoch("us").to_numpy()
            values = part[indicator].cast(pl.Float64).fill_nan(None).fill_null(np.nan).to_numpy()
            data_end = part["window_start"].max().isoformat()
            info = {"key": key, "equipment_id": eid, "channel": channel, "indicator": indicator,
                    "data_start": part["window_start"].min().isoformat(), "data_end": data_end}
            if not force and previous.get(key) == data_end:
                result.skipped_unchanged += 1
                continue
            series, reason = to_grid(times, values, freq_s, key=key)
            if series is None:
                result.series.append({**info, "status": "refused", "reason": reason})
                continue
            in_base = part.filter(pl.col("window_start") < first + timedelta(days=settings.anomaly.baseline_days))
            limit, source = limits.target(settings.equipment_for(eid), indicator,
                                          in_base[indicator].cast(pl.Float64).to_numpy(), float(series.values[-1]),
                                          what=f"baseline (first {settings.anomaly.baseline_days:g} days)",
                                          at_failure=at_failure)
            info.update(n_points=int(series.values.shape[0]), missing=series.missing, fill_rule=series.fill_rule,
                        limit=limit, limit_source=source)
            todo.append((series, info))
    return todo


def _settle(todo: list[tuple[Series, dict]], forecasts, horizon: int, version: str, now: datetime, levels,
            result: ForecastRun) -> list:
    """Each series' status and time to its limit into ``result``; the ``forecasts`` rows of those forecast."""
    rows = []
    for (series, info), fc in zip(todo, forecasts):
        info["status"] = fc.status
        if fc.status == "insufficient_data":
            info["points_needed"] = fc.needed
            result.series.append(info)
            continue
        info["status"], ttt, (slope, p) = status_of(fc, series.values, info["limit"], series.step_s, horizon)
        info.update(model=fc.model, fallback=fc.fallback, mase=fc.mase, cv_mae=fc.cv_mae, slope_per_step=slope,
                    trend_p=p, failed_models=fc.failed_models)
        result.fallbacks += int(fc.fallback)
        result.model_failures += len(fc.failed_models)
        info["time_to_threshold"] = ttt
        result.series.append(info)
        rows.append(_rows(series, fc, info, version, now, levels))
    return rows


@recorded("forecast")
def run(ws: Workspace, settings: Settings, *, equipment: list[str] | None = None, indicators: list[str] | None = None,
        horizon_s: float | None = None, freq_s: float | None = None, levels=LEVELS, force: bool = False,
        min_points: int | None = None, progress: Callable[[int, int, str], None] | None = None) -> ForecastRun:
    """Forecast every machine × channel × indicator (defaults from ``[forecast]``).

    ``progress(done, total, what)``: first per machine read, then per candidate model fitted
    on the batch of series (see :func:`~vibra.prognostics.forecast.forecast_many`)."""
    import polars as pl

    horizon_s = horizon_s or settings.forecast.horizon_h * 3600
    freq_s = freq_s or settings.forecast.freq_s
    min_points = min_points or settings.forecast.min_points
    started = time.perf_counter()
    now = datetime.now(timezone.utc)
    version = artifacts.new_version(now=now)
    horizon = max(1, int(round(horizon_s / freq_s)))
    store = forecast_store(ws)
    previous = {}
    if (latest := store.latest_manifest()) is not None:
        previous = {s["key"]: s["data_end"] for s in latest["series"]}
    result = ForecastRun(version=version)
    todo: list[tuple[Series, dict]] = []
    tick = progress if progress is not None else (lambda done, total, what: None)
    machines = equipment_ids(ws, equipment)
    at_failure = velocity_at_failures(ws)  # velocity levels are lowered to what past failures showed
    for i, eid in enumerate(machines):
        tick(i, len(machines), f"reading {eid}")
        todo += _series(ws, settings, eid, indicators, freq_s, previous, force, result, at_failure)
    forecasts = forecast_many([s for s, _ in todo], horizon, levels=levels, min_points=min_points,
                              n_jobs=settings.forecast.n_jobs, progress=progress)
    rows = _settle(todo, forecasts, horizon, version, now, levels, result)
    if rows:
        tables.write_forecasts(ws, pl.concat(rows, how="diagonal_relaxed"), version)
    result.duration_s = time.perf_counter() - started
    manifest = {
        "version": version, "generated_at": now.isoformat(), "vibra_version": __version__,
        "horizon_steps": horizon, "freq_s": freq_s, "levels": list(levels), "min_points": min_points,
        "candidates": ["AutoETS", "AutoTheta", "AutoARIMA(approximation, non-seasonal)"], "fallback_model": "Naive",
        "selection": "lowest rolling-origin MAE over 2 origins on each series' tail, among the candidates "
                     "that did not fail on it (Naive when all failed); on an accelerating series only the candidates "
                     "whose forecast rises at least half the recent slope (RecentTrend, the recent window's line, "
                     "when none does); never below 0 for an indicator that never was",
        "fallbacks": result.fallbacks, "model_failures": result.model_failures, "skipped_unchanged": result.skipped_unchanged,
        "duration_s": result.duration_s,
        "series": [s for s in result.series] + [{"key": k, "data_end": v, "status": "unchanged"}
                                                 for k, v in previous.items()
                                                 if k not in {s["key"] for s in result.series}],
    }
    store.put(version, manifest)
    result.manifest = str(store.root / version / store.manifest)
    count_forecast(ws, result.series, ok=True)
    return result


def _rows(series: Series, fc, info: dict, version: str, now: datetime, levels) -> object:
    import polars as pl

    step = int(round(series.step_s * 1e6))
    n = series.values.shape[0]
    hist_t = series.start_us + np.arange(n) * step
    fut_t = series.start_us + (n + np.arange(fc.mean.shape[0])) * step
    utc = pl.Datetime("us", "UTC")
    ttt = info["time_to_threshold"]
    common = {"equipment_id": info["equipment_id"], "channel": info["channel"], "indicator": info["indicator"],
              "model": fc.model, "model_version": version, "generated_at": now, "status": info["status"],
              "limit": info["limit"], "limit_source": info["limit_source"], "ttt_p10_h": ttt["p10_h"],
              "ttt_p50_h": ttt["p50_h"], "ttt_p90_h": ttt["p90_h"], "ttt_state": ttt.get("state"),
              "crossing_probability": ttt["crossing_probability"], "mase": fc.mase}
    history = pl.DataFrame({"ds": pl.Series(hist_t).cast(utc), "kind": ["history"] * n, "value": series.values})
    future = pl.DataFrame({"ds": pl.Series(fut_t).cast(utc), "kind": ["forecast"] * fc.mean.shape[0], "mean": fc.mean,
                           **{k: v for k, v in fc.bounds.items()}})
    out = pl.concat([history, future], how="diagonal_relaxed")
    return out.with_columns(**{k: pl.lit(v) for k, v in common.items()})
