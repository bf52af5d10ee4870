"""`vibra report`: the HTML fleet report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vibra_cli import output
from vibra_cli.options import EquipmentIds, Home, Json, context, machines


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
    with output.bar("report", as_json) as tick:
        result = report.run(ws, settings, out=out, equipment=equipment, pdf=pdf, progress=tick)
    output.emit(result.as_dict(), as_json, lambda: output.say(
        f"report of {result.machines} machine(s), {result.bytes_written / 1e6:.1f} MB: {result.index}"))
