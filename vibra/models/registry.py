"""Model artifacts: ``artifacts/models/anomaly/<scope>/<version>/`` with ``manifest.json``.

A version folder is written under a temporary name and renamed into place; the ``latest``
pointer (``latest.json``: model type → version) is replaced atomically. Loading verifies the
sha256 of every file the manifest lists and refuses a file that does not match.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from vibra import __version__
from vibra.errors import InputError, NotReadyError
from vibra.hashing import sha256_file
from vibra.storage.lake import write_json
from vibra.models import make
from vibra.models.base import AnomalyModel, threshold_from

POINTER = "latest.json"


def pointers(scope_dir: Path) -> dict[str, str]:
    path = scope_dir / POINTER
    return json.loads(path.read_text()) if path.exists() else {}


def point(scope_dir: Path, key: str, version: str) -> None:
    """Switch the ``latest.json`` entry ``key`` to ``version`` (one atomic file replace)."""
    current = pointers(scope_dir)
    current[key] = version
    write_json(scope_dir / POINTER, current)


def quality(scores: np.ndarray, threshold: float) -> dict:
    return {"outlier_ratio": float(np.mean(scores > threshold)),
            "score_p50": float(np.quantile(scores, 0.5)), "score_p95": float(np.quantile(scores, 0.95)),
            "score_p99": float(np.quantile(scores, 0.99))}


def save(scope_dir: Path, model: AnomalyModel, extra: dict) -> dict:
    """Write a new version of a fitted model; switch ``latest`` to it; return its manifest."""
    scope_dir.mkdir(parents=True, exist_ok=True)
    tmp = scope_dir / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        files = model.save(tmp)
        np.save(tmp / "train_scores.npy", model.train_scores_)
        files.append("train_scores.npy")
        hashes = {name: sha256_file(tmp / name) for name in files}
        now = datetime.now(timezone.utc)
        content = hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()
        version = f"{now:%Y%m%dT%H%M%S%fZ}-{model.model_type}-{content[:8]}"
        manifest = {
            "model_type": model.model_type, "version": version, "weights_version": version,
            "threshold": model.threshold_, "threshold_rule": f"{model.threshold_rule}:{model.threshold_value:g}",
            "n_samples": int(model.train_scores_.shape[0]), "created_at": now.isoformat(),
            "vibra_version": __version__, "params": model.params(), "files": hashes,
            "quality": quality(model.train_scores_, model.threshold_), **extra,
        }
        write_json(tmp / "manifest.json", manifest)
        os.rename(tmp, scope_dir / version)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    point(scope_dir, model.model_type, version)
    return manifest


def manifest_of(scope_dir: Path, model_type: str, version: str | None = None) -> tuple[Path, dict]:
    version = version or pointers(scope_dir).get(model_type)
    if not version:
        raise NotReadyError(f"{scope_dir}: no trained {model_type} model; run `vibra train --model {model_type}`")
    folder = scope_dir / version
    try:
        return folder, json.loads((folder / "manifest.json").read_text())
    except FileNotFoundError:
        raise InputError(f"{folder}: manifest.json missing; retrain with `vibra train`") from None


def load(scope_dir: Path, model_type: str, version: str | None = None) -> tuple[AnomalyModel, dict]:
    """The model a pointer (or ``version``) names, after checking every file's sha256."""
    folder, manifest = manifest_of(scope_dir, model_type, version)
    for name, want in manifest["files"].items():
        path = folder / name
        if not path.exists():
            raise InputError(f"{path}: listed in the manifest but missing; retrain with `vibra train`")
        got = sha256_file(path)
        if got != want:
            raise InputError(f"{path}: sha256 {got[:12]}… does not match the manifest ({want[:12]}…); the file was "
                             "changed after training — refusing to load it; retrain with `vibra train`")
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
    rule, arg = next((r, a) for r, a in (("quantile", quantile), ("z", z), ("value", value)) if a is not None)
    threshold = threshold_from(scores, rule, arg)
    now = datetime.now(timezone.utc)
    version = f"{now:%Y%m%dT%H%M%S%fZ}-{model_type}-{manifest['weights_version'].rsplit('-', 1)[-1]}"
    tmp = scope_dir / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        for name in manifest["files"]:
            try:
                os.link(folder / name, tmp / name)
            except OSError:
                shutil.copy2(folder / name, tmp / name)
        new = {**manifest, "version": version, "threshold": threshold, "threshold_rule": f"{rule}:{arg:g}",
               "created_at": now.isoformat(), "quality": quality(scores, threshold), "previous_version": manifest["version"]}
        write_json(tmp / "manifest.json", new)
        os.rename(tmp, scope_dir / version)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    point(scope_dir, model_type, version)
    return new


def gc(root: Path, keep: int) -> list[str]:
    """Remove all but the ``keep`` newest versions of each scope and model type; never a latest one."""
    removed = []
    if not root.exists():
        return removed
    for scope_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        live = set(pointers(scope_dir).values())
        by_type: dict[str, list[Path]] = {}
        for folder in scope_dir.iterdir():
            if folder.is_dir() and not folder.name.startswith(".") and (folder / "manifest.json").exists():
                by_type.setdefault(folder.name.split("-")[1], []).append(folder)
        for folders in by_type.values():
            for folder in sorted(folders, key=lambda p: p.name, reverse=True)[keep:]:
                if folder.name not in live:
                    shutil.rmtree(folder)
                    removed.append(str(folder))
    return removed
