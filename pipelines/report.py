"""The report stage: static, self-contained HTML (fleet overview, one page per machine,
clusters, readiness) rendered with Jinja2 (autoescape on) and inline SVG charts.

It renders what exists and says what is missing: a workspace with no models, forecasts or
clusterings still gets a report.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from vibra import __version__, summaries
from vibra.errors import CorruptError, InputError, NotReadyError, VibraError
from vibra.models import registry
from vibra.physics import iso_limits
from vibra.report import svg
from vibra.settings import Settings
from vibra.storage import artifacts, tables
from vibra.storage.lake import write_text
from vibra.workspace import Workspace

from vibra_pipelines.runs import StageResult, recorded

PROJECTION_POINTS = 1500  # markers on the clusters page
MAX_DEFECT_ROWS = 30  # recordings listed on a machine page
ZONE_RANK = {"D": 3, "C": 2, "B": 1, "A": 0, None: -1}
FAULT_NAMES = {"env_bpfo": "outer race", "env_bpfi": "inner race", "env_bsf": "ball", "env_ftf": "cage"}


@dataclass
class ReportResult(StageResult):
    out: str
    index: str
    pages: list[str] = field(default_factory=list)
    machines: int = 0
    bytes_written: int = 0
    seconds: float = 0.0

    def counts(self) -> dict:
        return {"machines": self.machines, "pages": len(self.pages), "bytes": self.bytes_written}


def _slug(equipment_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", equipment_id)


def latest_readiness(ws: Workspace) -> dict | None:
    """The latest readiness report (``vibra readiness``), or None before the first one."""
    return artifacts.store(ws.artifacts, "readiness").latest_manifest()


def _trend_chart(hourly, column: str, title: str, unit: str, bands=None) -> str:
    import polars as pl

    chart = svg.Chart(title=title, y_label=unit)
    if hourly.height and f"{column}_mean" in hourly.columns:
        for i, (channel,) in enumerate(hourly.select("channel").unique(maintain_order=True).iter_rows()):
            part = hourly.filter(pl.col("channel") == channel)
            y = part[f"{column}_mean"].to_numpy()
            if np.isfinite(y).any():
                chart.lines.append(svg.Line(f"channel {channel}", part["hour"].to_list(), y.tolist(),
                                            svg.PALETTE[i % len(svg.PALETTE)]))
    chart.bands = bands or []
    return svg.render(chart)


def _iso_bands(settings: Settings, eid: str) -> list[tuple]:
    limits = iso_limits(settings.equipment_for(eid))
    if limits is None:
        return []
    return [(0, limits.ab, svg.ZONE_COLOURS["A"], "zone A"), (limits.ab, limits.bc, svg.ZONE_COLOURS["B"], "zone B"),
            (limits.bc, limits.cd, svg.ZONE_COLOURS["C"], "zone C"), (limits.cd, 1e9, svg.ZONE_COLOURS["D"], "zone D")]


def _machine(ws: Workspace, settings: Settings, eid: str, info: dict) -> dict:
    import polars as pl

    hourly = tables.read_hourly(ws, eid)
    eq = settings.equipment_for(eid)
    page = {"equipment_id": eid, "slug": _slug(eid), "label": eq.label or "", "info": info, "charts": {},
            "missing": [], "episodes": [], "forecast": None}
    page["charts"]["rms"] = _trend_chart(hourly, "rms", "RMS acceleration, hourly mean", eq.units or "signal units")
    page["charts"]["velocity"] = _trend_chart(hourly, "velocity_rms_mm_s", "Velocity RMS 10–1000 Hz with ISO 20816 zones",
                                              "mm/s", _iso_bands(settings, eid))
    page["charts"]["kurtosis"] = _trend_chart(hourly, "kurtosis", "Kurtosis (Pearson, Gaussian = 3)", "–")
    page["charts"]["crest"] = _trend_chart(hourly, "crest_factor", "Crest factor", "peak / RMS")
    # latest windows: ISO zone and the bearing fault bands
    feats = tables.read_features(ws, eid)
    zone, fault = None, None
    if feats.height:
        last = feats.filter(pl.col("window_start") >= feats["window_start"].max() - pl.duration(hours=1))
        zones = [z for z in last["iso_zone"].to_list() if z] if "iso_zone" in last.columns else []
        zone = max(zones, key=lambda z: ZONE_RANK[z]) if zones else None
        env_cols = [c for c in FAULT_NAMES if c in last.columns]
        levels = {c: float(np.nanmedian(last[c].to_numpy())) for c in env_cols if np.isfinite(last[c].to_numpy()).any()}
        if levels:
            page["charts"]["faults"] = svg.bars(
                "Envelope fault-band levels, last hour (median over windows)", "level ÷ local noise floor",
                [FAULT_NAMES[c] for c in levels], list(levels.values()), ref=(3.0, "3× floor: a clear line"))
            top = max(levels, key=levels.get)
            if levels[top] >= 3.0:
                fault = f"{FAULT_NAMES[top]} band {levels[top]:.1f}× floor"
        else:
            page["missing"].append("fault bands: set rpm and bearing geometry for this machine")
    spectrum = _envelope_spectrum(ws, settings, eid, feats)
    if spectrum:
        page["charts"]["envelope"] = spectrum
    # anomaly timeline and episodes
    scores = tables.read_scores(ws, eid)
    model = settings.anomaly.model
    if scores.height and (scores["model_type"] == model).any():
        cur = scores.filter(pl.col("model_type") == model)
        # the version that scored the latest window, with the online chain it continues (detect --update)
        latest = cur.sort("window_start").tail(1)
        scope = registry.root(ws.artifacts) / latest["scope"][0]
        cur = cur.filter(pl.col("model_version").is_in(registry.chain(scope, model, latest["model_version"][0]))
                         & (pl.col("scope") == latest["scope"][0])).sort("window_start")
        chart = svg.Chart(title=f"Anomaly score ({model}) and threshold", y_label="score")
        chart.lines = [svg.Line("score", cur["window_start"].to_list(), cur["score"].to_list(), svg.PALETTE[0])]
        chart.hlines = [(float(cur["threshold"][0]), svg.PALETTE[3], "threshold")]
        episodes = summaries.episodes(ws, settings, equipment=[eid], model=model, scores_table=scores, features_table=feats)
        for e in episodes:
            chart.points.append(([datetime.fromisoformat(e["start"])], [e["peak_score"]], svg.PALETTE[3],
                                 "alarm episode start"))
        page["charts"]["anomaly"] = svg.render(chart)
        page["episodes"] = episodes
    else:
        page["missing"].append("anomaly timeline: run `vibra train` and `vibra detect`")
    # forecast with intervals and the alarm limit
    try:
        shown = summaries.latest_forecast(ws, eid)
    except InputError:
        shown = None
        page["missing"].append("forecast: run `vibra forecast`")
    if shown:
        best = sorted(shown["series"], key=lambda s: (s["status"] != "ok", s["channel"]))[0]
        chart = svg.Chart(title=f"{best['indicator']} ({best['channel']}): history, forecast and limit",
                          y_label=best["indicator"])
        hist = best["history"][-500:]
        chart.lines.append(svg.Line("history", [datetime.fromisoformat(h["ds"]) for h in hist],
                                    [h["value"] for h in hist], svg.PALETTE[0]))
        fut = best["forecast"]
        if fut:
            fx = [datetime.fromisoformat(f["ds"]) for f in fut]
            for level, colour in (("95", svg.PALETTE[5]), ("80", svg.PALETTE[1])):
                if f"lo-{level}" in fut[0]:
                    chart.intervals.append((fx, [f[f"lo-{level}"] for f in fut], [f[f"hi-{level}"] for f in fut],
                                            colour, f"{level} % interval"))
            chart.lines.append(svg.Line(f"forecast ({best['model']})", fx, [f["mean"] for f in fut], svg.PALETTE[3], dash=True))
        if best["limit"] is not None:
            chart.hlines.append((best["limit"], svg.PALETTE[6], f"limit: {best['limit_source']}"))
        page["charts"]["forecast"] = svg.render(chart)
        page["forecast"] = best
    page["zone"], page["fault_hint"] = zone, fault
    return page


def _envelope_spectrum(ws: Workspace, settings: Settings, eid: str, feats) -> str | None:
    """The latest window's envelope spectrum with the bearing defect frequencies marked, read back
    from the kept raw waveform or the source file (None when neither can be read)."""

    from vibra.physics import envelope_spectra, fault_frequencies_hz
    from vibra.signal.indicators import window_spectra
    from vibra.storage import catalog

    eq = settings.equipment_for(eid)
    if feats.height == 0 or eq.bearing is None or "envelope_band_lo_hz" not in feats.columns:
        return None
    last = feats.sort("window_start").tail(1).row(0, named=True)
    if last["rpm"] is None or not np.isfinite(last["envelope_band_lo_hz"] or np.nan):
        return None
    rows = catalog.query(ws.catalog_path, "SELECT source_path FROM recordings WHERE recording_id = ? LIMIT 1",
                         [last["recording_id"]])
    rule = eq.rule_for(Path(rows[0][0]).name) if rows else None
    if rule is not None and rule.decimate:  # window indices count decimated samples: not this simple read
        return None
    length, fs = settings.features.frame_length, float(last["sample_rate_hz"])
    start = int(last["window_index"]) * settings.features.hop_length
    try:
        if not rows:
            return None
        back = tables.read_recording(ws, settings, eid, last["recording_id"], rows[0][0])
        chunks, channels = back.chunks, back.channels
        if last["channel"] not in channels:
            return None
        column, seen, parts = channels.index(last["channel"]), 0, []
        for chunk in chunks:  # read only as far as the window: recordings can be larger than memory
            parts.append(np.asarray(chunk)[:, column])
            seen += parts[-1].shape[0]
            if seen >= start + length:
                break
        x = np.concatenate(parts) if parts else np.empty(0)
    except CorruptError:
        raise  # a damaged file is the workspace's problem, not a missing chart: never hidden
    except VibraError:
        return None
    window = x[start:start + length]
    if window.shape[0] < length or not np.isfinite(window).all():
        return None
    freqs, spec, _ = window_spectra(window[None, :], fs)
    env_freqs, amp = envelope_spectra(freqs, spec, (last["envelope_band_lo_hz"], last["envelope_band_hi_hz"]))
    faults = fault_frequencies_hz(eq.bearing, last["rpm"])
    top = 4 * max(faults["bpfi"], 2 * faults["bsf"])
    keep = (env_freqs > 2) & (env_freqs <= top)
    chart = svg.Chart(title=f"Envelope spectrum, channel {last['channel']}, {last['window_start']:%Y-%m-%d %H:%M} UTC "
                            f"(band {last['envelope_band_lo_hz']:.0f}–{last['envelope_band_hi_hz']:.0f} Hz)",
                      y_label="envelope amplitude", x_label="frequency (Hz)")
    chart.lines.append(svg.Line("envelope spectrum", env_freqs[keep].tolist(), amp[0, keep].tolist(), svg.PALETTE[0]))
    marks = {"BPFO": faults["bpfo"], "BPFI": faults["bpfi"], "BSF (2×)": 2 * faults["bsf"], "FTF": faults["ftf"]}
    colours = (svg.PALETTE[3], svg.PALETTE[2], svg.PALETTE[4], svg.PALETTE[6])
    for colour, (name, f) in zip(colours, marks.items()):
        chart.vlines += [(h * f, colour, f"{name} {f:.1f} Hz" if h == 1 else f"{h}×") for h in (1, 2, 3) if h * f <= top]
    return svg.render(chart)


def _rul_page(entry: dict | None, library: dict) -> tuple[dict | None, str | None]:
    """The machine's latest RUL (with P10/P50/P90 as text) and a chart of its health indicator since
    its life started, the onset and the failure threshold, with the RUL interval after the last point."""
    from vibra.rul import format_duration

    if not entry or "p50_s" not in entry:
        return entry, None
    entry = {**entry, "text": f"{format_duration(entry['p50_s'])} ({format_duration(entry['p10_s'])}–"
                              f"{format_duration(entry['p90_s'])})",
             "trusted": library.get("trusted", False), "n_failed": library.get("n_failed", 0)}
    hist = entry.get("history")
    if not hist:
        return entry, None
    h = 3600.0
    chart = svg.Chart(title=f"health indicator {entry.get('indicator')} (ln of x / healthy baseline) and RUL",
                      y_label="HI", x_label="hours since the life started")
    x = [v / h for v in hist["elapsed_s"]]
    chart.lines.append(svg.Line("health indicator", x, hist["hi"], svg.PALETTE[0]))
    if entry.get("threshold") is not None:
        chart.hlines.append((entry["threshold"], svg.PALETTE[1], "failure threshold (library)"))
    if entry.get("onset_s") is not None:
        chart.vlines.append((entry["onset_s"] / h, svg.PALETTE[2], "onset"))
    now = entry["elapsed_s"]
    for key, label in (("p10_s", "RUL P10"), ("p50_s", "RUL P50"), ("p90_s", "RUL P90")):
        chart.vlines.append(((now + entry[key]) / h, svg.PALETTE[3], label))
    return entry, svg.render(chart)


def _fleet_row(page: dict) -> dict:
    fc = page["forecast"] or {}
    ttt = {"p10_h": None, "p50_h": None, "p90_h": None, "crossing_probability": None,
           **(fc.get("time_to_threshold") or {})}
    active = any(e for e in page["episodes"]) and page["episodes"][-1]["end"] >= (page["info"].get("last_recorded_at") or "")
    return {
        "equipment_id": page["equipment_id"], "slug": page["slug"], "label": page["label"], "zone": page["zone"],
        "alarm": "alarm" if active else ("past alarms" if page["episodes"] else "normal"),
        "episodes": len(page["episodes"]), "risk": ttt.get("crossing_probability"),
        "ttt": ttt, "status": fc.get("status"), "last": page["info"].get("last_recorded_at"),
        "fault": page["fault_hint"], "defect": (page.get("defects") or {}).get("top"),
        "diagnosis": (page.get("diagnosis") or [None])[0],
        "rul": (page.get("rul") or {}).get("text"),
    }


def _worst_first(row: dict) -> tuple:
    return (row["alarm"] != "alarm", -ZONE_RANK[row["zone"]], -(row["risk"] or 0), row["equipment_id"])


def _clusters_page(ws: Workspace, settings: Settings, env, common: dict) -> str:
    try:
        table = summaries.cluster_table(ws, settings)
    except NotReadyError:
        return env.get_template("placeholder.html").render(
            title="Clusters", message="No clustering yet: fault-signature discovery (`vibra cluster`) has not run in "
                                      "this workspace.", **common)
    proj = (artifacts.store(ws.artifacts, "clustering").latest_manifest() or {}).get("projection") or {}
    chart = svg.Chart(title="Windows by cluster (2-D view of the clustering space)", y_label="component 2",
                      x_label="component 1")
    step = max(1, -(-len(proj.get("cluster_id", [])) // PROJECTION_POINTS))
    ids = proj.get("cluster_id", [])[::step]
    proj = {k: proj[k][::step] for k in ("x", "y")} if ids else proj
    names = {c["cluster_id"]: f"{c['cluster_id']}: {c['label'] or 'unlabelled'}" for c in table["clusters"]}
    for i, cid in enumerate(sorted(set(ids))):
        pick = [j for j, c in enumerate(ids) if c == cid]
        chart.points.append(([proj["x"][j] for j in pick], [proj["y"][j] for j in pick],
                             "#999999" if cid < 0 else svg.PALETTE[i % len(svg.PALETTE)],
                             "noise" if cid < 0 else names.get(cid, str(cid))))
    return env.get_template("clusters.html").render(c=table, projection=svg.render(chart), **common)


def _defects(ws: Workspace, eid: str) -> dict | None:
    """A machine's defect assignments: per recording counts (newest first) and the recent top defect."""
    import polars as pl

    df = tables.read_defects(ws, [eid])
    if df.height == 0:
        return None
    rows = summaries.assignments(ws, [eid])[::-1][:MAX_DEFECT_ROWS]
    last_day = df.filter(pl.col("window_start") >= df["window_start"].max() - timedelta(days=1))
    shares = last_day.group_by("defect").agg(pl.len().alias("n")).sort("n", descending=True)
    top = [(d, n / last_day.height) for d, n in shares.iter_rows()]
    return {"rows": rows, "top": top[0] if top else None,
            "recent": [(d, n / last_day.height) for d, n in shares.iter_rows()]}


