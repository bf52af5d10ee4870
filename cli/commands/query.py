"""Reading the lake: `vibra query recent` and `vibra sql`."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from vibra.errors import VibraError

from vibra_cli import output
from vibra_cli.options import EquipmentIds, Home, Json, Since, context, machines, utc


query_app = typer.Typer(help="Read the lake. Example: vibra query recent --equipment pump-02 --indicator rms --json",
                        no_args_is_help=True)


@query_app.command("recent")
def recent_cli(
    equipment_id: Annotated[Optional[str], typer.Argument(metavar="[EQUIPMENT_ID]", help="Machine id (or "
                                                          "--equipment, as every other command).")] = None,
    equipment: EquipmentIds = None,
    channel: Annotated[Optional[str], typer.Option(help="Only this channel.")] = None,
    indicator: Annotated[str, typer.Option(help="Indicator with hourly aggregates.")] = "rms",
    limit: Annotated[int, typer.Option(min=1, help="Points to return (capped by [query] max_points).")] = 24,
    since: Since = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """The latest hourly points of one machine, newest first (reads only the newest partitions).

    Example: vibra query recent --equipment pump-02 --channel x --indicator kurtosis --since 2d --json
    """
    from vibra.errors import InputError
    from vibra_pipelines import query

    ws, settings = context(home)
    chosen = machines(ws, settings, ([equipment_id] if equipment_id else []) + (equipment or [])) or []
    if len(chosen) != 1:
        raise InputError("choose one machine: vibra query recent --equipment ID")
    equipment_id = chosen[0]
    frame = query.recent(ws, settings, equipment_id, channel=channel, indicator=indicator, limit=limit,
                         since=utc(since))
    output.emit(output.frame_records(frame), as_json, lambda: output.frame_table(frame, f"{equipment_id}: {indicator}"))


TABLE_ROWS = 1000  # rows a terminal table shows when --max-rows is not given (--csv and --json print every row)


def sql_cli(
    query: Annotated[Optional[str], typer.Argument(metavar="QUERY", help="One SQL statement; omit it for an interactive prompt.")] = None,
    max_rows: Annotated[Optional[int], typer.Option("--max-rows", min=1, help="Print at most this many rows (default: "
                                                    f"every row with --csv/--json, {TABLE_ROWS} in a table); a cut "
                                                    "answer says so.")] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Query the lake with DuckDB, read-only: a view per lake table (features, hourly, scores, forecasts,
    clusters, defects, ...) and the ledger (recordings, runs). One SELECT, WITH, DESCRIBE, SHOW or EXPLAIN
    per call; no file access; [sql] timeout_s and memory_limit_mb bound it.

    Example: vibra sql "SELECT equipment_id, count(*) AS windows FROM features GROUP BY 1"
    """
    from vibra_pipelines import sql

    ws, settings = context(home)
    limit = max_rows if max_rows is not None or as_csv or as_json else TABLE_ROWS

    def answer(statement: str) -> None:
        result = sql.run(ws, settings, statement, max_rows=limit)
        output.sql_result(result, as_json=as_json, as_csv=as_csv)
        if result.truncated:
            output.say_err(f"note: the answer was cut at {limit} row(s) (--max-rows); more rows match")

    if query is not None:
        answer(query)
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
            con, views = sql.connect(ws, settings)
            con.close()
            output.say(", ".join(views) or "no tables yet")
            continue
        buffer = f"{buffer}\n{line}" if buffer else line
        if buffer.strip() and (buffer.rstrip().endswith(";") or "\n" not in buffer and not line.rstrip().endswith(",")):
            try:
                answer(buffer.strip().rstrip(";"))
            except VibraError as exc:
                output.say_err(f"error: {exc}")
            buffer = ""
