"""Anomaly stages: train per-machine (or fleet) models, score new windows, find alarm episodes.

Everything works one machine at a time (its own partitions only), so a fleet of thousands of
machines never needs the whole lake in memory.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from vibra.errors import InputError, NotReadyError
from vibra.anomaly import FAMILIES, make, period, reference, registry
from vibra.anomaly.registry import FLEET, lineage  # noqa: F401 - re-exported
from vibra.ingest.quality import drop_sensor_faults
from vibra.anomaly.matrix import key_stats, labels, select_features, standardise
from vibra.settings import Settings
from vibra.storage import tables
from vibra.storage.tables import WINDOW_KEYS, equipment_ids, read_features, read_scores  # noqa: F401 - re-exported
from vibra.report.summaries import episodes  # noqa: F401 - re-exported (vibra anomalies)
from vibra.workspace import Workspace

from vibra_pipelines.runs import StageResult, count_training, recorded

KEYS = list(WINDOW_KEYS)


def models_root(ws: Workspace) -> Path:
    return registry.root(ws.artifacts)


def chain_of(ws: Workspace, scope: str, model_type: str, version: str) -> list[str]:
    """:func:`~vibra.anomaly.registry.lineage` of a stored version of ``scope``'s model."""
    return registry.chain(models_root(ws) / scope, model_type, version)


@dataclass
class TrainResult(StageResult):
    """``baselines``: each machine's chosen period (:class:`vibra.anomaly.period.Baseline` as a dict);
    ``warnings``: one line per machine whose baseline was cut (the CLI shows them)."""

    models: list[dict] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    baselines: dict[str, dict] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def counts(self) -> dict:
        # no model made: the run is "not_ready", as `vibra train` exits 3 (exit code and run status agree)
        return {"models": len(self.models), "skipped": len(self.skipped), "baselines_cut": len(self.warnings),
                **({} if self.models else {"status": "not_ready"})}


def _fit_scope(scope_dir: Path, df, keys: list[str], types: list[str], settings: Settings, extra: dict) -> list[dict]:
    features = select_features(df)
    if not features:
        raise NotReadyError("no usable indicators in the baseline (all missing or constant)")
    df = df.sort("window_start", *keys)  # time order: the folds of the threshold and the spike rule need it
    stats = key_stats(df, features, keys)
    Z = standardise(df, features, stats, keys)
    groups = labels(df, keys)  # the series the alarm rule runs over (a channel, or a machine's channel)
    out = []
    for model_type in types:
        model = make(model_type, seed=settings.anomaly.seed, threshold_value=settings.anomaly.threshold_quantile,
                     standardised=True, alarm_k=settings.anomaly.alarm_k, alarm_m=settings.anomaly.alarm_m)
        model.fit(Z, groups)
        window = {"start": df["window_start"].min().isoformat(), "end": df["window_end"].max().isoformat()}
        manifest = registry.save(scope_dir, model, {
            **extra, "features": features, "standardise_by": keys, "standardisation": stats,
            "training_window": window})
        out.append({k: manifest[k] for k in ("model_type", "version", "threshold", "n_samples")}
                   | {"scope": scope_dir.name, "outlier_ratio": manifest["quality"]["outlier_ratio"],
                      "features": len(features)})
    return out


