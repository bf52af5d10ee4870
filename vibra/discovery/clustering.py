"""Fault-signature discovery: UMAP + HDBSCAN on window embeddings, and what a clustering says.

Pure functions over arrays; the ``cluster`` pipeline reads the lake and writes
the results. The clustering is fitted on a sample (stratified by a group, e.g.
equipment) and every other window is assigned by a vote of its nearest sampled
windows in the embedding space ("nearest exemplar"), which keeps 200,000 windows
affordable: UMAP and HDBSCAN only ever see the sample.

HDBSCAN is scikit-learn's (``sklearn.cluster.HDBSCAN``): it gives the same
clusters as the ``hdbscan`` package and is faster; new points are assigned by
the nearest-exemplar vote above rather than ``approximate_predict``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

# Indicators whose cluster median is compared with the fleet median, and what a
# large ratio on each means. Ordered: the first that stands out names the signature.
EVIDENCE = (
    ("env_bpfo", "outer-race signature"),
    ("env_bpfi", "inner-race signature"),
    ("env_bsf", "rolling-element signature"),
    ("env_ftf", "cage signature"),
    ("order_1x", "1× running speed: imbalance signature"),
    ("order_2x", "2× running speed: misalignment / looseness signature"),
    ("order_3x", "3× running speed: looseness signature"),
    ("kurtosis", "impulsive (high kurtosis)"),
    ("crest_factor", "impulsive (high crest factor)"),
    ("rms", "high vibration level"),
)
STANDS_OUT = 2.0  # a cluster median this many times the fleet median stands out


def auto_min_cluster_size(n: int) -> int:
    return int(max(15, round(0.01 * n)))


def stratified_sample(groups: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of about ``n`` rows, the same share from every group (all rows when there are fewer).

    Small groups are kept whole, and what they leave over is shared among the
    larger ones, so one big machine cannot crowd out the others.
    """
    total = groups.shape[0]
    if total <= n:
        return np.arange(total)
    rng = np.random.default_rng(seed)
    names, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    quota = np.zeros(len(names), dtype=np.int64)
    left, open_ = n, np.ones(len(names), dtype=bool)
    while left > 0 and open_.any():
        share = max(1, left // int(open_.sum()))
        for g in np.flatnonzero(open_):
            take = min(share, counts[g] - quota[g], left)
            quota[g] += take
            left -= take
            if quota[g] >= counts[g]:
                open_[g] = False
            if left <= 0:
                break
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    picked = [rng.choice(order[starts[g]:starts[g] + counts[g]], size=quota[g], replace=False)
              for g in range(len(names)) if quota[g]]
    return np.sort(np.concatenate(picked))


def reduce(x: np.ndarray, components: int, neighbors: int, seed: int) -> np.ndarray:
    """UMAP of ``x`` to ``components`` dimensions (``components == 0``: ``x`` itself)."""
    if components == 0:
        return x
    import warnings

    umap = _umap()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden by setting random_state": expected
        model = umap.UMAP(n_components=components, n_neighbors=min(neighbors, x.shape[0] - 1), min_dist=0.0,
                          random_state=seed, n_jobs=1)
        return model.fit_transform(x).astype(np.float64)


NN_DESCENT_FROM = 4096  # umap-learn's own threshold: from this many points on, UMAP runs pynndescent's NN-descent


def warm_up(neighbors: int) -> threading.Thread:
    """Compile pynndescent's NN-descent in a background thread, while the caller does other work.

    From ``NN_DESCENT_FROM`` points on, UMAP builds its neighbour graph with NN-descent, whose numba
    functions take the distance function as an argument: numba cannot cache them ("dynamic globals"), so
    every process compiles them on first use — 20–30 CPU-s, the larger part of a warm ``vibra cluster``
    (BENCHMARKS.md). A process that clusters after other work (``vibra demo``) starts this first: the
    compile (about half of it in LLVM, outside the GIL) then overlaps that work, and UMAP finds the
    functions compiled. The thread runs UMAP's own neighbour search on 4,096 random points, the types
    UMAP passes (float32 rows, Euclidean); a failure there only means UMAP compiles as before.
    """
    def run() -> None:
        try:
            import warnings

            from sklearn.utils import check_random_state

            umap = _umap()
            x = np.random.default_rng(0).standard_normal((NN_DESCENT_FROM, 8)).astype(np.float32)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                umap.umap_.nearest_neighbors(x, neighbors, "euclidean", {}, False, check_random_state(0),
                                             low_memory=True, use_pynndescent=True, n_jobs=1, verbose=False)
        except Exception:  # noqa: BLE001 - a warm-up: whatever fails here is compiled (or fails) in UMAP as before
            pass

    thread = threading.Thread(target=run, name="vibra-nn-descent-warm-up", daemon=True)
    thread.start()
    return thread


_CACHED = False


def _umap():
    """``umap``, with the compiled code of its numba functions and pynndescent's cached on disk as ours is.

    Most of them are declared without ``cache=True``, so every fresh process compiled them again (a
    ``vibra cluster`` spent most of its first minute compiling). Turning caching on before their first
    call stores them where numba caches ours (``NUMBA_CACHE_DIR``, which the CLI points at the user's cache
    folder, else next to their sources); a function numba cannot cache is compiled as before."""
    global _CACHED
    import sys
    import warnings

    import umap
    from numba.core.dispatcher import Dispatcher

    if not _CACHED:
        for name, module in list(sys.modules.items()):
            if module is None or name.split(".")[0] not in ("umap", "pynndescent"):
                continue
            for value in list(vars(module).values()):
                if isinstance(value, Dispatcher) and type(value._cache).__name__ == "NullCache":
                    value.enable_caching()
        warnings.filterwarnings("ignore", message="Cannot cache compiled function")  # numba's: compiled as before
        _CACHED = True
    return umap


def hdbscan(z: np.ndarray, min_cluster_size: int) -> np.ndarray:
    """HDBSCAN labels (-1 = noise)."""
    from sklearn.cluster import HDBSCAN

    if z.shape[0] < 2:
        return np.full(z.shape[0], -1)
    return HDBSCAN(min_cluster_size=min(min_cluster_size, z.shape[0]), copy=True).fit_predict(z)


def assign_nearest(x_fit: np.ndarray, labels_fit: np.ndarray, x_new: np.ndarray, k: int = 5) -> np.ndarray:
    """Cluster of each new row: the majority of its ``k`` nearest fitted rows (noise if noise wins)."""
    from sklearn.neighbors import NearestNeighbors

    if x_new.shape[0] == 0:
        return np.empty(0, dtype=np.int64)
    k = min(k, x_fit.shape[0])
    _, idx = NearestNeighbors(n_neighbors=k).fit(x_fit).kneighbors(x_new)
    votes = labels_fit[idx] + 1  # shift noise (-1) to 0 for bincount
    width = int(labels_fit.max()) + 2
    counts = np.zeros((votes.shape[0], width), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(votes.shape[0]), k), votes.ravel()), 1)
    return counts.argmax(axis=1) - 1


