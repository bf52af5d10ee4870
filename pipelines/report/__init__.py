"""The report stage: static, self-contained HTML (fleet overview, one page per machine,
clusters, readiness) rendered with Jinja2 (autoescape on) and inline SVG charts.

It renders what exists and says what is missing: a workspace with no models, forecasts or
clusterings still gets a report.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable


from vibra import __version__


from vibra.anomaly import alarm_list
from vibra.prognostics.failure_levels import velocity_at_failures
from vibra.storage import alarms as alarm_rows
from vibra.report import summaries
from vibra.errors import CorruptError, InputError, NotReadyError, VibraError
from vibra.report import fleet, plots, svg
from vibra.settings import Settings
from vibra.storage import artifacts, tables
from vibra.storage.lake import write_text
from vibra.workspace import Workspace

from vibra_pipelines.report import machine as report_machine
from vibra_pipelines.report import signals as report_signals
from vibra_pipelines.runs import StageResult, recorded

PROJECTION_POINTS = 1500  # markers on the clusters page
MAX_DEFECT_ROWS = 30  # recordings listed on a machine page


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


def _rul_page(entry: dict | None, library: dict, first_alarm: str | None = None) -> tuple[dict | None, str | None]:
    """The machine's latest RUL as shown (:func:`vibra.report.summaries.rul_display`: after onset the
    planning answer and the median; before onset "no degradation yet" and the prior's typical range) and
    a chart of its health indicator since its life started, the onset and the failure threshold."""
    if not entry:
        return None, None
    entry = {**entry, **summaries.rul_display(entry, first_alarm=first_alarm), "rul_name": summaries.RUL_NAME,
             "trusted": library.get("trusted", False), "n_failed": library.get("n_failed", 0)}
    hist = entry.get("history")
    if not hist or entry.get("p50_s") is None:
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
    if entry["rul_state"] == "model":
        lines = (("rul_planning_s", summaries.RUL_NAME), ("rul_p50_s", "median"))
    else:  # the prior is the library's lives, not this machine: its range only, never a point
        lines = (("rul_prior_p10_s", "typical end of life, early (prior P10)"),
                 ("rul_prior_p90_s", "typical end of life, late (prior P90)"))
    for key, label in lines:
        if entry.get(key) is not None:
            chart.vlines.append(((now + entry[key]) / h, svg.PALETTE[3], label))
    return entry, svg.render(chart)


def _first_alarm(episodes: list[dict], entry: dict | None) -> str | None:
    """Start of the first alarm episode in the machine's current life (ISO), or None."""
    start = datetime.fromisoformat(entry["life_start"]) if entry and entry.get("life_start") else None
    starts = [e["start"] for e in episodes if start is None or datetime.fromisoformat(e["start"]) >= start]
    return min(starts, key=datetime.fromisoformat) if starts else None


def _fleet_row(page: dict, now: datetime) -> dict:
    """The fleet table's row of one machine (see :mod:`vibra.report.fleet`)."""
    active = bool(page["episodes"]) and page["episodes"][-1]["end"] >= (page["info"].get("last_recorded_at") or "")
    nxt = report_machine.next_limit(page)
    verdict = (page.get("diagnosis") or [None])[0]
    defect = (page.get("defects") or {}).get("top")
    last = page["info"].get("last_recorded_at")
    row = {
        "equipment_id": page["equipment_id"], "slug": page["slug"], "label": page["label"], "zone": page.get("zone"),
        "zone_since": page.get("zone_since"), "zone_assumed": page.get("zone_assumed"),
        "value": page.get("value"), "unit": page.get("unit"),
        "state": page.get("state"), "spark": page.get("spark") or [],
        # "normal" only where a model scored the machine: else nothing was checked, and the row says so
        "alarm": "alarm" if active else ("past alarms" if page["episodes"] else
                                         "normal" if page.get("anomaly_checked") else "no model"),
        "alarm_since": page["episodes"][-1]["start"] if active else None, "episodes": len(page["episodes"]),
        "verdict": verdict["verdict"] if verdict else None, "evidence": _at_point(verdict) if verdict else None,
        "next_limit": nxt["next_limit"], "ttt_state": nxt["ttt"].get("state"),
        **{k: nxt.get(k) for k in ("next_level", "next_level_indicator", "next_level_value", "next_level_channel")},
        "ttt_p50_h": nxt["ttt"].get("p50_h"), "ttt_p10_h": nxt["ttt"].get("p10_h"),
        "ttt_p90_h": nxt["ttt"].get("p90_h"), "crossing_probability": nxt["crossing_probability"],
        **{k: v for k, v in (page.get("rul") or summaries.rul_display(None)).items()
           if k in summaries.RUL_NUMBERS or k in ("rul_state", "rul_text", "rul_cell", "rul_detail", "onset_at",
                                                  "first_alarm_at")},
        "defect": defect[0] if defect else None,
        "defect_share": defect[1] if defect else None, "last_data": last,
        "data_age_h": fleet.age_hours(last, now), "excluded_recordings": sum(page.get("excluded", {}).values()),
    }
    lim = page.get("velocity_limits")
    row["spark_svg"] = plots.sparkline(row["spark"], limit=lim.alert if lim else None,
                                       title=f"velocity of the last {len(row['spark'])} recordings (mm/s)")
    row["status_text"] = fleet.status_text(row)
    return row


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


