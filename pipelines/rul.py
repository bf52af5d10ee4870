"""The RUL stage: lives from the failure / replacement events, the health indicator chosen over them,
the remaining useful life of every machine's current life, the ``rul`` table and a manifest.

A machine's life runs from its install or last replacement (or its first data) to its failure
(``vibra label failure``); a replacement without a failure ends a life as right-censored. Every
machine's finished lives form the library; each machine's current life (after its last event) is
the one whose RUL is estimated. See :mod:`vibra.prognostics.health` and :mod:`vibra.prognostics.rul` for the maths.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import numpy as np

from vibra import __version__

from vibra.prognostics import health
from vibra.prognostics import rul as rulmod
from vibra.errors import InputError
from vibra.settings import Settings
from vibra.storage import artifacts
from vibra.storage import tables
from vibra.ingest.quality import drop_sensor_faults
from vibra.storage.labels import list_events
from vibra.storage.tables import equipment_ids, read_features
from vibra.workspace import Workspace

from vibra_pipelines.runs import StageResult, recorded

HISTORY_POINTS = 300  # HI points kept per machine in the manifest (for the report's chart)


def rul_store(ws: Workspace) -> artifacts.VersionedStore:
    return artifacts.store(ws.artifacts, "rul")


@dataclass
class RulRun(StageResult):
    version: str = ""
    library: dict = field(default_factory=dict)
    machines: list[dict] = field(default_factory=list)
    duration_s: float = 0.0
    manifest: str = ""

    def counts(self) -> dict:
        return {"machines": len(self.machines), "lives": self.library.get("n_lives", 0),
                "failed_lives": self.library.get("n_failed", 0)}


def _points(df) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One point per recording: its start time (epoch s) and the mean of each candidate over its
    windows and channels. Windows flagged or non-finite are averaged out by nanmean."""
    import polars as pl

    cols = [c for c in health.CANDIDATES if c in df.columns]
    per = (df.group_by("recording_id")
             .agg(pl.col("window_start").min().alias("t"),
                  *[pl.col(c).cast(pl.Float64).fill_nan(None).mean().alias(c) for c in cols])
             .sort("t"))
    t = per["t"].dt.epoch("us").to_numpy() / 1e6
    return t, {c: per[c].fill_null(np.nan).to_numpy() for c in cols}


def split_lives(eid: str, t: np.ndarray, cols: dict[str, np.ndarray], events: list[dict]
                ) -> tuple[list[health.Life], health.Life | None, float]:
    """(finished lives, the current life or None, the current life's start in epoch s).

    Boundaries are the events in time order. A failure ends a failed life; a replacement ends a
    censored life unless a failure ended it already (then it only moves the next life's start).
    """
    lives: list[health.Life] = []
    start = float(t[0]) if t.size else 0.0
    last_failure_open = False  # a failure was recorded and the next life has not started yet
    for ev in sorted(events, key=lambda e: e["at"]):
        at = ev["at"].timestamp()
        if ev["kind"] == "replacement" and last_failure_open:
            start, last_failure_open = at, False
            continue
        keep = (t >= start) & (t <= at)
        if keep.sum() >= 2 and at > start:
            lives.append(health.Life(f"{eid}#{len(lives) + 1}", t[keep] - start, {c: v[keep] for c, v in cols.items()},
                                     failed=ev["kind"] == "failure", end_s=at - start))
        start, last_failure_open = at, ev["kind"] == "failure"
    keep = t > start
    current = (health.Life(f"{eid}#current", t[keep] - start, {c: v[keep] for c, v in cols.items()}, failed=False)
               if keep.sum() >= 1 else None)
    return lives, current, start


