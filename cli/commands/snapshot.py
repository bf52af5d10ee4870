"""`vibra snapshot ...`: freeze the training set, list, show and collect the snapshots."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from vibra_cli import output
from vibra_cli.options import Home, Json, context, nothing_yet


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
    nothing_yet(not rows, "no snapshots yet; run `vibra snapshot`")
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
