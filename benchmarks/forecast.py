"""Forecast figures (accuracy and time) on synthetic degradation."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from real import REAL


def forecast_figures(work: Path) -> tuple[list[dict], str]:
    """Series per second at scale, and the run-to-failure figures (IMS, FEMTO)."""
    import polars as pl

    from vibra.prognostics.forecast import Series, forecast_many
    from vibra.prognostics.forecast_eval import end_of_life, remaining_life, rolling_mase

    rng = np.random.default_rng(6)
    n_series, points = 100, 720
    series = [Series(f"s{i}", 0, 3600.0, 1.0 + np.cumsum(rng.normal(0.002, 0.02, points))) for i in range(n_series)]
    forecast_many(series[:2], 72, n_jobs=2)  # warm the numba caches
    t = time.perf_counter()
    forecast_many(series, 72, n_jobs=2)
    elapsed = time.perf_counter() - t
    rows = [{"benchmark": "forecast batch: series per second (3 candidates + naive, 2-origin CV, 80/95 % intervals)",
             "detail": f"{n_series} series × {points} hourly points, horizon 72, n_jobs=2; 1,000 series ≈ "
                       f"{elapsed * 1000 / n_series / 60:.1f} min; ratio = series per second",
             "vibra_s": elapsed, "baseline_s": None, "ratio": n_series / elapsed, "target": "(throughput, reported)"}]
    real = REAL
    if not real.exists():
        return rows, ""
    ims = pl.read_csv(real / "ims_test2_features" / "test2_timefeatures.csv")["B1_rms"].to_numpy()[:-2]
    femto = pl.read_csv(real / "femto_bearing1_1" / "snapshot_features.csv")["rms_h"].to_numpy()[::10]
    lines = ["", "## Forecasting run-to-failure data", "",
             "Rolling-origin MASE against the naive forecast (8 origins from 30 % of life on); end of life = the "
             "smoothed level first reaching half its maximum; at 50 / 75 / 90 % of the time to that point, the "
             "true hours left against the predicted P10 / P50 / P90 ('—': no crossing within the horizon).", "",
             "| series | MASE h=1 | h=6 | h=36 | left at 50 % (true → P10/P50/P90) | at 75 % | at 90 % |",
             "|---|---|---|---|---|---|---|"]
    for name, y, step in (("IMS test 2 bearing 1 `B1_rms` (10 min)", ims, 600.0),
                          ("FEMTO Bearing1_1 `rms_h`, every 10th snapshot (100 s)", femto, 100.0)):
        mase = [rolling_mase(y, step, h) for h in (1, 6, 36)]
        threshold, crossing = end_of_life(y)
        cells = []
        for frac in (0.5, 0.75, 0.9):
            r = remaining_life(y, step, frac, threshold, crossing)
            fmt = lambda v: "—" if v is None else f"{v:.1f}"  # noqa: E731
            cells.append(f"{r['true_h']:.1f} h → {fmt(r['p10_h'])}/{fmt(r['p50_h'])}/{fmt(r['p90_h'])}")
        lines.append(f"| {name} | " + " | ".join(f"{m:.2f}" for m in mase) + " | " + " | ".join(cells) + " |")
    lines += ["", "Short horizons beat or match naive; the end-of-life crossing is abrupt (both bearings reach half "
              "their final level in the last 2 % of life) and none of the statistical models sees it coming from "
              "50–90 % of life — which is what the `no_trend` abstention and the anomaly alarms are for."]
    return rows, "\n".join(lines) + "\n"
