"""Housekeeping: `vibra doctor`, `migrate` and `vibra maintain gc | compact | retention`."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from vibra_cli import output
from vibra_cli.options import Home, Json, context


def doctor_cli(repair: Annotated[bool, typer.Option("--repair", help="Repair what can be repaired safely.")] = False,
               rebuild_log: Annotated[bool, typer.Option(
                   "--rebuild-log", help="With --repair: rebuild a damaged table log even where the repair has to "
                                         "guess (doctor says why first; nothing is deleted).")] = False,
               home: Home = None, as_json: Json = False) -> None:
    """Check that the lake and the ledger agree: damaged table logs, leftover temporary files, completed
    recordings without windows, orphan or duplicated windows, empty partitions, schema versions, dangling
    `latest` pointers. Each finding is explained; --repair fixes the safe ones (files are moved to
    data/.quarantine/, never deleted). Exit 1 while an error-level finding remains.

    Example: vibra doctor --repair --json
    """
    from vibra_pipelines import doctor

    ws, settings = context(home)
    report = doctor.check(ws, settings, repair=repair, rebuild_log=rebuild_log)
    output.emit(report, as_json, lambda: output.doctor_table(report))
    if not report["ok"]:
        raise typer.Exit(1)


def migrate_cli(home: Home = None, as_json: Json = False) -> None:
    """Bring the catalog's schema, the lake's tables (Delta Lake) and the artifacts' pointers to this vibra's
    version (the catalog's is also done on every open; idempotent).

    Example: vibra migrate
    """
    from vibra.storage import artifacts, ledger, tables

    ws, _ = context(home)
    before, after = ledger.migrate(ws)
    converted = tables.convert_lake(ws.lake)
    rewritten = artifacts.migrate(ws.artifacts)
    payload = {"from": before, "to": after, "lake_tables_converted": converted, "artifacts_rewritten": rewritten}
    output.emit(payload, as_json, lambda: output.say(
        (f"catalog schema version {before} → {after}" if before != after else f"catalog schema is current ({after})")
        + "".join(f"\nlake table {t}: {n} file(s) adopted by its new Delta log" for t, n in converted.items())
        + (f"\n{len(rewritten)} artifact pointer(s) or folder(s) moved to the current layout" if rewritten else "")))


maintain_app = typer.Typer(help="Housekeeping. Example: vibra maintain gc --keep 3", no_args_is_help=True)


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

    ws, settings = context(home)
    removed = maintain.gc(ws, settings, keep)
    output.emit({"removed": removed}, as_json, lambda: output.say(
        "removed " + ", ".join(f"{len(v)} {k}" for k, v in removed.items()) + " old version(s)"))


@maintain_app.command("compact")
def compact_cli(table: Annotated[Optional[list[str]], typer.Option("--table", metavar="TABLE", help="Table(s) to compact "
                                                                  "(default: all but raw).")] = None,
                min_files: Annotated[int, typer.Option("--min-files", min=2, help="Compact partitions holding at "
                                                       "least N files.")] = 2,
                home: Home = None, as_json: Json = False) -> None:
    """Merge each partition's small Parquet files with Delta Lake's optimize, one commit per partition
    (readers see the old files or the merged one, never both, never neither).

    Example: vibra maintain compact --table features --min-files 8
    """
    from vibra_pipelines import maintain

    ws, settings = context(home)
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

    ws, settings = context(home)
    out = maintain.retention(ws, settings, table, older_than, dry_run=dry_run)
    output.emit(out, as_json, lambda: output.say(
        f"{'would drop' if dry_run else 'dropped'} {len(out['dates'])} date partition(s) of {table} before "
        f"{out['cutoff_date']}: {out['files']} file(s), {out['bytes'] / 1e6:.1f} MB"
        + (f"; {out['recordings_expired']} recording(s) marked expired" if not dry_run and table == "features" else "")))
