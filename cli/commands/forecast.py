"""Looking ahead: `vibra forecast` (and `forecast show`)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from vibra_cli import output
from vibra_cli.options import EquipmentIds, Home, Json, context, machines


forecast_app = typer.Typer(invoke_without_command=True)


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
    from vibra.prognostics.forecast import LEVELS

    from vibra_pipelines import forecast

    ws, settings = context(home, {"forecast.min_points": min_points,
                                   "forecast.horizon_h": parse_duration(horizon) / 3600 if horizon else None,
                                   "forecast.freq_s": parse_duration(freq) if freq else None})
    equipment = machines(ws, settings, equipment)
    levels = tuple(sorted({80, *(level or LEVELS)}))  # the 80 % band gives the P10 / P90 crossing times
    with output.bar("forecast", as_json) as tick:
        result = forecast.run(ws, settings, equipment=equipment, indicators=indicator, levels=levels, force=force,
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

    ws, settings = context(home)
    machines(ws, settings, [equipment_id])
    payload = forecast.show(ws, equipment_id, channel=channel, indicator=indicator)
    output.emit(payload, as_json, lambda: output.forecast_show(payload))
