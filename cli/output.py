"""How results reach people (rich tables, progress bars on stderr) and scripts (JSON on stdout)."""

from __future__ import annotations

import json
import re
import sys
from contextlib import contextmanager
from datetime import date, datetime, timezone
from typing import Any, Callable, Iterator


def _console(stderr: bool = False):
    """Rich on a terminal; wide, colourless plain text when piped (logs, CI)."""
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console = Console(stderr=stderr, highlight=False, soft_wrap=True, width=200, no_color=True)
    return console


SCHEMA_VERSION = 1
# A command whose result is a list names it under this key (everything else: "items").
LIST_KEYS = {"query recent": "points", "anomalies": "episodes", "runs": "runs", "defects list": "defects",
             "defects assignments": "assignments", "label list": "labels", "snapshot list": "snapshots"}
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


def utc_second(value: datetime | str) -> str:
    """A time as the JSON contract writes it: ISO-8601 UTC to the second, ``Z`` suffix (naive = UTC)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc_second(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _normalise(value: Any) -> Any:
    """Timestamps anywhere in a payload, as objects or as the pipelines' ISO strings, to one format."""
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO.match(value)):
        try:
            return utc_second(value)
        except ValueError:
            return value
    return value


def command_name() -> str:
    """The running command as typed after ``vibra`` (``query recent``), from Click's context."""
    try:  # Typer ≥ 0.22 carries its own copy of Click; older ones use Click itself
        from typer._click.globals import get_current_context
    except ImportError:
        from click import get_current_context

    ctx = get_current_context(silent=True)
    return " ".join(ctx.command_path.split()[1:]) if ctx is not None else ""


# Per-machine data the pipelines keep as a dict keyed by machine, per command: key -> (key in the
# JSON, name of a plain value). The contract lists it as objects carrying ``equipment_id``.
PER_MACHINE = {"readiness": {"equipment": ("equipment", "status")},
               "detect": {"per_equipment": ("equipment", None)},
               "train": {"skipped": ("skipped", "reason")}}


def machine_list(by_machine: dict, value_name: str | None) -> list[dict]:
    """``{"pump-02": x}`` as ``[{"equipment_id": "pump-02", ...x}]`` (``x`` a dict) or
    ``[{"equipment_id": "pump-02", value_name: x}]``, in machine order."""
    return [{"equipment_id": eid, **value} if isinstance(value, dict) and value_name is None
            else {"equipment_id": eid, value_name or "value": value} for eid, value in sorted(by_machine.items())]


def envelope(payload: Any, command: str | None = None) -> dict:
    """The one JSON contract: an object with ``schema_version``, ``command`` and named lists
    (per-machine data as a list of objects with ``equipment_id``)."""
    command = command_name() if command is None else command
    if not isinstance(payload, dict):
        payload = {LIST_KEYS.get(command, "items"): payload}
    listed = PER_MACHINE.get(command, {})
    body = {}
    for key, value in payload.items():
        if key in ("schema_version", "command"):
            continue
        if key in listed and isinstance(value, dict):
            name, value_name = listed[key]
            body[name] = machine_list(value, value_name)
        else:
            body[key] = value
    return {"schema_version": SCHEMA_VERSION, "command": command, **body}


def emit(payload: Any, as_json: bool, human: Callable[[], None]) -> None:
    """``payload`` (a stage's result — its ``as_dict()`` is the JSON — or a plain dict or list) as the JSON
    contract with ``--json``, else ``human()``."""
    if hasattr(payload, "as_dict"):
        payload = payload.as_dict()
    if as_json:
        sys.stdout.write(json.dumps(_normalise(envelope(payload)), indent=2, default=_default) + "\n")
    else:
        human()


def emit_error(exc: Exception, exit_code: int, command: str) -> None:
    """An error under ``--json``: ``{"error": {...}}`` on stdout (the same exit code follows)."""
    payload = envelope({"error": {"type": type(exc).__name__, "message": str(exc), "exit_code": exit_code}}, command)
    sys.stdout.write(json.dumps(payload, indent=2, default=_default) + "\n")


def say(message: str) -> None:
    _console().print(message, markup=False)


@contextmanager
def bar(description: str, quiet: bool) -> Iterator[Callable[..., None]]:
    """A progress bar on stderr (only on a terminal); yields ``tick(done, total, what="")``, ``what``
    naming the item in hand (a machine, a model)."""
    console = _console(stderr=True)
    if quiet or not console.is_terminal:
        yield lambda done, total, what="": None
        return
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn(escape(description)), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[what]}"),
                  TimeRemainingColumn(), console=console, transient=True) as progress:
        task = progress.add_task(description, total=None, what="")
        yield lambda done, total, what="": progress.update(task, completed=done, total=total, what=escape(what))


