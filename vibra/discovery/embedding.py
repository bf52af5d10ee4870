"""The window embedding: a fixed-length float32 vector per window, and its manifest.

The embedding is what clustering and the defect kNN compare windows by. It is
built from indicators that describe the *shape* of a window's signal (crest,
kurtosis, spectral balance, bearing fault-family evidence in orders, running-speed
orders) more than its level, so that one defect looks alike on machines of
different size. Each dimension is a fixed transform of one indicator followed
by a fixed normalisation ``(value - center) / scale``; the centres and scales
belong to the definition (they are not fitted on data), so rows ingested a year
apart are comparable and a clustering or kNN never has to re-standardise.

The definition (ordered dimensions, transforms, normalisation, band edges) is
hashed; the hash names the version (``emb-<12 hex>``). A change of any part
is a new version, written as a new manifest under
``artifacts/models/embedding/<version>/manifest.json``; every ``features`` row
carries its ``embedding_version``, and consumers select one version, so
dimensions are never silently mixed.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

import numpy as np


# (name, source indicator, transform, center, scale). Transforms: "log10" of the
# value, "ratio_rms_log10" = log10(value / rms), "rel_nyquist" = value / (fs/2),
# "log10_capped" = log10 of the value clipped to [1, EVIDENCE_CAP], "identity", "evidence_profile" (below).
# Non-finite results (missing physics, empty bands) become 0 = the centre.
#
# Transfer (CODE_REVISION 2): a defect labelled at one load, size or speed must be found at another.
# The bearing fault-family evidence of vibra.diagnosis.bearing (whitened full-band envelope lines, in orders,
# over noise) is what does not move with rpm, load or band choice, so it carries most weight. It is
# capped at EVIDENCE_CAP = the verdict's floor × ratio (2 × 1.5): beyond the point where the rule is
# sure, more evidence says how big the defect is, not which one, and an uncapped 0.007 in outer-race
# fault (6× noise) would sit as far from a 0.021 in one (3×) as from no fault at all. The shape and
# spectral-balance dimensions, which change with fault size and load, weigh a third of what they did
# in revision 1 (scales × 3). The band-dependent env_* ratios and the chosen band's spectral kurtosis
# are no longer dimensions.
#
# Recording-level evidence (CODE_REVISION 3, issue 31): three more dimensions, the family *profile* of the
# recording's evidence (``recording_evidence_*``: the whitened SES averaged over the whole recording and
# channel, vibra.diagnosis.recording), which every window of that recording × channel carries:
# log10(e_f / strongest family), each e_f at least 1 (= noise), clipped below at
# log10(1 / EVIDENCE_CAP). The strongest family sits at 0 when it reaches the verdict's floor, the others
# below it by how much weaker they are (at most a factor EVIDENCE_CAP); which fault, not how big. A
# recording with no family at the floor sits at log10(1 / FLOOR) in every family (one point: how its
# noise-level evidence varies is not a signature): the centre, where missing physics sits too.
# The defect kNN reads from them whether a window's recording has bearing evidence at all
# (:func:`has_evidence`), and does not learn absence as a class. The window evidence
# dimensions stay: a recording's windows share one profile, so a class labelled on one recording would
# have no spread in those dimensions and its abstention radius would come from its shape spread alone
# (measured: the synthetic outer race abstained on 3 windows of 4, CWRU on half its recordings). Recording
# evidence is 10–28× noise on CWRU race faults and leaks 3–5× into the other families, so capping it per
# family as the window evidence is capped saturated every family of a strong fault: hence the profile.
EVIDENCE_FLOOR = 2.0  # = vibra.diagnosis.bearing.FLOOR (tests/test_clusters.py pins the equality)
PROFILE_CENTER = -0.30103  # log10(1 / EVIDENCE_FLOOR): no evidence, and missing physics
_DIMENSIONS: tuple[tuple[str, str, str, float, float], ...] = (
    ("log10_rms", "rms", "log10", 0.0, 22.5),  # level: weighed lightly (a big machine is not a defect)
    ("log10_crest_factor", "crest_factor", "log10", 0.5, 0.9),
    ("log10_kurtosis", "kurtosis", "log10", 0.477, 1.8),
    ("skewness", "skewness", "identity", 0.0, 3.0),
    ("shape_factor", "shape_factor", "identity", 1.25, 0.6),
    ("dominant_freq_rel", "dominant_freq_hz", "rel_nyquist", 0.25, 1.5),
    ("spectral_centroid_rel", "spectral_centroid_hz", "rel_nyquist", 0.25, 0.6),
    ("log10_evidence_outer_race", "evidence_outer_race", "log10_capped", 0.0, 0.15),
    ("log10_evidence_inner_race", "evidence_inner_race", "log10_capped", 0.0, 0.15),
    ("log10_evidence_ball", "evidence_ball", "log10_capped", 0.0, 0.15),
    ("log10_order_1x_rel", "order_1x", "ratio_rms_log10", -1.0, 3.0),
    ("log10_order_2x_rel", "order_2x", "ratio_rms_log10", -1.0, 3.0),
    ("log10_order_3x_rel", "order_3x", "ratio_rms_log10", -1.0, 3.0),
    ("recording_evidence_profile_outer_race", "recording_evidence_outer_race", "evidence_profile", PROFILE_CENTER, 0.15),
    ("recording_evidence_profile_inner_race", "recording_evidence_inner_race", "evidence_profile", PROFILE_CENTER, 0.15),
    ("recording_evidence_profile_ball", "recording_evidence_ball", "evidence_profile", PROFILE_CENTER, 0.15),
)
EVIDENCE_CAP = 3.0
EVIDENCE_DIMENSIONS = tuple(i for i, d in enumerate(_DIMENSIONS) if d[2] == "evidence_profile")
BAND_CENTER, BAND_SCALE = 0.2, 1.2
# Bump when the code of a transform changes without the table above changing.
CODE_REVISION = 3


def definition(bands_hz: tuple[tuple[float, float], ...]) -> dict:
    """The embedding's definition: everything that decides a vector's values."""
    dims = [{"name": n, "indicator": src, "transform": tr, "center": c, "scale": s} for n, src, tr, c, s in _DIMENSIONS]
    for lo, hi in bands_hz:
        dims.append({"name": f"band_share_{lo:g}_{hi:g}", "indicator": f"band_{lo:g}_{hi:g}",
                     "transform": "share_of_bands", "center": BAND_CENTER, "scale": BAND_SCALE})
    return {"code_revision": CODE_REVISION, "dimensions": dims, "bands_hz": [list(b) for b in bands_hz],
            "evidence_cap": EVIDENCE_CAP, "evidence_floor": EVIDENCE_FLOOR}


def definition_hash(defn: dict) -> str:
    return hashlib.sha256(json.dumps(defn, sort_keys=True).encode()).hexdigest()


def version_of(defn: dict) -> str:
    return "emb-" + definition_hash(defn)[:12]


def vectors(columns: Mapping[str, np.ndarray], band_columns: list[str], sample_rate_hz: float) -> np.ndarray:
    """Embedding rows (float32, shape (n, dimension)) from indicator columns of the features table.

    Parameters
    ----------
    columns : indicator name -> array (one entry per window), as in the features table.
    band_columns : names of the band-energy columns, in definition order.
    sample_rate_hz : sample rate of the windows.
    """
    nyquist = sample_rate_hz / 2.0
    rms = np.asarray(columns["rms"], dtype=np.float64)
    out = []
    with np.errstate(invalid="ignore", divide="ignore"):
        profile = [np.maximum(np.asarray(columns[d[1]], dtype=np.float64), 1.0) for d in _DIMENSIONS
                   if d[2] == "evidence_profile"]
        # the strongest family, at least the floor (NaN where no family could be computed)
        strongest = np.fmax.reduce(profile) if profile else None
        for _, src, transform, center, scale in _DIMENSIONS:
            v = np.asarray(columns[src], dtype=np.float64)
            if transform == "evidence_profile":
                v = np.maximum(np.log10(np.maximum(v, 1.0) / strongest), -np.log10(EVIDENCE_CAP))
                # no family at the floor: one point (the centre), not noise between 1× and 2×
                v = np.where(strongest >= EVIDENCE_FLOOR, v, PROFILE_CENTER)
            elif transform == "log10":
                v = np.log10(v)
            elif transform == "log10_capped":
                v = np.log10(np.clip(v, 1.0, EVIDENCE_CAP))
            elif transform == "ratio_rms_log10":
                v = np.log10(v / rms)
            elif transform == "rel_nyquist":
                v = v / nyquist
            out.append((v - center) / scale)
        if band_columns:
            bands = np.nan_to_num(np.column_stack([np.asarray(columns[b], dtype=np.float64) for b in band_columns]))
            total = bands.sum(axis=1, keepdims=True)
            shares = np.where(total > 0, bands / total, 0.0)
            out.extend(((shares - BAND_CENTER) / BAND_SCALE).T)
    vec = np.column_stack(out)
    vec[~np.isfinite(vec)] = 0.0
    return vec.astype(np.float32)


def has_evidence(vec: np.ndarray) -> np.ndarray:
    """Whether each embedding row's recording-level bearing evidence reaches ``EVIDENCE_FLOOR`` in some family.

    Read back from the profile: the strongest family sits at 0 exactly when it reaches the floor. The
    defect kNN answers ``no_fault_evidence`` rather than a bearing class for a row without it.
    """
    vec = np.asarray(vec)
    if vec.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    cut = np.array([-_DIMENSIONS[i][3] / _DIMENSIONS[i][4] for i in EVIDENCE_DIMENSIONS])
    # float32 rows: a family exactly at the floor must count as reaching it
    return (vec[:, list(EVIDENCE_DIMENSIONS)] >= cut - 1e-4).any(axis=1)


def named_families(vec: np.ndarray) -> np.ndarray:
    """Per embedding row, the bearing family its recording-level evidence names, or "" (object array).

    The verdict's rule read back from the profile: the strongest family reaches ``EVIDENCE_FLOOR`` (it sits
    at 0) and every other stands at least ``vibra.diagnosis.bearing.RATIO`` below it. The defect kNN lets
    this vouch for a labelled class of the same family beyond its radius.
    """
    from vibra.diagnosis.bearing import RATIO
    vec = np.asarray(vec)
    out = np.full(vec.shape[0], "", dtype=object)
    if vec.shape[0] == 0:
        return out
    dims = [_DIMENSIONS[i] for i in EVIDENCE_DIMENSIONS]
    profile = vec[:, list(EVIDENCE_DIMENSIONS)] * np.array([d[4] for d in dims]) + np.array([d[3] for d in dims])
    ordered = np.sort(profile, axis=1)
    clear = has_evidence(vec) & (ordered[:, -2] <= -np.log10(RATIO) + 1e-6)  # float32 rows: at the ratio counts
    names = np.array([d[1].removeprefix("recording_evidence_") for d in dims], dtype=object)
    out[clear] = names[profile[clear].argmax(axis=1)]
    return out


def clustering_view(x: np.ndarray) -> np.ndarray:
    """The embedding rows clustering compares: without the recording-evidence profile.

    The profile is one point per recording × channel; in the clustering it splits recordings rather than
    signatures (CWRU drive end, UMAP + HDBSCAN: ARI 0.82 without it, 0.62 with it). The defect kNN uses it.
    """
    if x.ndim != 2 or x.shape[1] <= max(EVIDENCE_DIMENSIONS):
        return x
    keep = np.setdiff1d(np.arange(x.shape[1]), EVIDENCE_DIMENSIONS)
    return np.ascontiguousarray(x[:, keep])


def manifest(defn: dict) -> dict:
    return {
        "version": version_of(defn),
        "dimension": len(defn["dimensions"]),
        "indicators": [d["indicator"] for d in defn["dimensions"]],
        "names": [d["name"] for d in defn["dimensions"]],
        "normalisation": {"center": [d["center"] for d in defn["dimensions"]],
                          "scale": [d["scale"] for d in defn["dimensions"]]},
        "definition": defn,
        "definition_sha256": definition_hash(defn),
    }


def ensure_manifest(root: Path, defn: dict) -> str:
    """Write the definition's version (``root/<version>/manifest.json``) once and point ``latest`` at it.

    The version id is the definition's hash, not a time: the same definition is the same version.
    """
    from vibra.errors import CorruptArtifactError
    from vibra.storage.artifacts import VersionedStore

    store = VersionedStore(root, "embedding", collect=False)
    body = manifest(defn)
    version = body["version"]
    if not (root / version).is_dir():
        store.put(version, {**body, "created_at": datetime.now(timezone.utc).isoformat()}, point=False)
    try:
        current = store.latest()
    except CorruptArtifactError:
        current = None  # a damaged pointer is replaced: the current definition is known for certain here
    if current != version:  # the pointer only moves when the definition changed
        store.point(version)
    return version


def matrix(df) -> np.ndarray:
    """The ``embedding`` list column of a Polars frame as a (n, d) float32 array."""
    if df.height == 0:
        return np.empty((0, 0), dtype=np.float32)
    return np.asarray(df["embedding"].to_list(), dtype=np.float32)


def current_only(df, bands_hz: tuple[tuple[float, float], ...]):
    """Rows carrying the current embedding version only (that of ``bands_hz``): (rows, version, rows left out)."""
    import polars as pl

    version = version_of(definition(bands_hz))
    keep = df.filter(pl.col("embedding_version") == version)
    return keep, version, df.height - keep.height
