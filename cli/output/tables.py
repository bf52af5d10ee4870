"""What each command prints for people: rich tables and summary lines (cells are text, never markup)."""

from __future__ import annotations

import sys
from datetime import date, datetime, timezone
from typing import Any

from vibra_cli.output.console import console, say, say_err
from vibra_cli.output.json import emit, json_default

def _table(title: str, columns: list[str]):
    """A rich table whose cells are text, never markup: a reason such as "add sample_rate_hz to
    [equipment.press-7]" must reach the user whole, brackets included."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    class _PlainTable(Table):
        def add_row(self, *cells, **kwargs):
            super().add_row(*(escape(c) if isinstance(c, str) else c for c in cells), **kwargs)

    plain = not sys.stdout.isatty()
    table = _PlainTable(title=escape(title), title_justify="left", box=box.SIMPLE if plain else box.HEAVY_HEAD)
    for c in columns:
        table.add_column(escape(c), overflow="fold")
    return table


def ingest_summary(result) -> None:
    screen = console()
    mb = result.bytes_read / 1e6
    rate = mb / result.seconds if result.seconds > 0 else 0.0
    table = _table(f"ingest of {result.source}", ["new", "skipped", "duplicates", "failed", "windows", "MB", "MB/s",
                                                   "seconds"])
    table.add_row(str(result.new), str(result.skipped), str(result.duplicates), str(result.failed),
                  str(result.windows), f"{mb:.1f}", f"{rate:.1f}", f"{result.seconds:.2f}")
    screen.print(table)
    if result.ignored:
        screen.print(f"{result.ignored} file(s) directly in the source folder ignored (not in a machine folder)")
    if result.warnings:
        screen.print(f"{result.warnings} warning(s) recorded on ledger rows (NaN, flat line, clipping, time source)")
    if result.deferred:
        screen.print(f"{result.deferred} file(s) deferred to the next run: they changed while being read "
                      "(still being written?)")
    for note in result.notes:
        screen.print(f"note: {note}", markup=False, highlight=False)
    if result.failures:
        from rich.text import Text

        failed = _table("failed files", ["reason"])
        for reason in result.failures.values():
            failed.add_row(Text(reason))  # plain text: "[ingest] …" in a reason is not rich markup
        screen.print(failed)


def rebuild_summary(result) -> None:
    table = _table("features rebuild", ["recordings", "from raw", "from source", "kept stale", "partitions",
                                        "windows", "seconds"])
    table.add_row(*(str(v) for v in (result.recordings, result.from_raw, result.from_source, result.kept_stale,
                                      result.partitions, result.windows)), f"{result.seconds:.2f}")
    console().print(table)
    for path, reason in result.problems.items():
        say(f"kept old rows of {path}: {reason}")


def train_summary(result) -> None:
    table = _table("trained models", ["scope", "model", "version", "windows", "indicators", "threshold",
                                      "outlier ratio"])
    for m in result.models:
        table.add_row(m["scope"], m["model_type"], m["version"], str(m["n_samples"]), str(m["features"]),
                      f"{m['threshold']:.4g}", f"{m['outlier_ratio']:.3f}")
    console().print(table)
    for line in result.warnings:
        say_err(f"warning: {line}")
    for eid, reason in result.skipped.items():
        say(f"skipped {eid}: {reason}")
    if not result.models:
        say("no model trained: " + ("every machine was skipped (above)" if result.skipped
                                    else "no machine has windows yet (`vibra ingest` first)"))


def detect_summary(result) -> None:
    table = _table("detect", ["equipment", "windows scored", "over threshold"])
    for eid, info in result.per_equipment.items():
        table.add_row(eid, str(info.get("scored", 0)), str(info.get("anomalous", info.get("skipped", ""))))
    console().print(table)
    if result.updated:
        say(f"online update saved {len(result.updated)} new Half-Space Trees version(s)")


def episodes_table(episodes: list[dict]) -> None:
    table = _table("alarm episodes", ["equipment", "channel", "start", "end", "windows", "peak score",
                                      "top indicators (robust z)"])
    for e in episodes:
        top = ", ".join(f"{c['indicator']} {c['z']:+.1f}" for c in e["top_indicators"])
        table.add_row(e["equipment_id"], e["channel"], e["start"], e["end"], str(e["windows"]),
                      f"{e['peak_score']:.3g}", top)
    console().print(table)
    if not episodes:
        say("no alarm episodes")


def alarms_table(result) -> None:
    if result.acknowledged_now:
        a = result.acknowledged_now
        say(f"alarm {a['alarm_id']} ({a['equipment_id']} {a['channel']}) acknowledged by {a['acked_by']}; "
            f"state {a['state']}")
    table = _table("alarm list", ["id", "equipment", "channel", "level", "since", "last", "state", "acknowledged"])
    for a in result.alarms:
        acked = f"{a['acked_by']} {a['acked_at'][:16].replace('T', ' ')}" if a.get("acked_by") else "-"
        table.add_row(a["alarm_id"], a["equipment_id"], a["channel"], a["level"], a["started_at"][:19],
                      a["last_at"][:19], a["state"], acked)
    console().print(table)
    if not result.alarms:
        say("no alarms")


def _hours(value) -> str:
    return "-" if value is None else f"{value:.0f}"


def _crossing(ttt: dict) -> str:
    """The time-to-limit state in words (``already past``, ``beyond horizon``…): hours only when there are some."""
    return (ttt.get("state") or "-").replace("_", " ")


def forecast_table(result) -> None:
    table = _table(f"forecast {result.version}", ["series", "status", "model", "MASE", "limit", "crossing", "P10 h",
                                                  "P50 h", "P90 h", "P(cross)"])
    for s in result.series:
        ttt = s.get("time_to_threshold") or {}
        prob = ttt.get("crossing_probability")
        table.add_row(s["key"], s["status"], s.get("model", "-"), f"{s['mase']:.2f}" if s.get("mase") is not None else "-",
                      f"{s['limit']:.4g}" if s.get("limit") is not None else "-", _crossing(ttt),
                      _hours(ttt.get("p10_h")), _hours(ttt.get("p50_h")), _hours(ttt.get("p90_h")),
                      "-" if prob is None else f"{prob:.2f}")
    console().print(table)
    say(f"{result.skipped_unchanged} series unchanged since the last run (use --force); manifest: {result.manifest}")


def forecast_show(payload: dict) -> None:
    for s in payload["series"]:
        ttt = s["time_to_threshold"]
        say(f"{payload['equipment_id']} {s['channel']} {s['indicator']}: {s['status']} ({s['model']}), "
            f"{len(s['history'])} history points, {len(s['forecast'])} ahead; limit {s['limit']} "
            f"[{s['limit_source']}]; time to limit: {_crossing(ttt)}"
            + (f", P10/P50/P90 = {_hours(ttt['p10_h'])}/{_hours(ttt['p50_h'])}/{_hours(ttt['p90_h'])} h"
               if ttt.get("p50_h") is not None or ttt.get("p10_h") is not None else ""))


def status_table(payload: dict) -> None:
    screen = console()
    top = _table("ledger", ["files", "pending", "processing", "completed", "failed", "duplicates", "windows",
                            "last recording"])
    top.add_row(*(str(payload[k]) for k in ("total_files", "pending", "processing", "completed", "failed",
                                            "duplicates", "features_total")), str(payload["last_recorded_at"] or "-"))
    screen.print(top)
    if payload["equipment"]:
        per = _table("per machine", ["equipment", "completed", "failed", "windows", "last recording",
                                     "baseline from"])
        for e in payload["equipment"]:
            per.add_row(e["equipment_id"], str(e["completed"]), str(e["failed"]), str(e["windows"]),
                        str(e["last_recorded_at"] or "-"), e.get("baseline_from") or "first window")
        screen.print(per)
    if payload.get("stale"):
        stale = _table(f"{payload['stale_files']} file(s) computed with other settings than today's",
                       ["equipment", "files", "what changed"])
        for s in payload["stale"]:
            stale.add_row(s["equipment_id"], str(s["files"]), "; ".join(s["why"]))
        screen.print(stale)
        screen.print(f"recompute them: {payload['stale_command']} (or a plain `vibra ingest EXPORT`)",
                     markup=False, highlight=False)


def synth_summary(result) -> None:
    say(f"wrote {result.files} recordings of {len(result.equipment)} machines "
        f"({result.bytes_written / 1e6:.1f} MB) to {result.out}")
    say(f"ground truth: {result.truth_path}\nequipment metadata: {result.equipment_toml}")
    if result.workspace_sections_added:
        say(f"added [equipment.*] sections to vibra.toml: {', '.join(result.workspace_sections_added)}")


def frame_records(frame) -> list[dict]:
    return frame.to_dicts()


def frame_table(frame, title: str) -> None:
    table = _table(title, frame.columns)
    for row in frame.iter_rows():
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
    console().print(table)


def demo_summary(result) -> None:
    ingest_summary(result.ingest)
    status_table(result.status)
    if result.episodes is not None:
        episodes_table(result.episodes)
    if result.forecast is not None:
        forecast_table(result.forecast)
    if result.rul is not None:
        from vibra.report.summaries import rul_display

        for m in result.rul.machines:
            view = rul_display(m)
            if view["rul_text"]:
                say(f"{m['equipment_id']}: {view['rul_text']}" + (f" — {view['rul_detail']}" if view["rul_detail"] else ""))
    if result.cluster is not None:
        cluster_summary(result.cluster)
    if result.labels and result.labels.get("retrain", {}).get("assignment"):
        a = result.labels["retrain"]["assignment"]
        say("defects assigned by the kNN: " + ", ".join(f"{k} {v}" for k, v in a["per_defect"].items()))
    if result.readiness is not None:
        c = result.readiness["counts"]
        say(f"readiness: {result.readiness['status']} ({c['green']} green, {c['amber']} amber, {c['red']} red)")
    ws = result.workspace
    say("\nvibra demo finished.")
    say(f"  workspace:   {ws}")
    say(f"  source:      {result.source}  (ground truth: {result.synth.truth_path})")
    say(f"  ledger:      {ws}/data/catalog.duckdb")
    say(f"  features:    {ws}/data/lake/features/date=*/equipment=*/part-*.parquet")
    say(f"  hourly:      {ws}/data/lake/hourly/date=*/equipment=*/part-*.parquet")
    say(f"  models:      {ws}/artifacts/models/anomaly/<equipment>/<family>/<version>/manifest.json")
    say(f"  scores:      {ws}/data/lake/scores/date=*/equipment=*/part-*.parquet")
    say(f"  clusters:    {ws}/data/lake/clusters, defects: {ws}/data/lake/defects")
    say(f"  metrics:     {ws}/artifacts/metrics/vibra.prom")
    if result.snapshot:
        say(f"  snapshot:    {ws}/artifacts/snapshots/{result.snapshot['version']}")
    if result.report is not None:
        say(f"  report:      {result.report.index}   <- open this in a browser")
    say(f"  try:         vibra status --home {ws}")
    say(f"               vibra anomalies --home {ws} --json")
    say(f"               vibra forecast show {result.synth.equipment[1]} --home {ws} --json")
    say(f"               vibra query recent {result.synth.equipment[0]} --home {ws}")
    say(f"               vibra clusters --home {ws}")
    say(f"               vibra rul --home {ws}")
    say(f"               vibra readiness --home {ws} --fail-on red")
    say("  (the failed files are the synthetic sensor faults: a truncated gzip is refused, the rest are "
        "ingested with warnings)")
    if result.report is not None:
        say(f"\nReport: {result.report.index}")


def _cell(value: Any) -> str:
    """A table cell as people read it: times to the second (UTC), counts as ``key=value``, never a Python repr."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if value.tzinfo else \
            value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "; ".join(_cell(v) for v in value)
    return str(value)