def stages(quiet: bool) -> Callable[[str], None] | None:
    """Stage lines on stderr (``cluster``: read, UMAP, HDBSCAN, assign) — only on a terminal, so
    ``--json`` and piped output carry nothing extra."""
    if quiet or not sys.stderr.isatty():
        return None
    return say_err


@contextmanager
def ingest_progress(quiet: bool) -> Iterator[Callable[[str, dict], None]]:
    """Progress of an ingest: files done, MB/s; wait messages go to stderr always."""
    console = _console(stderr=True)

    def on_wait(info: dict) -> None:
        from rich.markup import escape

        console.print(f"[yellow]{escape(info['message'])}[/yellow]")

    if quiet or not console.is_terminal:
        yield lambda event, info: on_wait(info) if event == "wait" else None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    with Progress(TextColumn("ingest"), BarColumn(), TextColumn("{task.fields[done]}/{task.fields[files]} files"),
                  TransferSpeedColumn(), TimeRemainingColumn(), console=console, transient=True) as progress:
        task = progress.add_task("ingest", total=None, done=0, files="?")

        def handle(event: str, info: dict) -> None:
            if event == "wait":
                on_wait(info)
            elif event == "start":
                progress.update(task, total=info["bytes"], files=info["files"])
            elif event == "file":
                progress.update(task, advance=info["bytes"], done=progress.tasks[0].fields["done"] + 1)

        yield handle


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
    console = _console()
    mb = result.bytes_read / 1e6
    rate = mb / result.seconds if result.seconds > 0 else 0.0
    table = _table(f"ingest of {result.source}", ["new", "skipped", "duplicates", "failed", "windows", "MB", "MB/s",
                                                   "seconds"])
    table.add_row(str(result.new), str(result.skipped), str(result.duplicates), str(result.failed),
                  str(result.windows), f"{mb:.1f}", f"{rate:.1f}", f"{result.seconds:.2f}")
    console.print(table)
    if result.ignored:
        console.print(f"{result.ignored} file(s) directly in the source folder ignored (not in a machine folder)")
    if result.warnings:
        console.print(f"{result.warnings} warning(s) recorded on ledger rows (NaN, flat line, clipping, time source)")
    if result.deferred:
        console.print(f"{result.deferred} file(s) deferred to the next run: they changed while being read "
                      "(still being written?)")
    for note in result.notes:
        console.print(f"note: {note}", markup=False, highlight=False)
    if result.failures:
        from rich.text import Text

        failed = _table("failed files", ["reason"])
        for reason in result.failures.values():
            failed.add_row(Text(reason))  # plain text: "[ingest] …" in a reason is not rich markup
        console.print(failed)


def rebuild_summary(result) -> None:
    table = _table("features rebuild", ["recordings", "from raw", "from source", "kept stale", "partitions",
                                        "windows", "seconds"])
    table.add_row(*(str(v) for v in (result.recordings, result.from_raw, result.from_source, result.kept_stale,
                                      result.partitions, result.windows)), f"{result.seconds:.2f}")
    _console().print(table)
    for path, reason in result.problems.items():
        say(f"kept old rows of {path}: {reason}")


def train_summary(result) -> None:
    table = _table("trained models", ["scope", "model", "version", "windows", "indicators", "threshold",
                                      "outlier ratio"])
    for m in result.models:
        table.add_row(m["scope"], m["model_type"], m["version"], str(m["n_samples"]), str(m["features"]),
                      f"{m['threshold']:.4g}", f"{m['outlier_ratio']:.3f}")
    _console().print(table)
    for eid, reason in result.skipped.items():
        say(f"skipped {eid}: {reason}")


def detect_summary(result) -> None:
    table = _table("detect", ["equipment", "windows scored", "over threshold"])
    for eid, info in result.per_equipment.items():
        table.add_row(eid, str(info.get("scored", 0)), str(info.get("anomalous", info.get("skipped", ""))))
    _console().print(table)
    if result.updated:
        say(f"online update saved {len(result.updated)} new Half-Space Trees version(s)")


