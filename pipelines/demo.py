"""The demo stage: a fresh workspace, a synthetic plant, the pipeline over it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from vibra.settings import load_settings
from vibra.workspace import Workspace, init_workspace

from vibra.anomaly import FAMILIES
from vibra.discovery import clustering

from vibra_pipelines import anomaly, cluster, defects, forecast, ingest, readiness, report, rul, snapshot, status, synth
from vibra_pipelines.runs import StageResult


@dataclass
class DemoResult(StageResult):
    workspace: str
    source: str
    synth: synth.SynthResult
    ingest: ingest.IngestResult
    status: dict
    train: anomaly.TrainResult | None = None
    detect: anomaly.DetectResult | None = None
    episodes: list[dict] | None = None
    forecast: forecast.ForecastRun | None = None
    events: dict | None = None
    rul: rul.RulRun | None = None
    cluster: cluster.ClusterResult | None = None
    labels: dict | None = None
    readiness: dict | None = None
    snapshot: dict | None = None
    report: report.ReportResult | None = None

    def as_dict(self) -> dict:
        return {"workspace": self.workspace, "source": self.source, "synth": self.synth.as_dict(),
                "ingest": self.ingest.as_dict(), "status": self.status,
                "train": self.train.as_dict() if self.train else None,
                "detect": self.detect.as_dict() if self.detect else None, "anomalies": self.episodes,
                "forecast": self.forecast.as_dict() if self.forecast else None, "events": self.events,
                "rul": self.rul.as_dict() if self.rul else None,
                "cluster": self.cluster.as_dict() if self.cluster else None, "labels": self.labels,
                "readiness": {k: self.readiness[k] for k in ("status", "counts", "equipment")} if self.readiness else None,
                "snapshot": self.snapshot, "report": self.report.as_dict() if self.report else None}


def run(home: Path, *, n_equipment: int = 4, days: float = 5.0, seed: int = 7, past_lives: int = 1,
        env: dict | None = None, step: Callable[[str], None] | None = None,
        progress: Callable[[str, dict], None] | None = None) -> DemoResult:
    """synth → ingest → status in the workspace ``home`` (created if needed)."""
    say = step or (lambda message: None)
    ws, _ = init_workspace(home)
    source = ws.root / "export"
    start = (datetime.now(timezone.utc) - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    say(f"synthesising {n_equipment} machines × {days:g} days into {source}, with {past_lives} earlier life "
        "of every faulty machine run to failure and replaced")
    made = synth.run(source, n_equipment=n_equipment, days=days, seed=seed, start=start, workspace=ws,
                     n_past_lives=past_lives)
    settings = load_settings(ws.config_path, env or {})
    if settings.lake.uri:
        from vibra.storage import remote

        remote.configure(ws, settings)
    if settings.cluster.umap_components:  # UMAP's neighbour search compiles while the worker processes ingest
        clustering.warm_up(settings.cluster.umap_neighbors)
    say("ingesting")
    ingested = ingest.run(ws, settings, source, progress=progress)
    result = DemoResult(workspace=str(ws.root), source=str(source), synth=made, ingest=ingested,
                        status=status.run(Workspace(ws.root)))
    # the synthetic faults start between 20 % and 40 % of the period: the first 20 % is the baseline
    say("training anomaly models on the first 20 % of each machine's data, then scoring the rest")
    result.train = anomaly.train(ws, settings, models=list(FAMILIES), baseline_days=max(days * 0.2, 0.05))
    result.detect = anomaly.detect(ws, settings)
    result.episodes = anomaly.episodes(ws, settings)
    say("forecasting velocity and rms 72 h ahead, with the time until each machine's next level (alert, then danger)")
    result.forecast = forecast.run(ws, settings, indicators=["velocity_rms_mm_s", "rms"])
    if made.events_path:
        say("importing the earlier lives' failures and replacements from maintenance_events.csv, then estimating "
            "each machine's remaining useful life from them")
        result.events = defects.import_events(ws, settings, Path(made.events_path), who="demo")
        result.rul = rul.run(ws, settings)
    say("clustering fault signatures (the first time after install, UMAP compiles its kernels for a minute or so; "
        "they are cached for every later command)")
    result.cluster = cluster.run(ws, settings)
    defects.after_cluster(ws, settings, result.cluster)
    log = ws.root / "maintenance_log.csv"
    _maintenance_log(ws, source / "truth.csv", log)
    say(f"labelling one recording per fault from {log.name} (as a maintenance log would), which trains the defect kNN")
    result.labels = defects.label_import(ws, settings, log, who="demo")
    result.readiness = readiness.run(ws, settings)
    if result.readiness["status"] != "red":
        result.snapshot = snapshot.run(ws, settings, readiness=result.readiness)
    else:
        red = sorted({m["name"] for m in result.readiness["metrics"] if m["status"] == "red"})
        say(f"readiness is red ({', '.join(red)}): no training snapshot, as the nightly flow would skip it")
    say("rendering the report")
    result.report = report.run(ws, settings)
    return result


def _maintenance_log(ws: Workspace, truth_path: Path, out: Path) -> None:
    """One recording per fault type (its clearest: highest severity; mid-period for healthy) as a label CSV."""
    import polars as pl

    truth = pl.read_csv(truth_path)
    files = status.recordings(ws).select("recording_id", "source_path").with_columns(
        file=pl.col("source_path").str.extract(r"/([^/]+/[^/]+)$"))
    rec = files.join(truth, on="file").filter(pl.col("sensor_fault").fill_null("") == "")
    lines = ["equipment_id,recording_id,start,end,defect,note"]
    for fault in sorted(set(rec["fault_type"].to_list())):
        sub = rec.filter(pl.col("fault_type") == fault).sort("severity", "file")
        pick = sub.row(sub.height // 2 if fault == "normal" else sub.height - 1, named=True)
        lines.append(f"{pick['equipment_id']},{pick['recording_id']},,,{fault},synth truth")
    out.write_text("\n".join(lines) + "\n")
