"""`vibra report` over a fleet."""

from __future__ import annotations

import time
from pathlib import Path




def bench_report(work: Path, n_machines: int) -> list[dict]:
    """`vibra report` over many machines with 30 days of hourly windows (features + hourly only)."""
    from vibra.storage import hourly
    from vibra.settings import load_settings
    from vibra.workspace import Workspace
    from vibra_pipelines import report

    ws = Workspace(work / "ws-scale")  # written by bench_anomaly_scale
    parts = {(p.parent.parent.name.split("=", 1)[1], p.parent.name.split("=", 1)[1])
             for p in ws.lake.glob("features/date=*/equipment=*/*.parquet")}
    hourly.rebuild(ws.lake, parts)
    settings = load_settings(ws.config_path, {})
    t = time.perf_counter()
    result = report.run(ws, settings, out=work / "report-scale")
    elapsed = time.perf_counter() - t
    return [{"benchmark": "`vibra report` for a fleet", "detail": f"{result.machines} machines × 30 days of hourly windows, "
             f"{result.bytes_written / 1e6:.1f} MB of HTML; ratio = seconds per machine",
             "vibra_s": elapsed, "baseline_s": None, "ratio": elapsed / max(result.machines, 1),
             "target": "well under a minute for 200 machines, < ~20 MB"}]
