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

A class's own spread, measured on one recording, is narrow: the same defect at another load or
size lands just outside it. So each radius is at least ``share`` × the distance from the class's
centroid to the nearest other class's centroid (part of the way towards the nearest labelled
neighbour class, never past half-way). ``share`` is not a constant: it is calibrated on the
labelled windows themselves by leaving each class out in turn — the largest share (0 to 0.5 in
steps of 0.05) at which every left-out class is still abstained on in ``ABSTAIN_HELD_OUT``
(95 %) of its windows by a model of the others. With fewer than three labelled classes nothing
can be left out and still leave a centroid distance, so ``share`` is 0.

Absence is not a class (issue 31). A bearing fault class (a name that names a family: ``outer_race``,
``inner_race``, ``ball``, e.g. ``bearing_ball``) is known by its envelope lines. A labelled window of
such a class whose recording carries no bearing evidence reaching the floor (``evidence`` False: every
family of its recording-level evidence below ``vibra.diagnosis.bearing.FLOOR``) is not learned — it
would teach the kNN that "no race lines" means "ball" — and is counted in ``unlearned``. A window
without evidence is never given a bearing class: where the vote names one, the answer is
``no_fault_evidence`` (the verdict's answer of the same meaning), not the class. Classes that are not
bearing families (``normal``, ``imbalance``, ``looseness`` …) are learned and answered as before: a
healthy or unbalanced machine is recognised by what it has, not by missing envelope lines.

The physics vouches for the family (issue 31). A window beyond its class's radius is ``unknown`` because
nothing labelled looks like it — unless its recording's own evidence names a bearing family (the verdict's
rule: a family at the floor and ``RATIO`` × the next, ``named``) and the labelled class its neighbours
vote for is of that very family, no farther than the class's ``reach``: its centroid's distance to the
nearest other labelled class's centroid (at least its radius; a class labelled alone vouches no further
than its radius). Then the class *is* labelled, only at another load or fault size than the recording in
front of it: a class labelled on one recording has that recording's spread alone, and the radius would
refuse the same defect one size up. The answer is the class, its confidence the share of votes. A vote for
a class of another family, a recording whose evidence names none, or a window beyond the reach stays
``unknown`` (a class nobody labelled is still abstained on, and a verdict's false positive far from every
labelled example is not repeated). A model saved before ``reach`` existed vouches for nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from vibra.diagnosis.bearing import NO_EVIDENCE  # noqa: F401 - knn.NO_EVIDENCE, the answer the gate gives
from vibra.physics.bearing import FAMILIES

UNKNOWN = "unknown"
_FAMILY_RE = re.compile(r"(?:^|_)(" + "|".join(FAMILIES) + r")(?:$|_)")
ABSTAIN_HELD_OUT = 0.95  # a class no one labelled must be abstained on this often (the safety side)
SHARES = tuple(round(0.05 * i, 2) for i in range(11))  # 0 … 0.5: never past half-way to the next class
CALIBRATION_ROWS = 5_000  # held-out windows used per class in the calibration (a seeded subsample)


@dataclass
class KnnModel:
    x: np.ndarray           # labelled embeddings (n, d) float32
    y: np.ndarray           # their defects (n,) str
    k: int
    radius: float           # the largest class radius (summary; kept for older readers)
    radii: dict[str, float] = field(default_factory=dict)  # per class; empty: ``radius`` for every class
    centroid_share: float = 0.0  # radii are at least this × the distance to the nearest other class's centroid
    unlearned: dict[str, int] = field(default_factory=dict)  # bearing-class windows left out: no evidence
    reach: dict[str, float] = field(default_factory=dict)  # how far the recording's named family vouches (per class)

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.y.tolist()))

    def radius_of(self, classes: np.ndarray) -> np.ndarray:
        return np.array([self.radii.get(c, self.radius) for c in classes], dtype=np.float64)


def bearing_family(defect: str) -> str | None:
    """The bearing fault family a class name names (``bearing_outer_race`` -> ``outer_race``), or None."""
    m = _FAMILY_RE.search(str(defect))
    return m.group(1) if m else None


def is_bearing_class(y: np.ndarray) -> np.ndarray:
    """Per label: whether it names a bearing fault family."""
    names, inverse = np.unique(np.asarray(y, dtype=str), return_inverse=True)
    return np.array([bearing_family(n) is not None for n in names], dtype=bool)[inverse.ravel()]


def _own_distances(x: np.ndarray, k: int) -> np.ndarray:
    """Each row's mean distance to its ``k`` nearest other rows (k clipped to the rows there are)."""
    from sklearn.neighbors import NearestNeighbors

    kk = min(k, x.shape[0] - 1)
    d, _ = NearestNeighbors(n_neighbors=kk + 1).fit(x).kneighbors(x)
    return d[:, 1:].mean(axis=1)


