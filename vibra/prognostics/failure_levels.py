"""The velocity each past life failed at, for levels learned from failures
(:func:`vibra.physics.limits.learned_from_failures`).

A life ends at a recorded failure (``vibra label failure`` / ``import-events``). Its velocity at
failure is the median, over its last :data:`LAST_RECORDINGS` recordings before the failure, of each
recording's worst channel (the mean of its windows' ``velocity_rms_mm_s``), sensor-fault windows
left out — the level the machine ran at when it was taken out, not one noisy window.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from vibra.ingest.quality import drop_sensor_faults
from vibra.storage.labels import list_events
from vibra.storage.tables import read_features

if TYPE_CHECKING:
    from vibra.workspace import Workspace

LAST_RECORDINGS = 3
VELOCITY = "velocity_rms_mm_s"


def velocity_at_failures(ws: Workspace) -> dict[str, float]:
    """``{"<equipment>@<failure time>": mm/s}`` for every recorded failure with velocity before it."""
    import polars as pl

    out: dict[str, float] = {}
    failures = [e for e in list_events(ws) if e["kind"] == "failure"]
    for eid in sorted({e["equipment_id"] for e in failures}):
        df = drop_sensor_faults(ws, read_features(ws, eid))
        if df.height == 0 or VELOCITY not in df.columns:
            continue
        per = (df.group_by("recording_id", "channel")
                 .agg(pl.col("window_start").min().alias("t"), pl.col(VELOCITY).cast(pl.Float64).fill_nan(None).mean())
                 .group_by("recording_id").agg(pl.col("t").min(), pl.col(VELOCITY).max()).sort("t"))
        events = sorted(e["at"] for e in failures if e["equipment_id"] == eid)
        start = None
        for at in events:
            life = per.filter((pl.col("t") <= at) & ((pl.col("t") > start) if start is not None else pl.lit(True)))
            values = life[VELOCITY].drop_nulls().to_numpy()[-LAST_RECORDINGS:]
            if values.shape[0]:
                out[f"{eid}@{at.isoformat()[:16]}"] = float(np.median(values))
            start = at
    return out
