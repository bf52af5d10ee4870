"""Training data: `vibra readiness`, `vibra snapshot ...` and the HTML `vibra report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vibra.errors import InputError

from vibra_cli import output
from vibra_cli.options import EquipmentIds, Home, Json, context, machines


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
    ws, settings = context(home)
    equipment = machines(ws, settings, equipment)
    report = readiness.run(ws, settings, equipment=equipment, fail_on=fail_on)
    if not report["equipment"]:
        # A gate never passes on nothing: no machine matched, so there is nothing to call ready.
        raise InputError("readiness: no machine has data yet; run `vibra ingest` first (a gate never passes on nothing)")
    output.emit(report, as_json, lambda: output.readiness_table(report, show_all))
    if report["failed"]:
        raise typer.Exit(3)


snapshot_app = typer.Typer(invoke_without_command=True)


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

    ws, settings = context(home)
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

    ws, _ = context(home)
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

    ws, _ = context(home)
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

    ws, _ = context(home)
    removed = snapshot.gc(ws, keep)
    output.emit({"removed": removed}, as_json, lambda: output.say(f"removed {len(removed)} old snapshot(s)"))


def report_cli(out: Annotated[Optional[Path], typer.Option("--out", help="Folder to write (default: reports/).")] = None,
               equipment: EquipmentIds = None,
               pdf: Annotated[bool, typer.Option("--pdf", help="Also print each page to PDF (headless Chromium).")] = False,
               home: Home = None, as_json: Json = False) -> None:
    """Render the static HTML report (fleet overview, a page per machine, clusters, readiness):
    self-contained, no scripts, no network; open index.html from disk.

    Example: vibra report --out /tmp/plant-report
    """
    from vibra_pipelines import report

    ws, settings = context(home)
    equipment = machines(ws, settings, equipment)
    result = report.run(ws, settings, out=out, equipment=equipment, pdf=pdf)
    output.emit(result.as_dict(), as_json, lambda: output.say(
        f"report of {result.machines} machine(s), {result.bytes_written / 1e6:.1f} MB: {result.index}"))
