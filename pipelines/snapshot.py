"""Training snapshots: ``artifacts/snapshots/<version>/data.parquet`` + ``metadata.json``.

A snapshot freezes the training set: every window of the current embedding
(or a stratified sample of them) with its keys, cluster, embedding and defect
label (a direct label wins; else the kNN's assignment, not ``unknown``). Rows
are selected and written in key order with a seeded generator, so the same lake
and the same seed give a byte-identical data file. Snapshots are a versioned
store (``vibra.storage.artifacts``, manifest ``metadata.json``): the version
folder is written under a temporary name and renamed into place, then
``latest`` points at it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from vibra import __version__
from vibra.errors import InputError, NotReadyError
from vibra.storage.hashing import sha256_file
from vibra.settings import Settings
from vibra.storage import artifacts, labels
from vibra.storage.tables import WINDOW_KEYS, read_clusters, read_defects
from vibra.workspace import Workspace

from vibra_pipelines.runs import recorded

KEYS = list(WINDOW_KEYS)

STRATA = ("equipment", "defect")
UNLABELLED = "(unlabelled)"


def store(ws: Workspace) -> artifacts.VersionedStore:
    return artifacts.store(ws.artifacts, "snapshots")


def root(ws: Workspace) -> Path:
    return store(ws).root


def training_rows(ws: Workspace, settings: Settings):
    """Every window of the current embedding with cluster_id, defect and label_source, in key order."""
    import polars as pl

    pop = labels.population(ws, settings)
    if pop.windows.height == 0:
        raise NotReadyError("no windows with the current embedding; run `vibra ingest` (or `vibra features rebuild`)")
    df = pop.windows.select(*KEYS, "window_start", "embedding")
    clusters = read_clusters(ws)
    if clusters.height:
        df = df.join(clusters.select(*KEYS, "cluster_id"), on=KEYS, how="left")
    else:
        df = df.with_columns(cluster_id=pl.lit(None, pl.Int64))
    direct = pop.labelled.select(*KEYS, "defect", "label_source")
    knn = read_defects(ws)
    if knn.height:
        knn = (knn.filter(pl.col("defect") != "unknown")
               .select(*KEYS, pl.col("defect").alias("knn_defect"),
                       (pl.lit("knn:") + pl.col("knn_version")).alias("knn_source")))
        df = df.join(knn, on=KEYS, how="left")
    else:
        df = df.with_columns(knn_defect=pl.lit(None, pl.String), knn_source=pl.lit(None, pl.String))
    df = df.join(direct, on=KEYS, how="left").with_columns(
        defect=pl.coalesce("defect", "knn_defect"), label_source=pl.coalesce("label_source", "knn_source"))
    return df.drop("knn_defect", "knn_source").sort(KEYS), pop.embedding_version


def select(df, stratify: str, max_per_class: int | None, seed: int):
    """At most ``max_per_class`` rows of each stratum, drawn with ``seed``; key order kept."""

    if stratify not in STRATA:
        raise InputError(f"--stratify {stratify!r}: use one of {', '.join(STRATA)}")
    if not max_per_class:
        return df
    column = "equipment_id" if stratify == "equipment" else "defect"
    groups = df[column].fill_null(UNLABELLED).to_numpy()
    rng = np.random.default_rng(seed)
    keep = []
    for g in sorted(set(groups.tolist())):
        idx = np.flatnonzero(groups == g)
        keep.append(idx if len(idx) <= max_per_class else np.sort(rng.choice(idx, max_per_class, replace=False)))
    rows = np.sort(np.concatenate(keep)) if keep else np.empty(0, dtype=np.int64)
    return df[rows]


@recorded("snapshot", lambda meta: {"version": meta["version"], "rows": meta["rows"]})
def run(ws: Workspace, settings: Settings, *, readiness: dict, stratify: str = "equipment",
        max_per_class: int | None = None, seed: int = 0) -> dict:
    """Write a new snapshot version; returns its metadata.

    ``readiness`` is the readiness assessment of the lake now (``vibra_pipelines.readiness.assess``, made
    by the caller): the snapshot records its status and red metrics.
    """
    if stratify not in STRATA:
        raise InputError(f"--stratify {stratify!r}: use one of {', '.join(STRATA)}")
    rows, emb_version = training_rows(ws, settings)
    picked = select(rows, stratify, max_per_class, seed)
    snapshots = store(ws)
    with snapshots.staging() as tmp:
        picked.write_parquet(tmp / "data.parquet", compression="zstd", statistics=True)
        sha = sha256_file(tmp / "data.parquet")
        now = datetime.now(timezone.utc)
        version = artifacts.new_version(sha[:8], now=now)
        classes = dict(sorted(
            (k or UNLABELLED, v) for k, v in picked.group_by("defect").len().iter_rows()))
        labelled = [v for k, v in classes.items() if k != UNLABELLED]
        per_eq = dict(sorted(picked.group_by("equipment_id").len().iter_rows()))
        knn = artifacts.store(ws.artifacts, "knn").latest_manifest()
        clustering = artifacts.store(ws.artifacts, "clustering").latest_manifest()
        ready = readiness
        meta = snapshots.commit(tmp, version, {
            "created_at": now.isoformat(), "rows": picked.height,
            "rows_before_selection": rows.height, "stratify": stratify, "max_per_class": max_per_class,
            "seed": seed, "class_balance": classes,
            "imbalance_ratio": (max(labelled) / min(labelled)) if len(labelled) >= 2 else None,
            "labelled_rows": int(sum(labelled)),
            "equipment_share": {k: round(v / max(picked.height, 1), 6) for k, v in per_eq.items()},
            "equipment_rows": per_eq, "embedding_version": emb_version,
            "embedding_dimension": int(picked["embedding"].list.len().max() or 0) if picked.height else 0,
            "clustering_version": clustering["version"] if clustering else None,
            "knn_version": knn["version"] if knn else None, "label_digest": labels.label_digest(ws),
            "data_sha256": sha, "vibra_version": __version__, "settings": settings.as_dict(),
            "readiness": {"status": ready["status"], "counts": ready["counts"],
                          "red": [f"{m['name']} ({m['scope']})" for m in ready["metrics"] if m["status"] == "red"]},
        })
    return meta


def versions(ws: Workspace) -> list[dict]:
    """Every snapshot, newest first: version, created_at, rows, data_sha256, readiness status, latest."""
    snapshots = store(ws)
    latest = snapshots.latest()
    out = []
    for version in snapshots.versions():
        meta = snapshots.read_manifest(version)
        out.append({"version": version, "created_at": meta.get("created_at"),
                    "rows": meta.get("rows"), "data_sha256": meta.get("data_sha256"),
                    "readiness": (meta.get("readiness") or {}).get("status"),
                    "latest": version == latest})
    return out


def show(ws: Workspace, version: str) -> dict:
    snapshots = store(ws)
    if version not in snapshots.versions():
        known = snapshots.versions()
        raise InputError(f"snapshot {version!r} not found; `vibra snapshot list` shows {known[:5] or 'none yet'}")
    return snapshots.read_manifest(version)


def read(ws: Workspace, version: str):
    """A snapshot's rows, after checking the data file against its recorded sha256."""
    show(ws, version)
    snapshots = store(ws)
    snapshots.load(version)
    return snapshots.read_frame(version, "data.parquet")


def gc(ws: Workspace, keep: int) -> list[str]:
    """Remove all but the newest ``keep`` snapshots; never the one ``latest`` names nor the newest that verifies."""
    return [Path(p).name for p in artifacts.collect(ws.artifacts, keep, ["snapshots"])["snapshots"]]
