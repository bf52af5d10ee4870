"""Defect assignment by nearest labelled neighbours, abstaining when they are far.

A window takes the defect most of its ``k`` nearest labelled windows carry (in
the embedding space), with ``confidence`` = the share of those neighbours that
agree. When the mean distance to the neighbours that voted for the winner is
larger than *that class's* radius, it is ``unknown``: it looks like nothing
anyone has labelled. Each class's radius is calibrated on its own labelled
windows: ``factor`` × the ``quantile`` of each window's mean distance to its
``k`` nearest *other* windows of the same class. One radius for every class
would be set by the widest class, and a tight, small class would then swallow
windows that belong to nothing labelled — or, set by the tightest, the big
classes would abstain on their own windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

UNKNOWN = "unknown"


@dataclass
class KnnModel:
    x: np.ndarray           # labelled embeddings (n, d) float32
    y: np.ndarray           # their defects (n,) str
    k: int
    radius: float           # the largest class radius (summary; kept for older readers)
    radii: dict[str, float] = field(default_factory=dict)  # per class; empty: ``radius`` for every class

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.y.tolist()))

    def radius_of(self, classes: np.ndarray) -> np.ndarray:
        return np.array([self.radii.get(c, self.radius) for c in classes], dtype=np.float64)


def _own_distances(x: np.ndarray, k: int) -> np.ndarray:
    """Each row's mean distance to its ``k`` nearest other rows (k clipped to the rows there are)."""
    from sklearn.neighbors import NearestNeighbors

    kk = min(k, x.shape[0] - 1)
    d, _ = NearestNeighbors(n_neighbors=kk + 1).fit(x).kneighbors(x)
    return d[:, 1:].mean(axis=1)


def fit(x: np.ndarray, y: np.ndarray, *, k: int, radius_quantile: float, radius_factor: float) -> KnnModel:
    """Store the labelled windows and calibrate one abstention radius per class.

    A class with a single labelled window takes the radius of all labelled windows together.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=object).astype(str)
    if x.shape[0] < 2:
        raise ValueError("at least two labelled windows are needed")
    pooled = float(np.quantile(_own_distances(x, k), radius_quantile) * radius_factor)
    radii = {}
    for c in sorted(set(y.tolist())):
        mine = x[y == c]
        radii[c] = (float(np.quantile(_own_distances(mine, k), radius_quantile) * radius_factor)
                    if mine.shape[0] >= 2 else pooled)
        radii[c] = max(radii[c], 1e-9)
    return KnnModel(x=x, y=y, k=k, radius=max(radii.values()), radii=radii)


def predict(model: KnnModel, x: np.ndarray, batch: int = 65_536) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(defect, confidence, mean distance to the winner's neighbours) per row.

    The defect is ``unknown`` when that distance is beyond the winner's radius.
    """
    from sklearn.neighbors import NearestNeighbors

    k = min(model.k, model.x.shape[0])
    nn = NearestNeighbors(n_neighbors=k).fit(model.x)
    classes = np.array(model.classes)
    radii = model.radius_of(classes)
    codes = np.searchsorted(classes, model.y)
    defect = np.empty(x.shape[0], dtype=object)
    confidence = np.empty(x.shape[0])
    distance = np.empty(x.shape[0])
    for b in range(0, x.shape[0], batch):
        d, idx = nn.kneighbors(np.asarray(x[b:b + batch], dtype=np.float32))
        votes = codes[idx]
        rows = votes.shape[0]
        counts = np.zeros((rows, len(classes)), dtype=np.int64)
        np.add.at(counts, (np.repeat(np.arange(rows), k), votes.ravel()), 1)
        best = counts.argmax(axis=1)
        voted = votes == best[:, None]
        mean_d = (d * voted).sum(axis=1) / voted.sum(axis=1)
        far = mean_d > radii[best]
        defect[b:b + batch] = np.where(far, UNKNOWN, classes[best])
        confidence[b:b + batch] = np.where(far, 0.0, counts.max(axis=1) / k)
        distance[b:b + batch] = mean_d
    return defect.astype(str), confidence, distance


def save(model: KnnModel, path) -> None:
    """The labelled set and its radii, as one ``.npz`` (no pickle)."""
    names = np.array(sorted(model.radii), dtype="U64")
    np.savez_compressed(path, x=model.x, y=model.y.astype("U64"), k=np.int64(model.k), radius=np.float64(model.radius),
                        radius_classes=names, radius_values=np.array([model.radii[c] for c in names], dtype=np.float64))


def load(path) -> KnnModel:
    with np.load(path, allow_pickle=False) as z:
        radii = ({str(c): float(v) for c, v in zip(z["radius_classes"], z["radius_values"])}
                 if "radius_classes" in z.files else {})
        return KnnModel(x=z["x"], y=z["y"].astype(str), k=int(z["k"]), radius=float(z["radius"]), radii=radii)
