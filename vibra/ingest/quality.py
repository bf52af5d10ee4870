"""Data quality before analytics: which windows come from a failing sensor, not from the machine.

One predicate, used by every stage that learns or alarms (anomaly training and scoring,
clustering and the defect kNN, forecasts, remaining useful life) and by the report, which draws
the flagged windows as marked points and counts them. A recording × channel is a *sensor fault*
when its sensor or cable, not the machine, made the signal:

* ``spikes``: a window whose crest factor is ≥ ``SPIKE_CREST`` **and** whose kurtosis (Pearson,
  Gaussian = 3) is ≥ ``SPIKE_KURTOSIS`` — a handful of samples tens of RMS away. Bearing impacts
  stay far below both (synthetic outer-race fault at full severity: crest ≤ 6.3, kurtosis ≤ 11;
  a 40 g spike on a 1 g signal: crest 32–45, kurtosis 990–1930).
* ``flat line``: ≥ 1 % of the channel's samples in flat runs (the ledger's ``channel_stats``);
* ``clipping``: ≥ 0.1 % of the channel's samples in plateaus at the extremes (ledger);
* ``NaN gap``: any NaN or ±inf sample in the channel (ledger).

The whole recording × channel is excluded, not only the windows a spike falls in: a sensor that
spikes in one window is not trusted in its neighbours. The shares are those above which ingest
already records a warning (``vibra.ingest.features.FLAT_WARN_SHARE``, ``CLIP_WARN_SHARE``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from vibra.ingest.features import CLIP_WARN_SHARE, FLAT_WARN_SHARE

SPIKE_CREST = 20.0
SPIKE_KURTOSIS = 100.0
COLUMNS = ("crest_factor", "kurtosis")  # what the spike rule reads from the features table
REASONS = ("spikes", "flat line", "clipping", "NaN gap")
KEYS = ("recording_id", "channel")


def ledger_faults(rows: Iterable[tuple[str, str | None]]) -> dict[tuple[str, str], str]:
    """``{(recording_id, channel): reason}`` from the ledger's ``(recording_id, channel_stats JSON)``
    rows, for the flat-line, clipping and NaN rules."""
    out: dict[tuple[str, str], str] = {}
    for recording_id, stats in rows:
        for ch in json.loads(stats or "[]"):
            n = ch.get("samples") or 0
            if not n:
                continue
            if ch.get("flat", 0) / n >= FLAT_WARN_SHARE:
                reason = "flat line"
            elif ch.get("clipped", 0) / n >= CLIP_WARN_SHARE:
                reason = "clipping"
            elif ch.get("nan", 0) or ch.get("inf", 0) or ch.get("nan_windows", 0):
                reason = "NaN gap"
            else:
                continue
            out[(recording_id, str(ch.get("channel")))] = reason
    return out


def flag(df, ledger: dict[tuple[str, str], str]):
    """``df`` (features rows with ``recording_id``, ``channel`` and, when present, ``COLUMNS``) with a
    ``sensor_fault`` column: the reason its recording × channel is excluded, or null."""
    import polars as pl

    if df.height == 0:
        return df.with_columns(sensor_fault=pl.lit(None, dtype=pl.String))
    reasons = []
    if all(c in df.columns for c in COLUMNS):
        spiky = df.filter((pl.col("crest_factor") >= SPIKE_CREST) & (pl.col("kurtosis") >= SPIKE_KURTOSIS))
        reasons.append(spiky.select(*KEYS).unique().with_columns(spike=pl.lit("spikes")))
    if ledger:
        keys = list(ledger)
        reasons.append(pl.DataFrame({"recording_id": [k[0] for k in keys], "channel": [k[1] for k in keys],
                                     "spike": list(ledger.values())}))
    if not reasons:
        return df.with_columns(sensor_fault=pl.lit(None, dtype=pl.String))
    # the ledger's reason first: a clipped channel's windows can also look spiky
    found = pl.concat(reasons[::-1], how="vertical_relaxed").unique(subset=list(KEYS), keep="first")
    found = found.with_columns(pl.col("channel").cast(df.schema["channel"]))
    return df.join(found.rename({"spike": "sensor_fault"}), on=list(KEYS), how="left")


def read_ledger_faults(ws, equipment: list[str] | None = None) -> dict[tuple[str, str], str]:
    """:func:`ledger_faults` of the workspace's completed recordings (of ``equipment`` if given)."""
    from vibra.storage import ledger

    return ledger_faults(ledger.channel_stats(ws, equipment or None))


def mark_sensor_faults(ws, df):
    """``df`` with the ``sensor_fault`` column (see :func:`flag`), the ledger read for its machines."""
    if df.height == 0 or "recording_id" not in df.columns:
        return flag(df, {})
    machines = df["equipment_id"].unique().to_list() if "equipment_id" in df.columns else None
    return flag(df, read_ledger_faults(ws, machines))


def drop_sensor_faults(ws, df):
    """``df`` without the windows of sensor-fault recordings × channels: what the stages learn and alarm on."""
    import polars as pl

    if df.height == 0:
        return df
    return mark_sensor_faults(ws, df).filter(pl.col("sensor_fault").is_null()).drop("sensor_fault")
