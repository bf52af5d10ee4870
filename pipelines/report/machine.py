"""One machine's page for the report: trends per recording with alert/danger levels and sensor
faults marked, the next level and when it is reached, forecasts per channel, the anomaly timeline,
fault-family evidence against the baseline, spectra, RUL."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from vibra.diagnosis import bearing

from vibra.physics import limits

from vibra.ingest import quality

from vibra.report import summaries
from vibra.errors import InputError, NotReadyError
from vibra.report import plots, svg
from vibra.settings import Settings
from vibra.anomaly import registry
from vibra.storage import artifacts, tables
from vibra.workspace import Workspace

from vibra_pipelines.report import signals as report_signals

FLAG_COLOUR = "#D55E00"
TRENDS = (("velocity_rms_mm_s", "Velocity RMS 10–1000 Hz, ISO 20816 zones, alert and danger", "mm/s"),
          ("rms", "RMS acceleration", None), ("kurtosis", "Kurtosis (Pearson, Gaussian = 3)", "kurtosis (–)"),
          ("crest_factor", "Crest factor", "peak / RMS (–)"))
INDICATOR_LABELS = {"velocity_rms_mm_s": "velocity RMS (mm/s)", "rms": "RMS (signal units)",
                    "kurtosis": "kurtosis (–)", "crest_factor": "crest factor (–)"}
FAMILY_NAMES = {"outer_race": "outer race", "inner_race": "inner race", "ball": "ball"}


def per_recording(feats):
    """One point per recording × channel: its first window's time and the mean of each indicator."""
    import polars as pl

    cols = [c for c, _, _ in TRENDS if c in feats.columns]
    return (feats.group_by("recording_id", "channel")
            .agg(pl.col("window_start").min().alias("t"), pl.col("sensor_fault").first(),
                 *[pl.col(c).cast(pl.Float64).fill_nan(None).mean().alias(c) for c in cols])
            .sort("t", "channel"))


def _zone_bands(zones) -> list[tuple]:
    return [(0, zones.ab, svg.ZONE_COLOURS["A"], "zone A"), (zones.ab, zones.bc, svg.ZONE_COLOURS["B"], "zone B"),
            (zones.bc, zones.cd, svg.ZONE_COLOURS["C"], "zone C"), (zones.cd, 1e9, svg.ZONE_COLOURS["D"], "zone D")]


def indicator_limits(settings: Settings, eid: str, clean, column: str, unit: str):
    """Alert/danger of an indicator from the machine's class or its clean baseline (first baseline days)."""
    import polars as pl

    base = clean
    if clean.height:
        base = clean.filter(pl.col("window_start") < clean["window_start"].min()
                            + timedelta(days=settings.anomaly.baseline_days))
    values = base[column].cast(pl.Float64).to_numpy() if column in base.columns else np.empty(0)
    return limits.limits_for(settings.equipment_for(eid), column, values, unit,
                             what=f"baseline (first {settings.anomaly.baseline_days:g} days)")


def trend_chart(points, column: str, title: str, unit: str, lim, zones=None) -> str:
    import polars as pl

    chart = svg.Chart(title=title, y_label=unit)
    for i, (channel,) in enumerate(points.select("channel").unique(maintain_order=True).iter_rows()):
        part = points.filter(pl.col("channel") == channel)
        good = part.filter(pl.col("sensor_fault").is_null())
        if good.height and np.isfinite(good[column].to_numpy().astype(float)).any():
            chart.lines.append(svg.Line(f"channel {channel}", good["t"].to_list(), good[column].to_list(),
                                        svg.PALETTE[i % len(svg.PALETTE)]))
        bad = part.filter(pl.col("sensor_fault").is_not_null() & pl.col(column).is_not_null())
        if bad.height:
            chart.points.append((bad["t"].to_list(), bad[column].to_list(), FLAG_COLOUR,
                                 "sensor fault (excluded)", "x"))
    if zones is not None:
        chart.bands = _zone_bands(zones)
    if lim is not None:
        chart.hlines += [(lim.alert, svg.PALETTE[1], f"alert {lim.alert:.3g} {lim.unit}".rstrip()),
                         (lim.danger, svg.PALETTE[3], f"danger {lim.danger:.3g} {lim.unit}".rstrip())]
    return svg.render(chart)


