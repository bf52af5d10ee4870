"""Indicators of a whole recording, streamed chunk by chunk.

:func:`compute` is the pure core of the ingest stage: it takes chunks of a
recording (arrays) and returns the ``features`` rows as a Polars table. It
touches no files. Windows that straddle two chunks are completed from the
carried-over tail, so results do not depend on the chunk size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable

import numpy as np

from vibra.errors import InputError
from vibra.settings import FeatureSettings
from vibra.signal.indicators import TIME_COLUMNS
from vibra.diagnosis import recording as diagnosis_recording
from vibra.diagnosis.bearing import EVIDENCE_COLUMNS, ChannelEvidence
from vibra.physics.indicators import PHYSICS_COLUMNS, ChannelPhysics, PhysicsInputs, zones
from vibra.discovery import embedding
from vibra.signal.indicators import (SPECTRAL_COLUMNS, band_column, flat_and_clipped, frame, n_windows, spectral_from_power,
                                     time_indicators, window_spectra)

# Precision of the window spectra (spectral, band and physics indicators) and of the fault-family
# evidence chain (pre-whitening, squared envelope spectrum); the time-domain indicators stay float64.
# float32 cuts the FFT and envelope work about threefold; its largest error against float64 on the
# synthetic fault kinds and real CWRU files is 1e-5 relative (spectra) and 2.6e-4 (evidence, no
# verdict changed): benchmarks/float32_error.py measures it, tests/test_features_precision.py pins it.
SPECTRA_DTYPE = np.float32
EVIDENCE_DTYPE = np.float32

# A warning is recorded when at least this share of a channel is flat or clipped.
FLAT_WARN_SHARE = 0.01
CLIP_WARN_SHARE = 0.001


def indicator_columns(params: FeatureSettings) -> list[str]:
    """Numeric indicator columns, in table order (the physics ones are NaN where not computable)."""
    return (list(TIME_COLUMNS) + list(SPECTRAL_COLUMNS) + [band_column(lo, hi) for lo, hi in params.bands_hz]
            + list(PHYSICS_COLUMNS) + list(EVIDENCE_COLUMNS))


@dataclass
class ChannelStats:
    samples: int = 0
    nan: int = 0
    flat: int = 0
    clipped: int = 0
    nan_windows: int = 0  # windows skipped for a NaN or infinite sample
    inf: int = 0  # ±inf samples (e.g. "inf" or 1e400 in a text file)
    overflow_windows: int = 0  # windows skipped because float64 overflowed (samples near 1e154 and beyond)


@dataclass
class FeatureResult:
    """Rows of the ``features`` table for one recording, and what was seen on the way."""

    table: object  # polars.DataFrame
    n_samples: int
    n_windows: int
    warnings: list[str] = field(default_factory=list)
    channel_stats: list[dict] = field(default_factory=list)  # per channel: samples, nan, flat, clipped, nan_windows


def _window_block(x: np.ndarray, starts: np.ndarray, params: FeatureSettings, sample_rate_hz: float,
                  physics: ChannelPhysics | None, evidence: ChannelEvidence | None):
    """Indicators for windows of one channel at ``starts``: (time, spectral, physics and evidence)."""
    length = params.frame_length
    t = time_indicators(x, length, params.hop_length, starts)
    spectral = np.empty((starts.shape[0], 2 + len(params.bands_hz)))
    n_phys = len(PHYSICS_COLUMNS)
    phys = np.full((starts.shape[0], n_phys + len(EVIDENCE_COLUMNS)), np.nan)
    for b in range(0, starts.shape[0], params.batch_windows):
        sel = starts[b:b + params.batch_windows]
        frames = frame(x, length, params.hop_length, sel)
        single = frames.astype(SPECTRA_DTYPE, copy=False)  # one cast shared by the spectra and the evidence
        freqs, spec, power = window_spectra(single, sample_rate_hz)
        spectral[b:b + sel.shape[0]] = spectral_from_power(freqs, power, sample_rate_hz, params.bands_hz)
        if physics is not None:
            phys[b:b + sel.shape[0], :n_phys] = physics.block(freqs, spec, power)
        if evidence is not None and evidence.geometry is not None:
            evidence_frames = single if EVIDENCE_DTYPE == SPECTRA_DTYPE else frames.astype(EVIDENCE_DTYPE, copy=False)
            phys[b:b + sel.shape[0], n_phys:] = evidence.windows(evidence_frames)
    return t, spectral, phys


def compute(chunks: Iterable[np.ndarray], channels: list[str], *, sample_rate_hz: float, start: datetime,
            params: FeatureSettings, equipment_id: str, recording_id: str, source: str = "",
            machine: PhysicsInputs | None = None, gaps: Iterable[tuple[int, float]] | None = None,
            units: dict[str, str] | None = None) -> FeatureResult:
    """Windowed indicators of every channel of a recording.

    Parameters
    ----------
    chunks : iterable of (rows, n_channels) float arrays, in time order.
    channels : channel names, one per column.
    sample_rate_hz : samples per second.
    start : UTC time of the first sample.
    params : window and band settings.
    machine : units, rpm, bearing and ISO limits for the physics indicators (None: base set only).
    gaps : breaks in the recording's time base as (index of the first sample after the break,
        seconds beyond one sample period), read after ``chunks`` is exhausted (a reader finds
        them while streaming). No window spans a break; windows after it start that much later.
    units : per-channel units the file gave (TDMS, UFF), kept in ``channel_stats``.

    Returns
    -------
    FeatureResult whose table has one row per channel × complete window without
    NaN or ±inf (such windows, and windows whose indicators overflow float64, are
    skipped and counted in the warnings). Numpy's floating-point warnings never
    escape: what they signal is counted here instead.
    """
    import polars as pl

    length, hop = params.frame_length, params.hop_length
    n_ch = len(channels)
    stats = [ChannelStats() for _ in channels]
    parts: dict[str, list] = {"channel": [], "window_index": [], "start_sample": [], "time": [], "spectral": [],
                              "physics": []}
    machines = [machine.for_channel(name) if machine else None for name in channels]  # each its point's bearing
    physics = [ChannelPhysics(m, sample_rate_hz, length) if m else None for m in machines]
    evidence = [ChannelEvidence(m.bearing, m.rpm, sample_rate_hz) if m else None for m in machines]
    # the recording-level spectra of the diagnosis (whitened SES, speed spectrum), fed every sample
    diag_length = diagnosis_recording.frame_length_for(params.diagnosis_window_s, sample_rate_hz)
    spectra = [diagnosis_recording.SpectrumAccumulator(sample_rate_hz, diag_length, EVIDENCE_DTYPE)
               if machine else None for _ in channels]
    tail = np.empty((n_ch, 0))
    consumed = 0  # absolute sample index of tail[0]
    total = 0
    rms_col = TIME_COLUMNS.index("rms")
    for chunk in chunks:
        # channel-major copy: each channel's samples contiguous for the kernels
        chunk = np.ascontiguousarray(np.asarray(chunk, dtype=np.float64).reshape(-1, n_ch).T)
        total += chunk.shape[1]
        chunk_nan = []
        for c in range(n_ch):
            col = chunk[c]
            s = stats[c]
            s.samples += col.shape[0]
            nan = int(np.count_nonzero(np.isnan(col)))
            bad = int(np.count_nonzero(~np.isfinite(col)))
            chunk_nan.append(bad)
            s.nan += nan
            s.inf += bad - nan
            clipped, flat = flat_and_clipped(col)
            s.clipped += clipped
            s.flat += flat
            if spectra[c] is not None:
                with np.errstate(all="ignore"):
                    spectra[c].feed(col)
        buf = np.concatenate([tail, chunk], axis=1) if tail.shape[1] else chunk
        count = n_windows(buf.shape[1], length, hop)
        if count:
            starts = np.arange(count, dtype=np.int64) * hop
            first_index = (consumed // hop) if hop else 0
            for c in range(n_ch):
                x = buf[c]
                good = starts
                if chunk_nan[c] or not np.isfinite(tail[c]).all():
                    nan_cum = np.concatenate([[0], np.cumsum(~np.isfinite(x))])
                    ok = (nan_cum[starts + length] - nan_cum[starts]) == 0
                    stats[c].nan_windows += int(np.count_nonzero(~ok))
                    good = starts[ok]
                if good.shape[0] == 0:
                    continue
                with np.errstate(all="ignore"):  # overflow is counted below, 0/0 of flat windows is NaN by design
                    t, spectral, phys = _window_block(x, good, params, sample_rate_hz, physics[c], evidence[c])
                # finite samples whose squares or spectra exceed float64 give an infinite rms or band energy
                finite = np.isfinite(t[:, rms_col]) & ~np.isinf(t).any(axis=1) & ~np.isinf(spectral).any(axis=1)
                if not finite.all():
                    stats[c].overflow_windows += int(np.count_nonzero(~finite))
                    good, t, spectral, phys = good[finite], t[finite], spectral[finite], phys[finite]
                    if good.shape[0] == 0:
                        continue
                parts["channel"].append(np.full(good.shape[0], c, dtype=np.int32))
                parts["window_index"].append(first_index + good // hop)
                parts["start_sample"].append(consumed + good)
                parts["time"].append(t)
                parts["spectral"].append(spectral)
                parts["physics"].append(phys)
            next_start = count * hop
        else:
            next_start = 0
        tail = buf[:, next_start:].copy() if next_start < buf.shape[1] else np.empty((n_ch, 0))
        consumed += next_start

    warnings = _warnings(channels, stats)
    readings = []
    for c, name in enumerate(channels):
        if spectra[c] is None:
            readings.append([np.nan] * len(diagnosis_recording.READING_COLUMNS))
            continue
        with np.errstate(all="ignore"):
            r = diagnosis_recording.read_channel(
                spectra[c].finish(), bearing=machines[c].bearing, rpm=machine.rpm, rpm_stated=machine.rpm_stated,
                rpm_search=params.rpm_search, rpm_range=(params.rpm_min, params.rpm_max), channel=name)
        warnings += r.warnings
        readings.append(r.row())
    if n_windows(total, length, hop) == 0:
        raise InputError(f"{source}: shorter than one window ({total} samples < frame_length {length}); "
                         "lower [features] frame_length or record longer")
    if not parts["time"]:
        raise InputError(f"{source}: every window holds NaN, inf or values too large for float64; nothing could "
                         "be computed — check the sensor")

    channel_idx = np.concatenate(parts["channel"])
    window_index = np.concatenate(parts["window_index"])
    order = np.lexsort((window_index, channel_idx))
    start_sample = np.concatenate(parts["start_sample"])[order]
    values = np.column_stack([np.concatenate(parts["time"]), np.concatenate(parts["spectral"]),
                              np.concatenate(parts["physics"])])[order]
    breaks = sorted(gaps or ())
    shift_s = np.zeros(start_sample.shape[0])
    if breaks:
        at = np.array([b for b, _ in breaks], dtype=np.int64)
        later = np.concatenate([[0.0], np.cumsum([g for _, g in breaks])])
        after = np.searchsorted(at, start_sample, side="right")  # breaks at or before each window's start
        spans = (after < at.shape[0]) & (at[np.minimum(after, at.shape[0] - 1)] < start_sample + length)
        shift_s = later[after][~spans]
        order, start_sample, values = order[~spans], start_sample[~spans], values[~spans]
        if start_sample.shape[0] == 0:
            raise InputError(f"{source}: every window spans a gap in the time column; lower [features] "
                             "frame_length or fix the export")
    step_us = 1e6 / sample_rate_hz
    epoch_us = int(round(start.timestamp() * 1e6))
    start_us = epoch_us + np.round(start_sample * step_us + shift_s * 1e6).astype(np.int64)
    end_us = epoch_us + np.round((start_sample + length) * step_us + shift_s * 1e6).astype(np.int64)
    n = start_sample.shape[0]
    utc = pl.Datetime("us", "UTC")
    data = {
        "equipment_id": pl.Series([equipment_id], dtype=pl.String).extend_constant(equipment_id, n - 1),
        "recording_id": pl.Series([recording_id], dtype=pl.String).extend_constant(recording_id, n - 1),
        "channel": pl.Series(np.asarray(channels)[channel_idx[order]], dtype=pl.String),
        "window_index": pl.Series(window_index[order], dtype=pl.Int64),
        "window_start": pl.Series(start_us).cast(utc),
        "window_end": pl.Series(end_us).cast(utc),
        "sample_rate_hz": np.full(n, float(sample_rate_hz)),
        "rpm": np.full(n, np.nan if machine is None or machine.rpm is None else float(machine.rpm)),
    }
    for j, name in enumerate(indicator_columns(params)):
        data[name] = values[:, j]
    per_channel_reading = np.asarray(readings, dtype=np.float64)[channel_idx[order]]
    for j, name in enumerate(diagnosis_recording.READING_COLUMNS):
        data[name] = per_channel_reading[:, j]
    data["iso_zone"] = pl.Series(zones(data["velocity_rms_mm_s"], machine.limits if machine else None,
                                       sample_rate_hz), dtype=pl.String)
    defn = embedding.definition(params.bands_hz)
    vec = embedding.vectors(data, [band_column(lo, hi) for lo, hi in params.bands_hz], sample_rate_hz)
    data["embedding"] = pl.Series(vec).cast(pl.List(pl.Float32))
    data["embedding_version"] = pl.Series([embedding.version_of(defn)], dtype=pl.String).extend_constant(
        embedding.version_of(defn), n - 1)
    frame = pl.DataFrame(data).with_columns(pl.col("rpm").fill_nan(None))
    per_channel = [{"channel": name, **vars(st), **({"units": units[name]} if units and name in units else {})}
                   for name, st in zip(channels, stats)]
    return FeatureResult(table=frame, n_samples=total, n_windows=n, warnings=warnings, channel_stats=per_channel)


def _warnings(channels: list[str], stats: list[ChannelStats]) -> list[str]:
    out = []
    for name, s in zip(channels, stats):
        if s.nan or s.inf:
            what = " and ".join(p for p in (f"{s.nan} NaN" if s.nan else "", f"{s.inf} infinite (inf or beyond "
                                "float64, e.g. 1e400)" if s.inf else "") if p)
            out.append(f"channel {name}: {what} samples; {s.nan_windows} window(s) skipped")
        if s.overflow_windows:
            out.append(f"channel {name}: {s.overflow_windows} window(s) skipped: values so large (about 1e154 "
                       "or more) that their energy overflows float64 — check the sensor's scaling")
        if s.samples and s.flat / s.samples >= FLAT_WARN_SHARE:
            out.append(f"channel {name}: flat line over {100 * s.flat / s.samples:.1f}% of samples")
        if s.samples and s.clipped / s.samples >= CLIP_WARN_SHARE:
            out.append(f"channel {name}: clipping on {100 * s.clipped / s.samples:.2f}% of samples")
    return out

