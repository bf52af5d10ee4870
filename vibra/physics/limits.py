"""Alert and danger (trip) levels per machine and indicator, and what comes next.

* Velocity RMS (mm/s): the machine's own ``alert_danger_mm_s`` if set; else from its ISO 20816-3
  zones (``iso_group`` + ``iso_support`` or ``alarm_limits_mm_s``; a machine with neither is zoned
  as group 2 flexible, :data:`DEFAULT_ISO`, and says so — its source names the assumption — rather
  than showing no zone: 13 mm/s is zone D in every group): **alert** at the B/C boundary
  (zone C: not for long-term operation) and **danger** at 1.25 × the C/D boundary (ISO 20816-3
  Annex: a TRIP value normally not above 1.25 × the upper limit of zone C).
* Any other indicator: from the machine's own baseline — alert = baseline p99 × ``ALERT_FACTOR``
  (the limit the forecasts have always used), danger = baseline p99 × ``DANGER_FACTOR``.

Time to limit is always measured to the **next** level not yet crossed: alert while below it,
then danger; a machine beyond danger has no next level.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from dataclasses import replace

from vibra.physics.indicators import IsoLimits, iso_limits
from vibra.settings import Equipment

TRIP_FACTOR = 1.25  # danger = this × the C/D boundary
ALERT_FACTOR = 2.0  # alert = baseline p99 × this
DANGER_FACTOR = 4.0  # danger = baseline p99 × this
MIN_BASELINE = 10   # finite baseline values needed for derived levels
VELOCITY = "velocity_rms_mm_s"
# the class assumed for a machine without one: group 2 (15–300 kW, most pumps, fans and motors), flexible support
# (the more lenient of group 2's two: an assumption should not raise alarms a stated class would not)
DEFAULT_ISO = (2, "flexible")


@dataclass(frozen=True)
class Limits:
    """Alert and danger levels of one indicator, in its unit, and where they come from."""

    alert: float
    danger: float
    unit: str
    source: str

    def state(self, value: float | None) -> str | None:
        """``normal``, ``alert`` or ``danger`` for a value (None when it is missing)."""
        if value is None or not np.isfinite(value):
            return None
        return "danger" if value >= self.danger else "alert" if value >= self.alert else "normal"

    def next_level(self, value: float) -> tuple[str, float] | None:
        """The next level not yet crossed at ``value``: ``("alert", a)``, ``("danger", d)`` or None."""
        if value < self.alert:
            return "alert", self.alert
        if value < self.danger:
            return "danger", self.danger
        return None


def zones_for(equipment: Equipment) -> IsoLimits | None:
    """The machine's ISO 20816 zone boundaries: its own (``alarm_limits_mm_s``, or ``iso_group`` and
    ``iso_support``), else :data:`DEFAULT_ISO`'s, whose source says it was assumed."""
    own = iso_limits(equipment)
    if own is not None or equipment.alarm_limits_mm_s:
        return own
    group, support = DEFAULT_ISO
    assumed = iso_limits(replace(equipment, iso_group=equipment.iso_group or group,
                                 iso_support=equipment.iso_support or support))
    if assumed is None:  # an iso_group/iso_support pair the table does not hold: no zones claimed
        return None
    what = " and ".join(n for n, v in (("iso_group", equipment.iso_group), ("iso_support", equipment.iso_support))
                        if v is None)
    return replace(assumed, source=f"{assumed.source} (assumed: no {what} in [equipment.{equipment.equipment_id}])")


def assumed(zones: IsoLimits | None) -> bool:
    """Whether zone boundaries are the assumed default class (:func:`zones_for`), not the machine's own."""
    return zones is not None and "(assumed:" in zones.source


def velocity_limits(equipment: Equipment, at_failure: dict[str, float] | None = None) -> Limits | None:
    """Velocity alert/danger for a machine: its own levels; else from its zones (assumed ones included),
    lowered to what past failures showed (``at_failure``, see :func:`learned_from_failures`)."""
    if equipment.alert_danger_mm_s:
        alert, danger = equipment.alert_danger_mm_s
        return Limits(alert, danger, "mm/s", f"[equipment.{equipment.equipment_id}] alert_danger_mm_s")
    zones = zones_for(equipment)
    default = None if zones is None else Limits(zones.bc, round(TRIP_FACTOR * zones.cd, 3), "mm/s",
                                                 f"B/C and {TRIP_FACTOR:g} × C/D boundary of {zones.source}")
    return learned_from_failures(default, at_failure or {})


FAILURE_MARGIN = 0.9  # learned danger = this × the lowest velocity at which a past life failed
MIN_FAILED_LIVES = 2  # failed lives with a velocity at failure needed before levels are learned from them


