"""Anomaly models: `vibra train`, `detect`, `anomalies`, the alarm list `vibra alarms` and `vibra threshold set`."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from vibra_cli import output
from vibra_cli.options import EquipmentIds, Home, Json, Model, Since, context, machines, nothing_yet, utc, utc_window


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

    The baseline is --baseline-days from the machine's first window (or from the recording chosen with
    `vibra baseline set`), cut to the first
    [anomaly] baseline_max_share of its data when longer (said on stderr); a machine with fewer
    than [anomaly] baseline_min_windows baseline windows is skipped with the reason. --since/--until
    choose the period yourself (never cut).

    Example: vibra train --model all --baseline-days 3
    """
    from vibra_pipelines import anomaly

    ws, settings = context(home, {"anomaly.baseline_days": baseline_days})
    equipment = machines(ws, settings, equipment)
    models = None if model == "all" else [model]  # None: every family, the pipeline's default
    start, end = utc_window(since, until)
    with output.bar("train", as_json) as tick:
        result = anomaly.train(ws, settings, models=models, equipment=equipment, since=start,
                               until=end, fleet=fleet, progress=tick)
    output.emit(result.as_dict(), as_json, lambda: output.train_summary(result))
    if not result.models:
        raise typer.Exit(3)


def detect_cli(equipment: EquipmentIds = None, model: Model = None, since: Since = None,
               update: Annotated[bool, typer.Option("--update", help="Half-Space Trees keep learning online.")] = False,
               home: Home = None, as_json: Json = False) -> None:
    """Score the windows the current model versions have not scored yet; writes data/lake/scores.

    Example: vibra detect --update
    """
    from vibra_pipelines import anomaly

    ws, settings = context(home)
    equipment = machines(ws, settings, equipment)
    with output.bar("detect", as_json) as tick:
        result = anomaly.detect(ws, settings, equipment=equipment, models=[model] if model else None,
                                since=utc(since), update=update, progress=tick)
    output.emit(result.as_dict(), as_json, lambda: output.detect_summary(result))


def anomalies_cli(equipment: EquipmentIds = None, model: Model = None, since: Since = None,
                  home: Home = None, as_json: Json = False) -> None:
    """Alarm episodes (k of the last m windows over threshold) with the indicators that stand out.

    Example: vibra anomalies --equipment pump-02 --json
    """
    from vibra.report.summaries import has_scores

    from vibra_pipelines import anomaly

    ws, settings = context(home, {"anomaly.model": model})
    equipment = machines(ws, settings, equipment)
    episodes = anomaly.episodes(ws, settings, equipment=equipment, since=utc(since))
    nothing_yet(not episodes and not has_scores(ws, equipment),
                "no anomaly scores yet; run `vibra train` then `vibra detect`")
    output.emit(episodes, as_json, lambda: output.episodes_table(episodes))


def alarms_cli(equipment: EquipmentIds = None,
               state: Annotated[Optional[list[str]], typer.Option("--state", metavar="STATE",
                                                                  help="new, acknowledged or cleared (repeat).")] = None,
               ack: Annotated[Optional[str], typer.Option("--ack", metavar="ALARM_ID",
                                                          help="Acknowledge this alarm (with --by).")] = None,
               by: Annotated[Optional[str], typer.Option("--by", help="Who acknowledges (default: the login "
                                                         "name).")] = None,
               home: Home = None, as_json: Json = False) -> None:
    """The alarm list: every alarm episode with its machine, channel, level, since when and state (new,
    acknowledged, cleared) and who acknowledged it when; kept in the catalog.

    Example: vibra alarms --state new && vibra alarms --ack 3f2a9c1b7d4e --by ana
    """
    import getpass

    from vibra.errors import InputError
    from vibra.report.summaries import has_scores
    from vibra_pipelines import alarms

    for s in state or []:
        if s not in ("new", "acknowledged", "cleared"):
            raise InputError(f"--state {s!r}: choose new, acknowledged or cleared")
    ws, settings = context(home)
    equipment = machines(ws, settings, equipment)
    result = alarms.run(ws, settings, equipment=equipment, states=state, ack=ack,
                        by=(by or getpass.getuser()) if ack else None)
    nothing_yet(not result.alarms and not has_scores(ws, equipment),
                "no anomaly scores yet; run `vibra train` then `vibra detect`")
    output.emit(result, as_json, lambda: output.alarms_table(result))


threshold_app = typer.Typer(help="Anomaly thresholds. Example: vibra threshold set pump-02 --quantile 0.99",
                            no_args_is_help=True)


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

    ws, settings = context(home, {"anomaly.model": model})
    machines(ws, settings, [equipment_id])
    manifest = anomaly.set_threshold(ws, settings, equipment_id, model=settings.anomaly.model, quantile=quantile,
                                     value=value, z=z)
    payload = {k: manifest[k] for k in ("model_type", "version", "previous_version", "threshold", "threshold_rule",
                                        "weights_version")}
    output.emit(payload, as_json, lambda: output.say(
        f"{equipment_id}: {payload['model_type']} threshold {payload['threshold']:.4g} ({payload['threshold_rule']}) "
        f"as version {payload['version']}"))


baseline_app = typer.Typer(help="The recording each machine's anomaly baseline starts at. Example: vibra baseline set "
                                "pump-02", no_args_is_help=True)


@baseline_app.command("set")
def baseline_set_cli(equipment_id: Annotated[str, typer.Argument(metavar="EQUIPMENT_ID", help="Machine id.")],
                     recording: Annotated[Optional[str], typer.Option("--recording", metavar="FILE_OR_ID", help=(
                         "Its source file name or recording id (default: the first healthy recording of its current "
                         "life)."))] = None,
                     by: Annotated[Optional[str], typer.Option("--by", help="Who chooses (default: the login "
                                                               "name).")] = None,
                     home: Home = None, as_json: Json = False) -> None:
    """Choose the recording the machine's anomaly baseline period starts at; `vibra train` then counts
    [anomaly] baseline_days from it instead of the machine's first window (which may be of an earlier life,
    before a replacement, or a sensor fault). Default: the first recording at or after its last failure or
    replacement with no sensor fault. Retrain after setting it.

    Example: vibra baseline set pump-02 --recording 2026-01-05T13-20-00.csv && vibra train --equipment pump-02
    """
    import getpass

    from vibra_pipelines import baseline

    ws, settings = context(home)
    machines(ws, settings, [equipment_id])
    chosen = baseline.set_reference(ws, settings, equipment_id, recording=recording, by=by or getpass.getuser())
    output.emit(chosen, as_json, lambda: output.say(
        f"{equipment_id}: baseline from {chosen['source_path'].replace(chr(92), '/').rsplit('/', 1)[-1]} "
        f"({chosen['recording_id'][:12]}, {chosen['start']}; {chosen['rule']}); run `vibra train --equipment "
        f"{equipment_id}` to use it"))
