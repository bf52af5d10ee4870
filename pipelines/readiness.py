"""The readiness stage: is the data fit to train on? Metrics, verdicts, exit status, gauges.

Dataset metrics come from the ``features`` table (one aggregate query), the
latest clustering and the labels; waveform metrics from the ledger's per-channel
sample counts (NaN, flat line, clipping), the recordings' times and the
machines' settings. Every metric names the steps it blocks. See
:mod:`vibra.discovery.readiness` for the verdict rules.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np

from vibra.discovery import embedding

from vibra.storage import metrics
from vibra.discovery.readiness import GREEN, RANK, RED, Metric, metric, overall
from vibra.settings import Settings
from vibra.signal._kernels import TIME_COLUMNS
from vibra.signal.indicators import SPECTRAL_COLUMNS
from vibra.storage import artifacts, catalog, tables
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
ISO_BAND_HIGH_HZ = 1000.0  # ISO 20816 velocity band is 10–1000 Hz: Nyquist must reach it


def _dataset(ws: Workspace, settings: Settings, stats: list[dict], now: datetime,
             emb_version: str) -> tuple[list[Metric], dict, list]:
    r = settings.readiness
    out: list[Metric] = []
    gauges: dict = {}
    total = sum(s["n"] for s in stats)
    current = sum(s["current"] for s in stats)
    coverage = current / total if total else None
    out.append(metric("embedding_coverage", "workspace", coverage, r.embedding_coverage_green, r.embedding_coverage_red,
                      "higher", ["cluster", "snapshot"],
                      "windows carrying the current embedding version / all windows"
                      + ("" if total else "; no windows yet: run vibra ingest")))
    dims = sorted({d for s in stats for d in (s["dims"] or [])})
    out.append(metric("embedding_dimensions", "workspace", len(dims) if total else None, 1, 1, "equal",
                      ["cluster", "defect kNN", "snapshot"], f"distinct embedding lengths in the lake: {dims}"
                      + ("; run vibra features rebuild" if len(dims) > 1 else "")))
    gauges["coverage"], gauges["with_embedding"] = coverage, current

    manifest = artifacts.store(ws.artifacts, "clustering").latest_manifest()
    flagged: list[int] = []
    if manifest is None:
        note = "no clustering yet: run vibra cluster"
        for name, green, red_, better in (("noise_ratio", r.noise_ratio_green, r.noise_ratio_red, "lower"),
                                          ("label_coverage", r.label_coverage_green, r.label_coverage_red, "higher"),
                                          ("smallest_labeled_cluster", r.min_labeled_cluster, r.min_labeled_cluster,
                                           "higher")):
            out.append(metric(name, "workspace", None, green, red_, better, ["defect kNN", "snapshot"], note))
    else:
        members = read_clusters(ws)
        sizes = {int(k): v for k, v in manifest["sizes"].items()}
        labelled = labelled_windows(ws, members)
        labelled_ids = sorted({int(c) for c in labelled["cluster_id"].to_list() if c >= 0}) if labelled.height else []
        label_cov = len(labelled_ids) / len(sizes) if sizes else 0.0
        out.append(metric("noise_ratio", "workspace", manifest["noise_ratio"], r.noise_ratio_green, r.noise_ratio_red,
                          "lower", ["defect kNN", "snapshot"], f"clustering {manifest['version']}"))
        out.append(metric("label_coverage", "workspace", label_cov, r.label_coverage_green, r.label_coverage_red,
                          "higher", ["defect kNN", "snapshot"],
                          f"{len(labelled_ids)} of {len(sizes)} clusters carry a label (vibra label cluster)"))
        smallest = min((sizes[c] for c in labelled_ids), default=None)
        out.append(metric("smallest_labeled_cluster", "workspace", smallest, r.min_labeled_cluster,
                          r.min_labeled_cluster, "higher", ["defect kNN"],
                          "windows in the smallest labelled cluster" + ("" if labelled_ids else "; no labelled cluster")))
        flagged = sorted(c for c, n in sizes.items() if n < r.min_labeled_cluster)
        out.append(Metric("clusters_under_min_size", "workspace", len(flagged),
                          {"green": 0, "red": None, "better": "lower"}, GREEN if not flagged else "amber",
                          ["defect kNN"], f"flagged for merging: {flagged}" if flagged else ""))
        values = np.array(list(sizes.values()) or [0], dtype=float)
        for name, v in (("cluster_size_min", values.min()), ("cluster_size_p50", np.quantile(values, 0.5)),
                        ("cluster_size_p90", np.quantile(values, 0.9))):
            out.append(Metric(name, "workspace", float(v), {"green": None, "red": None, "better": "info"}, GREEN, [],
                              "for information"))
        gauges.update(noise=manifest["noise_ratio"], label_coverage=label_cov, smallest=smallest,
                      p50=float(np.quantile(values, 0.5)), p90=float(np.quantile(values, 0.9)))

    last = max((s["last"] for s in stats), default=None)
    gap_h = (now - last).total_seconds() / 3600 if last else None
    out.append(metric("recency_gap_h", "workspace", None if gap_h is None else round(gap_h, 3), r.recency_green_h,
                      r.recency_red_h, "lower", ["forecast", "report"],
                      f"newest window ends {last.isoformat() if last else 'never'}"))
    gauges["recency_s"] = None if gap_h is None else gap_h * 3600
    per_eq: dict[str, int] = {}
    for s in stats:
        per_eq[s["equipment_id"]] = per_eq.get(s["equipment_id"], 0) + s["with_embedding"]
    share = max(per_eq.values()) / sum(per_eq.values()) if per_eq and sum(per_eq.values()) else None
    out.append(metric("largest_equipment_share", "workspace", share, r.equipment_share_red, r.equipment_share_red,
                      "lower", ["snapshot"], f"largest machine: {max(per_eq, key=per_eq.get) if per_eq else '—'}"))
    cells = sum(s["n"] * s["numeric_columns"] for s in stats)
    miss = sum(s["missing_cells"] for s in stats) / cells if cells else None
    out.append(metric("missing_numeric_indicators", "workspace", miss, r.missing_indicators_green,
                      r.missing_indicators_red, "lower", ["train", "cluster"],
                      "NaN cells among the time-domain and spectral indicators (physics ones are NaN by design "
                      "where units, rpm or geometry are missing: see the waveform checks)"))
    counts = {}
    if total:  # labelled windows per defect: keys only, the embeddings are not needed here
        import polars as pl

        keys = read_windows(ws, ["embedding_version"]).filter(pl.col("embedding_version") == emb_version)
        labelled = labelled_windows(ws, keys)
        if labelled.height:
            counts = dict(labelled.group_by("defect").len().iter_rows())
    # RUL learns from run-to-failure lives: with 1 … MIN_LIVES − 1 failures its answer is the survival
    # prior of too few lives (amber: it holds up RUL, not training or snapshots). With none, RUL is not
    # in use and has nothing to say: green, with a note, so a gate that never uses RUL is not held up.
    from vibra.prognostics.rul import MIN_LIVES

    n_failures = sum(1 for e in list_events(ws) if e["kind"] == "failure")
    rul_metric = metric("rul_failed_lives", "workspace", n_failures, MIN_LIVES, 0, "higher", ["rul"],
                        f"failures recorded (each ends a life in the RUL library); below {MIN_LIVES} the library is "
                        "too small to trust: record them with vibra label failure / import-events")
    if n_failures == 0:
        rul_metric.status, rul_metric.note = GREEN, "no failures recorded: RUL is not in use (vibra label failure)"
    out.append(rul_metric)
    gauges["rul_failed_lives"] = n_failures
    ratio = max(counts.values()) / min(counts.values()) if len(counts) >= 2 else None
    out.append(metric("class_imbalance", "workspace", ratio, r.class_imbalance_green, r.class_imbalance_red, "lower",
                      ["defect kNN", "snapshot"], f"labelled windows per defect: {counts}" if counts else "no labels yet"))
    return out, gauges, flagged


def _waveform(ws: Workspace, settings: Settings, stats: list[dict]) -> list[Metric]:
    r = settings.readiness
    rows = catalog.query(ws.catalog_path, f"""SELECT equipment_id, status, channel_stats, recorded_at, sample_rate_hz, rpm
                                             FROM {catalog.CURRENT} c WHERE equipment_id <> ''""")
    by_eq: dict[str, list] = {}
    for row in rows:
        by_eq.setdefault(row[0], []).append(row)
    span: dict[str, tuple] = {}
    for s in stats:
        lo, hi = span.get(s["equipment_id"], (s["first"], s["last"]))
        span[s["equipment_id"]] = (min(lo, s["first"]), max(hi, s["last"]))
    out: list[Metric] = []
    for eid in sorted(set(by_eq) | set(span)):
        scope = f"equipment/{eid}"
        recs = by_eq.get(eid, [])
        done = [x for x in recs if x[1] == "completed"]
        per_ch: dict[str, dict] = {}
        unknown = 0
        for x in done:
            if not x[2]:
                unknown += 1
                continue
            for c in json.loads(x[2]):
                acc = per_ch.setdefault(c["channel"], {"samples": 0, "nan": 0, "flat": 0, "clipped": 0})
                for k in acc:
                    acc[k] += c.get(k, 0)
        note = f"{unknown} recording(s) ingested before per-channel counts were kept" if unknown else ""
        for ch, acc in sorted(per_ch.items()):
            cs = f"{scope}/channel/{ch}"
            n = acc["samples"] or 1
            out.append(metric("missing_values", cs, acc["nan"] / n, r.missing_values_green, r.missing_values_red,
                              "lower", ["train"], note or "NaN samples / samples"))
            out.append(metric("flat_line_share", cs, acc["flat"] / n, r.flat_green, r.flat_red, "lower", ["train"],
                              note or "samples in flat-line runs / samples"))
            out.append(metric("clipping_share", cs, acc["clipped"] / n, r.clipping_green, r.clipping_red, "lower",
                              ["train"], note or "samples in clipped plateaus / samples"))
        if unknown and not per_ch:
            out.append(Metric("channel_checks", scope, None, {"green": None, "red": None, "better": "info"}, "amber",
                              ["train"], note + "; `vibra features rebuild` records them"))
        dups = sum(1 for x in recs if x[1] == "duplicate")
        out.append(Metric("duplicate_recordings", scope, dups, {"green": 0, "red": None, "better": "lower"},
                          GREEN if dups == 0 else "amber", [],
                          "copies of an ingested file (skipped, nothing stored twice)" if dups else ""))
        times = sorted(x[3] for x in done if x[3] is not None)
        gap = max((b - a).total_seconds() / 3600 for a, b in zip(times, times[1:])) if len(times) > 1 else 0.0
        out.append(metric("largest_gap_h", scope, round(gap, 3) if times else None, r.gap_green_h, r.gap_red_h, "lower",
                          ["forecast"], "largest time between consecutive recordings"))
        lo, hi = span.get(eid, (None, None))
        days = (hi - lo).total_seconds() / 86400 if lo is not None else None
        out.append(metric("days_of_data", scope, None if days is None else round(days, 3), r.min_days, r.min_days,
                          "higher", ["train"], f"fewer than {r.min_days:g} days blocks training"))
        rates = [x[4] for x in done if x[4]]
        nyq = min(rates) / 2 if rates else None
        out.append(metric("nyquist_hz", scope, nyq, ISO_BAND_HIGH_HZ, ISO_BAND_HIGH_HZ, "higher", ["ISO zone"],
                          "lowest sample rate / 2 against the ISO 20816 band's 1000 Hz"))
        eq = settings.equipment_for(eid)
        out.append(Metric("units_declared", scope, eq.units, {"green": "declared", "red": None, "better": "declared"},
                          GREEN if eq.units else "amber", ["velocity RMS", "ISO zone"],
                          "" if eq.units else f"set units in [equipment.{eid}] (g, m/s^2, mm/s)"))
        has_rpm = bool(eq.rpm) or any(x[5] for x in done)
        out.append(Metric("rpm_available", scope, has_rpm, {"green": True, "red": None, "better": "true"},
                          GREEN if has_rpm else "amber", ["orders", "envelope fault bands"],
                          "" if has_rpm else f"set rpm in [equipment.{eid}]"))
    return out


def assess(ws: Workspace, settings: Settings, *, equipment: list[str] | None = None, fail_on: str = "never",
           now: datetime | None = None) -> dict:
    """Every readiness metric with its verdict and the overall status; sets the Prometheus gauges.

    Neither recorded as a run nor stored: :func:`run` does both (``vibra readiness``); a snapshot
    records the assessment of the lake it freezes."""
    now = now or datetime.now(timezone.utc)
    emb_version = embedding.version_of(embedding.definition(settings.features.bands_hz))
    catalog.ensure(ws.catalog_path)
    stats = tables.window_stats(ws, emb_version, (*TIME_COLUMNS, *SPECTRAL_COLUMNS))
    dataset, gauges, flagged = _dataset(ws, settings, stats, now, emb_version)
    wave = _waveform(ws, settings, stats)
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
