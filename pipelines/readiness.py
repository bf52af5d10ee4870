"""The readiness stage: is the data fit to train on? Metrics, verdicts, exit status, gauges.

Dataset metrics come from the ``features`` table (one aggregate query), the
latest clustering and the labels; waveform metrics from the ledger's per-channel
sample counts (NaN, flat line, clipping), the recordings' times and the
machines' settings. Every metric names the steps it blocks. See
:mod:`vibra.discovery.readiness` for the verdict rules.
"""

from __future__ import annotations

from datetime import datetime, timezone

from vibra.discovery import embedding

from vibra.storage import metrics
from vibra.discovery import readiness_metrics as checks
from vibra.discovery.readiness import RANK, RED, Metric, overall
from vibra.settings import Settings
from vibra.signal.indicators import TIME_COLUMNS
from vibra.signal.indicators import SPECTRAL_COLUMNS
from vibra.storage import artifacts, ledger, tables
from vibra.storage.labels import labelled_windows, list_events
from vibra.storage.tables import read_clusters, read_windows
from vibra.workspace import Workspace

from vibra_pipelines.runs import recorded

SCHEMA = {
    "status": "green | amber | red: the worst metric",
    "generated_at": "UTC time of the check",
    "counts": "{green, amber, red}: metrics per status",
    "equipment": "{equipment_id: status}",
    "metrics": "[{name, scope, value, threshold {green, red, better}, status, blocks [steps], note}]",
    "flagged_for_merge": "[cluster_id]: clusters smaller than min_labeled_cluster",
    "fail_on": "the --fail-on level", "failed": "whether the status reaches it (exit 3)",
}


def _dataset(ws: Workspace, settings: Settings, stats: list[dict], now: datetime,
             emb_version: str) -> tuple[list[Metric], dict, list]:
    r = settings.readiness
    out, gauges = checks.embedding_metrics(stats, r)
    manifest = artifacts.store(ws.artifacts, "clustering").latest_manifest()
    labelled_ids: list[int] = []
    if manifest is not None:
        labelled = labelled_windows(ws, read_clusters(ws))
        labelled_ids = sorted({int(c) for c in labelled["cluster_id"].to_list() if c >= 0}) if labelled.height else []
    found, more, flagged = checks.clustering_metrics(manifest, labelled_ids, r)
    out += found
    gauges.update(more)
    found, more = checks.lake_metrics(stats, now, r)
    out += found
    gauges.update(more)
    counts = {}
    if sum(s["n"] for s in stats):  # labelled windows per defect: keys only, the embeddings are not needed here
        import polars as pl

        keys = read_windows(ws, ["embedding_version"]).filter(pl.col("embedding_version") == emb_version)
        labelled = labelled_windows(ws, keys)
        if labelled.height:
            counts = dict(labelled.group_by("defect").len().iter_rows())
    from vibra.prognostics.rul import MIN_LIVES

    n_failures = sum(1 for e in list_events(ws) if e["kind"] == "failure")
    out += checks.label_metrics(counts, n_failures, MIN_LIVES, r)
    gauges["rul_failed_lives"] = n_failures
    return out, gauges, flagged


def assess(ws: Workspace, settings: Settings, *, equipment: list[str] | None = None, fail_on: str = "never",
           now: datetime | None = None) -> dict:
    """Every readiness metric with its verdict and the overall status; sets the Prometheus gauges.

    Neither recorded as a run nor stored: :func:`run` does both (``vibra readiness``); a snapshot
    records the assessment of the lake it freezes."""
    now = now or datetime.now(timezone.utc)
    emb_version = embedding.version_of(embedding.definition(settings.features.bands_hz))
    ledger.ensure(ws)
    stats = tables.window_stats(ws, emb_version, (*TIME_COLUMNS, *SPECTRAL_COLUMNS))
    dataset, gauges, flagged = _dataset(ws, settings, stats, now, emb_version)
    wave = checks.waveform_metrics(ledger.current(ws), stats, settings.equipment_for, settings.readiness)
    if equipment:
        wave = [m for m in wave if m.scope.split("/")[1] in equipment]
    found = dataset + wave
    status, per_eq = overall(found)
    report = {
        "status": status, "generated_at": now.isoformat(), "embedding_version": emb_version,
        "counts": {s: sum(1 for m in found if m.status == s) for s in RANK},
        "equipment": per_eq, "metrics": [m.as_dict() for m in found], "flagged_for_merge": flagged,
        "fail_on": fail_on, "failed": fail_on != "never" and RANK[status] >= RANK[fail_on],
    }
    _gauges(ws, report, gauges, stats, now)
    return report


@recorded("readiness", lambda report: {"readiness": report["status"], "red": report["counts"][RED]})
def run(ws: Workspace, settings: Settings, *, equipment: list[str] | None = None, fail_on: str = "never",
        now: datetime | None = None) -> dict:
    """:func:`assess`, recorded as a run and stored as the readiness store's new version."""
    report = assess(ws, settings, equipment=equipment, fail_on=fail_on, now=now)
    generated = datetime.fromisoformat(report["generated_at"])
    artifacts.store(ws.artifacts, "readiness").put(artifacts.new_version("readiness", now=generated), report)
    return report


def _gauges(ws: Workspace, report: dict, g: dict, stats: list[dict], now: datetime) -> None:
    nan = float("nan")

    def val(v):
        return nan if v is None else float(v)

    recency = {}
    for s in stats:
        gap = (now - s["last"]).total_seconds()
        recency[metrics.labels(equipment=s["equipment_id"])] = min(gap, recency.get(
            metrics.labels(equipment=s["equipment_id"]), gap))
    status = {(): RANK[report["status"]], **{metrics.labels(equipment=e): RANK[s] for e, s in report["equipment"].items()}}
    metrics.update(ws.metrics_path, gauges=[
        metrics.gauge("vibra_embedding_coverage_ratio", "Windows with the current embedding / all windows.",
                      val(g.get("coverage"))),
        metrics.gauge("vibra_features_with_embedding_total", "Windows carrying the current embedding.",
                      val(g.get("with_embedding"))),
        metrics.gauge("vibra_clustering_noise_ratio", "Share of windows in no cluster (latest clustering).",
                      val(g.get("noise"))),
        metrics.gauge("vibra_clustering_label_coverage_ratio", "Share of clusters that carry a label.",
                      val(g.get("label_coverage"))),
        metrics.gauge("vibra_min_cluster_size_labeled", "Windows in the smallest labelled cluster.", val(g.get("smallest"))),
        metrics.gauge("vibra_p50_cluster_size", "Median cluster size (windows).", val(g.get("p50"))),
        metrics.gauge("vibra_p90_cluster_size", "90th percentile cluster size (windows).", val(g.get("p90"))),
        metrics.gauge("vibra_data_recency_seconds", "Seconds since the newest window ended (per machine and overall).",
                      {(): val(g.get("recency_s")), **recency}),
        metrics.gauge("vibra_rul_failed_lives_total", "Failures recorded: lives in the RUL library.",
                      val(g.get("rul_failed_lives"))),
        metrics.gauge("vibra_readiness_status", "Readiness: 0 green, 1 amber, 2 red (overall and per machine).", status),
    ])
