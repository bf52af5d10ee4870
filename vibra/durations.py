"""Durations and points in time as people type them: ``72h``, ``10min``, ``7d``, ``2w``, or ISO-8601."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from vibra.errors import InputError

_UNITS = {"s": 1, "min": 60, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """``72h``, ``10min``, ``30s``, ``2d``, ``1w`` → seconds (> 0)."""
    value = text.strip()
    for suffix in ("min", "s", "m", "h", "d", "w"):
        if value.endswith(suffix):
            try:
                number = float(value[: -len(suffix)])
            except ValueError:
                break
            if number > 0 and math.isfinite(number):
                return number * _UNITS[suffix]
    raise InputError(f"duration {text!r}: use a number and a unit, e.g. 72h, 10min, 7d, 2w")


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """A UTC point in time: ISO-8601 (``2026-11-28``, ``2026-11-28T14:00``, naive = UTC) or a
    duration meaning that long before ``now`` (``24h`` → 24 hours ago)."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            seconds = parse_duration(value)
        except InputError:
            raise InputError(f"time {text!r}: use ISO-8601 (2026-11-28T14:00) or a duration ago (24h, 7d)") from None
        return (now or datetime.now(timezone.utc)) - timedelta(seconds=seconds)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