def status(settings: Settings, eid: str, points, vel_lim) -> dict:
    """Current velocity (worst channel of the latest clean recording), its zone and since when, its state."""
    import polars as pl

    out = {"value": None, "unit": "mm/s", "zone": None, "zone_since": None, "zone_assumed": None, "state": None,
           "spark": []}
    if "velocity_rms_mm_s" not in points.columns:
        return out
    # recordings with any channel flagged are left out whole: the worst of the remaining channels would dip
    flagged = points.filter(pl.col("sensor_fault").is_not_null())["recording_id"].unique()
    good = points.filter(~pl.col("recording_id").is_in(flagged.implode()) if flagged.len() else pl.lit(True))
    worst = good.group_by("recording_id").agg(pl.col("t").min(), pl.col("velocity_rms_mm_s").max()).sort("t")
    v = worst["velocity_rms_mm_s"].to_numpy().astype(float)
    if not np.isfinite(v).any():
        return out
    times = worst["t"].to_list()
    out["value"], out["spark"] = float(v[-1]), [float(a) for a in v[-48:]]
    zones = limits.zones_for(settings.equipment_for(eid))
    if zones is not None:
        out["zone"] = zones.zone(v[-1])
        if limits.assumed(zones):
            group, support = limits.DEFAULT_ISO
            out["zone_assumed"] = f"ISO group {group} {support} assumed: set iso_group and iso_support for this machine"
        floor = {"A": None, "B": zones.ab, "C": zones.bc, "D": zones.cd}[out["zone"]]
        since = limits.since(times, v, floor) if floor is not None else None
        out["zone_since"] = since.isoformat() if since else None
    if vel_lim is not None:
        out["state"] = vel_lim.state(v[-1])
    return out


def forecast_charts(ws: Workspace, eid: str) -> tuple[list[str], list[dict], list[str]]:
    """One chart per forecast series (every channel), the series, and why any is missing."""
    missing = []
    manifest = artifacts.store(ws.artifacts, "forecast").latest_manifest() or {}
    for s in manifest.get("series", []):
        if s.get("equipment_id") == eid and s.get("status") == "insufficient_data":
            missing.append(f"forecast {s['indicator']} channel {s['channel']}: insufficient data (needs "
                           f"{s.get('points_needed', '?')} points, has {s.get('n_points', '?')})")
        elif s.get("equipment_id") == eid and s.get("status") == "refused":
            missing.append(f"forecast {s['indicator']} channel {s['channel']}: {s.get('reason')}")
    try:
        shown = summaries.latest_forecast(ws, eid)["series"]
    except (InputError, NotReadyError):  # no forecast yet (not ready), or none of the series asked for
        if not missing:
            missing.append("forecast: none yet for this machine (`vibra forecast`)")
        return [], [], missing
    # velocity first: the indicator the levels are set for; then the others
    shown = sorted(shown, key=lambda s: (s["indicator"] != "velocity_rms_mm_s", s["indicator"], s["channel"]))
    out = []
    for s in shown[:6]:
        label = INDICATOR_LABELS.get(s["indicator"], s["indicator"])
        chart = svg.Chart(title=f"Forecast of {label}, channel {s['channel']}: history, forecast and next level",
                          y_label=label)
        hist = s["history"][-500:]
        chart.lines.append(svg.Line("history", [datetime.fromisoformat(h["ds"]) for h in hist],
                                    [h["value"] for h in hist], svg.PALETTE[0]))
        fut = s["forecast"]
        if fut:
            fx = [datetime.fromisoformat(f["ds"]) for f in fut]
            for level, colour in (("95", svg.PALETTE[5]), ("80", svg.PALETTE[1])):
                if f"lo-{level}" in fut[0]:
                    chart.intervals.append((fx, [f[f"lo-{level}"] for f in fut], [f[f"hi-{level}"] for f in fut],
                                            colour, f"{level} % interval"))
            chart.lines.append(svg.Line(f"forecast ({s['model']})", fx, [f["mean"] for f in fut], svg.PALETTE[3], dash=True))
        if s["limit"] is not None:
            chart.hlines.append((s["limit"], svg.PALETTE[6], s["limit_source"].split(" from ")[0]))
        out.append((s["indicator"], svg.render(chart)))
    return out, shown, missing


