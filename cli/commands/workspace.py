"""Workspace commands: `vibra init`, `synth`, `demo`, `status`, `files`, `runs`."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer

from vibra_cli import output
from vibra_cli.options import EquipmentIds, Home, Json, context, machines, nothing_yet


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


def synth_cli(
    out: Annotated[Path, typer.Option("--out", metavar="FOLDER", help="Folder to write the export into (an "
                                      "option, as `vibra report --out`: `vibra synth` takes no subcommand).")],
    equipment: Annotated[int, typer.Option("--equipment", "-n", min=1, max=500, help="Number of machines.")] = 4,
    days: Annotated[float, typer.Option(min=0.01, max=3650, help="Days of recordings.")] = 2.0,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 0,
    sample_rate_hz: Annotated[float, typer.Option("--sample-rate", min=1000, max=200_000, help="Hz.")] = 12_800.0,
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
    (existing sections are kept), so `vibra ingest FOLDER` works next.

    Example: vibra synth --out export --equipment 6 --days 14 --seed 1 && vibra ingest export
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
                           sample_rate_hz=sample_rate_hz, recordings_per_hour=recordings_per_hour, seconds=seconds,
                           sensor_faults=not no_sensor_faults, workspace=ws, n_past_lives=past_lives,
                           progress=lambda done, total: tick(done, total))
    output.emit(result.as_dict(), as_json, lambda: output.synth_summary(result))


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


def status_cli(equipment: EquipmentIds = None, home: Home = None, as_json: Json = False) -> None:
    """Ledger counts (files by status), windows in the lake, last recording time, per machine, and the
    files computed with other settings than today's (what changed; `vibra ingest` recomputes them).

    Example: vibra status --json
    """
    from vibra_pipelines import status

    ws, settings = context(home)
    equipment = machines(ws, settings, equipment)
    payload = status.run(ws, equipment, settings)
    output.emit(payload, as_json, lambda: output.status_table(payload))


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

    ws, settings = context(home)
    equipment = machines(ws, settings, equipment)
    payload = files_stage.run(ws, failed=failed, warnings=warnings, equipment=equipment, limit=limit)
    nothing_yet(not payload["files"] and not (failed or warnings or equipment),
                "no files yet; run `vibra ingest FOLDER` first")
    output.emit(payload, as_json, lambda: output.files_table(payload))


def runs_cli(limit: Annotated[int, typer.Option("--limit", min=1, help="Newest N runs.")] = 20,
             command: Annotated[Optional[str], typer.Option("--command", help="Only runs of this command.")] = None,
             home: Home = None, as_json: Json = False) -> None:
    """Run history: every command and flow with its arguments, start, end, status, counts and error.

    A run whose process was killed before it could close its row shows as "killed" (or, from
    another host and older than ingest.lock_timeout_s, "abandoned") with the reason in its error.

    Example: vibra runs --limit 5 --json
    """
    from vibra_pipelines import runs

    ws, settings = context(home)
    rows = runs.history(ws, limit, command, other_host_after_s=settings.ingest.lock_timeout_s)
    output.emit(rows, as_json, lambda: output.rows_table(rows, "runs", ["started_at", "command", "arguments", "status",
                                                                        "seconds", "counts", "error"]))
