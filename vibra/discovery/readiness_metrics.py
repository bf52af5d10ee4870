"""The measurements readiness grades (:mod:`vibra.discovery.readiness` gives the verdicts): the lake's
embeddings, the latest clustering and its labels, recency, balance and missing indicators over the
workspace; per machine and channel the waveform checks from the ledger (NaN, flat line, clipping,
duplicates, gaps, days of data, Nyquist, units, rpm).

Pure: every function takes what the ``readiness`` stage read (window statistics, a clustering manifest,
ledger rows, the machines' settings) and returns :class:`~vibra.discovery.readiness.Metric` rows.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Callable

import numpy as np

from vibra.discovery.readiness import GREEN, Metric, metric

if TYPE_CHECKING:
    from vibra.settings import Equipment, ReadinessSettings

ISO_BAND_HIGH_HZ = 1000.0  # ISO 20816 velocity band is 10–1000 Hz: Nyquist must reach it


def embedding_metrics(stats: list[dict], r: ReadinessSettings) -> tuple[list[Metric], dict]:
    """Coverage of the current embedding and the distinct embedding lengths, from the lake's window
    statistics (per machine × day: ``n, current, dims``)."""
    total = sum(s["n"] for s in stats)
    current = sum(s["current"] for s in stats)
    coverage = current / total if total else None
    dims = sorted({d for s in stats for d in (s["dims"] or [])})
    return [
        metric("embedding_coverage", "workspace", coverage, r.embedding_coverage_green, r.embedding_coverage_red,
               "higher", ["cluster", "snapshot"], "windows carrying the current embedding version / all windows"
               + ("" if total else "; no windows yet: run vibra ingest")),
        metric("embedding_dimensions", "workspace", len(dims) if total else None, 1, 1, "equal",
               ["cluster", "defect kNN", "snapshot"], f"distinct embedding lengths in the lake: {dims}"
               + ("; run vibra features rebuild" if len(dims) > 1 else "")),
    ], {"coverage": coverage, "with_embedding": current}


def clustering_metrics(manifest: dict | None, labelled_ids: list[int], r: ReadinessSettings
                       ) -> tuple[list[Metric], dict, list[int]]:
    """Noise, label coverage and cluster sizes of the latest clustering (``manifest``; None: none yet), given
    the clusters that carry a label; also the clusters too small to label (flagged for merging)."""
    out: list[Metric] = []
    if manifest is None:
        note = "no clustering yet: run vibra cluster"
        for name, green, red_, better in (("noise_ratio", r.noise_ratio_green, r.noise_ratio_red, "lower"),
                                          ("label_coverage", r.label_coverage_green, r.label_coverage_red, "higher"),
                                          ("smallest_labeled_cluster", r.min_labeled_cluster, r.min_labeled_cluster,
                                           "higher")):
            out.append(metric(name, "workspace", None, green, red_, better, ["defect kNN", "snapshot"], note))
        return out, {}, []
    sizes = {int(k): v for k, v in manifest["sizes"].items()}
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
    gauges = {"noise": manifest["noise_ratio"], "label_coverage": label_cov, "smallest": smallest,
              "p50": float(np.quantile(values, 0.5)), "p90": float(np.quantile(values, 0.9))}
    return out, gauges, flagged


def lake_metrics(stats: list[dict], now: datetime, r: ReadinessSettings) -> tuple[list[Metric], dict]:
    """How recent the newest window is, the largest machine's share of the embedded windows, and the NaN
    cells among the numeric indicators (window statistics: ``equipment_id, last, with_embedding, n,
    numeric_columns, missing_cells``)."""
    out: list[Metric] = []
    last = max((s["last"] for s in stats), default=None)
    gap_h = (now - last).total_seconds() / 3600 if last else None
    out.append(metric("recency_gap_h", "workspace", None if gap_h is None else round(gap_h, 3), r.recency_green_h,
                      r.recency_red_h, "lower", ["forecast", "report"],
                      f"newest window ends {last.isoformat() if last else 'never'}"))
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
    return out, {"recency_s": None if gap_h is None else gap_h * 3600}


def label_metrics(defect_counts: dict[str, int], n_failures: int, min_lives: int, r: ReadinessSettings
                  ) -> list[Metric]:
    """Failures recorded for RUL (``min_lives`` of them make a library to trust) and the imbalance of the
    labelled windows per defect."""
    # RUL learns from run-to-failure lives: with 1 … min_lives − 1 failures its answer is the survival
    # prior of too few lives (amber: it holds up RUL, not training or snapshots). With none, RUL is not
    # in use and has nothing to say: green, with a note, so a gate that never uses RUL is not held up.
    rul = metric("rul_failed_lives", "workspace", n_failures, min_lives, 0, "higher", ["rul"],
                 f"failures recorded (each ends a life in the RUL library); below {min_lives} the library is "
                 "too small to trust: record them with vibra label failure / import-events")
    if n_failures == 0:
        rul.status, rul.note = GREEN, "no failures recorded: RUL is not in use (vibra label failure)"
    counts = defect_counts
    ratio = max(counts.values()) / min(counts.values()) if len(counts) >= 2 else None
    return [rul, metric("class_imbalance", "workspace", ratio, r.class_imbalance_green, r.class_imbalance_red, "lower",
                        ["defect kNN", "snapshot"], f"labelled windows per defect: {counts}" if counts else "no labels yet")]


def _channels(done: list[dict], scope: str, r: ReadinessSettings) -> list[Metric]:
    """NaN, flat-line and clipped shares per channel from the completed recordings' ``channel_stats``."""
    out: list[Metric] = []
    per_ch: dict[str, dict] = {}
    unknown = 0
    for x in done:
        if not x["channel_stats"]:
            unknown += 1
            continue
        for c in json.loads(x["channel_stats"]):
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
    return out