def learned_from_failures(default: Limits | None, at_failure: dict[str, float]) -> Limits | None:
    """Velocity levels lowered to what past failures showed: when at least :data:`MIN_FAILED_LIVES`
    lives (``at_failure``: life → velocity at failure, mm/s) failed, danger = :data:`FAILURE_MARGIN` ×
    the lowest of them if that is below the default danger (alert lowered in the same ratio); else
    the default, unchanged. Never raised: a class's danger level stays a ceiling."""
    values = {k: v for k, v in at_failure.items() if v is not None and np.isfinite(v) and v > 0}
    if len(values) < MIN_FAILED_LIVES:
        return default
    lowest_life = min(values, key=values.get)
    danger = round(FAILURE_MARGIN * values[lowest_life], 3)
    if default is not None and danger >= default.danger:
        return default
    alert = round(default.alert * danger / default.danger, 3) if default is not None else round(danger / 2, 3)
    was = f"; below the default {default.danger:.3g} mm/s of {default.source}" if default is not None else ""
    return Limits(alert, danger, "mm/s",
                  f"learned from {len(values)} failed lives: {FAILURE_MARGIN:g} × the lowest velocity at failure "
                  f"({values[lowest_life]:.3g} mm/s, {lowest_life}){was}")


def baseline_limits(baseline: np.ndarray, unit: str = "", what: str = "baseline") -> Limits | None:
    """Alert/danger from an indicator's baseline values (None when fewer than ``MIN_BASELINE`` are finite)."""
    finite = np.asarray(baseline, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.shape[0] < MIN_BASELINE:
        return None
    p99 = float(np.quantile(finite, 0.99))
    return Limits(p99 * ALERT_FACTOR, p99 * DANGER_FACTOR, unit,
                  f"{what} p99 {p99:.4g} × {ALERT_FACTOR:g} (alert) / × {DANGER_FACTOR:g} (danger)")


def limits_for(equipment: Equipment, indicator: str, baseline: np.ndarray, unit: str = "",
               what: str = "baseline", at_failure: dict[str, float] | None = None) -> Limits | None:
    """The levels of ``indicator`` on a machine: velocity from its class (and past failures), the rest
    from its baseline."""
    if indicator == VELOCITY:
        found = velocity_limits(equipment, at_failure)
        if found is not None:
            return found
    return baseline_limits(baseline, unit, what)


def target(equipment: Equipment, indicator: str, baseline: np.ndarray, value: float,
           what: str = "baseline", at_failure: dict[str, float] | None = None) -> tuple[float | None, str]:
    """The level a forecast of ``indicator`` is measured to from ``value`` (the series' last value): the
    next one not yet crossed (alert, then danger; danger itself once beyond it), and a line saying where
    it comes from. ``(None, why)`` without a class, own levels or a long enough baseline."""
    found = limits_for(equipment, indicator, baseline, what=what, at_failure=at_failure)
    if found is None:
        return None, "no limit: no ISO class or alert/danger levels and too short a baseline"
    nxt = found.next_level(value)
    if nxt is None:
        return found.danger, f"danger {found.danger:.4g} {found.unit} from {found.source} (already exceeded)".replace("  ", " ")
    return nxt[1], f"{nxt[0]} {nxt[1]:.4g} {found.unit} from {found.source}".replace("  ", " ")


def since(times: list[datetime], values: np.ndarray, level: float) -> datetime | None:
    """When the trailing run of values at or above ``level`` began (None if the last value is below)."""
    v = np.asarray(values, dtype=float)
    above = np.where(np.isfinite(v), v >= level, False)
    if v.shape[0] == 0 or not above[-1]:
        return None
    below = np.nonzero(~above)[0]
    return times[int(below[-1]) + 1] if below.shape[0] else times[0]


def hours_text(h: float | None, *, days_from_h: float = 72.0, day_digits: int = 1) -> str:
    """``19 h``, ``3.2 d``, ``25 min``: a duration as people read it (days from ``days_from_h`` hours)."""
    if h is None:
        return "—"
    if h < 1:
        return f"{h * 60:.0f} min"
    return f"{h:.0f} h" if h < days_from_h else f"{h / 24:.{day_digits}f} d"


def next_limit_text(name: str, value: float, unit: str, ttt: dict | None) -> str:
    """``danger 11.2 mm/s in 19 h (9 h–40 h)``; ``… in 19 h (9 h–beyond horizon)`` when the pessimistic
    bound stays under it; ``… beyond horizon (P10 20 h)`` when only the optimistic bound reaches it;
    ``… beyond horizon`` / ``… already past`` / ``… no crossing forecast``: states, never 0 h."""
    head = f"{name} {value:.3g} {unit}".rstrip()
    ttt = ttt or {}
    state = ttt.get("state")
    if state == "already_past":
        return f"{head}: already past"
    p10, p50, p90 = ttt.get("p10_h"), ttt.get("p50_h"), ttt.get("p90_h")
    if p50 is None and p10 is None:
        return f"{head}: beyond horizon" if state == "beyond_horizon" else f"{head}: no crossing forecast"
    if p50 is None:
        return f"{head}: beyond horizon (P10 {hours_text(p10)})"
    hi = hours_text(p90) if p90 is not None else "beyond horizon"
    return f"{head} in {hours_text(p50)} ({hours_text(p10)}–{hi})"