def episodes_table(episodes: list[dict]) -> None:
    table = _table("alarm episodes", ["equipment", "channel", "start", "end", "windows", "peak score",
                                      "top indicators (robust z)"])
    for e in episodes:
        top = ", ".join(f"{c['indicator']} {c['z']:+.1f}" for c in e["top_indicators"])
        table.add_row(e["equipment_id"], e["channel"], e["start"], e["end"], str(e["windows"]),
                      f"{e['peak_score']:.3g}", top)
    _console().print(table)
    if not episodes:
        say("no alarm episodes")


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
    _console().print(table)
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
    console = _console()
    top = _table("ledger", ["files", "pending", "processing", "completed", "failed", "duplicates", "windows",
                            "last recording"])
    top.add_row(*(str(payload[k]) for k in ("total_files", "pending", "processing", "completed", "failed",
                                            "duplicates", "features_total")), str(payload["last_recorded_at"] or "-"))
    console.print(top)
    if payload["equipment"]:
        per = _table("per machine", ["equipment", "completed", "failed", "windows", "last recording"])
        for e in payload["equipment"]:
            per.add_row(e["equipment_id"], str(e["completed"]), str(e["failed"]), str(e["windows"]),
                        str(e["last_recorded_at"] or "-"))
        console.print(per)
    if payload.get("stale"):
        stale = _table(f"{payload['stale_files']} file(s) computed with other settings than today's",
                       ["equipment", "files", "what changed"])
        for s in payload["stale"]:
            stale.add_row(s["equipment_id"], str(s["files"]), "; ".join(s["why"]))
        console.print(stale)
        console.print(f"recompute them: {payload['stale_command']} (or a plain `vibra ingest EXPORT`)",
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
    _console().print(table)


def demo_summary(result) -> None:
    ingest_summary(result.ingest)
    status_table(result.status)
    if result.episodes is not None:
        episodes_table(result.episodes)
    if result.forecast is not None:
        forecast_table(result.forecast)
    if result.rul is not None:
        for m in result.rul.machines:
            if "p50_s" in m:
                say(f"RUL {m['equipment_id']}: P50 {m['text']}, {m['model']}" if m["basis"] == "model"
                    else f"RUL {m['equipment_id']}: {m['text']}")
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
    say(f"  models:      {ws}/artifacts/models/anomaly/<equipment>/<version>/manifest.json")
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


def say_err(message: str) -> None:
    _console(stderr=True).print(message, markup=False)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def rows_table(rows: list[dict], title: str, columns: list[str]) -> None:
    table = _table(title, columns)
    for r in rows:
        table.add_row(*[_cell(r.get(c)) for c in columns])
    _console().print(table)


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
    _console().print(table)


def diagnose_table(result) -> None:
    if not result.recordings:
        say("no evidence yet: ingest recordings of machines with rpm and bearing geometry (vibra ingest)")
        return
    table = _table("bearing diagnosis per recording", ["equipment", "recording", "first window", "channel",
                                                       "verdict", "evidence"])
    for r in result.recordings:
        table.add_row(r["equipment_id"], r["recording_id"][:12], r["first"][:16], r["channel"],
                      r["verdict"].replace("_", " "), r["text"])
    _console().print(table)
    say(f"rule: {result.rule}")


def assignments_table(rows: list[dict]) -> None:
    if not rows:
        say("no defect assignments yet: label a cluster or recording (vibra label), which trains the kNN")
        return
    table = _table("defect assignments (windows)", ["equipment", "recording", "first window", "windows per defect"])
    for r in rows:
        table.add_row(r["equipment_id"], r["recording_id"][:12], r["first"][:16],
                      ", ".join(f"{k} {v}" for k, v in sorted(r["windows"].items(), key=lambda kv: -kv[1])))
    _console().print(table)


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
        _console().print(table)
    if not show_all:
        say(f"{c['green']} green metric(s) not shown: --all lists every metric, --json gives them to scripts")


class _JsonLines:
    """logging formatter: one JSON object per record, with the record's extra fields."""

    SKIP = set(vars(__import__("logging").LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

    def format(self, record) -> str:
        from datetime import timezone as _tz

        out = {"time": datetime.fromtimestamp(record.created, _tz.utc).isoformat(), "level": record.levelname.lower(),
               "logger": record.name, "message": record.getMessage()}
        out.update({k: v for k, v in vars(record).items() if k not in self.SKIP})
        return json.dumps(out, default=_default)


def setup_logging(fmt: str, level: str) -> None:
    import logging

    if fmt not in ("text", "json"):
        raise ValueError(f"--log-format {fmt!r}: use text or json")
    levels = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
    if level not in levels:
        raise ValueError(f"--log-level {level!r}: use {', '.join(levels)}")
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.formatter = _JsonLines()  # type: ignore[assignment]
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log = logging.getLogger("vibra")
    log.handlers[:] = [handler]
    log.setLevel(levels[level])
    log.propagate = False


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
        writer.writerows([[_default(v) if isinstance(v, (datetime, date)) else v for v in row] for row in result.rows])
        return
    if not result.columns:
        say("ok")
        return
    table = _table(f"{len(result.rows)} row(s)", result.columns)
    for row in result.rows:
        table.add_row(*[_cell(v) for v in row])
    _console().print(table)


def files_table(payload: dict) -> None:
    rows = [{**f, "warnings": "; ".join(f["warnings"])} for f in payload["files"]]
    if not rows:
        say("no files match")
        return
    rows_table(rows, f"{len(rows)} file(s)", ["path", "equipment_id", "status", "reason", "warnings", "updated_at"])