def _alarms_page(ws: Workspace, pages: list[dict], infos: dict[str, dict], env, common: dict) -> str:
    """The alarm list, synced with the episodes the machine pages found (states kept in the catalog)."""
    episodes = [e for p in pages for e in p.get("episodes", [])]
    last = {eid: info.get("last_recorded_at") for eid, info in infos.items()}
    alarm_rows.write(ws, alarm_list.reconcile(episodes, last, alarm_rows.stored(ws), datetime.now(timezone.utc)))
    shown = {p["equipment_id"] for p in pages}
    alarms = [a for a in alarm_rows.listing(ws) if a["equipment_id"] in shown]
    checked = any(p.get("anomaly_checked") for p in pages)
    empty = ("No alarm episodes: no anomaly model has raised one." if checked else
             "No alarms, and none could be raised: no anomaly model scored these machines (`vibra train`, `vibra detect`).")
    return env.get_template("alarms.html").render(alarms=alarms, slugs={p["equipment_id"]: p["slug"] for p in pages},
                                                  empty=empty, **common)


def _previous(path: Path) -> dict:
    """The fleet state the previous report left (``fleet.json``), or {} for a first report."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


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


def _machine_pages(ws: Workspace, settings: Settings, ids: list[str], infos: dict[str, dict],
                   equipment: list[str] | None, tick: Callable[[int, int, str], None]) -> list[dict]:
    """One page per machine; a machine whose data cannot be shown gets a page that says why. ``tick(done,
    total, equipment_id)`` before each machine; the pages that follow the machines count as one more step."""
    verdicts: dict[str, list[dict]] = {}
    for r in summaries.verdicts(ws, equipment, settings):  # newest first per machine
        verdicts.setdefault(r["equipment_id"], []).append(r)
    rul_latest = artifacts.store(ws.artifacts, "rul").latest_manifest() or {}
    rul_by_id = {m["equipment_id"]: m for m in rul_latest.get("machines", [])}
    pages = []
    at_failure = velocity_at_failures(ws)
    for done, eid in enumerate(ids):
        tick(done, len(ids) + 1, eid)
        try:
            page = {**report_machine.build(ws, settings, eid, infos.get(eid, {}), verdicts.get(eid, []), at_failure),
                    "slug": _slug(eid),
                    "defects": _defects(ws, eid), "diagnosis": verdicts.get(eid, [])[:MAX_DEFECT_ROWS]}
            page["rul"], page["charts"]["rul"] = _rul_page(rul_by_id.get(eid), rul_latest.get("library", {}),
                                                           _first_alarm(page["episodes"], rul_by_id.get(eid)))
            page["names"].update(report_signals.file_names(ws, [r["recording_id"] for r in page["diagnosis"]]
                                                           + [r["recording_id"] for r in (page["defects"] or {}).get("rows", [])]))
            pages.append(page)
        except CorruptError:
            raise  # one line naming the damaged file and `vibra doctor --repair`, not a page saying "missing"
        except VibraError as exc:
            pages.append({"equipment_id": eid, "slug": _slug(eid), "label": "", "info": infos.get(eid, {}),
                          "charts": {}, "missing": [str(exc)], "episodes": [], "forecasts": [], "zone": None,
                          "defects": None, "diagnosis": [], "rul": None, "excluded": {}, "names": {}, "value": None,
                          "zone_since": None, "state": None, "velocity_limits": None, "spark": []})
    return pages


@recorded("report", lambda r: {"machines": r.machines, "pages": len(r.pages), "bytes": r.bytes_written})
def run(ws: Workspace, settings: Settings, *, out: Path | None = None, equipment: list[str] | None = None,
        pdf: bool = False, progress: Callable[[int, int, str], None] | None = None) -> ReportResult:
    """Render the report into ``out`` (default the workspace's ``reports/``). ``progress(done, total, what)``
    is called before each machine's page and before the fleet, clusters and alarm pages."""
    from jinja2 import Environment, PackageLoader, select_autoescape
    from markupsafe import Markup

    started = time.perf_counter()
    st = summaries.status(ws, equipment)
    infos = {e["equipment_id"]: e for e in st["equipment"]}
    ids = tables.equipment_ids(ws, equipment)
    env = Environment(loader=PackageLoader("vibra.report", "templates"), autoescape=select_autoescape(["html"]))
    env.filters["svg"] = Markup  # charts are built by vibra.report.svg, which escapes every text itself
    env.filters["age"] = fleet.age_text
    env.filters["minute"] = lambda v: str(v or "—")[:16].replace("T", " ")  # timestamps to the minute
    tick = progress if progress is not None else (lambda done, total, what: None)
    pages = _machine_pages(ws, settings, ids, infos, equipment, tick)
    tick(len(ids), len(ids) + 1, "fleet, clusters and alarm pages")
    now = datetime.now(timezone.utc)
    rows = sorted((_fleet_row(p, now) for p in pages), key=fleet.worst_first)
    out = (out or ws.reports).expanduser().resolve()
    previous = _previous(out / "fleet.json")
    for r in rows:
        r["changes"] = fleet.changes(r, previous.get(r["equipment_id"])) if previous else []
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    common = {"generated": generated, "vibra_version": __version__, "workspace": str(ws.root)}
    readiness_summary = latest_readiness(ws)
    excluded = {}
    for p in pages:
        for reason, n in p.get("excluded", {}).items():
            excluded[reason] = excluded.get(reason, 0) + n
    written = {"index.html": env.get_template("index.html").render(
        rows=rows, status=st, readiness=readiness_summary, excluded=excluded, had_previous=bool(previous),
        zones=sorted({r["zone"] for r in rows if r["zone"]}), defects=sorted({r["defect"] for r in rows if r["defect"]}),
        **common),
        "fleet.csv": fleet.to_csv(rows), "fleet.json": json.dumps(fleet.memory(rows), indent=1)}
    for page in pages:
        written[f"machines/{page['slug']}.html"] = env.get_template("machine.html").render(page=page, **common)
    written["clusters.html"] = _clusters_page(ws, settings, env, common)
    written["alarms.html"] = _alarms_page(ws, pages, infos, env, common)
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
        for printed in to_pdf([out / name for name in written if name.endswith(".html")]):
            written[str(printed.relative_to(out))] = ""
            total += printed.stat().st_size
    tick(len(ids) + 1, len(ids) + 1, "")
    return ReportResult(out=str(out), index=str(out / "index.html"), pages=sorted(written), machines=len(pages),
                        bytes_written=total, seconds=time.perf_counter() - started)


def _at_point(verdict: dict) -> str:
    """The fleet row's evidence text: the verdict's, prefixed by its measurement point when the machine has points
    and the point names a fault (the machine page lists every point)."""
    if verdict.get("point") and verdict["verdict"] not in ("no_fault_evidence", "not_diagnosable"):
        return f"at {verdict['point']} ({verdict['channel']}): {verdict['text']}"
    return verdict["text"]
