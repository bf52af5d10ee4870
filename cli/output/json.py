"""The one JSON contract of ``--json``: an object with ``schema_version``, ``command`` and named lists,
times as ISO-8601 UTC to the second; errors as ``{"error": {...}}``."""

from __future__ import annotations

import json
import re
import sys
from datetime import date, datetime, timezone
from typing import Any, Callable

SCHEMA_VERSION = 1


# A command whose result is a list names it under this key (everything else: "items").
LIST_KEYS = {"query recent": "points", "anomalies": "episodes", "runs": "runs", "defects list": "defects",
             "defects assignments": "assignments", "label list": "labels", "snapshot list": "snapshots"}


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


def utc_second(value: datetime | str) -> str:
    """A time as the JSON contract writes it: ISO-8601 UTC to the second, ``Z`` suffix (naive = UTC)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc_second(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _normalise(value: Any) -> Any:
    """Timestamps anywhere in a payload, as objects or as the pipelines' ISO strings, to one format."""
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO.match(value)):
        try:
            return utc_second(value)
        except ValueError:
            return value
    return value


def command_name() -> str:
    """The running command as typed after ``vibra`` (``query recent``), from Click's context."""
    try:  # Typer ≥ 0.22 carries its own copy of Click; older ones use Click itself
        from typer._click.globals import get_current_context
    except ImportError:
        from click import get_current_context

    ctx = get_current_context(silent=True)
    return " ".join(ctx.command_path.split()[1:]) if ctx is not None else ""


# Per-machine data the pipelines keep as a dict keyed by machine, per command: key -> (key in the
# JSON, name of a plain value). The contract lists it as objects carrying ``equipment_id``.
PER_MACHINE = {"readiness": {"equipment": ("equipment", "status")},
               "detect": {"per_equipment": ("equipment", None)},
               "train": {"skipped": ("skipped", "reason")}}


def machine_list(by_machine: dict, value_name: str | None) -> list[dict]:
    """``{"pump-02": x}`` as ``[{"equipment_id": "pump-02", ...x}]`` (``x`` a dict) or
    ``[{"equipment_id": "pump-02", value_name: x}]``, in machine order."""
    return [{"equipment_id": eid, **value} if isinstance(value, dict) and value_name is None
            else {"equipment_id": eid, value_name or "value": value} for eid, value in sorted(by_machine.items())]


def envelope(payload: Any, command: str | None = None) -> dict:
    """The one JSON contract: an object with ``schema_version``, ``command`` and named lists
    (per-machine data as a list of objects with ``equipment_id``)."""
    command = command_name() if command is None else command
    if not isinstance(payload, dict):
        payload = {LIST_KEYS.get(command, "items"): payload}
    listed = PER_MACHINE.get(command, {})
    body = {}
    for key, value in payload.items():
        if key in ("schema_version", "command"):
            continue
        if key in listed and isinstance(value, dict):
            name, value_name = listed[key]
            body[name] = machine_list(value, value_name)
        else:
            body[key] = value
    return {"schema_version": SCHEMA_VERSION, "command": command, **body}


def emit(payload: Any, as_json: bool, human: Callable[[], None]) -> None:
    """``payload`` (a stage's result — its ``as_dict()`` is the JSON — or a plain dict or list) as the JSON
    contract with ``--json``, else ``human()``."""
    if hasattr(payload, "as_dict"):
        payload = payload.as_dict()
    if as_json:
        sys.stdout.write(json.dumps(_normalise(envelope(payload)), indent=2, default=json_default) + "\n")
    else:
        human()


def emit_error(exc: Exception, exit_code: int, command: str) -> None:
    """An error under ``--json``: ``{"error": {...}}`` on stdout (the same exit code follows)."""
    payload = envelope({"error": {"type": type(exc).__name__, "message": str(exc), "exit_code": exit_code}}, command)
    sys.stdout.write(json.dumps(payload, indent=2, default=json_default) + "\n")
