"""Getting recordings in: `vibra ingest`, `diagnose` and `vibra features rebuild`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vibra_cli import output
from vibra_cli.options import EquipmentIds, Home, Json, context, machines, nothing_yet


def ingest_cli(
    source: Annotated[Path, typer.Argument(metavar="SOURCE", help="Export folder: one subfolder per machine.")],
    workers: Annotated[Optional[int], typer.Option(help="Worker processes; 0 = auto (the cores, for runs of 100+ "
                                                   "files), 1 = this process [ingest].")] = None,
    max_concurrent_files: Annotated[Optional[int], typer.Option(help="Files processed at once by threads of one "
                                                                "process [ingest].")] = None,
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

    Example: vibra ingest /mnt/plant-export --workers 4 --json
    """
    from vibra_pipelines import ingest

    ws, settings = context(home, {"ingest.workers": workers, "ingest.max_concurrent_files": max_concurrent_files,
                                   "features.frame_length": frame_length, "features.hop_length": hop_length,
                                   "ingest.keep_raw": keep_raw})
    with output.ingest_progress(as_json) as progress:
        result = ingest.run(ws, settings, source, include_expired=include_expired, retry_failed=retry_failed,
                            progress=progress)
    output.emit(result.as_dict(), as_json, lambda: output.ingest_summary(result))
    if result.failed:
        raise typer.Exit(1)


def diagnose_cli(equipment: EquipmentIds = None, home: Home = None, as_json: Json = False) -> None:
    """Bearing-fault verdict per recording (outer_race, inner_race, ball, no_fault_evidence, ambiguous or
    not_diagnosable) with its evidence, from the recording-level envelope evidence ingest stored.

    Example: vibra diagnose --equipment pump-02 --json
    """
    from vibra_pipelines import diagnose

    ws, settings = context(home)
    equipment = machines(ws, settings, equipment)
    result = diagnose.run(ws, settings, equipment=equipment)
    nothing_yet(not result.recordings, "no evidence yet: ingest recordings of machines with rpm and bearing "
                                       "geometry (vibra ingest)")
    output.emit(result.as_dict(), as_json, lambda: output.diagnose_table(result))


features_app = typer.Typer(help="The features table. Example: vibra features rebuild --equipment pump-02",
                           no_args_is_help=True)


@features_app.command("rebuild")
def rebuild_cli(equipment: EquipmentIds = None, home: Home = None, as_json: Json = False) -> None:
    """Recompute the features (and hourly) tables with the current settings, from the kept raw
    waveforms (`[ingest] keep_raw`) or else the recorded source files; the rebuilt partitions replace the old
    ones in one commit. Exit 1 when some recording could not be rebuilt (its old rows are kept).

    Example: vibra features rebuild --equipment pump-02 --json
    """
    from vibra_pipelines import features

    ws, settings = context(home)
    equipment = machines(ws, settings, equipment)
    with output.ingest_progress(as_json) as progress:
        result = features.rebuild(ws, settings, equipment, progress=progress)
    output.emit(result.as_dict(), as_json, lambda: output.rebuild_summary(result))
    if result.kept_stale:
        raise typer.Exit(1)
