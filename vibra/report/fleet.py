"""The fleet table: one row per machine answering which / why / by when, worst first, what changed
since the previous report, and the same rows as CSV."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from vibra.physics.limits import hours_text

ZONE_RANK = {"D": 3, "C": 2, "B": 1, "A": 0, None: -1}
STATE_RANK = {"danger": 2, "alert": 1, "normal": 0, None: -1}
# fleet.csv, for a spreadsheet or a script: a number per numeric cell with its unit in the header (``_s`` whole
# seconds, ``_mm_s`` mm/s; ``next_level_value`` in the unit its indicator's name carries), the words in text
# columns beside them (``next_limit_text``, ``rul_text``, ``evidence``, ``zone_assumed``)
CSV_COLUMNS = ("equipment_id", "label", "zone", "zone_since", "zone_assumed", "velocity_mm_s", "state", "alarm",
               "alarm_since", "verdict", "evidence", "next_level", "next_level_indicator", "next_level_value",
               "next_level_channel", "next_limit_text", "ttt_state", "ttt_p50_s", "ttt_p10_s", "ttt_p90_s",
               "crossing_probability", "rul_state", "rul_text", "rul_planning_s", "rul_p50_s", "rul_p10_s", "rul_p90_s",
               "rul_prior_p10_s", "rul_prior_p90_s", "onset_at", "first_alarm_at", "defect", "last_data", "data_age_s",
               "excluded_recordings", "changes")
_SECONDS = frozenset(c for c in CSV_COLUMNS if c.endswith("_s") and not c.endswith("_mm_s"))


def _seconds(hours: float | None) -> float | None:
    return None if hours is None else hours * 3600.0


# the CSV columns that are not a row key of the same name (the page keeps hours and its own words)
_CSV_FROM_ROW = {"velocity_mm_s": lambda r: r.get("value"), "next_limit_text": lambda r: r.get("next_limit"),
                 "ttt_p50_s": lambda r: _seconds(r.get("ttt_p50_h")), "ttt_p10_s": lambda r: _seconds(r.get("ttt_p10_h")),
                 "ttt_p90_s": lambda r: _seconds(r.get("ttt_p90_h")), "data_age_s": lambda r: _seconds(r.get("data_age_h"))}


def worst_first(row: dict) -> tuple:
    """Active alarm, then danger/alert state, then ISO zone, then the soonest next-limit crossing."""
    p50 = row.get("ttt_p50_h")
    return (row["alarm"] != "alarm", -STATE_RANK[row.get("state")], -ZONE_RANK[row.get("zone")],
            p50 if p50 is not None else float("inf"), row["equipment_id"])


def status_text(row: dict) -> str:
    """``in D since 11-28 14:00; danger 11.2 mm/s in 19 h (9–40 h)``."""
    parts = []
    if row.get("zone"):
        since = row.get("zone_since")
        parts.append(f"in {row['zone']}" + (f" since {since[5:16].replace('T', ' ')}" if since else ""))
    if row.get("next_limit"):
        parts.append(row["next_limit"])
    elif row.get("state") == "danger":
        parts.append("beyond danger")
    return "; ".join(parts)


def changes(row: dict, before: dict | None) -> list[str]:
    """What changed since the previous report for one machine: new alarm, zone change, new defect or verdict."""
    if before is None:
        return ["new in the report"]
    out = []
    if row["alarm"] == "alarm" and before.get("alarm") != "alarm":
        out.append("new alarm")
    elif row["alarm"] != "alarm" and before.get("alarm") == "alarm":
        out.append("alarm cleared")
    if row.get("zone") != before.get("zone") and row.get("zone"):
        out.append(f"zone {before.get('zone') or '—'} → {row['zone']}")
    if row.get("state") != before.get("state") and row.get("state") in ("alert", "danger"):
        out.append(f"now {row['state']}")
    if row.get("verdict") in ("outer_race", "inner_race", "ball") and row.get("verdict") != before.get("verdict"):
        out.append(f"new verdict: {row['verdict'].replace('_', ' ')}")
    if row.get("defect") and row.get("defect") != before.get("defect"):
        out.append(f"new defect: {row['defect']}")
    return out


def age_hours(last: str | None, now: datetime) -> float | None:
    if not last:
        return None
    return max(0.0, (now - datetime.fromisoformat(last)).total_seconds() / 3600.0)


def age_text(hours: float | None) -> str:
    """A data age: ``40 min``, ``5 h``, whole days from two days on."""
    return hours_text(hours, days_from_h=48.0, day_digits=0)


def to_csv(rows: list[dict]) -> str:
    """The fleet table as CSV (one row per machine, ``CSV_COLUMNS``), for a spreadsheet."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        values = []
        for c in CSV_COLUMNS:
            v = _CSV_FROM_ROW[c](r) if c in _CSV_FROM_ROW else r.get(c)
            # seconds stay whole numbers a spreadsheet sums (``:.4g`` would write 1.234e+04)
            text = ("; ".join(v) if isinstance(v, list) else "" if v is None
                    else str(round(v)) if c in _SECONDS and isinstance(v, (int, float))
                    else f"{v:.4g}" if isinstance(v, float) else str(v))
            # a spreadsheet runs a cell starting with = + - @ as a formula: a label is data, never code
            values.append("'" + text if text[:1] in ("=", "+", "-", "@") and not _number(text) else text)
        writer.writerow(values)
    return buf.getvalue()


def _number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def memory(rows: list[dict]) -> dict:
    """What the next report compares against (kept as ``fleet.json`` beside the pages)."""
    keep = ("alarm", "zone", "state", "verdict", "defect")
    return {r["equipment_id"]: {k: r.get(k) for k in keep} for r in rows}
