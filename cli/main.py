"""The ``vibra`` command. Each command parses options, builds settings, calls one
pipeline function and prints its result. Heavy libraries are imported inside the
commands so that ``vibra --help`` stays fast."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer

from vibra.errors import InputError, VibraError

from vibra_cli import output

app = typer.Typer(
    name="vibra",
    help="Condition monitoring for rotating equipment: ingest vibration exports, compute indicators, "
         "and more.\n\nExample: vibra init plant && cd plant && vibra synth export && vibra ingest export",
    no_args_is_help=True,
    invoke_without_command=True,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
query_app = typer.Typer(help="Read the lake. Example: vibra query recent pump-02 --indicator rms --json",
                        no_args_is_help=True)
app.add_typer(query_app, name="query")
threshold_app = typer.Typer(help="Anomaly thresholds. Example: vibra threshold set pump-02 --quantile 0.99",
                            no_args_is_help=True)
app.add_typer(threshold_app, name="threshold")
maintain_app = typer.Typer(help="Housekeeping. Example: vibra maintain gc --keep 3", no_args_is_help=True)
app.add_typer(maintain_app, name="maintain")
forecast_app = typer.Typer(invoke_without_command=True)
app.add_typer(forecast_app, name="forecast")
features_app = typer.Typer(help="The features table. Example: vibra features rebuild --equipment pump-02",
                           no_args_is_help=True)
app.add_typer(features_app, name="features")

Home = Annotated[Optional[Path], typer.Option("--home", envvar="VIBRA_HOME", show_envvar=True,
                                              help="Workspace folder (default: nearest vibra.toml upward).")]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]
EquipmentIds = Annotated[Optional[list[str]], typer.Option("--equipment", metavar="ID[,ID...]",
                                                           help="Limit to these machines (repeat or comma-separate).")]


def _context(home: Optional[Path], overrides: dict | None = None):
    from vibra.settings import load_settings
    from vibra.workspace import find_workspace

    ws = find_workspace(home, None)
    settings = load_settings(ws.config_path, os.environ, overrides)
    for warning in settings.warnings:  # stderr, so --json output stays parseable
        output._console(stderr=True).print(f"warning: {warning}", markup=False)
    return ws, settings


def _machines(ws, settings, ids: list[str] | None) -> list[str] | None:
    """``--equipment`` as given (repeats and comma lists); every id must be a known machine."""
    if not ids:
        return None
    from vibra_pipelines.status import check_equipment

    return check_equipment(ws, settings, [part.strip() for value in ids for part in value.split(",") if part.strip()])


@app.command("init")
def init_cli(directory: Annotated[Path, typer.Argument(metavar="DIRECTORY", help="Folder to make a workspace of.")] = Path("."),
             as_json: Json = False) -> None:
    """Create a workspace (vibra.toml, data/, artifacts/, reports/). Never overwrites vibra.toml.

    Example: vibra init ~/plant-a
    """
    from vibra.workspace import init_workspace

    ws, created = init_workspace(directory)
    payload = {"workspace": str(ws.root), "config": str(ws.config_path), "created": created}
    output.emit(payload, as_json, lambda: output.say(
        f"{'created' if created else 'kept existing'} {ws.config_path}\nworkspace ready at {ws.root}"))


@app.command("synth")
def synth_cli(
    out: Annotated[Path, typer.Argument(metavar="OUT", help="Folder to write the export into.")],
    equipment: Annotated[int, typer.Option("--equipment", "-n", min=1, max=500, help="Number of machines.")] = 4,
    days: Annotated[float, typer.Option(min=0.01, max=3650, help="Days of recordings.")] = 2.0,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 0,
    sample_rate: Annotated[float, typer.Option("--sample-rate", min=1000, max=200_000, help="Hz.")] = 12_800.0,
    recordings_per_hour: Annotated[int, typer.Option(min=1, max=3600)] = 1,
    seconds: Annotated[float, typer.Option(min=0.05, max=600, help="Length of each recording.")] = 1.0,
    start: Annotated[Optional[datetime], typer.Option(help="UTC time of the first recording "
                                                      "(default: DAYS before now, on the hour).")] = None,
    no_sensor_faults: Annotated[bool, typer.Option("--no-sensor-faults", help="Leave out the corrupted files.")] = False,
    past_lives: Annotated[int, typer.Option("--past-lives", min=0, max=20, help="Earlier lives of every faulty "
                                            "machine, run to failure before the period (for vibra rul), with "
                                            "maintenance_events.csv.")] = 0,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Write a seeded synthetic plant export with ground truth (truth.csv, equipment.toml).

    Inside a workspace it also appends the machines' [equipment.<id>] sections to vibra.toml
    (existing sections are kept), so `vibra ingest OUT` works next.

    Example: vibra synth export --equipment 6 --days 14 --seed 1
    """
    from datetime import timedelta

    from vibra.errors import WorkspaceError
    from vibra.workspace import find_workspace

    from vibra_pipelines import synth

    try:
        ws = find_workspace(home, None)
    except WorkspaceError:
        if home:
            raise
        ws = None
    if start is None:
        start = (datetime.now(timezone.utc) - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    elif start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    with output.bar("synthesising", as_json) as tick:
        result = synth.run(out, n_equipment=equipment, days=days, seed=seed, start=start,
                           sample_rate_hz=sample_rate, recordings_per_hour=recordings_per_hour, seconds=seconds,
                           sensor_faults=not no_sensor_faults, workspace=ws, n_past_lives=past_lives,
                           progress=lambda done, total: tick(done, total))
    output.emit(result.as_dict(), as_json, lambda: output.synth_summary(result))


@app.command("ingest")
def ingest_cli(
    source: Annotated[Path, typer.Argument(metavar="SOURCE", help="Export folder: one subfolder per machine.")],
    max_concurrent_files: Annotated[Optional[int], typer.Option(help="Files processed at once [ingest].")] = None,
    frame_length: Annotated[Optional[int], typer.Option(help="Window length, samples [features].")] = None,
    hop_length: Annotated[Optional[int], typer.Option(help="Samples between windows [features].")] = None,
    keep_raw: Annotated[Optional[bool], typer.Option("--keep-raw/--no-keep-raw",
                                                     help="Also store waveforms in data/lake/raw [ingest].")] = None,
    include_expired: Annotated[bool, typer.Option("--include-expired", help="Re-ingest recordings whose windows "
                                                  "retention dropped.")] = False,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Try every failed file again (failed files "
                                               "are also retried when they or their settings change).")] = False,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Ingest new recordings: ledger, windowed indicators, hourly aggregates. Reruns skip what is done.

    Exit 1 when any file failed (the others are still ingested), or when the run stopped on a
    failure that is not a file's (disk full, permissions on the workspace, a bug): then no file
    is blamed and running the same command again resumes.

    Example: vibra ingest /mnt/plant-export --max-concurrent-files 4 --json
    """
    from vibra_pipelines import ingest

    ws, settings = _context(home, {"ingest.max_concurrent_files": max_concurrent_files,
                                   "features.frame_length": frame_length, "features.hop_length": hop_length,
                                   "ingest.keep_raw": keep_raw})
    with output.ingest_progress(as_json) as progress:
        result = ingest.run(ws, settings, source, include_expired=include_expired, retry_failed=retry_failed,
                            progress=progress)
    output.emit(result.as_dict(), as_json, lambda: output.ingest_summary(result))
    if result.failed:
        raise typer.Exit(1)


@app.command("status")
def status_cli(equipment: EquipmentIds = None, home: Home = None, as_json: Json = False) -> None:
    """Ledger counts (files by status), windows in the lake, last recording time, per machine.

    Example: vibra status --json
    """
    from vibra_pipelines import status

    ws, settings = _context(home)
    equipment = _machines(ws, settings, equipment)
    payload = status.run(ws, equipment)
    output.emit(payload, as_json, lambda: output.status_table(payload))


@app.command("diagnose")
def diagnose_cli(equipment: EquipmentIds = None, home: Home = None, as_json: Json = False) -> None:
    """Bearing-fault verdict per recording (outer race, inner race, ball or unknown) with its evidence,
    from the fault-family evidence ingest stored for every window.

    Example: vibra diagnose --equipment pump-02 --json
    """
    from vibra_pipelines import diagnose

    ws, settings = _context(home)
    equipment = _machines(ws, settings, equipment)
    result = diagnose.run(ws, settings, equipment=equipment)
    output.emit(result.as_dict(), as_json, lambda: output.diagnose_table(result))


@query_app.command("recent")
def recent_cli(
    equipment_id: Annotated[str, typer.Argument(metavar="EQUIPMENT_ID", help="Machine id, as in `vibra status`.")],
    channel: Annotated[Optional[str], typer.Option(help="Only this channel.")] = None,
    indicator: Annotated[str, typer.Option(help="Indicator with hourly aggregates.")] = "rms",
    limit: Annotated[int, typer.Option(min=1, help="Points to return (capped by [query] max_points).")] = 24,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """The latest hourly points of one machine, newest first (reads only the newest partitions).

    Example: vibra query recent pump-02 --channel x --indicator kurtosis --limit 48 --json
    """
    from vibra_pipelines import query

    ws, settings = _context(home)
    _machines(ws, settings, [equipment_id])
    frame = query.recent(ws, settings, equipment_id, channel=channel, indicator=indicator, limit=limit)
    output.emit(output.frame_records(frame), as_json, lambda: output.frame_table(frame, f"{equipment_id}: {indicator}"))


@features_app.command("rebuild")
def rebuild_cli(equipment: EquipmentIds = None, home: Home = None, as_json: Json = False) -> None:
    """Recompute the features (and hourly) tables with the current settings, from the kept raw
    waveforms (`[ingest] keep_raw`) or else the recorded source files; each partition is swapped
    in whole. Exit 1 when some recording could not be rebuilt (its old rows are kept).

    Example: vibra features rebuild --equipment pump-02 --json
    """
    from vibra_pipelines import features

    ws, settings = _context(home)
    equipment = _machines(ws, settings, equipment)
    with output.ingest_progress(as_json) as progress:
        result = features.rebuild(ws, settings, equipment, progress=progress)
    output.emit(result.as_dict(), as_json, lambda: output.rebuild_summary(result))
    if result.kept_stale:
        raise typer.Exit(1)


Since = Annotated[Optional[str], typer.Option(metavar="TIME", help="Only windows from this time on: ISO-8601 UTC "
                                              "(2026-11-28T14:00) or a duration ago (24h, 7d).")]
Model = Annotated[Optional[str], typer.Option("--model", help="iforest, hst or baseline (default: [anomaly] model).")]


def _utc(value: Optional[str]) -> Optional[datetime]:
    """A --since/--until value (ISO-8601 or a duration ago) as an aware UTC datetime."""
    if value is None:
        return None
    from vibra.durations import parse_time

    return parse_time(value)


@app.command("train")
def train_cli(
    model: Annotated[str, typer.Option("--model", help="iforest, hst, baseline or all.")] = "all",
    equipment: EquipmentIds = None,
    baseline_days: Annotated[Optional[float], typer.Option(min=0.01, help="Days from each machine's first "
                                                           "window [anomaly] baseline_days.")] = None,
    since: Since = None,
    until: Annotated[Optional[str], typer.Option(metavar="TIME", help="Baseline ends before this time: ISO-8601 "
                                                 "UTC or a duration ago (24h).")] = None,
    fleet: Annotated[bool, typer.Option("--fleet", help="One model across machines, standardised per machine.")] = False,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Train anomaly models on each machine's baseline period; writes versioned artifacts with manifests.

    Example: vibra train --model all --baseline-days 3
    """
    from vibra.models import FAMILIES

    from vibra_pipelines import anomaly

    ws, settings = _context(home, {"anomaly.baseline_days": baseline_days})
    equipment = _machines(ws, settings, equipment)
    models = list(FAMILIES) if model == "all" else [model]
    with output.bar("train", as_json) as tick:
        result = anomaly.train(ws, settings, models=models, equipment=equipment, since=_utc(since),
                               until=_utc(until), fleet=fleet, progress=tick)
    output.emit(result.as_dict(), as_json, lambda: output.train_summary(result))
    if not result.models:
        raise typer.Exit(3)


@app.command("detect")
def detect_cli(equipment: EquipmentIds = None, model: Model = None, since: Since = None,
               update: Annotated[bool, typer.Option("--update", help="Half-Space Trees keep learning online.")] = False,
               home: Home = None, as_json: Json = False) -> None:
    """Score the windows the current model versions have not scored yet; writes data/lake/scores.

    Example: vibra detect --update
    """
    from vibra_pipelines import anomaly

    ws, settings = _context(home)
    equipment = _machines(ws, settings, equipment)
    with output.bar("detect", as_json) as tick:
        result = anomaly.detect(ws, settings, equipment=equipment, models=[model] if model else None,
                                since=_utc(since), update=update, progress=tick)
    output.emit(result.as_dict(), as_json, lambda: output.detect_summary(result))


@app.command("anomalies")
def anomalies_cli(equipment: EquipmentIds = None, model: Model = None, since: Since = None,
                  home: Home = None, as_json: Json = False) -> None:
    """Alarm episodes (k of the last m windows over threshold) with the indicators that stand out.

    Example: vibra anomalies --equipment pump-02 --json
    """
    from vibra_pipelines import anomaly

    ws, settings = _context(home)
    equipment = _machines(ws, settings, equipment)
    episodes = anomaly.episodes(ws, settings, equipment=equipment, model=model, since=_utc(since))
    output.emit(episodes, as_json, lambda: output.episodes_table(episodes))


@threshold_app.command("set")
def threshold_set_cli(
    equipment_id: Annotated[str, typer.Argument(metavar="EQUIPMENT_ID", help="Machine whose model gets the new threshold.")],
    quantile: Annotated[Optional[float], typer.Option(help="Quantile of the training scores, e.g. 0.99.")] = None,
    value: Annotated[Optional[float], typer.Option(help="An explicit score threshold.")] = None,
    z: Annotated[Optional[float], typer.Option(help="z rule: median + z·1.4826·MAD of the training scores.")] = None,
    model: Model = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Write a new model version with another threshold over the same weights (no retraining):
    a training-score quantile, a z rule, or a value.

    Example: vibra threshold set pump-02 --quantile 0.99
    """
    from vibra_pipelines import anomaly

    ws, settings = _context(home)
    _machines(ws, settings, [equipment_id])
    manifest = anomaly.set_threshold(ws, settings, equipment_id, model=model or settings.anomaly.model,
                                     quantile=quantile, value=value, z=z)
    payload = {k: manifest[k] for k in ("model_type", "version", "previous_version", "threshold", "threshold_rule",
                                        "weights_version")}
    output.emit(payload, as_json, lambda: output.say(
        f"{equipment_id}: {payload['model_type']} threshold {payload['threshold']:.4g} ({payload['threshold_rule']}) "
        f"as version {payload['version']}"))


@maintain_app.command("gc")
def gc_cli(keep: Annotated[int, typer.Option(min=1, help="Versions to keep of each kind (per machine and family "
                                              "for anomaly models).")] = 3,
           home: Home = None, as_json: Json = False) -> None:
    """Remove old versions of every artifact kind (anomaly models, forecasts, clusterings, kNNs, snapshots,
    readiness reports), keeping the newest N of each; never one a `latest` pointer names nor the newest one
    that verifies. Every store is checked first: a damaged pointer stops it before anything is deleted.

    Example: vibra maintain gc --keep 3
    """
    from vibra_pipelines import maintain

    ws, settings = _context(home)
    removed = maintain.gc(ws, settings, keep)
    output.emit({"removed": removed}, as_json, lambda: output.say(
        "removed " + ", ".join(f"{len(v)} {k}" for k, v in removed.items()) + " old version(s)"))


@maintain_app.command("compact")
def compact_cli(table: Annotated[Optional[list[str]], typer.Option("--table", metavar="TABLE", help="Table(s) to compact "
                                                                  "(default: all but raw).")] = None,
                min_files: Annotated[int, typer.Option("--min-files", min=2, help="Compact partitions holding at "
                                                       "least N files.")] = 2,
                home: Home = None, as_json: Json = False) -> None:
    """Merge each partition's small Parquet files into one, sorted by equipment, recording, channel, time;
    swapped in atomically (readers see the old files or the new one, never both, never neither).

    Example: vibra maintain compact --table features --min-files 8
    """
    from vibra_pipelines import maintain

    ws, settings = _context(home)
    result = maintain.compact(ws, settings, tables=table, min_files=min_files)
    output.emit(result.as_dict(), as_json, lambda: output.rows_table(
        [{"table": t, **v} for t, v in result.tables.items()], "compaction",
        ["table", "partitions", "files_before", "files_after", "rows"]))


@maintain_app.command("retention")
def retention_cli(table: Annotated[str, typer.Option("--table", help="raw, features, hourly, scores, forecasts, "
                                                     "clusters or defects.")],
                  older_than: Annotated[str, typer.Option("--older-than", help="Age, e.g. 90d, 12w, 36h.")],
                  dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would go; delete nothing.")] = False,
                  home: Home = None, as_json: Json = False) -> None:
    """Drop whole date partitions older than the age. Dropping features marks their recordings `expired`
    in the ledger (history kept; a rerun does not re-ingest them unless `vibra ingest --include-expired`).

    Example: vibra maintain retention --table raw --older-than 90d --dry-run
    """
    from vibra_pipelines import maintain

    ws, settings = _context(home)
    out = maintain.retention(ws, settings, table, older_than, dry_run=dry_run)
    output.emit(out, as_json, lambda: output.say(
        f"{'would drop' if dry_run else 'dropped'} {len(out['dates'])} date partition(s) of {table} before "
        f"{out['cutoff_date']}: {out['files']} file(s), {out['bytes'] / 1e6:.1f} MB"
        + (f"; {out['recordings_expired']} recording(s) marked expired" if not dry_run and table == "features" else "")))


@app.command("doctor")
def doctor_cli(repair: Annotated[bool, typer.Option("--repair", help="Repair what can be repaired safely.")] = False,
               home: Home = None, as_json: Json = False) -> None:
    """Check that the lake and the ledger agree: leftover temporary files, completed recordings without
    windows, orphan or duplicated windows, empty partitions, schema versions, dangling `latest` pointers.
    Each finding is explained; --repair fixes the safe ones. Exit 1 while an error-level finding remains.

    Example: vibra doctor --repair --json
    """
    from vibra_pipelines import doctor

    ws, settings = _context(home)
    report = doctor.check(ws, settings, repair=repair)
    output.emit(report, as_json, lambda: output.doctor_table(report))
    if not report["ok"]:
        raise typer.Exit(1)


@app.command("migrate")
def migrate_cli(home: Home = None, as_json: Json = False) -> None:
    """Bring the catalog's schema and the artifacts' pointers to this vibra's version (also done on every
    open; idempotent).

    Example: vibra migrate
    """
    from vibra.storage import artifacts, catalog, migrations

    ws, _ = _context(home)
    with catalog.connect(ws.catalog_path) as con:
        before, after = migrations.migrate(con)
    rewritten = artifacts.migrate(ws.artifacts)
    payload = {"from": before, "to": after, "artifacts_rewritten": rewritten}
    output.emit(payload, as_json, lambda: output.say(
        (f"catalog schema version {before} → {after}" if before != after else f"catalog schema is current ({after})")
        + (f"\n{len(rewritten)} artifact pointer(s) or folder(s) moved to the current layout" if rewritten else "")))


@app.command("runs")
def runs_cli(limit: Annotated[int, typer.Option("--limit", min=1, help="Newest N runs.")] = 20,
             command: Annotated[Optional[str], typer.Option("--command", help="Only runs of this command.")] = None,
             home: Home = None, as_json: Json = False) -> None:
    """Run history: every command and flow with its arguments, start, end, status, counts and error.

    Example: vibra runs --limit 5 --json
    """
    from vibra_pipelines import runs

    ws, _ = _context(home)
    rows = runs.history(ws, limit, command)
    output.emit(rows, as_json, lambda: output.rows_table(rows, "runs", ["started_at", "command", "arguments", "status",
                                                                        "seconds", "counts", "error"]))


@forecast_app.callback()
def forecast_cli(
    ctx: typer.Context,
    equipment: EquipmentIds = None,
    indicator: Annotated[Optional[list[str]], typer.Option(metavar="INDICATOR", help="Indicator(s) to forecast (default: "
                                                           "velocity_rms_mm_s, else rms).")] = None,
    horizon: Annotated[Optional[str], typer.Option(help="How far ahead, e.g. 72h, 7d [forecast] horizon_h.")] = None,
    freq: Annotated[Optional[str], typer.Option(help="Grid step, e.g. 1h, 10min [forecast] freq_s.")] = None,
    level: Annotated[Optional[list[int]], typer.Option(metavar="PERCENT", help="Interval levels (default 80 and 95).")] = None,
    min_points: Annotated[Optional[int], typer.Option(min=8, help="Shortest history forecast; fewer points give "
                                                      "insufficient_data [forecast].")] = None,
    force: Annotated[bool, typer.Option("--force", help="Also series with no new data since the last run.")] = False,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Forecast each machine × channel × indicator with intervals and the time until the alarm limit
    (P10/P50/P90 and the crossing probability), writing data/lake/forecasts and a run manifest.

    `vibra forecast show EQUIPMENT_ID` prints the latest history + forecast of one machine.

    Example: vibra forecast --indicator rms --horizon 72h --json
    """
    if ctx.invoked_subcommand is not None:
        return
    from vibra.durations import parse_duration

    from vibra_pipelines import forecast

    ws, settings = _context(home, {"forecast.min_points": min_points})
    equipment = _machines(ws, settings, equipment)
    levels = tuple(sorted(set(level or [80, 95])))
    if not set(levels) >= {80}:
        levels = tuple(sorted({80, *levels}))  # the 80 % band gives the P10 / P90 crossing times
    with output.bar("forecast", as_json) as tick:
        result = forecast.run(ws, settings, equipment=equipment, indicators=indicator,
                              horizon_s=parse_duration(horizon) if horizon else None,
                              freq_s=parse_duration(freq) if freq else None, levels=levels, force=force,
                              progress=tick)
    output.emit(result.as_dict(), as_json, lambda: output.forecast_table(result))


@forecast_app.command("show")
def forecast_show_cli(equipment_id: Annotated[str, typer.Argument(metavar="EQUIPMENT_ID", help="Machine id.")],
                      channel: Annotated[Optional[str], typer.Option(help="Only this channel.")] = None,
                      indicator: Annotated[Optional[str], typer.Option(help="Only this indicator.")] = None,
                      home: Home = None, as_json: Json = False) -> None:
    """History and the latest forecast of one machine in one payload, ready for a chart.

    Example: vibra forecast show pump-02 --channel x --json
    """
    from vibra_pipelines import forecast

    ws, settings = _context(home)
    _machines(ws, settings, [equipment_id])
    payload = forecast.show(ws, equipment_id, channel=channel, indicator=indicator)
    output.emit(payload, as_json, lambda: output.forecast_show(payload))


defects_app = typer.Typer(help="The defect catalog and the kNN's assignments. Example: vibra defects list",
                          no_args_is_help=True)
app.add_typer(defects_app, name="defects")
label_app = typer.Typer(help="Label clusters, recordings or time ranges with a defect. "
                             "Example: vibra label cluster 3 bearing_outer_race", no_args_is_help=True)
app.add_typer(label_app, name="label")
Who = Annotated[Optional[str], typer.Option("--by", help="Who labels (default: the login name).")]
Note = Annotated[str, typer.Option("--note", help="Free text kept with the label.")]


@app.command("cluster")
def cluster_cli(
    since: Since = None,
    min_cluster_size: Annotated[Optional[int], typer.Option(min=2, help="Smallest cluster HDBSCAN keeps "
                                                            "[cluster] min_cluster_size (0 = auto).")] = None,
    umap_components: Annotated[Optional[int], typer.Option(min=0, help="UMAP dimensions before HDBSCAN; 0 = no "
                                                           "UMAP [cluster] umap_components.")] = None,
    sample: Annotated[Optional[int], typer.Option(min=100, help="Windows the clustering is fitted on "
                                                  "[cluster] sample.")] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Find fault signatures: UMAP + HDBSCAN over the window embeddings; writes data/lake/clusters and a
    clustering manifest (with the drift against the previous clustering), then re-assigns defects.

    UMAP compiles its kernels on a process's first fit (about a minute); --umap-components 0 skips UMAP.

    Example: vibra cluster --since 2026-01-01 --min-cluster-size 50
    """
    from vibra_pipelines import cluster, defects

    ws, settings = _context(home)
    result = cluster.run(ws, settings, since=_utc(since), min_cluster_size=min_cluster_size,
                         umap_components=umap_components, sample=sample, progress=output.stages(as_json))
    defects.after_cluster(ws, settings, result, progress=output.stages(as_json))
    output.emit(result.as_dict(), as_json, lambda: output.cluster_summary(result))


@app.command("clusters")
def clusters_cli(home: Home = None, as_json: Json = False) -> None:
    """The latest clustering: per cluster its size, machines, time span, label (and where it came from)
    and the physics evidence that stands out against the fleet median; drift against the previous one.

    Example: vibra clusters --json
    """
    from vibra_pipelines import defects

    ws, settings = _context(home)
    payload = defects.cluster_table(ws, settings)
    output.emit(payload, as_json, lambda: output.clusters_table(payload))


@defects_app.command("list")
def defects_list_cli(home: Home = None, as_json: Json = False) -> None:
    """The defect catalog (seeded with the common machine faults).

    Example: vibra defects list --json
    """
    from vibra_pipelines import defects

    ws, _ = _context(home)
    rows = defects.defect_types(ws)
    output.emit(rows, as_json, lambda: output.rows_table(rows, "defect catalog", ["name", "description", "source"]))


@defects_app.command("add")
def defects_add_cli(name: Annotated[str, typer.Argument(metavar="NAME", help="Defect name: lower-case, digits, _.")],
                    description: Annotated[str, typer.Option("--description", help="What it means.")] = "",
                    by: Who = None, home: Home = None, as_json: Json = False) -> None:
    """Add a defect type to the catalog.

    Example: vibra defects add coupling_wear --description "worn coupling: 2x and 3x"
    """
    from vibra_pipelines import defects

    ws, settings = _context(home)
    row = defects.add_defect(ws, settings, name, description, by)
    output.emit(row, as_json, lambda: output.say(f"added defect {name}"))


@defects_app.command("assignments")
def defects_assignments_cli(equipment: EquipmentIds = None, home: Home = None, as_json: Json = False) -> None:
    """Per machine and recording: windows per defect the kNN assigned (`unknown` = abstained).

    Example: vibra defects assignments --equipment pump-02 --json
    """
    from vibra_pipelines import defects

    ws, settings = _context(home)
    equipment = _machines(ws, settings, equipment)
    rows = defects.assignments(ws, equipment)
    output.emit(rows, as_json, lambda: output.assignments_table(rows))


@defects_app.command("train")
def defects_train_cli(home: Home = None, as_json: Json = False) -> None:
    """Retrain the defect kNN on every labelled window now and re-assign (normally automatic).

    Example: vibra defects train
    """
    from vibra_pipelines import defects

    ws, settings = _context(home)
    payload = defects.train_now(ws, settings)
    output.emit(payload, as_json, lambda: output.say(
        f"kNN {payload['knn']['version']}: {payload['knn']['n_labels']} labelled windows, classes "
        f"{', '.join(payload['knn']['classes'])}, radius {payload['knn']['radius']:.3g}; "
        f"{payload['assignment']['assigned']} windows assigned"))


def _label_done(payload: dict, as_json: bool, what: str) -> None:
    def human() -> None:
        output.say(what)
        retrain = payload.get("retrain") or {}
        if retrain.get("retrained"):
            output.say(f"kNN retrained ({retrain['reason']}): version {retrain['knn_version']}")
        if retrain.get("assignment"):
            output.say(f"defects assigned to {retrain['assignment']['assigned']} windows: "
                       + ", ".join(f"{k} {v}" for k, v in retrain["assignment"]["per_defect"].items()))
    output.emit(payload, as_json, human)


@label_app.command("cluster")
def label_cluster_cli(cluster_id: Annotated[int, typer.Argument(metavar="CLUSTER_ID", help="Cluster id from `vibra clusters`.")],
                      defect: Annotated[str, typer.Argument(metavar="DEFECT", help="Defect from `vibra defects list`.")],
                      by: Who = None, note: Note = "", home: Home = None, as_json: Json = False) -> None:
    """Label every window of a cluster (of the latest clustering) with a defect.

    Example: vibra label cluster 3 bearing_outer_race --note "confirmed at teardown"
    """
    from vibra_pipelines import defects

    ws, settings = _context(home)
    payload = defects.label_cluster(ws, settings, cluster_id, defect, who=by, note=note,
                                    progress=output.stages(as_json))
    _label_done(payload, as_json, f"cluster {cluster_id} ({payload['n_windows']} windows) labelled {defect}")


@label_app.command("recording")
def label_recording_cli(recording: Annotated[str, typer.Argument(metavar="RECORDING",
                                                                 help="Recording id, an id prefix, or the file name.")],
                        defect: Annotated[str, typer.Argument(metavar="DEFECT", help="Defect from `vibra defects list`.")],
                        by: Who = None, note: Note = "", home: Home = None, as_json: Json = False) -> None:
    """Label every window of one recording with a defect.

    Example: vibra label recording OR007@6_0.mat bearing_outer_race
    """
    from vibra_pipelines import defects

    ws, settings = _context(home)
    payload = defects.label_recording(ws, settings, recording, defect, who=by, note=note,
                                      progress=output.stages(as_json))
    _label_done(payload, as_json, f"recording {payload['recording_id'][:12]} labelled {defect}")


@label_app.command("import")
def label_import_cli(file: Annotated[Path, typer.Argument(metavar="FILE", help="CSV: equipment_id,recording_id,start,end,defect[,note].")],
                     by: Who = None, home: Home = None, as_json: Json = False) -> None:
    """Import labels from a CSV: each row names a recording (recording_id) or a time range of one
    machine (equipment_id, start, end) and a defect. One bad row refuses the file, naming the line.

    Example: vibra label import maintenance_log.csv
    """
    from vibra_pipelines import defects

    ws, settings = _context(home)
    payload = defects.label_import(ws, settings, file, who=by, progress=output.stages(as_json))
    _label_done(payload, as_json, f"imported {payload['imported']} label(s) from {file}")


@label_app.command("list")
def label_list_cli(home: Home = None, as_json: Json = False) -> None:
    """Every label with its provenance (kind, source, who, when).

    Example: vibra label list --json
    """
    from vibra_pipelines import defects

    ws, _ = _context(home)
    rows = defects.list_labels(ws)
    output.emit(rows, as_json, lambda: output.rows_table(rows, "labels", [
        "label_id", "kind", "defect", "equipment_id", "recording_id", "cluster_id", "n_windows", "source", "created_by",
        "created_at"]))


@app.command("readiness")
def readiness_cli(
    equipment: EquipmentIds = None,
    fail_on: Annotated[str, typer.Option("--fail-on", help="Exit 3 when the overall status reaches this: red "
                                         "(default, so a CI job gates without flags), amber or never.")] = "red",
    show_all: Annotated[bool, typer.Option("--all", help="List green metrics too.")] = False,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Data readiness gate: every metric with its value, threshold, status (green/amber/red) and the step
    it blocks; overall per machine and for the workspace. Writes the gauges to artifacts/metrics/vibra.prom.

    Exit codes: 0 below --fail-on, 3 when the status reaches it, 1 on errors.

    Example: vibra readiness --json --fail-on red
    """
    from vibra_pipelines import readiness

    if fail_on not in ("red", "amber", "never"):
        raise typer.BadParameter(f"--fail-on {fail_on!r}: use red, amber or never")
    ws, settings = _context(home)
    equipment = _machines(ws, settings, equipment)
    report = readiness.run(ws, settings, equipment=equipment, fail_on=fail_on)
    if not report["equipment"]:
        # A gate never passes on nothing: no machine matched, so there is nothing to call ready.
        raise InputError("readiness: no machine has data yet; run `vibra ingest` first (a gate never passes on nothing)")
    output.emit(report, as_json, lambda: output.readiness_table(report, show_all))
    if report["failed"]:
        raise typer.Exit(3)


snapshot_app = typer.Typer(invoke_without_command=True)
app.add_typer(snapshot_app, name="snapshot")


@snapshot_app.callback()
def snapshot_cli(
    ctx: typer.Context,
    stratify: Annotated[str, typer.Option("--stratify", help="Balance by equipment or defect.")] = "equipment",
    max_per_class: Annotated[Optional[int], typer.Option("--max-per-class", min=1, help="At most N windows per "
                                                         "machine (or defect); default all.")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the selection.")] = 0,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Freeze the training set: artifacts/snapshots/<version>/data.parquet (window keys, machine, recording,
    cluster, embedding, defect label and its source) and metadata.json (row counts, class balance,
    machine shares, embedding/clustering/kNN versions, sha256, settings, readiness at the time).
    Same lake and seed → byte-identical data file.

    `vibra snapshot list`, `vibra snapshot show VERSION`, `vibra snapshot gc --keep N`.

    Example: vibra snapshot --stratify defect --max-per-class 500 --seed 1
    """
    if ctx.invoked_subcommand is not None:
        return
    from vibra_pipelines import readiness, snapshot

    ws, settings = _context(home)
    meta = snapshot.run(ws, settings, readiness=readiness.assess(ws, settings), stratify=stratify,
                        max_per_class=max_per_class, seed=seed)
    output.emit(meta, as_json, lambda: output.say(
        f"snapshot {meta['version']}: {meta['rows']:,} windows ({meta['labelled_rows']:,} labelled, imbalance "
        f"{_fmt_ratio(meta['imbalance_ratio'])}), readiness {meta['readiness']['status']}; "
        f"{ws.artifacts / 'snapshots' / meta['version']}"))


def _fmt_ratio(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.3g}"


@snapshot_app.command("list")
def snapshot_list_cli(home: Home = None, as_json: Json = False) -> None:
    """Snapshots, newest first.

    Example: vibra snapshot list --json
    """
    from vibra_pipelines import snapshot

    ws, _ = _context(home)
    rows = snapshot.versions(ws)
    output.emit(rows, as_json, lambda: output.rows_table(rows, "snapshots", ["version", "created_at", "rows",
                                                                             "readiness", "latest", "data_sha256"]))


@snapshot_app.command("show")
def snapshot_show_cli(version: Annotated[str, typer.Argument(metavar="VERSION", help="Version from `vibra snapshot list`.")],
                      home: Home = None, as_json: Json = False) -> None:
    """One snapshot's metadata.

    Example: vibra snapshot show 20261127T010000000000Z-1a2b3c4d --json
    """
    import json as _json

    from vibra_pipelines import snapshot

    ws, _ = _context(home)
    meta = snapshot.show(ws, version)
    output.emit(meta, as_json, lambda: output.say(_json.dumps({k: v for k, v in meta.items() if k != "settings"},
                                                              indent=2, default=str)))


@snapshot_app.command("gc")
def snapshot_gc_cli(keep: Annotated[int, typer.Option(min=1, help="Snapshots to keep.")] = 5,
                    home: Home = None, as_json: Json = False) -> None:
    """Remove old snapshots, keeping the newest N (never the latest).

    Example: vibra snapshot gc --keep 5
    """
    from vibra_pipelines import snapshot

    ws, _ = _context(home)
    removed = snapshot.gc(ws, keep)
    output.emit({"removed": removed}, as_json, lambda: output.say(f"removed {len(removed)} old snapshot(s)"))


@app.command("report")
def report_cli(out: Annotated[Optional[Path], typer.Option("--out", help="Folder to write (default: reports/).")] = None,
               equipment: EquipmentIds = None,
               pdf: Annotated[bool, typer.Option("--pdf", help="Also print each page to PDF (headless Chromium).")] = False,
               home: Home = None, as_json: Json = False) -> None:
    """Render the static HTML report (fleet overview, a page per machine, clusters, readiness):
    self-contained, no scripts, no network; open index.html from disk.

    Example: vibra report --out /tmp/plant-report
    """
    from vibra_pipelines import report

    ws, settings = _context(home)
    equipment = _machines(ws, settings, equipment)
    result = report.run(ws, settings, out=out, equipment=equipment, pdf=pdf)
    output.emit(result.as_dict(), as_json, lambda: output.say(
        f"report of {result.machines} machine(s), {result.bytes_written / 1e6:.1f} MB: {result.index}"))


@app.command("files")
def files_cli(
    failed: Annotated[bool, typer.Option("--failed", help="Only failed files.")] = False,
    warnings: Annotated[bool, typer.Option("--warnings", help="Only files with warnings (with --failed: either).")] = False,
    equipment: EquipmentIds = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="At most this many files.")] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """The ledger's source files: path, status, the reason a file failed, its warnings, when.

    A failed file is retried when the settings that concern it change, or with `vibra ingest --retry-failed`.

    Example: vibra files --failed --json
    """
    from vibra_pipelines import files as files_stage

    ws, settings = _context(home)
    equipment = _machines(ws, settings, equipment)
    payload = files_stage.run(ws, failed=failed, warnings=warnings, equipment=equipment, limit=limit)
    output.emit(payload, as_json, lambda: output.files_table(payload))


@app.command("sql")
def sql_cli(
    query: Annotated[Optional[str], typer.Argument(metavar="QUERY", help="One SQL statement; omit it for an interactive prompt.")] = None,
    max_rows: Annotated[int, typer.Option("--max-rows", min=1, help="Print at most this many rows.")] = 1000,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Query the lake with DuckDB: a view per lake table (features, hourly, scores, forecasts,
    clusters, defects, ...) and the ledger (recordings, runs) attached read-only.

    Example: vibra sql "SELECT equipment_id, count(*) AS windows FROM features GROUP BY 1"
    """
    from vibra.workspace import find_workspace

    from vibra_pipelines import sql

    ws = find_workspace(home, None)
    if query is not None:
        result = sql.run(ws, query, max_rows=max_rows)
        output.sql_result(result, as_json=as_json, as_csv=as_csv)
        return
    output.say("vibra sql: one statement per line (end a longer one with ';'); .tables lists the views; "
               ".quit or Ctrl-D leaves")
    buffer = ""
    while True:
        try:
            line = input("vibra> " if not buffer else "   ...> ")
        except EOFError:
            break
        if not buffer and line.strip() in (".quit", ".exit"):
            break
        if not buffer and line.strip() == ".tables":
            output.say(", ".join(sql.connect(ws)[1]) or "no tables yet")
            continue
        buffer = f"{buffer}\n{line}" if buffer else line
        if buffer.strip() and (buffer.rstrip().endswith(";") or "\n" not in buffer and not line.rstrip().endswith(",")):
            try:
                output.sql_result(sql.run(ws, buffer.strip().rstrip(";"), max_rows=max_rows), as_json=as_json,
                                  as_csv=as_csv)
            except VibraError as exc:
                output.say_err(f"error: {exc}")
            buffer = ""


@app.command("demo")
def demo_cli(
    home: Annotated[Optional[Path], typer.Option("--home", help="Workspace to create (default: a new temp folder).")] = None,
    equipment: Annotated[int, typer.Option("--equipment", "-n", min=1, max=50)] = 4,
    days: Annotated[float, typer.Option(min=0.5, max=60)] = 5.0,
    as_json: Json = False,
) -> None:
    """Synthetic plant → ingest → status → anomaly models → scores → alarm episodes, in a fresh
    workspace, printing where everything is.

    Example: vibra demo --home /tmp/vibra-demo
    """
    import tempfile

    from vibra_pipelines import demo

    root = home or Path(tempfile.mkdtemp(prefix="vibra-demo-"))
    with output.ingest_progress(as_json) as progress:
        result = demo.run(root, n_equipment=equipment, days=days, env=dict(os.environ),
                          step=None if as_json else output.say, progress=progress)
    output.emit(result.as_dict(), as_json, lambda: output.demo_summary(result))


# -- remaining useful life: failure / replacement events and `vibra rul` ---------------------------

@label_app.command("failure")
def label_failure_cli(equipment_id: Annotated[str, typer.Argument(metavar="EQUIPMENT_ID", help="Machine id.")],
                      at: Annotated[str, typer.Option("--at", help="When, ISO 8601 (e.g. 2026-03-01T06:00:00Z).")],
                      kind: Annotated[str, typer.Option("--kind", help="failure, or replacement (the bearing or "
                                                        "machine was replaced; starts a new life).")] = "failure",
                      by: Who = None, note: Note = "", home: Home = None, as_json: Json = False) -> None:
    """Record a failure (or a replacement) of a machine: the run-to-failure histories `vibra rul` learns from.
    A life runs from the install or last replacement (or first data) to the failure.

    Example: vibra label failure pump-02 --at 2026-03-01T06:00:00Z --note "outer race spalled"
    """
    from vibra_pipelines import defects

    ws, settings = _context(home)
    payload = defects.label_event(ws, settings, equipment_id, at, kind=kind, note=note, who=by)
    output.emit(payload, as_json, lambda: output.say(f"{equipment_id}: {kind} at {payload['start_at']} recorded"))


@label_app.command("import-events")
def label_import_events_cli(file: Annotated[Path, typer.Argument(metavar="FILE", help="CSV: equipment_id,at,kind[,note].")],
                            by: Who = None, home: Home = None, as_json: Json = False) -> None:
    """Import failure / replacement events from a maintenance-log CSV (kind = failure or replacement).
    One bad row refuses the file, naming the line; events already recorded are skipped.

    Example: vibra label import-events maintenance_events.csv
    """
    from vibra_pipelines import defects

    ws, settings = _context(home)
    payload = defects.import_events(ws, settings, file, who=by)
    output.emit(payload, as_json, lambda: output.say(
        f"imported {payload['imported']} event(s) from {file} ({payload['already_recorded']} already recorded)"))


@app.command("rul")
def rul_cli(equipment: EquipmentIds = None, home: Home = None, as_json: Json = False) -> None:
    """Remaining useful life of every machine: P10 / P50 / P90 (survival prior before degradation
    onset; similarity and Bayesian exponential degradation after), learned from the workspace's
    failed lives (`vibra label failure`). Writes data/lake/rul and artifacts/models/rul/<version>.

    Example: vibra rul --equipment pump-02 --json
    """
    from vibra.rul import format_duration
    from vibra_pipelines import rul

    ws, settings = _context(home)
    equipment = _machines(ws, settings, equipment)
    with output.bar("rul", as_json) as tick:
        result = rul.run(ws, settings, equipment=equipment, progress=tick)

    def human() -> None:
        lib = result.library
        output.say(f"library: {lib['n_failed']} failed lives of {lib['n_lives']}"
                   + (f", indicator {lib['indicator']['name']}" if lib.get("indicator") else "")
                   + ("" if lib.get("trusted") else f" (fewer than {lib['min_lives']}: too small to trust)"))
        rows = [{**m, "RUL P50 (P10–P90)": (f"{format_duration(m['p50_s'])} ({format_duration(m['p10_s'])}–"
                                             f"{format_duration(m['p90_s'])})" if "p50_s" in m else "—")}
                for m in result.machines]
        output.rows_table(rows, "remaining useful life", ["equipment_id", "status", "model", "RUL P50 (P10–P90)",
                                                          "reason"])
    output.emit(result.as_dict(), as_json, human)


@app.callback()
def root_options(
    ctx: typer.Context,
    log_format: Annotated[str, typer.Option("--log-format", envvar="VIBRA_LOG_FORMAT", show_envvar=True,
                                            help="text or json (JSON lines on stderr, one per run event).")] = "text",
    log_level: Annotated[str, typer.Option("--log-level", envvar="VIBRA_LOG_LEVEL", show_envvar=True,
                                           help="debug, info, warning or error.")] = "warning",
    version: Annotated[bool, typer.Option("--version", "-V", is_eager=True, help="Print vibra's version and exit.")] = False,
) -> None:
    """Global options (before the command): logging, version."""
    if version:
        from vibra import __version__

        print(f"vibra {__version__}")
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        print(ctx.get_help())
        raise typer.Exit(2)
    try:
        output.setup_logging(log_format, log_level)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


_GROUPS = [["query"], ["threshold"], ["maintain"], ["forecast"], ["features"], ["defects"], ["label"], ["snapshot"]]


def main() -> None:
    """Console entry point: Typer handles usage errors (exit 2); an expected failure is one
    line on stderr and its exit code (1 bad input / failed work, 3 not ready)."""
    from vibra_pipelines.runs import ARGUMENTS

    ARGUMENTS.set(" ".join(sys.argv[1:]))
    try:
        app()
    except VibraError as exc:
        if "--json" in sys.argv[1:]:
            words = [a for a in sys.argv[1:] if not a.startswith("-")]
            output.emit_error(exc, exc.exit_code, " ".join(words[:2] if words[:1] in _GROUPS else words[:1]))
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
