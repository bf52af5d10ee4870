"""Labels: `vibra label cluster | recording | import | list | remove | failure | import-events`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vibra_cli import output
from vibra_cli.options import Home, Json, Note, Who, context, nothing_yet


AllowOutside = Annotated[bool, typer.Option("--allow-outside-data", help="Accept an event time outside the machine's "
                                            "recorded data (more than 7 days before its first or after its last "
                                            "recording).")]


label_app = typer.Typer(help="Label clusters, recordings or time ranges with a defect. "
                             "Example: vibra label cluster 3 bearing_outer_race", no_args_is_help=True)


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

    ws, settings = context(home)
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

    ws, settings = context(home)
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

    ws, settings = context(home)
    payload = defects.label_import(ws, settings, file, who=by, progress=output.stages(as_json))
    for warning in payload["warnings"]:
        output.say_err(f"warning: {warning}")
    _label_done(payload, as_json, f"imported {payload['imported']} label(s) from {file}")


@label_app.command("list")
def label_list_cli(home: Home = None, as_json: Json = False) -> None:
    """Every label with its provenance (kind, source, who, when) and, for ranges and events, its times (UTC).

    Example: vibra label list --json
    """
    from vibra_pipelines import defects

    ws, _ = context(home)
    rows = defects.list_labels(ws)
    nothing_yet(not rows, "no labels yet; label a cluster, a recording or a failure (vibra label --help)")
    output.emit(rows, as_json, lambda: output.rows_table(rows, "labels", [
        "label_id", "kind", "defect", "equipment_id", "start_at", "end_at", "recording_id", "cluster_id", "n_windows",
        "source", "created_by", "created_at", "note"]))


@label_app.command("remove")
def label_remove_cli(label_id: Annotated[str, typer.Argument(metavar="LABEL_ID", help="Label id (or its first 6+ "
                                                             "characters) from `vibra label list`.")],
                     home: Home = None, as_json: Json = False) -> None:
    """Remove one label: a defect label (the kNN's retrain rule then applies, as when adding one) or a
    failure / replacement event.

    Example: vibra label remove 3f9c2a1b7d4e
    """
    from vibra_pipelines import defects

    ws, settings = context(home)
    payload = defects.remove_label(ws, settings, label_id, progress=output.stages(as_json))
    _label_done(payload, as_json, f"label {payload['label_id']} ({payload['kind']}"
                                  f"{', ' + payload['defect'] if payload.get('defect') else ''}) removed")


@label_app.command("failure")
def label_failure_cli(equipment_id: Annotated[str, typer.Argument(metavar="EQUIPMENT_ID", help="Machine id.")],
                      at: Annotated[str, typer.Option("--at", help="When, ISO 8601 (e.g. 2026-03-01T06:00:00Z).")],
                      kind: Annotated[str, typer.Option("--kind", help="failure, or replacement (the bearing or "
                                                        "machine was replaced; starts a new life).")] = "failure",
                      by: Who = None, note: Note = "", allow_outside_data: AllowOutside = False, home: Home = None,
                      as_json: Json = False) -> None:
    """Record a failure (or a replacement) of a machine: the run-to-failure histories `vibra rul` learns from.
    A life runs from the install or last replacement (or first data) to the failure. The time is stored in
    UTC (+05:00 is converted) and must lie within the machine's data (7 days either side) unless
    --allow-outside-data.

    Example: vibra label failure pump-02 --at 2026-03-01T06:00:00Z --note "outer race spalled"
    """
    from vibra_pipelines import defects

    ws, settings = context(home)
    payload = defects.label_event(ws, settings, equipment_id, at, kind=kind, note=note, who=by,
                                  allow_outside_data=allow_outside_data)
    output.emit(payload, as_json, lambda: output.say(f"{equipment_id}: {kind} at {payload['start_at']} recorded"))


@label_app.command("import-events")
def label_import_events_cli(file: Annotated[Path, typer.Argument(metavar="FILE", help="CSV: equipment_id,at,kind[,note].")],
                            by: Who = None, allow_outside_data: AllowOutside = False, home: Home = None,
                            as_json: Json = False) -> None:
    """Import failure / replacement events from a maintenance-log CSV (kind = failure or replacement).
    One bad row refuses the file, naming the line; events already recorded are skipped.

    Example: vibra label import-events maintenance_events.csv
    """
    from vibra_pipelines import defects

    ws, settings = context(home)
    payload = defects.import_events(ws, settings, file, who=by, allow_outside_data=allow_outside_data)
    for warning in payload["warnings"]:  # stderr, so --json output stays parseable
        output.say_err(f"warning: {warning}")
    output.emit(payload, as_json, lambda: output.say(
        f"imported {payload['imported']} event(s) from {file} ({payload['already_recorded']} already recorded)"))
