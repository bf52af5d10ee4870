"""Model artifacts: one :class:`~vibra.storage.artifacts.VersionedStore` per machine scope and family.

``artifacts/models/anomaly/<scope>/<family>/<version>/`` holds the weights, ``train_scores.npy`` and
``manifest.json`` (sha256 of each file); ``<scope>/<family>/latest.json`` points at the live version.
Loading verifies every file's sha256 and refuses a file that does not match.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from vibra import __version__
from vibra.errors import NotReadyError
from vibra.storage.hashing import sha256_file
from vibra.anomaly import make
from vibra.anomaly.base import AnomalyModel, threshold_from
from vibra.storage.artifacts import POINTER, VersionedStore, new_version


FLEET = "_fleet"  # the scope of a model trained on every machine at once


def root(artifacts: Path) -> Path:
    """Where the anomaly models live: one scope folder per machine (and ``_fleet``)."""
    return artifacts / "models" / "anomaly"


def scopes_for(artifacts: Path, equipment_id: str) -> list[Path]:
    """The scopes that score ``equipment_id``: its own (when it has a model) and the fleet's (when one exists)."""
    models = root(artifacts)
    scopes = [models / equipment_id] if pointers(models / equipment_id) else []
    if pointers(models / FLEET):
        scopes.append(models / FLEET)
    return scopes


def family_store(scope_dir: Path, model_type: str) -> VersionedStore:
    return VersionedStore(scope_dir / model_type, "anomaly")


def pointers(scope_dir: Path) -> dict[str, str]:
    """{model family: live version} of one scope; a damaged pointer raises, never reads as absent."""
    if not scope_dir.is_dir():
        return {}
    out = {}
    for folder in sorted(p for p in scope_dir.iterdir() if p.is_dir() and (p / POINTER).exists()):
        version = family_store(scope_dir, folder.name).latest()
        if version:
            out[folder.name] = version
    return out


def quality(scores: np.ndarray, threshold: float) -> dict:
    return {"outlier_ratio": float(np.mean(scores > threshold)),
            "score_p50": float(np.quantile(scores, 0.5)), "score_p95": float(np.quantile(scores, 0.95)),
            "score_p99": float(np.quantile(scores, 0.99))}


def save(scope_dir: Path, model: AnomalyModel, extra: dict) -> dict:
    """Write a new version of a fitted model; switch ``latest`` to it; return its manifest."""
    store = family_store(scope_dir, model.model_type)
    with store.staging() as tmp:
        model.save(tmp)
        np.save(tmp / "train_scores.npy", model.train_scores_)
        if getattr(model, "spikes_", None) is not None and model.spikes_.any():
            np.save(tmp / "train_spikes.npy", model.spikes_)  # left out of the threshold (AnomalyModel.fit)
        now = datetime.now(timezone.utc)
        hashes = {p.name: sha256_file(p) for p in sorted(tmp.iterdir())}
        content = hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()
        version = new_version(f"{model.model_type}-{content[:8]}", now=now)
        return store.commit(tmp, version, {
            "model_type": model.model_type, "weights_version": version,
            "threshold": model.threshold_, "threshold_rule": f"{model.threshold_rule}:{model.threshold_value:g}",
            "n_samples": int(model.train_scores_.shape[0]), "created_at": now.isoformat(),
            "vibra_version": __version__, "params": model.params(),
            "quality": quality(model.train_scores_, model.threshold_),
            "threshold_spikes_left_out": int(getattr(model, "spikes_", np.zeros(0)).sum()), **extra,
        })


def manifest_of(scope_dir: Path, model_type: str, version: str | None = None) -> tuple[Path, dict]:
    """(folder, manifest) of the live (or given) version, unverified."""
    store = family_store(scope_dir, model_type)
    version = version or store.latest()
    if not version:
        raise NotReadyError(f"{scope_dir}: no trained {model_type} model; run `vibra train --model {model_type}`")
    return store.root / version, store.read_manifest(version)


def load(scope_dir: Path, model_type: str, version: str | None = None) -> tuple[AnomalyModel, dict]:
    """The model a pointer (or ``version``) names, after checking every file's sha256."""
    manifest_of(scope_dir, model_type, version)  # a clear NotReadyError when there is no model
    folder, manifest = family_store(scope_dir, model_type).load(version)
    params = {k: v for k, v in manifest["params"].items() if k != "model_type"}
    model = make(manifest["model_type"], **params).load(folder, params)
    model.threshold_ = manifest["threshold"]
    return model, manifest


def set_threshold(scope_dir: Path, model_type: str, *, quantile: float | None = None,
                  value: float | None = None, z: float | None = None) -> dict:
    """A new version with a new threshold over the same weights (hard links): no retraining."""
    folder, manifest = manifest_of(scope_dir, model_type)
    load(scope_dir, model_type)  # verifies the weights before they are reused
    scores = np.load(folder / "train_scores.npy")
    quality_scores = scores
    if (folder / "train_spikes.npy").exists():  # the spikes training left out stay out (AnomalyModel.fit)
        scores = scores[~np.load(folder / "train_spikes.npy")]
    rule, arg = next((r, a) for r, a in (("quantile", quantile), ("z", z), ("value", value)) if a is not None)
    threshold = threshold_from(scores, rule, arg)
    now = datetime.now(timezone.utc)
    store = family_store(scope_dir, model_type)
    # the weights' tag is kept: versions sharing weights say so in their names
    version = new_version(f"{model_type}-{manifest['weights_version'].rsplit('-', 1)[-1]}", now=now)
    with store.staging() as tmp:
        for name in manifest["files"]:
            try:
                os.link(folder / name, tmp / name)
            except OSError:
                shutil.copy2(folder / name, tmp / name)
        keep = {k: v for k, v in manifest.items() if k not in ("version", "files")}
        return store.commit(tmp, version, {
            **keep, "threshold": threshold, "threshold_rule": f"{rule}:{arg:g}", "created_at": now.isoformat(),
            "quality": quality(quality_scores, threshold), "previous_version": manifest["version"]})


def stores(root: Path) -> list[VersionedStore]:
    """Every (scope, family) store under the anomaly models' root."""
    if not root.is_dir():
        return []
    return [family_store(scope, fam.name) for scope in sorted(p for p in root.iterdir() if p.is_dir())
            for fam in sorted(p for p in scope.iterdir() if p.is_dir() and not p.name.startswith("."))]


def gc(root: Path, keep: int) -> list[str]:
    """Remove all but the ``keep`` newest versions of each scope and family; never a live one nor the
    newest that verifies. Every store is checked before anything is deleted."""
    plans = [(store, store.gc_plan(keep)) for store in stores(root)]
    return [path for store, plan in plans for path in store.remove(plan)]


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


def chain(scope_dir: Path, model_type: str, version: str) -> list[str]:
    """:func:`lineage` of a stored version; just ``[version]`` when its manifest is gone (gc)."""
    if not (family_store(scope_dir, model_type).root / version / "manifest.json").exists():
        return [version]
    _, manifest = manifest_of(scope_dir, model_type, version)
    return lineage(manifest)