def rows_table(rows: list[dict], title: str, columns: list[str]) -> None:
    table = _table(title, columns)
    for r in rows:
        table.add_row(*[_cell(r.get(c)) for c in columns])
    console().print(table)


def cluster_summary(result) -> None:
    say(f"clustering {result.version}: {result.windows:,} windows (fitted on {result.fitted_on:,}), "
        f"{result.n_clusters} clusters, noise {result.noise_ratio:.1%}, silhouette "
        f"{'—' if result.validity is None else f'{result.validity:.2f}'}, {result.seconds.get('total', 0):.1f} s")
    if result.other_embedding_versions:
        say(f"{result.other_embedding_versions} windows of an older embedding left out (vibra features rebuild)")
    d = result.drift
    if d.get("previous_version"):
        say(f"against {d['previous_version']}: {len(d['matched'])} matched (max centroid shift "
            f"{_cell(d['max_centroid_shift'])}), {d['n_births']} born, {d['n_deaths']} gone")
    say("next: vibra clusters, then vibra label cluster ID DEFECT")


def clusters_table(payload: dict) -> None:
    say(f"clustering {payload['version']}: {payload['windows']:,} windows, {payload['n_clusters']} clusters, "
        f"{payload['noise_windows']:,} noise windows ({payload['noise_ratio']:.1%})")
    table = _table("clusters", ["id", "size", "machines", "from", "to", "label", "label source", "evidence"])
    for c in payload["clusters"]:
        machines = ", ".join(f"{k} {v}" for k, v in list(c["members"].items())[:4])
        if len(c["members"]) > 4:
            machines += f", +{len(c['members']) - 4} more"
        table.add_row(str(c["cluster_id"]), str(c["size"]), machines, c["first"][:16], c["last"][:16],
                      c["label"] or "—", c["label_source"] or "", c["signature"])
    console().print(table)