def waveform_metrics(recordings: list[dict], stats: list[dict], equipment_for: Callable[[str], Equipment],
                     r: ReadinessSettings) -> list[Metric]:
    """Per machine (and channel): the waveform checks. ``recordings``: the ledger's current rows
    (``equipment_id, status, channel_stats, recorded_at, sample_rate_hz, rpm``); ``stats``: the window
    statistics (``equipment_id, first, last``); ``equipment_for``: a machine's settings."""
    by_eq: dict[str, list] = {}
    for row in recordings:
        if row["equipment_id"]:
            by_eq.setdefault(row["equipment_id"], []).append(row)
    span: dict[str, tuple] = {}
    for s in stats:
        lo, hi = span.get(s["equipment_id"], (s["first"], s["last"]))
        span[s["equipment_id"]] = (min(lo, s["first"]), max(hi, s["last"]))
    out: list[Metric] = []
    for eid in sorted(set(by_eq) | set(span)):
        scope = f"equipment/{eid}"
        recs = by_eq.get(eid, [])
        done = [x for x in recs if x["status"] == "completed"]
        out += _channels(done, scope, r)
        dups = sum(1 for x in recs if x["status"] == "duplicate")
        out.append(Metric("duplicate_recordings", scope, dups, {"green": 0, "red": None, "better": "lower"},
                          GREEN if dups == 0 else "amber", [],
                          "copies of an ingested file (skipped, nothing stored twice)" if dups else ""))
        times = sorted(x["recorded_at"] for x in done if x["recorded_at"] is not None)
        gap = max((b - a).total_seconds() / 3600 for a, b in zip(times, times[1:])) if len(times) > 1 else 0.0
        out.append(metric("largest_gap_h", scope, round(gap, 3) if times else None, r.gap_green_h, r.gap_red_h, "lower",
                          ["forecast"], "largest time between consecutive recordings"))
        lo, hi = span.get(eid, (None, None))
        days = (hi - lo).total_seconds() / 86400 if lo is not None else None
        out.append(metric("days_of_data", scope, None if days is None else round(days, 3), r.min_days, r.min_days,
                          "higher", ["train"], f"fewer than {r.min_days:g} days blocks training"))
        rates = [x["sample_rate_hz"] for x in done if x["sample_rate_hz"]]
        nyq = min(rates) / 2 if rates else None
        out.append(metric("nyquist_hz", scope, nyq, ISO_BAND_HIGH_HZ, ISO_BAND_HIGH_HZ, "higher", ["ISO zone"],
                          "lowest sample rate / 2 against the ISO 20816 band's 1000 Hz"))
        eq = equipment_for(eid)
        out.append(Metric("units_declared", scope, eq.units, {"green": "declared", "red": None, "better": "declared"},
                          GREEN if eq.units else "amber", ["velocity RMS", "ISO zone"],
                          "" if eq.units else f"set units in [equipment.{eid}] (g, m/s^2, mm/s)"))
        has_rpm = bool(eq.rpm) or any(x["rpm"] for x in done)
        out.append(Metric("rpm_available", scope, has_rpm, {"green": True, "red": None, "better": "true"},
                          GREEN if has_rpm else "amber", ["orders", "envelope fault bands"],
                          "" if has_rpm else f"set rpm in [equipment.{eid}]"))
    return out
