"""From ``features`` rows to model inputs: which indicators, how transformed, how standardised.

Scale-like indicators (rms, peak, velocity, order amplitudes, band powers) enter as log10;
shape ratios and normalised envelope levels as they are. Each window is then standardised by
the robust statistics (median, 1.4826·MAD) of its own key — the channel for a per-machine
model, the (machine, channel) pair for a fleet model — learned on the baseline, so one model
sees "how far from this sensor's normal", and the same z-scores explain an alarm.
"""

from __future__ import annotations

import numpy as np

from vibra.anomaly.base import robust_stats, robust_z

CANDIDATES = (
    "rms", "peak", "crest_factor", "kurtosis", "skewness", "shape_factor", "impulse_factor", "clearance_factor",
    "spectral_centroid_hz", "velocity_rms_mm_s", "order_1x", "order_2x", "order_3x",
    "env_bpfo", "env_bpfi", "env_bsf", "env_ftf",
)
LOG_PREFIXES = ("rms", "peak", "velocity_rms_mm_s", "order_", "band_")
TINY = 1e-12


def candidate_columns(columns: list[str]) -> list[str]:
    return [c for c in CANDIDATES if c in columns] + sorted(c for c in columns if c.startswith("band_"))


def transform(df, features: list[str]) -> np.ndarray:
    """(n, len(features)) float64: log10 for scale-like indicators, NaN where missing."""
    cols = []
    for name in features:
        x = df[name].cast(float).fill_null(np.nan).to_numpy().astype(np.float64)
        if name.startswith(LOG_PREFIXES):
            with np.errstate(divide="ignore", invalid="ignore"):
                x = np.log10(np.abs(x) + TINY)
        cols.append(x)
    return np.column_stack(cols) if cols else np.empty((df.height, 0))


def select_features(df, min_finite: float = 0.95) -> list[str]:
    """Indicators finite in at least ``min_finite`` of the rows and not constant."""
    chosen = []
    for name in candidate_columns(df.columns):
        x = transform(df, [name])[:, 0]
        finite = np.isfinite(x)
        if finite.mean() >= min_finite and np.nanstd(x[finite]) > 0:
            chosen.append(name)
    return chosen


# Smallest spread a baseline is allowed to claim: 0.02 decades (≈ 5 %) for log-scaled levels,
# 5 % of the median for ratios. Below that, a window-to-window change is within what a
# sensor and a machine repeat anyway, and a model trained on a short, steady baseline would
# otherwise call every later drift of a few per cent an anomaly.
LOG_FLOOR = 0.02
RELATIVE_FLOOR = 0.05


def _floored(features: list[str], med: np.ndarray, mad: np.ndarray) -> np.ndarray:
    floor = np.array([LOG_FLOOR if f.startswith(LOG_PREFIXES) else RELATIVE_FLOOR * abs(m)
                      for f, m in zip(features, med)])
    return np.maximum(mad, floor)


def key_stats(df, features: list[str], keys: list[str]) -> dict[str, dict]:
    """Robust median / MAD per key (e.g. channel), plus ``*`` pooled over all rows."""
    X = transform(df, features)
    med, mad = robust_stats(X)
    out = {"*": {"median": med.tolist(), "mad": _floored(features, med, mad).tolist()}}
    keyed = labels(df, keys)
    for label in np.unique(keyed):
        med, mad = robust_stats(X[keyed == label])
        out[str(label)] = {"median": med.tolist(), "mad": _floored(features, med, mad).tolist()}
    return out


def labels(df, keys: list[str]) -> np.ndarray:
    """One text label per row: its ``keys`` values joined by ``|`` (e.g. ``pump-1|x``)."""
    parts = [df[k].cast(str).to_numpy().astype(object) for k in keys]
    out = parts[0]
    for p in parts[1:]:
        out = out + "|" + p
    return out.astype(str)


def standardise(df, features: list[str], stats: dict, keys: list[str]) -> np.ndarray:
    """Robust z-scores of each row against its key's baseline (pooled stats for unseen keys)."""
    X = transform(df, features)
    Z = np.empty_like(X)
    keyed = labels(df, keys)
    for label in np.unique(keyed):
        s = stats.get(str(label), stats["*"])
        mask = keyed == label
        Z[mask] = robust_z(X[mask], np.asarray(s["median"]), np.asarray(s["mad"]))
    return Z
