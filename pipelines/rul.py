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
from vibra.prognostics.lives import hi_params_for, split_lives
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


def _read(ws: Workspace, settings: Settings, tick) -> tuple[list[health.Life], dict]:
    """Every machine's finished lives (the library) and its current life with its start (epoch s)."""
    events = list_events(ws)
    library: list[health.Life] = []
    current: dict[str, tuple[health.Life | None, float]] = {}
    machines = equipment_ids(ws)
    for i, eid in enumerate(machines):
        tick(i, len(machines), f"reading {eid}")
        df = drop_sensor_faults(ws, read_features(ws, eid))
        if df.height == 0:
            continue
        t, cols = _points(df)
        lives, cur, start = split_lives(eid, t, cols, [e for e in events if e["equipment_id"] == eid],
                                        rpm=settings.equipment_for(eid).rpm)
        library += lives
        current[eid] = (cur, start)
    return library, current


def _fit(library: list[health.Life]) -> tuple[dict, health.Indicator | None, rulmod.Library | None,
                                                   rulmod.WeibullPrior | None]:
    """(library summary for the manifest, indicator, fitted library, the prior when only one life failed)."""
    n_failed = sum(1 for life in library if life.failed)
    params = hi_params_for(library)
    info = {"n_lives": len(library), "n_failed": n_failed, "min_lives": rulmod.MIN_LIVES,
            "lives": [{"name": x.name, "length_s": x.length_s, "failed": x.failed} for x in library],
            "params": vars(params), "trusted": False}
    if n_failed >= 2:
        # the indicator, its smoothing span and the model, all chosen over the library (rul.fit_lives)
        indicator, fitted = rulmod.fit_lives(library, params)
        info.update(indicator=indicator.as_dict(), choice=fitted.choice, params=vars(fitted.params),
                    survival_prior={"shape": fitted.prior.shape_, "scale_s": fitted.prior.scale_s_},
                    trusted=n_failed >= rulmod.MIN_LIVES)
        return info, indicator, fitted, None
    if n_failed == 1:
        prior = rulmod.WeibullPrior().fit_lengths([x.length_s for x in library], [x.failed for x in library])
        info.update(survival_prior={"shape": prior.shape_, "scale_s": prior.scale_s_})
        return info, None, None, prior
    return info, None, None, None


def _answer(eid: str, cur: health.Life | None, start: float, info: dict, indicator, fitted, prior) -> dict:
    """One machine's entry: its status and, when there is one, the answer (see :func:`run`)."""
    row = {"equipment_id": eid, "life_start": datetime.fromtimestamp(start, timezone.utc).isoformat()}
    if cur is None:
        return {**row, "status": "no_data", "reason": "no recordings since the last event"}
    row["elapsed_s"] = float(cur.times_s[-1])
    n_failed = info["n_failed"]
    if n_failed == 0:
        return {**row, "status": "no_library", "reason": "no failed lives in the workspace: record failures with "
                                                        "`vibra label failure` or `vibra label import-events`"}
    hi = onset = None
    if fitted is None:
        est = prior.predict(rulmod.LifeHI(eid, cur.times_s, np.zeros_like(cur.times_s), rpm=cur.rpm))
        est.reason = f"survival prior: only {n_failed} failed life in the library; " + est.reason
        est.basis = "prior_small_library"
    else:
        try:
            hi = indicator.transform(cur.columns)
        except InputError as exc:
            return {**row, "status": "refused", "reason": str(exc)}
        est = rulmod.estimate(fitted, cur.times_s, hi, rpm=cur.rpm)
        onset = est.details.get("onset_s")
    # basis: a model's answer after onset, or the survival prior (not a prediction of this machine)
    entry = {**row, "status": "ok" if n_failed >= rulmod.MIN_LIVES else "library_too_small", "model": est.model,
             "basis": est.basis, "text": rulmod.rul_text(est.p10_s, est.p50_s, est.p90_s, est.basis),
             "p10_s": est.p10_s, "p50_s": est.p50_s, "p90_s": est.p90_s, "planning_s": est.planning_s,
             "threshold": est.threshold, "threshold_source": est.threshold_source, "reason": est.reason,
             "onset_s": onset, "indicator": indicator.name if indicator else None,
             "models": {k: {q: v[q] for q in ("p10_s", "p50_s", "p90_s", "planning_s")}
                        for k, v in est.details.get("models", {}).items()}}
    if hi is not None:
        step = max(1, hi.shape[0] // HISTORY_POINTS)
        entry["history"] = {"elapsed_s": cur.times_s[::step].round(1).tolist(), "hi": np.round(hi[::step], 4).tolist()}
    return entry


#: the ``rul`` table's columns (``model_version`` and ``generated_at`` are added when it is written)
RUL_SCHEMA = {"equipment_id": "String", "status": "String", "model": "String", "p10_s": "Float64", "p50_s": "Float64",
              "p90_s": "Float64", "planning_s": "Float64", "threshold": "Float64", "elapsed_s": "Float64",
              "onset_s": "Float64", "indicator": "String", "reason": "String"}


@recorded("rul")
def run(ws: Workspace, settings: Settings, *, equipment: list[str] | None = None,
        progress: Callable[[int, int, str], None] | None = None) -> RulRun:
    """Estimate the RUL of every machine (or those in ``equipment``) from the workspace's library.

    ``progress(done, total, what)``: per machine read (every machine: each life feeds the
    library), then per machine estimated, and once at the end with ``done == total``."""
    import polars as pl

    started = time.perf_counter()
    now = datetime.now(timezone.utc)
    result = RulRun(version=artifacts.new_version(now=now))
    tick = progress if progress is not None else (lambda done, total, what: None)
    library, current = _read(ws, settings, tick)
    wanted = equipment_ids(ws, equipment) if equipment else sorted(current)
    info, indicator, fitted, prior = _fit(library)
    result.library = info
    for i, eid in enumerate(wanted):
        tick(i, len(wanted), eid)
        result.machines.append(_answer(eid, *current.get(eid, (None, 0.0)), info, indicator, fitted, prior))
    tick(len(wanted), len(wanted), "")
    result.duration_s = time.perf_counter() - started
    rows = [{k: m.get(k) for k in RUL_SCHEMA} for m in result.machines if "model" in m]
    table = pl.DataFrame(rows, schema={k: getattr(pl, v) for k, v in RUL_SCHEMA.items()})
    manifest = {"version": result.version, "generated_at": now.isoformat(), "vibra_version": __version__,
                "library": info, "machines": result.machines, "duration_s": result.duration_s,
                "models": ["survival_prior (Weibull)", "exp_degradation (Bayesian)", "similarity", "life_fraction"],
                "selection": "survival prior before onset or with < 3 failed lives; after onset the model "
                             "chosen by leave-one-life-out over the library (library.choice)"}
    result.manifest = publish(ws, result.version, now, manifest, table)
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
