"""Defect assignment by nearest labelled neighbours, abstaining when they are far.

A window takes the defect most of its ``k`` nearest labelled windows carry (in
the embedding space), with ``confidence`` = the share of those neighbours that
agree. When the mean distance to them is larger than the radius, it is
``unknown``: it looks like nothing anyone has labelled. The radius is
calibrated on the labelled set itself: ``factor`` × the ``quantile`` of each
labelled window's mean distance to its ``k`` nearest *other* labelled windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UNKNOWN = "unknown"


@dataclass
class KnnModel:
    x: np.ndarray           # labelled embeddings (n, d) float32
    y: np.ndarray           # their defects (n,) str
    k: int
    radius: float

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.y.tolist()))


def fit(x: np.ndarray, y: np.ndarray, *, k: int, radius_quantile: float, radius_factor: float) -> KnnModel:
    from sklearn.neighbors import NearestNeighbors

    x = np.ascontiguousarray(x, dtype=np.float32)
    kk = min(k, x.shape[0] - 1)
    if kk < 1:
        raise ValueError("at least two labelled windows are needed")
    d, _ = NearestNeighbors(n_neighbors=kk + 1).fit(x).kneighbors(x)
    own = d[:, 1:].mean(axis=1)
    radius = float(np.quantile(own, radius_quantile) * radius_factor)
    return KnnModel(x=x, y=np.asarray(y, dtype=object).astype(str), k=k, radius=max(radius, 1e-9))


def predict(model: KnnModel, x: np.ndarray, batch: int = 65_536) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(defect, confidence, mean neighbour distance) per row; defect ``unknown`` beyond the radius."""
    from sklearn.neighbors import NearestNeighbors

    k = min(model.k, model.x.shape[0])
    nn = NearestNeighbors(n_neighbors=k).fit(model.x)
    classes = np.array(model.classes)
    codes = np.searchsorted(classes, model.y)
    defect = np.empty(x.shape[0], dtype=object)
    confidence = np.empty(x.shape[0])
    distance = np.empty(x.shape[0])
    for b in range(0, x.shape[0], batch):
        d, idx = nn.kneighbors(np.asarray(x[b:b + batch], dtype=np.float32))
        votes = codes[idx]
        counts = np.zeros((votes.shape[0], len(classes)), dtype=np.int64)
        np.add.at(counts, (np.repeat(np.arange(votes.shape[0]), k), votes.ravel()), 1)
        best = counts.argmax(axis=1)
        mean_d = d.mean(axis=1)
        far = mean_d > model.radius
        defect[b:b + batch] = np.where(far, UNKNOWN, classes[best])
        confidence[b:b + batch] = np.where(far, 0.0, counts.max(axis=1) / k)
        distance[b:b + batch] = mean_d
    return defect.astype(str), confidence, distance


def save(model: KnnModel, path) -> None:
    """The labelled set and its radius, as one ``.npz`` (no pickle)."""
    np.savez_compressed(path, x=model.x, y=model.y.astype("U64"), k=np.int64(model.k), radius=np.float64(model.radius))


def load(path) -> KnnModel:
    with np.load(path, allow_pickle=False) as z:
        return KnnModel(x=z["x"], y=z["y"].astype(str), k=int(z["k"]), radius=float(z["radius"]))
