"""Anomaly stages: train per-machine (or fleet) models, score new windows, find alarm episodes.

Everything works one machine at a time (its own partitions only), so a fleet of thousands of
machines never needs the whole lake in memory.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from vibra.alarms import k_of_m
from vibra.errors import InputError, NotReadyError
from vibra.models import FAMILIES, make, registry
from vibra.quality import drop_sensor_faults
from vibra.models.matrix import key_stats, select_features, standardise, transform
from vibra.settings import Settings
from vibra.storage.lake import partition_dates, partition_dir, partition_files, read_frame, write_parquet
from vibra.storage.tables import WINDOW_KEYS, equipment_ids, read_features  # noqa: F401 - re-exported
from vibra.workspace import Workspace

from vibra_pipelines.runs import count_training, run_record

FLEET = "_fleet"
MIN_BASELINE_WINDOWS = 20
KEYS = list(WINDOW_KEYS)


def models_root(ws: Workspace) -> Path:
    return ws.artifacts / "models" / "anomaly"


@dataclass
class TrainResult:
    models: list[dict] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _baseline(df, days: float, since: datetime | None, until: datetime | None):
    import polars as pl

    if since is None and until is None:
        first = df["window_start"].min()
        return df.filter(pl.col("window_start") < first + timedelta(days=days))
    return df


def _fit_scope(scope_dir: Path, df, keys: list[str], types: list[str], settings: Settings, extra: dict) -> list[dict]:
    features = select_features(df)
    if not features:
        raise NotReadyError("no usable indicators in the baseline (all missing or constant)")
    stats = key_stats(df, features, keys)
    Z = standardise(df, features, stats, keys)
    out = []
    for model_type in types:
        model = make(model_type, seed=settings.anomaly.seed, threshold_value=settings.anomaly.threshold_quantile,
                     standardised=True)
        model.fit(Z)
        window = {"start": df["window_start"].min().isoformat(), "end": df["window_end"].max().isoformat()}
        manifest = registry.save(scope_dir, model, {
            **extra, "features": features, "standardise_by": keys, "standardisation": stats,
            "training_window": window})
        out.append({k: manifest[k] for k in ("model_type", "version", "threshold", "n_samples")}
                   | {"scope": scope_dir.name, "outlier_ratio": manifest["quality"]["outlier_ratio"],
                      "features": len(features)})
    return out


def train(ws: Workspace, settings: Settings, *, models: list[str] | None = None, equipment: list[str] | None = None,
          baseline_days: float | None = None, since: datetime | None = None, until: datetime | None = None,
          fleet: bool = False, progress: Callable[[int, int, str], None] | None = None) -> TrainResult:
    """Fit models on each machine's baseline period (``baseline_days`` from its first window, or
    ``since``/``until``); with ``fleet`` one model over all machines, standardised per machine.

    ``progress(done, total, equipment_id)`` is called before each machine (and the fleet model)
    and once at the end with ``done == total``."""
    import polars as pl

    types = list(models or [settings.anomaly.model])
    for t in types:
        if t not in FAMILIES:
            raise InputError(f"unknown model {t!r}; choose from {', '.join(FAMILIES)} or all")
    days = baseline_days or settings.anomaly.baseline_days
    result = TrainResult()
    root = models_root(ws)
    with run_record(ws, "train", settings) as counts:
        frames = []
        tick = progress if progress is not None else (lambda done, total, what: None)
        machines = equipment_ids(ws, equipment)
        total = len(machines) + (1 if fleet else 0)
        for i, eid in enumerate(machines):
            tick(i, total, eid)
            base = _baseline(drop_sensor_faults(ws, read_features(ws, eid, since, until)), days, since, until)
            if base.height < MIN_BASELINE_WINDOWS:
                result.skipped[eid] = (f"baseline has {base.height} windows (< {MIN_BASELINE_WINDOWS}); ingest more "
                                       "data or widen --baseline-days / --since")
                continue
            if fleet:
                frames.append(base)
                continue
            try:
                result.models += _fit_scope(root / eid, base, ["channel"], types, settings,
                                            {"equipment_id": eid, "fleet": False})
            except NotReadyError as exc:
                result.skipped[eid] = str(exc)
        if fleet and frames:
            tick(len(machines), total, "fleet model")
            base = pl.concat(frames, how="diagonal_relaxed")
            result.models += _fit_scope(root / FLEET, base, ["equipment_id", "channel"], types, settings,
                                        {"equipment_id": None, "fleet": True,
                                         "equipment": sorted(base["equipment_id"].unique().to_list())})
        tick(total, total, "")
        counts.update(models=len(result.models), skipped=len(result.skipped))
        count_training(ws, result.models, root)
    return result


def lineage(manifest: dict) -> list[str]:
    """The versions whose scores count as ``manifest``'s own: itself and, for a version made by
    ``detect --update``, every version of that online chain before it.

    An online model scores a window once, then learns it (prequential): the score an earlier
    state gave stays that window's score. A version made by ``threshold set`` (which copies the
    manifest, ``previous_version`` set) or by ``train`` starts a new chain: its threshold or
    weights differ, so it scores the history afresh.
    """
    own = [manifest["version"]]
    if "updated_from" in manifest and "previous_version" not in manifest:
        return list(manifest.get("online_versions", [manifest["updated_from"]])) + own
    return own


def chain_of(ws: Workspace, scope: str, model_type: str, version: str) -> list[str]:
    """:func:`lineage` of a stored version; just ``[version]`` when its manifest is gone (gc)."""
    if not (registry.family_store(models_root(ws) / scope, model_type).root / version / "manifest.json").exists():
        return [version]
    _, manifest = registry.manifest_of(models_root(ws) / scope, model_type, version)
    return lineage(manifest)


def _scored_keys(ws: Workspace, equipment_id: str, scope: str, versions: list[str]):
    import polars as pl

    # by the rows' own model_version, not by file name: compaction merges files
    files = partition_files(ws.table("scores"), equipment_id)
    if not files:
        return None
    scored = read_frame(files, KEYS + ["model_version", "scope"])
    return scored.filter(pl.col("model_version").is_in(versions) & (pl.col("scope") == scope)).select(KEYS).unique()


@dataclass
class DetectResult:
    scored: int = 0
    anomalous: int = 0
    updated: list[str] = field(default_factory=list)
    per_equipment: dict[str, dict] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _scopes_for(ws: Workspace, eid: str) -> list[Path]:
    root = models_root(ws)
    scopes = [root / eid] if registry.pointers(root / eid) else []
    if registry.pointers(root / FLEET):
        scopes.append(root / FLEET)
    return scopes


def detect(ws: Workspace, settings: Settings, *, equipment: list[str] | None = None, models: list[str] | None = None,
           since: datetime | None = None, update: bool = False, progress: Callable[[int, int, str], None] | None = None) -> DetectResult:
    """Score every window not yet scored by the current version of each model (or, for an online
    chain, by any version of it: see :func:`lineage`); write ``scores``.

    ``update``: Half-Space Trees models also learn from the windows they just scored that lie after
    their training window, and are saved as a new version (online learning) that carries the chain,
    so the next update scores and learns only windows that arrived since.

    ``progress(done, total, equipment_id)`` is called before each machine and once at the end.
    """
    import polars as pl

    result = DetectResult()
    with run_record(ws, "detect", settings) as counts:
        tick = progress if progress is not None else (lambda done, total, what: None)
        machines = equipment_ids(ws, equipment)
        for i, eid in enumerate(machines):
            tick(i, len(machines), eid)
            scopes = _scopes_for(ws, eid)
            if not scopes:
                result.per_equipment[eid] = {"skipped": "no trained model; run `vibra train`"}
                continue
            df = drop_sensor_faults(ws, read_features(ws, eid, since))  # a failing sensor raises no alarm
            info = result.per_equipment.setdefault(eid, {"scored": 0, "anomalous": 0})
            for scope in scopes:
                for model_type, version in registry.pointers(scope).items():
                    if models and model_type not in models:
                        continue
                    model, manifest = registry.load(scope, model_type)
                    done = _scored_keys(ws, eid, scope.name, lineage(manifest))
                    new = df if done is None else df.join(done, on=KEYS, how="anti")
                    if new.height == 0:
                        continue
                    Z = standardise(new, manifest["features"], manifest["standardisation"], manifest["standardise_by"])
                    scores = model.score(Z)
                    out = new.select(*KEYS, "window_start").with_columns(
                        model_type=pl.lit(model_type), model_version=pl.lit(version),
                        scope=pl.lit(scope.name), score=pl.Series(scores),
                        threshold=pl.lit(float(manifest["threshold"])),
                    ).with_columns(is_anomaly=pl.col("score") > pl.col("threshold"))
                    _write_scores(ws, out, model_type, version)
                    info["scored"] += out.height
                    info["anomalous"] += int(out["is_anomaly"].sum())
                    if update and model_type == "hst" and scope.name != FLEET:
                        # the training window was learned by fit; learning it again would count it twice
                        fresh = (new["window_start"] > datetime.fromisoformat(manifest["training_window"]["end"])
                                 ).to_numpy()
                        if not fresh.any():
                            continue
                        model.learn(Z[fresh])
                        model.train_scores_ = np.load(registry.manifest_of(scope, model_type, version)[0] / "train_scores.npy")
                        model.threshold_ = manifest["threshold"]
                        keep = {k: manifest[k] for k in manifest
                                if k in ("equipment_id", "fleet", "features", "standardise_by", "standardisation",
                                         "training_window")}
                        saved = registry.save(scope, model, {**keep, "updated_from": version,
                                                             "online_versions": lineage(manifest),
                                                             "updated_with_windows": int(fresh.sum()),
                                                             "online_learned_windows": manifest.get("online_learned_windows", 0)
                                                             + int(fresh.sum())})
                        result.updated.append(saved["version"])
            result.scored += info["scored"]
            result.anomalous += info["anomalous"]
        tick(len(machines), len(machines), "")
        counts.update(scored=result.scored, anomalous=result.anomalous)
    return result


def _write_scores(ws: Workspace, out, model_type: str, version: str) -> None:
    import polars as pl

    keyed = out.with_columns(_date=pl.col("window_start").dt.date().cast(pl.String))
    name = f"part-{model_type}-{version.rsplit('-', 1)[-1]}-{uuid.uuid4().hex[:8]}.parquet"
    for (date, eid), part in keyed.group_by(["_date", "equipment_id"], maintain_order=True):
        write_parquet(part.drop("_date"), partition_dir(ws.table("scores"), date, eid) / name)


def read_scores(ws: Workspace, equipment_id: str, since: datetime | None = None):
    import polars as pl

    table = ws.table("scores")
    dates = partition_dates(table, equipment_id)
    if since is not None:
        dates = [d for d in dates if d >= since.date().isoformat()]
    files = partition_files(table, equipment_id, dates)
    if not files:
        return pl.DataFrame()
    df = read_frame(files)
    return df.filter(pl.col("window_start") >= since) if since is not None else df


def episodes(ws: Workspace, settings: Settings, *, equipment: list[str] | None = None, model: str | None = None,
             since: datetime | None = None, top: int = 3, frames: tuple | None = None) -> list[dict]:
    """Alarm episodes: runs of windows where ``alarm_k`` of the last ``alarm_m`` windows of a
    channel are over threshold, with the indicators that stand out most at the peak.

    ``frames``: (scores, features) of the one machine asked for, when the caller has read them.
    """
    import polars as pl

    model_type = model or settings.anomaly.model
    k, m = settings.anomaly.alarm_k, settings.anomaly.alarm_m
    out = []
    for eid in equipment_ids(ws, equipment):
        scores = frames[0] if frames else read_scores(ws, eid, since)
        if scores.height == 0:
            continue
        for scope in _scopes_for(ws, eid):
            version = registry.pointers(scope).get(model_type)
            if version is None:
                continue
            _, manifest = registry.manifest_of(scope, model_type, version)
            cur = (scores.filter((pl.col("model_type") == model_type) & (pl.col("model_version").is_in(lineage(manifest)))
                                 & (pl.col("scope") == scope.name))
                   .sort("channel", "window_start"))
            if cur.height == 0:
                continue
            cur = k_of_m(cur, k=k, m=m)
            alarms = cur.filter(pl.col("alarm"))
            if alarms.height == 0:
                continue
            feats = frames[1] if frames else read_features(ws, eid, since)
            for (channel, _), ep in alarms.group_by(["channel", "episode"], maintain_order=True):
                peak = ep.sort("score", descending=True).head(1)
                row = feats.join(peak.select(KEYS), on=KEYS)
                contributors = []
                if row.height:
                    z = standardise(row, manifest["features"], manifest["standardisation"], manifest["standardise_by"])[0]
                    order = np.argsort(-np.abs(np.nan_to_num(z)))[:top]
                    raw = transform(row, manifest["features"])[0]
                    contributors = [{"indicator": manifest["features"][i], "z": round(float(z[i]), 2),
                                     "value": float(row[manifest["features"][i]][0])} for i in order
                                    if np.isfinite(raw[i])]
                out.append({
                    "equipment_id": eid, "channel": channel, "model_type": model_type, "model_version": version,
                    "start": ep["window_start"].min().isoformat(), "end": ep["window_start"].max().isoformat(),
                    "windows": ep.height, "peak_score": float(ep["score"].max()),
                    "threshold": float(ep["threshold"][0]), "top_indicators": contributors,
                })
    return sorted(out, key=lambda e: (e["equipment_id"], e["start"]))


def set_threshold(ws: Workspace, equipment_id: str, *, model: str, quantile: float | None, value: float | None,
                  z: float | None = None) -> dict:
    """A new version of the machine's model with another threshold: a training-score quantile,
    a z rule (median + z·1.4826·MAD of the training scores) or an explicit value."""
    if sum(v is not None for v in (quantile, value, z)) != 1:
        raise InputError("give exactly one of --quantile (e.g. 0.99), --z (e.g. 4) or --value")
    if quantile is not None and not 0 < quantile < 1:
        raise InputError(f"--quantile {quantile}: must be between 0 and 1 (e.g. 0.99)")
    scope = models_root(ws) / equipment_id
    return registry.set_threshold(scope, model, quantile=quantile, value=value, z=z)


def gc(ws: Workspace, keep: int) -> list[str]:
    if keep < 1:
        raise InputError(f"--keep {keep}: keep at least 1 version")
    return registry.gc(models_root(ws), keep)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