def evidence_bars(settings: Settings, clean, latest: dict | None = None) -> str | None:
    """Fault-family evidence of the newest recording (recording level, the verdict's own evidence) against the
    machine's baseline windows; the family the verdict names is coloured, and the note is the verdict itself —
    the same one the fleet row shows."""
    import polars as pl

    cols = [c for c in bearing.EVIDENCE_COLUMNS if c in clean.columns]
    if len(cols) != len(bearing.FAMILIES) or clean.height == 0:
        return None
    base = clean.filter(pl.col("window_start") < clean["window_start"].min() + timedelta(days=settings.anomaly.baseline_days))

    def med(df) -> list[float]:
        # the median of the values there are; NaN when none (a machine without rpm has no evidence: NaN, not null)
        values = [df[c].cast(pl.Float64).drop_nulls().drop_nans() for c in cols]
        return [float(v.median()) if len(v) else float("nan") for v in values]

    before = med(base)
    now = [float("nan") if latest is None or latest["evidence"].get(f) is None else latest["evidence"][f]
           for f in bearing.FAMILIES]
    if not np.isfinite(now).any() and not np.isfinite(before).any():
        return None
    verdict = latest["verdict"] if latest else bearing.NOT_DIAGNOSABLE
    highlight = bearing.FAMILIES.index(verdict) if verdict in bearing.FAMILIES else None
    said = f"named: {FAMILY_NAMES[verdict]}" if verdict in bearing.FAMILIES else verdict.replace("_", " ")
    where = f"point {latest['point']}, channel {latest['channel']}" if latest and latest.get("point") else \
        f"channel {latest['channel']}" if latest else ""
    note = f"{said} (newest recording, {where}): {latest['text']}" if latest else "no verdict yet"
    return plots.grouped_bars("Bearing fault evidence: newest recording against the machine's baseline windows",
                              "evidence (× what noise gives)", [FAMILY_NAMES[f] for f in bearing.FAMILIES],
                              [("baseline windows, median", before), ("newest recording", now)], highlight=highlight,
                              ref=(bearing.FLOOR, f"{bearing.FLOOR:g}: a family can be named"), note=note)


def anomaly_chart(ws: Workspace, settings: Settings, eid: str, feats) -> tuple[str | None, list[dict]]:
    import polars as pl

    scores = tables.read_scores(ws, eid)
    model = settings.anomaly.model
    if not (scores.height and (scores["model_type"] == model).any()):
        return None, []
    cur = scores.filter(pl.col("model_type") == model)
    latest = cur.sort("window_start").tail(1)  # the version that scored last, with its online chain
    scope = registry.root(ws.artifacts) / latest["scope"][0]
    cur = cur.filter(pl.col("model_version").is_in(registry.chain(scope, model, latest["model_version"][0]))
                     & (pl.col("scope") == latest["scope"][0])).sort("window_start")
    chart = svg.Chart(title=f"Anomaly score ({model}) and threshold; sensor-fault windows are not scored", y_label="score (–)")
    chart.lines = [svg.Line("score", cur["window_start"].to_list(), cur["score"].to_list(), svg.PALETTE[0])]
    chart.hlines = [(float(cur["threshold"][0]), svg.PALETTE[3], "threshold")]
    episodes = summaries.episodes(ws, settings, equipment=[eid], model=model, scores_table=scores, features_table=feats)
    for e in episodes:
        chart.points.append(([datetime.fromisoformat(e["start"])], [e["peak_score"]], svg.PALETTE[3], "alarm episode start"))
    return svg.render(chart), episodes