@recorded("train")
def train(ws: Workspace, settings: Settings, *, models: list[str] | None = None, equipment: list[str] | None = None,
          baseline_days: float | None = None, since: datetime | None = None, until: datetime | None = None,
          fleet: bool = False, progress: Callable[[int, int, str], None] | None = None) -> TrainResult:
    """Fit models on each machine's baseline period (``baseline_days`` from its first window — or from its
    chosen recording, :mod:`vibra.anomaly.reference` — cut to
    ``baseline_max_share`` of its monitored time with a warning, see :mod:`vibra.anomaly.period`; or
    ``since``/``until``); with ``fleet`` one model over all machines, standardised per machine.

    ``progress(done, total, equipment_id)`` is called before each machine (and the fleet model)
    and once at the end with ``done == total``. ``models`` None trains every family (the default of
    `vibra train` and of the train flow)."""
    import polars as pl

    types = list(models or FAMILIES)
    for t in types:
        if t not in FAMILIES:
            raise InputError(f"unknown model {t!r}; choose from {', '.join(FAMILIES)} or all")
    days = baseline_days or settings.anomaly.baseline_days
    result = TrainResult()
    root = models_root(ws)
    frames = []
    tick = progress if progress is not None else (lambda done, total, what: None)
    machines = equipment_ids(ws, equipment)
    total = len(machines) + (1 if fleet else 0)
    for i, eid in enumerate(machines):
        tick(i, total, eid)
        # the baseline starts at the machine's chosen recording (`vibra baseline set`) unless --since/--until say
        picked = None if since is not None or until is not None else reference.start_of(ws.artifacts, eid)
        usable = drop_sensor_faults(ws, read_features(ws, eid, picked or since, until))
        chosen = period.choose(eid, usable["window_start"].to_list() if usable.height else [], days=days,
                               max_share=settings.anomaly.baseline_max_share,
                               min_windows=settings.anomaly.baseline_min_windows,
                               explicit=since is not None or until is not None)
        result.baselines[eid] = {**chosen.as_dict(), "from_chosen_recording": picked is not None}
        if chosen.warning:
            result.warnings.append(chosen.warning)
        if chosen.refusal:
            result.skipped[eid] = chosen.refusal
            continue
        base = usable.filter(pl.col("window_start") < chosen.end)
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
    count_training(ws, result.models, root)
    return result


def _scored_keys(ws: Workspace, equipment_id: str, scope: str, versions: list[str]):
    import polars as pl

    # by the rows' own model_version, not by file name: compaction merges files
    scored = tables.read_scores(ws, equipment_id, columns=KEYS + ["model_version", "scope"])
    if scored.width == 0:
        return None
    return scored.filter(pl.col("model_version").is_in(versions) & (pl.col("scope") == scope)).select(KEYS).unique()


@dataclass
class DetectResult(StageResult):
    COUNTS = ("scored", "anomalous")

    scored: int = 0
    anomalous: int = 0
    updated: list[str] = field(default_factory=list)
    per_equipment: dict[str, dict] = field(default_factory=dict)


@recorded("detect")
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
    tick = progress if progress is not None else (lambda done, total, what: None)
    machines = equipment_ids(ws, equipment)
    for i, eid in enumerate(machines):
        tick(i, len(machines), eid)
        scopes = registry.scopes_for(ws.artifacts, eid)
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
                    saved = _learn_online(scope, model, manifest, version, new, Z)
                    if saved is not None:
                        result.updated.append(saved)
        result.scored += info["scored"]
        result.anomalous += info["anomalous"]
    tick(len(machines), len(machines), "")
    return result


def _learn_online(scope, model, manifest: dict, version: str, new, Z: np.ndarray) -> str | None:
    """A Half-Space Trees model learns the windows it just scored that lie after its training window and is
    saved as a new version carrying the chain; the new version's name, or None when nothing was new."""
    # the training window was learned by fit; learning it again would count it twice
    fresh = (new["window_start"] > datetime.fromisoformat(manifest["training_window"]["end"])).to_numpy()
    if not fresh.any():
        return None
    model.learn(Z[fresh])
    folder = registry.manifest_of(scope, "hst", version)[0]
    model.train_scores_ = np.load(folder / "train_scores.npy")
    if (folder / "train_spikes.npy").exists():
        model.spikes_ = np.load(folder / "train_spikes.npy")
    model.threshold_ = manifest["threshold"]
    keep = {k: manifest[k] for k in manifest
            if k in ("equipment_id", "fleet", "features", "standardise_by", "standardisation", "training_window")}
    saved = registry.save(scope, model, {**keep, "updated_from": version, "online_versions": lineage(manifest),
                                         "updated_with_windows": int(fresh.sum()),
                                         "online_learned_windows": manifest.get("online_learned_windows", 0)
                                         + int(fresh.sum())})
    return saved["version"]


def _write_scores(ws: Workspace, out, model_type: str, version: str) -> None:
    tables.write_scores(ws, out, f"{model_type}-{version.rsplit('-', 1)[-1]}-{uuid.uuid4().hex[:8]}")


@recorded("threshold set", lambda m: {"equipment_id": m.get("equipment_id"), "version": m["version"],
                                     "threshold": m["threshold"]})
def set_threshold(ws: Workspace, settings: Settings, equipment_id: str, *, model: str, quantile: float | None,
                  value: float | None, z: float | None = None) -> dict:
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