def _own_radii(x: np.ndarray, y: np.ndarray, k: int, radius_quantile: float, radius_factor: float) -> dict[str, float]:
    """``factor`` × the ``quantile`` of each class's own neighbour distances (pooled for one-window classes)."""
    pooled = float(np.quantile(_own_distances(x, k), radius_quantile) * radius_factor)
    radii = {}
    for c in sorted(set(y.tolist())):
        mine = x[y == c]
        radii[c] = max(float(np.quantile(_own_distances(mine, k), radius_quantile) * radius_factor)
                       if mine.shape[0] >= 2 else pooled, 1e-9)
    return radii


def _centroid_gaps(x: np.ndarray, y: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Distance from each class's centroid to the nearest other class's centroid (0 when alone)."""
    cent = {c: x[y == c].mean(axis=0, dtype=np.float64) for c in classes}
    return {c: min((float(np.linalg.norm(cent[c] - cent[o])) for o in classes if o != c), default=0.0)
            for c in classes}


def _vote(xo: np.ndarray, codes: np.ndarray, n_classes: int, k: int, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(winning class code, mean distance to the neighbours that voted for it) of rows ``q``."""
    from sklearn.neighbors import NearestNeighbors

    kk = min(k, xo.shape[0])
    d, idx = NearestNeighbors(n_neighbors=kk).fit(xo).kneighbors(q)
    votes = codes[idx]
    counts = np.stack([(votes == j).sum(axis=1) for j in range(n_classes)], axis=1)
    best = counts.argmax(axis=1)
    voted = votes == best[:, None]
    return best, (d * voted).sum(axis=1) / voted.sum(axis=1)


def calibrate_share(x: np.ndarray, y: np.ndarray, *, k: int, radius_quantile: float, radius_factor: float,
                    need: float = ABSTAIN_HELD_OUT) -> float:
    """The largest centroid share at which every class, left out, is abstained on in ≥ ``need`` of its windows.

    Each class in turn plays the never-labelled class: a model of the other classes (their own
    radii, floored at share × their centroid gaps among themselves) scores its windows. Only the
    labelled windows are used. 0 with fewer than three classes.
    """
    classes = sorted(set(y.tolist()))
    if len(classes) < 3:
        return 0.0
    ok = np.ones(len(SHARES), dtype=bool)
    rng = np.random.default_rng(0)
    for held in classes:
        keep = y != held
        xo, yo = x[keep], y[keep]
        others = sorted(set(yo.tolist()))
        own = _own_radii(xo, yo, k, radius_quantile, radius_factor)
        gaps = _centroid_gaps(xo, yo, others)
        q = x[~keep]
        if q.shape[0] > CALIBRATION_ROWS:
            q = q[rng.choice(q.shape[0], CALIBRATION_ROWS, replace=False)]
        best, dist = _vote(xo, np.searchsorted(others, yo), len(others), k, q)
        own_r = np.array([own[c] for c in others])[best]
        gap_r = np.array([gaps[c] for c in others])[best]
        for i, share in enumerate(SHARES):
            ok[i] &= float(np.mean(dist > np.maximum(own_r, share * gap_r))) >= need
    return float(max(s for s, good in zip(SHARES, ok) if good)) if ok.any() else 0.0


def fit(x: np.ndarray, y: np.ndarray, *, k: int, radius_quantile: float, radius_factor: float,
        calibrate: bool = True, evidence: np.ndarray | None = None) -> KnnModel:
    """Store the labelled windows and calibrate one abstention radius per class.

    A class's radius is the larger of ``radius_factor`` × the ``radius_quantile`` of its own
    windows' neighbour distances (a class with a single labelled window takes that of all labelled
    windows together) and the calibrated share (:func:`calibrate_share`; 0 with ``calibrate=False``)
    × the distance from its centroid to the nearest other class's centroid.

    ``evidence`` (bool per row, e.g. :func:`vibra.discovery.embedding.has_evidence`): the rows of a
    bearing class without evidence are not learned (counted per class in ``unlearned``). None: every row
    is learned (no gate).
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=object).astype(str)
    unlearned: dict[str, int] = {}
    if evidence is not None:
        drop = is_bearing_class(y) & ~np.asarray(evidence, dtype=bool)
        names, counts = np.unique(y[drop], return_counts=True)
        unlearned = {str(c): int(n) for c, n in zip(names, counts)}
        x, y = x[~drop], y[~drop]
    if x.shape[0] < 2:
        raise ValueError("at least two labelled windows are needed"
                         + (f" (bearing-class windows without bearing evidence are not learned: {unlearned})"
                            if unlearned else ""))
    radii = _own_radii(x, y, k, radius_quantile, radius_factor)
    share = (calibrate_share(x, y, k=k, radius_quantile=radius_quantile, radius_factor=radius_factor)
             if calibrate else 0.0)
    gaps = _centroid_gaps(x, y, sorted(radii))
    radii = {c: max(r, share * gaps[c]) for c, r in radii.items()}
    # the family's vouch reaches as far as the nearest other labelled class's centroid is from this one's
    reach = {c: max(r, gaps[c]) for c, r in radii.items() if bearing_family(c)}
    return KnnModel(x=x, y=y, k=k, radius=max(radii.values()), radii=radii, centroid_share=share,
                    unlearned=unlearned, reach=reach)


def predict(model: KnnModel, x: np.ndarray, batch: int = 65_536, evidence: np.ndarray | None = None,
            named: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(defect, confidence, mean distance to the winner's neighbours) per row.

    The defect is ``unknown`` when that distance is beyond the winner's radius, unless ``named`` (per row,
    the bearing family the row's recording-level evidence names, e.g.
    :func:`vibra.discovery.embedding.named_families`; None or "" where it names none) is the winner's family.
    With ``evidence`` (bool per row), a row without bearing evidence whose vote names a bearing class is
    ``no_fault_evidence`` (confidence 0), whatever its distance.
    """
    from sklearn.neighbors import NearestNeighbors

    k = min(model.k, model.x.shape[0])
    nn = NearestNeighbors(n_neighbors=k).fit(model.x)
    classes = np.array(model.classes)
    radii = model.radius_of(classes)
    codes = np.searchsorted(classes, model.y)
    families = np.array([bearing_family(c) or "" for c in classes], dtype=object)
    reach = np.array([model.reach.get(c, 0.0) for c in classes])  # 0: no vouching (not a bearing class, older model)
    if named is not None and (isinstance(named, str) or len(named) != x.shape[0]):
        raise ValueError(f"named: one family (or None) per row of x ({x.shape[0]}), not {named!r:.60}")
    vouched = (np.asarray([f or "" for f in named], dtype=object) if named is not None
               else np.full(x.shape[0], "", dtype=object))
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
        vouch = (families[best] != "") & (families[best] == vouched[b:b + batch]) & (mean_d <= reach[best])
        far = (mean_d > radii[best]) & ~vouch
        defect[b:b + batch] = np.where(far, UNKNOWN, classes[best])
        confidence[b:b + batch] = np.where(far, 0.0, counts.max(axis=1) / k)
        distance[b:b + batch] = mean_d
    if evidence is not None:
        gate = ~np.asarray(evidence, dtype=bool) & (defect != UNKNOWN) & is_bearing_class(defect.astype(str))
        gate |= ~np.asarray(evidence, dtype=bool) & (defect == UNKNOWN)  # far from all, and no lines either
        defect[gate] = NO_EVIDENCE
        confidence[gate] = 0.0
    return defect.astype(str), confidence, distance


def save(model: KnnModel, path) -> None:
    """The labelled set and its radii, as one ``.npz`` (no pickle)."""
    names = np.array(sorted(model.radii), dtype="U64")
    np.savez_compressed(path, x=model.x, y=model.y.astype("U64"), k=np.int64(model.k), radius=np.float64(model.radius),
                        radius_classes=names, radius_values=np.array([model.radii[c] for c in names], dtype=np.float64),
                        centroid_share=np.float64(model.centroid_share),
                        unlearned_classes=np.array(sorted(model.unlearned), dtype="U64"),
                        unlearned_counts=np.array([model.unlearned[c] for c in sorted(model.unlearned)], dtype=np.int64),
                        reach_classes=np.array(sorted(model.reach), dtype="U64"),
                        reach_values=np.array([model.reach[c] for c in sorted(model.reach)], dtype=np.float64))


def load(path) -> KnnModel:
    with np.load(path, allow_pickle=False) as z:
        radii = ({str(c): float(v) for c, v in zip(z["radius_classes"], z["radius_values"])}
                 if "radius_classes" in z.files else {})
        share = float(z["centroid_share"]) if "centroid_share" in z.files else 0.0
        unlearned = ({str(c): int(n) for c, n in zip(z["unlearned_classes"], z["unlearned_counts"])}
                     if "unlearned_classes" in z.files else {})
        reach = ({str(c): float(v) for c, v in zip(z["reach_classes"], z["reach_values"])}
                 if "reach_classes" in z.files else {})
        return KnnModel(x=z["x"], y=z["y"].astype(str), k=int(z["k"]), radius=float(z["radius"]), radii=radii,
                        centroid_share=share, unlearned=unlearned, reach=reach)
