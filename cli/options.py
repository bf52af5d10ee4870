"""What every command shares: the common options (``Annotated`` aliases) and the few steps each
command starts with (workspace and settings, ``--equipment`` ids, ``--since`` times).

Only typer and vibra's light modules are imported here, so that ``vibra --help`` stays fast."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

from vibra_cli import output

Home = Annotated[Optional[Path], typer.Option("--home", envvar="VIBRA_HOME", show_envvar=True,
                                              help="Workspace folder (default: nearest vibra.toml upward).")]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]
EquipmentIds = Annotated[Optional[list[str]], typer.Option("--equipment", metavar="ID[,ID...]",
                                                           help="Limit to these machines (repeat or comma-separate).")]
Since = Annotated[Optional[str], typer.Option(metavar="TIME", help="Only windows from this time on: ISO-8601 UTC "
                                              "(2026-11-28T14:00) or a duration ago (24h, 7d).")]
Model = Annotated[Optional[str], typer.Option("--model", help="iforest, hst or baseline (default: [anomaly] model).")]
Who = Annotated[Optional[str], typer.Option("--by", help="Who labels (default: the login name).")]
Note = Annotated[str, typer.Option("--note", help="Free text kept with the label.")]


def context(home: Optional[Path], overrides: dict | None = None):
    """The workspace and its validated settings. ``overrides`` (``{"section.key": value}``, None = not
    given) is the one way a command's options change a setting, so the run record holds what ran."""
    from vibra.settings import load_settings
    from vibra.workspace import find_workspace

    ws = find_workspace(home, None)
    settings = load_settings(ws.config_path, os.environ, overrides)
    if settings.lake.uri:  # the lake on object storage: this process's folders become its cache
        from vibra.storage import remote

        remote.configure(ws, settings)
    for warning in settings.warnings:  # stderr, so --json output stays parseable
        output.console(stderr=True).print(f"warning: {warning}", markup=False)
    return ws, settings


def machines(ws, settings, ids: list[str] | None) -> list[str] | None:
    """``--equipment`` as given (repeats and comma lists); every id must be a known machine."""
    if not ids:
        return None
    from vibra_pipelines.status import check_equipment

    return check_equipment(ws, settings, [part.strip() for value in ids for part in value.split(",") if part.strip()])


def nothing_yet(empty: bool, message: str) -> None:
    """One rule for every listing: when there is nothing to show because the step that makes it has not run
    (no recording ingested, no model, no clustering, no forecast), say which step in ``message`` and exit 3,
    "data not ready" (with --json, the error envelope). An answer that is empty on data that is there (a quiet
    plant's alarms, a filter that matches nothing) is an answer: exit 0."""
    if empty:
        from vibra.errors import NotReadyError

        raise NotReadyError(message)


def utc_window(since: Optional[str], until: Optional[str]) -> tuple[Optional[datetime], Optional[datetime]]:
    """``--since`` and ``--until`` as UTC datetimes; one error line when since is not before until."""
    start, end = utc(since), utc(until)
    if start is not None and end is not None and start >= end:
        from vibra.errors import InputError

        raise InputError(f"--since {since} ({start:%Y-%m-%dT%H:%M:%SZ}) is not before --until {until} "
                         f"({end:%Y-%m-%dT%H:%M:%SZ}); swap them")
    return start, end


def utc(value: Optional[str]) -> Optional[datetime]:
    """A --since/--until value (ISO-8601 or a duration ago) as an aware UTC datetime."""
    if value is None:
        return None
    from vibra.durations import parse_time

    return parse_time(value)