def validity(z: np.ndarray, labels: np.ndarray, seed: int, max_points: int = 5000) -> float | None:
    """Silhouette of the clustered (non-noise) rows in the space HDBSCAN saw; None with < 2 clusters."""
    from sklearn.metrics import silhouette_score

    keep = labels >= 0
    if len(np.unique(labels[keep])) < 2:
        return None
    return float(silhouette_score(z[keep], labels[keep], sample_size=min(max_points, int(keep.sum())),
                                  random_state=seed))


@dataclass
class Fit:
    """What :func:`fit` found for ``n`` windows.

    ``labels``: (n,) cluster id of every window, -1 = noise; ``sample``: sorted indices of the windows UMAP
    and HDBSCAN saw; ``reduced``: (len(sample), d) those windows in the reduced space (the embedding itself
    when no reduction); ``validity``: silhouette of the clustered sample in the reduced space (None under 2
    clusters); ``centroids``: median embedding of each cluster; ``seconds``: per step.
    """

    labels: np.ndarray
    sample: np.ndarray
    reduced: np.ndarray
    min_cluster_size: int
    validity: float | None
    centroids: dict[int, np.ndarray]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def cluster_ids(self) -> list[int]:
        return sorted(int(c) for c in np.unique(self.labels) if c >= 0)

    @property
    def noise_ratio(self) -> float:
        return float(np.mean(self.labels < 0))

    def sizes(self) -> dict[int, int]:
        return {c: int(np.sum(self.labels == c)) for c in self.cluster_ids}

    def projection(self, max_points: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(window indices, (m, 2) positions): the 2-D view of at most ``max_points`` sampled windows."""
        picked = self.sample if len(self.sample) <= max_points else np.sort(
            np.random.default_rng(seed).choice(self.sample, max_points, replace=False))
        return picked, projection_2d(self.reduced)[np.searchsorted(self.sample, picked)]


def fit(x: np.ndarray, groups: np.ndarray, *, sample: int, components: int, neighbors: int, seed: int,
        min_cluster_size: int | None = None, progress: Callable[[str], None] | None = None) -> Fit:
    """Cluster the rows of ``x`` (n × embedding dims): UMAP + HDBSCAN on a sample of about ``sample`` rows
    stratified by ``groups`` (n,), then every other row assigned by its nearest sampled rows.

    ``components`` 0 skips UMAP (HDBSCAN on the embedding); ``min_cluster_size`` None: 1 % of the sample,
    at least 15. ``progress`` is told each step in a line.
    """
    say = progress or (lambda message: None)
    seconds: dict[str, float] = {}
    idx = stratified_sample(groups, sample, seed)
    mcs = min_cluster_size or auto_min_cluster_size(len(idx))
    t = time.perf_counter()
    say(f"UMAP of {len(idx):,} windows to {components} dimensions" if components else "HDBSCAN on the embedding")
    z = reduce(x[idx].astype(np.float64), components, neighbors, seed)
    seconds["umap"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    if components:
        say(f"HDBSCAN of {len(idx):,} points (min cluster size {mcs})")
    labels_fit = hdbscan(z, mcs)
    seconds["hdbscan"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    labels = np.empty(x.shape[0], dtype=np.int64)
    labels[idx] = labels_fit
    rest = np.setdiff1d(np.arange(x.shape[0]), idx, assume_unique=True)
    if rest.size:
        say(f"assigning {rest.size:,} more windows to their nearest sampled neighbours")
    labels[rest] = assign_nearest(x[idx], labels_fit, x[rest])
    seconds["assign"] = round(time.perf_counter() - t, 2)
    return Fit(labels, idx, z, mcs, validity(z, labels_fit, seed), centroids(x, labels), seconds)


def centroids(x: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    """Median embedding of every cluster (noise excluded)."""
    return {int(c): np.median(x[labels == c], axis=0) for c in np.unique(labels) if c >= 0}


def projection_2d(z: np.ndarray) -> np.ndarray:
    """A 2-D view for the report: the first two principal components of the reduced space."""
    if z.shape[1] <= 2:
        return np.pad(z, ((0, 0), (0, 2 - z.shape[1])))
    zc = z - z.mean(axis=0)
    _, _, vt = np.linalg.svd(zc, full_matrices=False)
    return zc @ vt[:2].T


def evidence(cluster_medians: dict[str, float], fleet_medians: dict[str, float]) -> tuple[list[dict], str]:
    """Indicators whose cluster median stands out against the fleet median, and the signature they name."""
    items = []
    for name, meaning in EVIDENCE:
        c, f = cluster_medians.get(name), fleet_medians.get(name)
        if c is None or f is None or not np.isfinite(c) or not np.isfinite(f) or f <= 0:
            continue
        ratio = c / f
        if ratio >= STANDS_OUT:
            items.append({"indicator": name, "ratio_to_fleet_median": round(float(ratio), 2), "meaning": meaning})
    items.sort(key=lambda e: -e["ratio_to_fleet_median"])
    if not items:
        return [], "close to the fleet median (no indicator stands out)"
    top = items[0]
    return items, f"{top['meaning']} ({top['indicator']} {top['ratio_to_fleet_median']:g}× fleet median)"


def summaries(df, fleet_medians: dict[str, float]) -> list[dict]:
    """One summary per cluster of ``df`` (a Polars frame of windows: ``cluster_id, equipment_id, window_start``
    and the :data:`EVIDENCE` indicators): size, windows per machine, first and last window, the indicators
    whose median stands out against ``fleet_medians`` and the signature they name. Noise is left out."""
    import polars as pl

    columns = sorted({name for name, _ in EVIDENCE})
    clusters = df.filter(pl.col("cluster_id") >= 0)
    members: dict[int, dict] = {}
    for cid, name, n in clusters.group_by("cluster_id", "equipment_id").agg(pl.len()).iter_rows():
        members.setdefault(int(cid), {})[name] = int(n)
    med = clusters.group_by("cluster_id").agg(
        pl.len().alias("size"), pl.col("window_start").min().alias("first"), pl.col("window_start").max().alias("last"),
        *[pl.col(c).median().alias(c) for c in columns]).sort("cluster_id")
    out = []
    for row in med.iter_rows(named=True):
        items, signature = evidence({c: row[c] for c in columns}, fleet_medians)
        out.append({"cluster_id": int(row["cluster_id"]), "size": int(row["size"]),
                    "members": dict(sorted(members[int(row["cluster_id"])].items())),
                    "first": row["first"].isoformat(), "last": row["last"].isoformat(),
                    "evidence": items, "signature": signature})
    return out


@dataclass
class Drift:
    matched: list[dict]
    births: list[int]
    deaths: list[int]
    mean_shift: float | None
    max_shift: float | None
    validity_change: float | None

    def as_dict(self) -> dict:
        return {"matched": self.matched, "births": self.births, "deaths": self.deaths,
                "n_births": len(self.births), "n_deaths": len(self.deaths), "mean_centroid_shift": self.mean_shift,
                "max_centroid_shift": self.max_shift, "validity_change": self.validity_change}


def compare(previous: dict[int, np.ndarray], current: dict[int, np.ndarray], prev_validity: float | None,
            cur_validity: float | None, max_match_distance: float = 1.0) -> Drift:
    """Match clusters of two clusterings by centroid (Hungarian, embedding space).

    A pair farther apart than ``max_match_distance`` (embedding units; the
    embedding is normalised, so 1 is about one typical spread of an indicator)
    is no match: the current cluster is a birth and the previous one a death.
    """
    from scipy.optimize import linear_sum_assignment

    prev_ids, cur_ids = sorted(previous), sorted(current)
    matched: list[dict] = []
    if prev_ids and cur_ids:
        cost = np.array([[float(np.linalg.norm(current[c] - previous[p])) for p in prev_ids] for c in cur_ids])
        rows, cols = linear_sum_assignment(cost)
        for r, c in zip(rows, cols):
            if cost[r, c] <= max_match_distance:
                matched.append({"cluster_id": cur_ids[r], "previous_cluster_id": prev_ids[c],
                                "centroid_shift": round(float(cost[r, c]), 4)})
    births = [c for c in cur_ids if c not in {m["cluster_id"] for m in matched}]
    deaths = [p for p in prev_ids if p not in {m["previous_cluster_id"] for m in matched}]
    shifts = [m["centroid_shift"] for m in matched]
    change = None if prev_validity is None or cur_validity is None else round(cur_validity - prev_validity, 4)
    return Drift(matched, births, deaths, float(np.mean(shifts)) if shifts else None,
                 float(np.max(shifts)) if shifts else None, change)


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> np.ndarray:
    """Population stability index per column of ``current`` against ``reference``.

    Bins are the reference's deciles; shares are floored at 1e-4 so an empty bin
    does not make the index infinite. Rule of thumb: < 0.1 stable, 0.1–0.25
    moderate shift, > 0.25 major shift.
    """
    out = np.zeros(reference.shape[1])
    for j in range(reference.shape[1]):
        edges = np.unique(np.quantile(reference[:, j], np.linspace(0, 1, bins + 1)[1:-1]))
        ref = np.bincount(np.searchsorted(edges, reference[:, j], side="right"), minlength=len(edges) + 1)
        cur = np.bincount(np.searchsorted(edges, current[:, j], side="right"), minlength=len(edges) + 1)
        p = np.maximum(ref / max(ref.sum(), 1), 1e-4)
        q = np.maximum(cur / max(cur.sum(), 1), 1e-4)
        out[j] = float(np.sum((q - p) * np.log(q / p)))
    return out


def drift_since(previous: dict | None, embedding_version: str, now: Fit) -> dict:
    """:func:`compare` of ``now`` with the previous clustering's manifest (``version``, ``centroids``,
    ``validity``, ``embedding_version``); centroids of another embedding are not comparable (all births)."""
    before = ({int(k): np.asarray(v) for k, v in previous.get("centroids", {}).items()}
              if previous and previous.get("embedding_version") == embedding_version else {})
    drift = compare(before, now.centroids, previous.get("validity") if previous else None, now.validity)
    return {"previous_version": previous["version"] if previous else None, **drift.as_dict()}


def psi_against(reference: np.ndarray | None, current: np.ndarray, min_rows: int = 10) -> np.ndarray | None:
    """:func:`psi` of ``current`` against a reference of the same width and at least ``min_rows`` rows,
    else None (no comparable reference)."""
    if reference is None or reference.shape[1] != current.shape[1] or len(reference) < min_rows:
        return None
    return psi(reference, current)