def _params(lives: list[health.Life]) -> health.HIParams:
    """The HI parameters for this library: the healthy baseline is at most a fifth of the shortest
    failed life's points (and 5 … 60 points), so short lives still have a degrading part."""
    n = min((life.times_s.shape[0] for life in lives if life.failed), default=60)
    return health.HIParams(baseline_points=int(min(60, max(5, n // 5))))


@recorded("rul")
def run(ws: Workspace, settings: Settings, *, equipment: list[str] | None = None,
        progress: Callable[[int, int, str], None] | None = None) -> RulRun:
    """Estimate the RUL of every machine (or those in ``equipment``) from the workspace's library.

    ``progress(done, total, what)``: per machine read (every machine: each life feeds the
    library), then per machine estimated, and once at the end with ``done == total``."""
    import polars as pl

    started = time.perf_counter()
    now = datetime.now(timezone.utc)
    version = artifacts.new_version(now=now)
    result = RulRun(version=version)
    events = list_events(ws)
    library: list[health.Life] = []
    current: dict[str, tuple[health.Life | None, float]] = {}
    tick = progress if progress is not None else (lambda done, total, what: None)
    machines = equipment_ids(ws)
    for i, eid in enumerate(machines):
        tick(i, len(machines), f"reading {eid}")
        df = drop_sensor_faults(ws, read_features(ws, eid))
        if df.height == 0:
            continue
        t, cols = _points(df)
        lives, cur, start = split_lives(eid, t, cols, [e for e in events if e["equipment_id"] == eid])
        rpm = settings.equipment_for(eid).rpm  # the operating condition the survival prior scales lifetimes by
        for life in lives + ([cur] if cur is not None else []):
            life.rpm = rpm
        library += lives
        current[eid] = (cur, start)
    wanted = equipment_ids(ws, equipment) if equipment else sorted(current)
    n_failed = sum(1 for life in library if life.failed)
    params = _params(library)
    indicator, fitted = None, None
    info = {"n_lives": len(library), "n_failed": n_failed, "min_lives": rulmod.MIN_LIVES,
            "lives": [{"name": x.name, "length_s": x.length_s, "failed": x.failed} for x in library],
            "params": vars(params)}
    if n_failed >= 2:
        # the indicator, its smoothing span and the model, all chosen over the library (rul.fit_lives)
        indicator, fitted = rulmod.fit_lives(library, params)
        info.update(indicator=indicator.as_dict(), choice=fitted.choice, params=vars(fitted.params),
                    survival_prior={"shape": fitted.prior.shape_, "scale_s": fitted.prior.scale_s_},
                    trusted=n_failed >= rulmod.MIN_LIVES)
    elif n_failed == 1:
        prior = rulmod.WeibullPrior().fit_lengths([x.length_s for x in library], [x.failed for x in library])
        info.update(survival_prior={"shape": prior.shape_, "scale_s": prior.scale_s_}, trusted=False)
    else:
        info.update(trusted=False)
    result.library = info
    rows = []
    for i, eid in enumerate(wanted):
        tick(i, len(wanted), eid)
        cur, start = current.get(eid, (None, 0.0))
        row = {"equipment_id": eid, "life_start": datetime.fromtimestamp(start, timezone.utc).isoformat()}
        if cur is None:
            result.machines.append({**row, "status": "no_data", "reason": "no recordings since the last event"})
            continue
        row["elapsed_s"] = float(cur.times_s[-1])
        if n_failed == 0:
            result.machines.append({**row, "status": "no_library",
                                    "reason": "no failed lives in the workspace: record failures with "
                                              "`vibra label failure` or `vibra label import-events`"})
            continue
        if fitted is None:
            est = prior.predict(rulmod.LifeHI(eid, cur.times_s, np.zeros_like(cur.times_s)))
            est.reason = f"survival prior: only {n_failed} failed life in the library; " + est.reason
            est.basis = "prior_small_library"
            hi, onset = None, None
        else:
            try:
                hi = indicator.transform(cur.columns)
            except InputError as exc:
                result.machines.append({**row, "status": "refused", "reason": str(exc)})
                continue
            est = rulmod.estimate(fitted, cur.times_s, hi, rpm=cur.rpm)
            onset = est.details.get("onset_s")
        status = "ok" if n_failed >= rulmod.MIN_LIVES else "library_too_small"
        # basis: a model's answer after onset, or the survival prior (not a prediction of this machine)
        entry = {**row, "status": status, "model": est.model, "basis": est.basis,
                 "text": rulmod.rul_text(est.p10_s, est.p50_s, est.p90_s, est.basis),
                 "p10_s": est.p10_s, "p50_s": est.p50_s, "p90_s": est.p90_s, "planning_s": est.planning_s,
                 "threshold": est.threshold, "threshold_source": est.threshold_source,
                 "reason": est.reason, "onset_s": onset,
                 "indicator": indicator.name if indicator else None,
                 "models": {k: {q: v[q] for q in ("p10_s", "p50_s", "p90_s", "planning_s")}
                            for k, v in est.details.get("models", {}).items()}}
        if hi is not None:
            step = max(1, hi.shape[0] // HISTORY_POINTS)
            entry["history"] = {"elapsed_s": cur.times_s[::step].round(1).tolist(),
                                "hi": np.round(hi[::step], 4).tolist()}
        result.machines.append(entry)
        rows.append({k: entry.get(k) for k in ("equipment_id", "status", "model", "p10_s", "p50_s", "p90_s",
                                              "planning_s", "threshold", "elapsed_s", "onset_s", "indicator", "reason")})
    tick(len(wanted), len(wanted), "")
    result.duration_s = time.perf_counter() - started
    table = pl.DataFrame(rows, schema={"equipment_id": pl.String, "status": pl.String, "model": pl.String,
                                       "p10_s": pl.Float64, "p50_s": pl.Float64, "p90_s": pl.Float64,
                                       "planning_s": pl.Float64,
                                       "threshold": pl.Float64, "elapsed_s": pl.Float64, "onset_s": pl.Float64,
                                       "indicator": pl.String, "reason": pl.String})
    manifest = {"version": version, "generated_at": now.isoformat(), "vibra_version": __version__,
                "library": info, "machines": result.machines, "duration_s": result.duration_s,
                "models": ["survival_prior (Weibull)", "exp_degradation (Bayesian)", "similarity", "life_fraction"],
                "selection": "survival prior before onset or with < 3 failed lives; after onset the model "
                             "chosen by leave-one-life-out over the library (library.choice)"}
    result.manifest = publish(ws, version, now, manifest, table)
    return result


def publish(ws: Workspace, version: str, now: datetime, manifest: dict, table) -> str:
    """Write the ``rul`` table rows (partitioned by date and machine), then commit the manifest
    through the store, which moves ``latest`` last: a reader never sees a half-written version."""
    import polars as pl

    tables.write_rul(ws, table.with_columns(model_version=pl.lit(version), generated_at=pl.lit(now)), version)
    store = rul_store(ws)
    store.put(version, manifest)
    return str(store.root / version / store.manifest)


def latest(ws: Workspace) -> dict | None:
    """The latest RUL manifest, or None."""
    return rul_store(ws).latest_manifest()