def diagnose_table(result) -> None:
    """One row per recording, or per measurement point of a machine that has ``points``."""
    table = _table("bearing diagnosis per recording", ["equipment", "file", "recording", "first window",
                                                       "point · channel", "verdict", "evidence"])
    for r in result.recordings:
        name = r["source_path"].replace("\\", "/").rsplit("/", 1)[-1] if r["source_path"] else "-"
        head = [r["equipment_id"], name, r["recording_id"][:12], r["first"][:16]]
        for i, p in enumerate(r["points"] or [{**r, "point": None}]):
            where = " · ".join(x for x in (p["point"], p["channel"]) if x) or "-"
            table.add_row(*(head if i == 0 else [""] * 4), where, p["verdict"].replace("_", " "), p["text"])
    console().print(table)
    say(f"rule: {result.rule}")


def assignments_table(rows: list[dict]) -> None:
    table = _table("defect assignments (windows)", ["equipment", "recording", "first window", "windows per defect"])
    for r in rows:
        table.add_row(r["equipment_id"], r["recording_id"][:12], r["first"][:16],
                      ", ".join(f"{k} {v}" for k, v in sorted(r["windows"].items(), key=lambda kv: -kv[1])))
    console().print(table)


def readiness_table(report: dict, show_all: bool = False) -> None:
    c = report["counts"]
    say(f"readiness: {report['status'].upper()} ({c['green']} green, {c['amber']} amber, {c['red']} red)"
        + ("; per machine: " + ", ".join(f"{e} {s}" for e, s in report["equipment"].items()) if report["equipment"] else ""))
    table = _table("metrics" + ("" if show_all else " not green"), ["status", "metric", "scope", "value", "threshold", "blocks", "note"])
    rank = {"red": 0, "amber": 1, "green": 2}
    shown = [m for m in report["metrics"] if show_all or m["status"] != "green"]
    for m in sorted(shown, key=lambda m: rank[m["status"]]):
        t = m["threshold"]
        thr = "" if t.get("better") == "info" else (
            f"≥ {_cell(t['green'])} green, < {_cell(t['red'])} red" if t.get("better") == "higher" else
            f"≤ {_cell(t['green'])} green, > {_cell(t['red'])} red" if t.get("better") == "lower" and t.get("red") is not None
            else f"{t.get('better')} {_cell(t['green'])}")
        table.add_row(m["status"], m["name"], m["scope"], _cell(m["value"]), thr, ", ".join(m["blocks"]), m["note"])
    if shown:
        console().print(table)
    if not show_all:
        say(f"{c['green']} green metric(s) not shown: --all lists every metric, --json gives them to scripts")


