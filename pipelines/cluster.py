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
from vibra.discovery.embedding import matrix as embedding_matrix
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


def _sizes(df, column: str, cluster_ids) -> dict:
    import polars as pl

    out: dict = {}
    for cid, name, n in df.group_by("cluster_id", column).agg(pl.len()).iter_rows():
        out.setdefault(int(cid), {})[name] = int(n)
    return {int(c): dict(sorted(out.get(int(c), {}).items())) for c in cluster_ids}


def _summaries(df, fleet_medians: dict) -> list[dict]:
    import polars as pl

    clusters = df.filter(pl.col("cluster_id") >= 0)
    members = _sizes(clusters, "equipment_id", sorted(set(clusters["cluster_id"].to_list())))
    med = clusters.group_by("cluster_id").agg(
        pl.len().alias("size"), pl.col("window_start").min().alias("first"), pl.col("window_start").max().alias("last"),
        *[pl.col(c).median().alias(c) for c in EVIDENCE_COLUMNS]).sort("cluster_id")
    out = []
    for row in med.iter_rows(named=True):
        items, signature = clustering.evidence({c: row[c] for c in EVIDENCE_COLUMNS}, fleet_medians)
        out.append({"cluster_id": int(row["cluster_id"]), "size": int(row["size"]),
                    "members": members[int(row["cluster_id"])], "first": row["first"].isoformat(),
                    "last": row["last"].isoformat(), "evidence": items, "signature": signature})
    return out


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
    return embedding_matrix(snapshots.read_frame(version, "data.parquet", columns=["embedding"])), version


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
    result = ClusterResult()
    t0 = time.perf_counter()
    say("reading embeddings")
    raw = read_windows(ws, ["embedding", "embedding_version", *EVIDENCE_COLUMNS, *quality.COLUMNS], since=since)
    # sensor faults join no cluster
    raw = quality.drop_sensor_faults(ws, raw).drop(set(quality.COLUMNS) - set(EVIDENCE_COLUMNS))
    if raw.height == 0:
        raise NotReadyError("no windows with an embedding yet" + (f" since {since:%Y-%m-%d}" if since else "")
                            + "; run `vibra ingest` first")
    df, emb_version, other = embedding.current_only(raw, settings.features.bands_hz)
    result.other_embedding_versions = other
    if df.height < 2:
        raise NotReadyError(f"{df.height} window(s) carry the current embedding {emb_version} ({other} carry an "
                            "older one); run `vibra features rebuild` to recompute them")
    x = embedding_matrix(df)
    result.windows = df.height
    result.seconds["read"] = round(time.perf_counter() - t0, 2)

    idx = clustering.stratified_sample(df["equipment_id"].to_numpy(), n_sample, cfg.seed)
    mcs = min_cluster_size if min_cluster_size else (cfg.min_cluster_size or clustering.auto_min_cluster_size(len(idx)))
    result.fitted_on = len(idx)
    t1 = time.perf_counter()
    say(f"UMAP of {len(idx):,} windows to {components} dimensions" if components else "HDBSCAN on the embedding")
    z = clustering.reduce(x[idx].astype(np.float64), components, cfg.umap_neighbors, cfg.seed)
    result.seconds["umap"] = round(time.perf_counter() - t1, 2)
    t2 = time.perf_counter()
    if components:
        say(f"HDBSCAN of {len(idx):,} points (min cluster size {mcs})")
    labels_fit = clustering.hdbscan(z, mcs)
    result.seconds["hdbscan"] = round(time.perf_counter() - t2, 2)
    t3 = time.perf_counter()
    labels = np.empty(df.height, dtype=np.int64)
    labels[idx] = labels_fit
    rest = np.setdiff1d(np.arange(df.height), idx, assume_unique=True)
    if rest.size:
        say(f"assigning {rest.size:,} more windows to their nearest sampled neighbours")
    labels[rest] = clustering.assign_nearest(x[idx], labels_fit, x[rest])
    result.seconds["assign"] = round(time.perf_counter() - t3, 2)

    cluster_ids = sorted(int(c) for c in np.unique(labels) if c >= 0)
    result.n_clusters = len(cluster_ids)
    result.noise_ratio = float(np.mean(labels < 0))
    result.validity = clustering.validity(z, labels_fit, cfg.seed)
    cents = clustering.centroids(x, labels)

    now = datetime.now(timezone.utc)
    params = {"since": since.isoformat() if since else None, "min_cluster_size": mcs, "umap_components": components,
              "umap_neighbors": cfg.umap_neighbors, "sample": n_sample, "seed": cfg.seed}
    digest = hashlib.sha256(json.dumps([params, labels.tolist()[:100000]]).encode()).hexdigest()[:8]
    version = artifacts.new_version(digest, now=now)
    result.version = version
    df = df.with_columns(cluster_id=pl.Series(labels, dtype=pl.Int64))

    fleet = {c: float(df[c].median()) for c in EVIDENCE_COLUMNS if df[c].null_count() < df.height}
    previous = latest_manifest(ws)
    drift = clustering.compare(
        {int(k): np.asarray(v) for k, v in (previous or {}).get("centroids", {}).items()}
        if previous and previous.get("embedding_version") == emb_version else {},
        cents, previous.get("validity") if previous else None, result.validity)
    result.drift = {"previous_version": previous["version"] if previous else None, **drift.as_dict()}
    ref, snap_version = _snapshot_embeddings(ws, emb_version)
    psi = clustering.psi(ref, x) if ref is not None and ref.shape[1] == x.shape[1] and len(ref) >= 10 else None
    result.psi_max = float(psi.max()) if psi is not None else None
    embeddings = artifacts.store(ws.artifacts, "embedding")
    names = (embeddings.read_manifest(emb_version).get("names") or []) if emb_version in embeddings.versions() else []
    psi_info = ({"snapshot_version": snap_version, "max": result.psi_max,
                 "per_dimension": dict(zip(names or range(len(psi)), np.round(psi, 4).tolist()))}
                if psi is not None else {"snapshot_version": snap_version,
                                         "note": "no training snapshot with this embedding yet (`vibra snapshot`)"})

    proj_idx = idx if len(idx) <= PROJECTION_POINTS else np.sort(
        np.random.default_rng(cfg.seed).choice(idx, PROJECTION_POINTS, replace=False))
    pos = np.searchsorted(idx, proj_idx)
    xy = clustering.projection_2d(z)[pos]
    say("writing the clusters table")
    out = df.select(*KEYS, "window_start", "cluster_id").with_columns(clustering_version=pl.lit(version))
    tables.write_clusters(ws, out, version)
    manifest = {
        "version": version, "created_at": now.isoformat(), "embedding_version": emb_version,
        "parameters": params, "windows": df.height, "fitted_on": len(idx),
        "other_embedding_versions_skipped": other, "n_clusters": result.n_clusters,
        "noise_ratio": result.noise_ratio, "validity": result.validity,
        "validity_metric": "silhouette (clustered sample, reduced space)",
        "sizes": {str(c): int(np.sum(labels == c)) for c in cluster_ids},
        "centroids": {str(c): np.round(v, 5).tolist() for c, v in cents.items()},
        "clusters": _summaries(df, fleet), "fleet_medians": fleet,
        "projection": {"method": "PCA of the reduced space" if components else "PCA of the embedding",
                       "x": np.round(xy[:, 0], 4).tolist(), "y": np.round(xy[:, 1], 4).tolist(),
                       "cluster_id": labels[proj_idx].tolist(),
                       "equipment_id": df["equipment_id"].gather(proj_idx).to_list()},
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