def build(ws: Workspace, settings: Settings, eid: str, info: dict, diagnosis: list[dict] | None = None,
          at_failure: dict[str, float] | None = None) -> dict:
    """Everything the machine page and its fleet row show (``diagnosis``: the machine's recording verdicts,
    newest first, :func:`vibra.report.summaries.verdicts` — the page and the fleet row show the same;
    ``at_failure``: velocity at each past failure, which lowers the velocity levels,
    :func:`vibra.physics.limits.learned_from_failures`)."""
    import polars as pl

    eq = settings.equipment_for(eid)
    feats = quality.mark_sensor_faults(ws, tables.read_features(ws, eid))
    page = {"equipment_id": eid, "label": eq.label or "", "info": info, "charts": {}, "missing": [], "episodes": [],
            "forecasts": [], "excluded": {}, "names": {}}
    if feats.height == 0:
        page["missing"].append("no windows yet: ingest this machine's files (`vibra ingest`)")
        page.update(status(settings, eid, feats, None), velocity_limits=None)
        return page
    clean = feats.filter(pl.col("sensor_fault").is_null())
    flagged = feats.filter(pl.col("sensor_fault").is_not_null()).select("recording_id", "sensor_fault").unique()
    page["excluded"] = {r: n for r, n in flagged.group_by("sensor_fault").agg(pl.col("recording_id").n_unique()).iter_rows()}
    points = per_recording(feats)
    page["names"] = names = report_signals.file_names(ws, points["recording_id"].unique().to_list())
    vel_lim = limits.velocity_limits(eq, at_failure)
    page["velocity_limits"] = vel_lim
    page.update(status(settings, eid, points, vel_lim))
    for column, title, unit in TRENDS:
        if column not in points.columns or not points[column].is_not_null().any():
            continue
        unit = unit or f"RMS ({eq.units or 'signal units'})"
        short = {"velocity_rms_mm_s": "mm/s", "rms": eq.units or ""}.get(column, "")  # kurtosis, crest: no unit
        lim = vel_lim if column == "velocity_rms_mm_s" and vel_lim else indicator_limits(settings, eid, clean, column, short)
        zones = limits.zones_for(eq) if column == "velocity_rms_mm_s" else None
        page["charts"][column] = trend_chart(points, column, title, unit, lim, zones)
    if points.height < 2:
        page["missing"].append(f"trends: {points.height} recording so far — one point is drawn; a trend needs more")
    page["charts"]["faults"] = evidence_bars(settings, clean, (diagnosis or [None])[0])
    if page["charts"]["faults"] is None:
        page["missing"].append("fault evidence: set rpm and bearing geometry for this machine")
    page["charts"].update({k: v for k, v in report_signals.charts(ws, settings, eid, clean, names).items()})
    page["charts"]["anomaly"], page["episodes"] = anomaly_chart(ws, settings, eid, feats)
    page["anomaly_checked"] = page["charts"]["anomaly"] is not None
    if page["charts"]["anomaly"] is None:
        page["missing"].append("anomaly timeline: run `vibra train` and `vibra detect`")
    charts, page["forecasts"], missing = forecast_charts(ws, eid)
    main = {ind for ind, _ in charts} & {"velocity_rms_mm_s"} or {ind for ind, _ in charts}
    page["charts"]["forecasts"] = [c for ind, c in charts if ind in main]  # beside the velocity trend
    page["charts"]["forecasts_other"] = [c for ind, c in charts if ind not in main]
    page["missing"] += missing
    return page


def next_limit(page: dict) -> dict:
    """The soonest next-level crossing among the machine's forecast series (the velocity ones first)."""
    best = None
    for s in page["forecasts"]:
        ttt = s.get("time_to_threshold") or {}
        if s.get("limit") is None or s.get("status") not in ("ok", "exceeded"):
            continue
        name = s["limit_source"].split(" ", 1)[0]
        key = (s["indicator"] != "velocity_rms_mm_s", ttt.get("p50_h") if ttt.get("p50_h") is not None else 1e12)
        if best is None or key < best[0]:
            unit = "mm/s" if s["indicator"] == "velocity_rms_mm_s" else f"({s['indicator']})"
            text = ("beyond danger" if s["status"] == "exceeded" else
                    limits.next_limit_text(f"{name} {s['indicator'].replace('velocity_rms_mm_s', 'velocity')}",
                                           s["limit"], unit, ttt) + f", ch {s['channel']}")
            best = (key, {"next_limit": text, "ttt": ttt, "crossing_probability": ttt.get("crossing_probability"),
                          "next_level": "beyond_danger" if s["status"] == "exceeded" else name,
                          "next_level_indicator": s["indicator"], "next_level_value": s["limit"],
                          "next_level_channel": s["channel"]})
    return best[1] if best else {"next_limit": None, "ttt": {}, "crossing_probability": None}
