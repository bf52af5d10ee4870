"""The cluster stage: UMAP + HDBSCAN over the lake's window embeddings, the clusters table and manifest.

``run`` fits on a stratified sample, assigns every other window to the nearest
sampled ones, writes ``data/lake/clusters/date=/equipment=/part-<version>.parquet``
(``cluster_id`` per window, -1 = noise), then the manifest under
the clustering store's new version (``artifacts/models/clustering/<version>/``) and
its ``latest`` pointer, and only then removes the previous clustering's files.
Readers select the version ``latest`` names, so a crash at any point leaves one
whole clustering.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import numpy as np

from vibra.discovery import clustering, embedding

from vibra.storage import metrics

from vibra.ingest import quality
from vibra.discovery.embedding import clustering_view, matrix as embedding_matrix
from vibra.errors import NotReadyError
from vibra.settings import Settings
from vibra.storage import artifacts, tables
from vibra.storage.tables import WINDOW_KEYS, read_clusters, read_windows  # noqa: F401 - read_clusters re-exported
from vibra.workspace import Workspace

from vibra_pipelines.runs import StageResult, recorded

KEYS = list(WINDOW_KEYS)
EVIDENCE_COLUMNS = sorted({name for name, _ in clustering.EVIDENCE})
PROJECTION_POINTS = 3000


def clustering_store(ws: Workspace) -> artifacts.VersionedStore:
    return artifacts.store(ws.artifacts, "clustering")


def latest_manifest(ws: Workspace) -> dict | None:
    return clustering_store(ws).latest_manifest()


@dataclass
class ClusterResult(StageResult):
    version: str | None = None
    windows: int = 0
    fitted_on: int = 0
    other_embedding_versions: int = 0
    n_clusters: int = 0
    noise_ratio: float | None = None
    validity: float | None = None
    drift: dict = field(default_factory=dict)
    psi_max: float | None = None
    seconds: dict = field(default_factory=dict)
    knn: dict = field(default_factory=dict)  # filled by the caller's kNN retrain (defects.after_cluster)
    # (windows with KEYS, window_start, embedding; embedding version): what the kNN retrain works on
    population: tuple | None = field(default=None, repr=False, compare=False)

    def counts(self) -> dict:
        return {"windows": self.windows, "clusters": self.n_clusters, "noise_ratio": self.noise_ratio,
                "version": self.version}


def _snapshot_embeddings(ws: Workspace, emb_version: str) -> tuple[np.ndarray | None, str | None]:
    """Embeddings of the latest training snapshot (for the PSI), if one exists with this embedding version."""

    snapshots = artifacts.store(ws.artifacts, "snapshots")
    version = snapshots.latest()
    if not version:
        return None, None
    folder = snapshots.root / version
    meta = snapshots.read_manifest(version)
    if meta.get("embedding_version") != emb_version or not (folder / "data.parquet").exists():
        return None, version
    return clustering_view(embedding_matrix(snapshots.read_frame(version, "data.parquet", columns=["embedding"]))), version


def _read(ws: Workspace, settings: Settings, since: datetime | None):
    """(windows with the current embedding, that embedding's version, windows of older versions skipped)."""
    raw = read_windows(ws, ["embedding", "embedding_version", *EVIDENCE_COLUMNS, *quality.COLUMNS], since=since)
    # sensor faults join no cluster
    raw = quality.drop_sensor_faults(ws, raw).drop(set(quality.COLUMNS) - set(EVIDENCE_COLUMNS))
    if raw.height == 0:
        raise NotReadyError("no windows with an embedding yet" + (f" since {since:%Y-%m-%d}" if since else "")
                            + "; run `vibra ingest` first")
    df, emb_version, other = embedding.current_only(raw, settings.features.bands_hz)
    if df.height < 2:
        raise NotReadyError(f"{df.height} window(s) carry the current embedding {emb_version} ({other} carry an "
                            "older one); run `vibra features rebuild` to recompute them")
    return df, emb_version, other


def _psi(ws: Workspace, emb_version: str, x: np.ndarray) -> dict:
    """The embedding's PSI against the latest training snapshot, per dimension, for the manifest."""
    ref, snap_version = _snapshot_embeddings(ws, emb_version)
    psi = clustering.psi_against(ref, x)
    if psi is None:
        return {"snapshot_version": snap_version, "note": "no training snapshot with this embedding yet (`vibra snapshot`)"}
    embeddings = artifacts.store(ws.artifacts, "embedding")
    names = (embeddings.read_manifest(emb_version).get("names") or []) if emb_version in embeddings.versions() else []
    return {"snapshot_version": snap_version, "max": float(psi.max()),
            "per_dimension": dict(zip(names or range(len(psi)), np.round(psi, 4).tolist()))}


@recorded("cluster")
def run(ws: Workspace, settings: Settings, *, since: datetime | None = None, min_cluster_size: int | None = None,
        umap_components: int | None = None, sample: int | None = None,
        progress: Callable[[str], None] | None = None) -> ClusterResult:
    """Cluster the windows' embeddings (since ``since``); write the clusters table and the manifest."""
    import polars as pl

    say = progress or (lambda message: None)
    cfg = settings.cluster
    components = cfg.umap_components if umap_components is None else umap_components
    n_sample = cfg.sample if sample is None else sample
    t0 = time.perf_counter()
    say("reading embeddings")
    df, emb_version, other = _read(ws, settings, since)
    x = clustering_view(embedding_matrix(df))
    read_s = round(time.perf_counter() - t0, 2)
    fit = clustering.fit(x, df["equipment_id"].to_numpy(), sample=n_sample, components=components,
                         neighbors=cfg.umap_neighbors, seed=cfg.seed,
                         min_cluster_size=min_cluster_size or cfg.min_cluster_size, progress=say)

    now = datetime.now(timezone.utc)
    params = {"since": since.isoformat() if since else None, "min_cluster_size": fit.min_cluster_size,
              "umap_components": components, "umap_neighbors": cfg.umap_neighbors, "sample": n_sample, "seed": cfg.seed}
    version = artifacts.new_version(
        hashlib.sha256(json.dumps([params, fit.labels.tolist()[:100000]]).encode()).hexdigest()[:8], now=now)
    df = df.with_columns(cluster_id=pl.Series(fit.labels, dtype=pl.Int64))
    fleet = {c: float(df[c].median()) for c in EVIDENCE_COLUMNS if df[c].null_count() < df.height}
    picked, xy = fit.projection(PROJECTION_POINTS, cfg.seed)
    result = ClusterResult(version=version, windows=df.height, fitted_on=len(fit.sample),
                           other_embedding_versions=other, n_clusters=len(fit.cluster_ids),
                           noise_ratio=fit.noise_ratio, validity=fit.validity,
                           drift=clustering.drift_since(latest_manifest(ws), emb_version, fit),
                           seconds={"read": read_s, **fit.seconds})
    psi_info = _psi(ws, emb_version, x)
    result.psi_max = psi_info.get("max")
    say("writing the clusters table")
    tables.write_clusters(ws, df.select(*KEYS, "window_start", "cluster_id").with_columns(
        clustering_version=pl.lit(version)), version)
    manifest = {
        "version": version, "created_at": now.isoformat(), "embedding_version": emb_version,
        "parameters": params, "windows": df.height, "fitted_on": len(fit.sample),
        "other_embedding_versions_skipped": other, "n_clusters": result.n_clusters,
        "noise_ratio": result.noise_ratio, "validity": result.validity,
        "validity_metric": "silhouette (clustered sample, reduced space)",
        "sizes": {str(c): n for c, n in fit.sizes().items()},
        "centroids": {str(c): np.round(v, 5).tolist() for c, v in fit.centroids.items()},
        "clusters": clustering.summaries(df, fleet), "fleet_medians": fleet,
        "projection": {"method": "PCA of the reduced space" if components else "PCA of the embedding",
                       "x": np.round(xy[:, 0], 4).tolist(), "y": np.round(xy[:, 1], 4).tolist(),
                       "cluster_id": fit.labels[picked].tolist(),
                       "equipment_id": df["equipment_id"].gather(picked).to_list()},
        "drift": result.drift, "psi": psi_info, "seconds": result.seconds,
    }
    clustering_store(ws).put(version, manifest)
    tables.drop_superseded_clusters(ws, version)
    _gauges(ws, manifest)
    result.seconds["total"] = round(time.perf_counter() - t0, 2)
    # the windows just read are the population the caller's kNN retrain works on: no second read
    result.population = (df.select(*KEYS, "window_start", "embedding"), emb_version)
    return result


def _gauges(ws: Workspace, manifest: dict) -> None:
    drift = manifest["drift"]
    fams = [
        metrics.gauge("vibra_clustering_noise_ratio", "Share of windows in no cluster (latest clustering).",
                      manifest["noise_ratio"]),
        metrics.gauge("vibra_clustering_clusters", "Clusters found by the latest clustering.", manifest["n_clusters"]),
        metrics.gauge("vibra_clustering_validity", "Silhouette of the latest clustering (NaN with < 2 clusters).",
                      manifest["validity"] if manifest["validity"] is not None else float("nan")),
        metrics.gauge("vibra_clustering_births", "Clusters with no match in the previous clustering.", drift["n_births"]),
        metrics.gauge("vibra_clustering_deaths", "Previous clusters with no match now.", drift["n_deaths"]),
        metrics.gauge("vibra_clustering_centroid_shift_max", "Largest matched centroid shift (embedding units).",
                      drift["max_centroid_shift"] if drift["max_centroid_shift"] is not None else float("nan")),
        metrics.gauge("vibra_embedding_psi_max", "Largest per-dimension PSI against the latest training snapshot.",
                      manifest["psi"].get("max") if manifest["psi"].get("max") is not None else float("nan")),
    ]
    metrics.update(ws.metrics_path, gauges=fams)