def to_pdf(html_files: list[Path]) -> list[Path]:
    """Print pages to PDF with headless Chromium (``<page>.pdf`` beside each page)."""
    import subprocess
    import tempfile

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise InputError("--pdf needs headless Chromium: install Debian's `chromium` package (apt-get install chromium)")
    written = []
    with tempfile.TemporaryDirectory(prefix="vibra-chromium-") as profile:
        for page in html_files:
            pdf = page.with_suffix(".pdf")
            proc = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                                   f"--user-data-dir={profile}", "--no-pdf-header-footer",
                                   f"--print-to-pdf={pdf}", page.as_uri()],
                                  capture_output=True, text=True, timeout=180)
            if proc.returncode != 0 or not pdf.exists():
                raise InputError(f"{page}: Chromium could not print it to PDF ({proc.stderr.strip()[-200:]})")
            written.append(pdf)
    return written


@recorded("report")
def run(ws: Workspace, settings: Settings, *, out: Path | None = None, equipment: list[str] | None = None,
        pdf: bool = False) -> ReportResult:
    """Render the report into ``out`` (default the workspace's ``reports/``)."""
    from jinja2 import Environment, PackageLoader, select_autoescape
    from markupsafe import Markup

    started = time.perf_counter()
    out = (out or ws.reports).expanduser().resolve()
    st = summaries.status(ws, equipment)
    infos = {e["equipment_id"]: e for e in st["equipment"]}
    ids = tables.equipment_ids(ws, equipment)
    env = Environment(loader=PackageLoader("vibra.report", "templates"), autoescape=select_autoescape(["html"]))
    env.filters["svg"] = Markup  # charts are built by vibra.report.svg, which escapes every text itself
    verdicts: dict[str, list[dict]] = {}
    for r in summaries.verdicts(ws, equipment):  # newest first per machine
        verdicts.setdefault(r["equipment_id"], []).append(r)
    rul_latest = artifacts.store(ws.artifacts, "rul").latest_manifest() or {}
    rul_by_id = {m["equipment_id"]: m for m in rul_latest.get("machines", [])}
    pages = []
    for eid in ids:
        try:
            page = {**_machine(ws, settings, eid, infos.get(eid, {})), "defects": _defects(ws, eid),
                    "diagnosis": verdicts.get(eid, [])[:MAX_DEFECT_ROWS]}
            page["rul"], page["charts"]["rul"] = _rul_page(rul_by_id.get(eid), rul_latest.get("library", {}))
            pages.append(page)
        except CorruptError:
            raise  # one line naming the damaged file and `vibra doctor --repair`, not a page saying "missing"
        except VibraError as exc:
            pages.append({"equipment_id": eid, "slug": _slug(eid), "label": "", "info": infos.get(eid, {}),
                          "charts": {}, "missing": [str(exc)], "episodes": [], "forecast": None, "zone": None,
                          "fault_hint": None, "defects": None, "diagnosis": [], "rul": None})
    rows = sorted((_fleet_row(p) for p in pages), key=_worst_first)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    common = {"generated": generated, "vibra_version": __version__, "workspace": str(ws.root)}
    readiness_summary = latest_readiness(ws)
    written = {"index.html": env.get_template("index.html").render(rows=rows, status=st, readiness=readiness_summary,
                                                                   **common)}
    for page in pages:
        written[f"machines/{page['slug']}.html"] = env.get_template("machine.html").render(page=page, **common)
    written["clusters.html"] = _clusters_page(ws, settings, env, common)
    ready = readiness_summary
    if ready:
        rank = {"red": 0, "amber": 1, "green": 2}
        ready["metrics"].sort(key=lambda m: (rank[m["status"]], m["scope"], m["name"]))
        written["readiness.html"] = env.get_template("readiness.html").render(r=ready, **common)
    else:
        written["readiness.html"] = env.get_template("placeholder.html").render(
            title="Readiness", message="No readiness check yet (`vibra readiness`).", **common)
    (out / "machines").mkdir(parents=True, exist_ok=True)
    total = 0
    for name, text in written.items():  # each page replaced atomically: a reader never sees half a page
        total += write_text(out / name, text).stat().st_size
    if pdf:
        for printed in to_pdf([out / name for name in written]):
            written[str(printed.relative_to(out))] = ""
            total += printed.stat().st_size
    return ReportResult(out=str(out), index=str(out / "index.html"), pages=sorted(written), machines=len(pages),
                        bytes_written=total, seconds=time.perf_counter() - started)