def doctor_table(report: dict) -> None:
    say("doctor: " + ("clean" if not report["findings"] else
                      "OK (nothing an error)" if report["ok"] else "problems found (errors below)"))
    for f in report["findings"]:
        state = " [repaired]" if f["repaired"] else ""
        say(f"- {f['severity']}: {f['check']} ({f['count']}){state}: {f['explanation']}")
        if f["repair"] and not f["repaired"]:
            say(f"    repair: {f['repair']}" + ("" if report["repair"] else " (vibra doctor --repair)"))
        for ex in f["examples"][:3]:
            say(f"    e.g. {ex}")


def sql_result(result, *, as_json: bool, as_csv: bool) -> None:
    """A query's rows: JSON object, CSV, or a table (cells escaped: values are data, not markup)."""
    if as_json:
        emit(result.as_dict(), True, lambda: None)
        return
    if as_csv:
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([[json_default(v) if isinstance(v, (datetime, date)) else v for v in row] for row in result.rows])
        return
    if not result.columns:
        say("ok")
        return
    table = _table(f"{len(result.rows)} row(s)", result.columns)
    for row in result.rows:
        table.add_row(*[_cell(v) for v in row])
    console().print(table)


def files_table(payload: dict) -> None:
    rows = [{**f, "warnings": "; ".join(f["warnings"])} for f in payload["files"]]
    if not rows:
        say("no files match")
        return
    rows_table(rows, f"{len(rows)} file(s)", ["path", "equipment_id", "status", "reason", "warnings", "updated_at"])
