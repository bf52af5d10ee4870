"""Lives from a machine's history: the failure / replacement events cut its points into finished lives (the
library) and the current life (the one whose remaining life is asked), and the HI parameters a library allows.

A machine's life runs from its install or last replacement (or its first data) to its failure; a replacement
without a failure ends a life as right-censored. Pure: arrays and event dicts in, :class:`~vibra.prognostics.health.Life`
out.
"""

from __future__ import annotations

import numpy as np

from vibra.prognostics.health import HIParams, Life


def split_lives(equipment_id: str, t: np.ndarray, cols: dict[str, np.ndarray], events: list[dict], *,
                rpm: float | None = None) -> tuple[list[Life], Life | None, float]:
    """(finished lives, the current life or None, the current life's start in epoch s) of one machine.

    ``t``: its points' times (epoch s, sorted); ``cols``: the candidate indicators at those points;
    ``events``: dicts with ``at`` (datetime) and ``kind`` (``failure`` / ``replacement``). Boundaries are the
    events in time order. A failure ends a failed life; a replacement ends a censored life unless a failure
    ended it already (then it only moves the next life's start). ``rpm``: the machine's speed, carried by
    every life (the survival prior scales lifetimes by the operating condition).
    """
    lives: list[Life] = []
    start = float(t[0]) if t.size else 0.0
    last_failure_open = False  # a failure was recorded and the next life has not started yet
    for ev in sorted(events, key=lambda e: e["at"]):
        at = ev["at"].timestamp()
        if ev["kind"] == "replacement" and last_failure_open:
            start, last_failure_open = at, False
            continue
        keep = (t >= start) & (t <= at)
        if keep.sum() >= 2 and at > start:
            lives.append(Life(f"{equipment_id}#{len(lives) + 1}", t[keep] - start, {c: v[keep] for c, v in cols.items()},
                              failed=ev["kind"] == "failure", end_s=at - start, rpm=rpm))
        start, last_failure_open = at, ev["kind"] == "failure"
    keep = t > start
    current = (Life(f"{equipment_id}#current", t[keep] - start, {c: v[keep] for c, v in cols.items()}, failed=False,
                    rpm=rpm) if keep.sum() >= 1 else None)
    return lives, current, start


def hi_params_for(lives: list[Life]) -> HIParams:
    """The HI parameters for this library: the healthy baseline is at most a fifth of the shortest failed
    life's points (and 5 … 60 points), so short lives still have a degrading part."""
    n = min((life.times_s.shape[0] for life in lives if life.failed), default=60)
    return HIParams(baseline_points=int(min(60, max(5, n // 5))))
