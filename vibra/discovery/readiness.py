"""Readiness verdicts: a metric's value against its thresholds gives green, amber or red.

Pure and order-free: every verdict depends on values only, and the overall
status of a scope is the worst of its metrics, so the same lake gives the
same verdict whatever order its rows were read in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

GREEN, AMBER, RED = "green", "amber", "red"
RANK = {GREEN: 0, AMBER: 1, RED: 2}


@dataclass
class Metric:
    """One checked quantity: ``value`` against ``threshold`` gives ``status``; ``blocks`` names the
    steps a red (or amber) status holds up."""

    name: str
    scope: str                      # "workspace" | "equipment/<id>" | "equipment/<id>/channel/<c>"
    value: float | int | None
    threshold: dict                 # {"green": x, "red": y, "better": "higher" | "lower" | "equal"}
    status: str
    blocks: list[str] = field(default_factory=list)
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def higher_better(value: float | None, green: float, red: float) -> str:
    """green at or above ``green``, red below ``red``, amber between; no value is red."""
    if value is None:
        return RED
    if value >= green:
        return GREEN
    return RED if value < red else AMBER


def lower_better(value: float | None, green: float, red: float) -> str:
    """green at or below ``green``, red above ``red``, amber between; no value is red."""
    if value is None:
        return RED
    if value <= green:
        return GREEN
    return RED if value > red else AMBER


def metric(name: str, scope: str, value, green: float, red: float, better: str, blocks: list[str],
           note: str = "", missing: str = RED) -> Metric:
    """A :class:`Metric` with its status from the thresholds (``missing`` when there is no value)."""
    if value is None:
        status = missing
    elif better == "higher":
        status = higher_better(value, green, red)
    elif better == "lower":
        status = lower_better(value, green, red)
    else:  # "equal": exactly green is green, anything else red
        status = GREEN if value == green else RED
    return Metric(name, scope, value, {"green": green, "red": red, "better": better}, status, blocks, note)


def worst(statuses) -> str:
    out = GREEN
    for s in statuses:
        if RANK[s] > RANK[out]:
            out = s
    return out


def overall(metrics: list[Metric]) -> tuple[str, dict[str, str]]:
    """Workspace status and the status per equipment (its own metrics and its channels')."""
    per: dict[str, list[str]] = {}
    for m in metrics:
        if m.scope.startswith("equipment/"):
            per.setdefault(m.scope.split("/")[1], []).append(m.status)
    return worst(m.status for m in metrics), {eid: worst(s) for eid, s in sorted(per.items())}


def fails(status: str, fail_on: str) -> bool:
    """Whether ``status`` reaches the ``--fail-on`` level (``never`` never fails)."""
    return fail_on != "never" and RANK[status] >= RANK[fail_on]


def allows_snapshot(status: str | None) -> bool:
    """A training snapshot is taken unless readiness is red (an unknown status, e.g. a failed check, is
    no licence either); ``vibra snapshot --even-if-red`` and the snapshot flow's override say otherwise."""
    return status in (GREEN, AMBER)
