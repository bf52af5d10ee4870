"""`vibra readiness`: is the data fit to train on (the gate a CI job runs)."""

from __future__ import annotations

from typing import Annotated

import typer


from vibra_cli import output
from vibra_cli.options import EquipmentIds, Home, Json, context, machines, nothing_yet


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
    # A gate never passes on nothing: no machine matched, so there is nothing to call ready.
    nothing_yet(not report["equipment"], "readiness: no machine has data yet; run `vibra ingest` first (a gate "
                                         "never passes on nothing)")
    output.emit(report, as_json, lambda: output.readiness_table(report, show_all))
    if report["failed"]:
        raise typer.Exit(3)
