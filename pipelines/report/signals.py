"""The report's waveform reads: a recording's samples from the kept raw waveform or its source file,
and the spectra charts built from them (velocity spectrum baseline vs now, envelope spectrum,
a waterfall over the machine's recordings), per channel."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vibra.anomaly import reference
from vibra.errors import CorruptError, VibraError
from vibra.physics.bearing import fault_frequencies_hz
from vibra.report import spectra
from vibra.settings import Settings
from vibra.storage.labels import list_events
from vibra.workspace import Workspace

WATERFALL_RECORDINGS = 12  # spectra of the waterfall, spread evenly over the machine's recordings (first and latest in)
MAX_SECONDS = 10.0           # read at most this much of a recording for a spectrum


def file_names(ws: Workspace, recording_ids: list[str]) -> dict[str, str]:
    """``{recording_id: source file name}`` from the ledger (what an analyst recognises, not a hash)."""
    from vibra.storage import ledger

    return {rid: Path(src).name for rid, src in ledger.source_paths(ws, recording_ids).items()}


def read_signal(ws: Workspace, settings: Settings, eid: str, recording_id: str, sample_rate_hz: float
                ) -> tuple[np.ndarray, list[str]] | None:
    """Up to ``MAX_SECONDS`` of a recording as (samples × channels, channel names), or None when
    neither the kept raw waveform nor the source file can be read (or the file is decimated)."""
    from vibra.storage import ledger, tables

    eq = settings.equipment_for(eid)
    source = ledger.source_paths(ws, [recording_id]).get(recording_id)
    rule = eq.rule_for(Path(source).name) if source else None
    if rule is not None and rule.decimate:  # the features' sample indices count decimated samples
        return None
    wanted = int(MAX_SECONDS * sample_rate_hz)
    try:
        if not source:
            return None
        back = tables.read_recording(ws, settings, eid, recording_id, source)
        chunks, channels = back.chunks, list(back.channels)
        parts, seen = [], 0
        for chunk in chunks:  # recordings can be larger than memory: read only what the spectrum needs
            parts.append(np.asarray(chunk, dtype=float).reshape(-1, len(channels)))
            seen += parts[-1].shape[0]
            if seen >= wanted:
                break
    except CorruptError:
        raise  # a damaged file is the workspace's problem, not a missing chart: never hidden
    except VibraError:
        return None
    if not parts:
        return None
    return np.concatenate(parts)[:wanted], channels


def _envelope_chart(settings: Settings, windows, x, sample_rate_hz: float, channel: str, name: str, units,
                    shaft_hz: float, faults_hz) -> str | None:
    """The envelope spectrum of a channel's latest recording (``windows``: its rows of the features, ``x`` its
    samples), averaged over its windows in the band ingest chose; None without a band."""
    w = windows.sort("window_index").row(-1, named=True)
    lo, hi = w["envelope_band_lo_hz"], w["envelope_band_hi_hz"]
    length = settings.features.frame_length
    if lo is None or not np.isfinite(lo) or x.shape[0] < length:
        return None
    return spectra.envelope_chart(x, sample_rate_hz, (lo, hi), channel=channel, when=w["window_start"], name=name,
                                  units=units, shaft_hz=shaft_hz, faults_hz=faults_hz, frame_length=length)


def _reference(ws: Workspace, eid: str, per) -> tuple[dict, str]:
    """The recording whose spectrum is the reference (dashed) and what it is: the one chosen by `vibra baseline
    set` when it is among ``per`` (the machine's recordings without sensor faults, oldest first), else the first of
    the current life (after the last failure or replacement; the rule `vibra baseline set` applies by default),
    else the first."""
    chosen = reference.read(ws.artifacts, eid)
    ids = per["recording_id"].to_list()
    if chosen is not None and chosen["recording_id"] in ids:
        return per.row(ids.index(chosen["recording_id"]), named=True), "chosen baseline"
    events = list_events(ws, [eid])
    if events:  # the rule `vibra baseline set` applies, without its sensor-fault part (``per`` has none)
        rows = [{"recording_id": r, "recorded_at": t} for r, t in zip(ids, per["t"].to_list())]
        row = reference.first_healthy(rows, events, set())
        if row is not None:
            return per.row(ids.index(row["recording_id"]), named=True), "first of this life"
    return per.row(0, named=True), "first recording"


def charts(ws: Workspace, settings: Settings, eid: str, clean, names: dict[str, str]) -> dict[str, list[str]]:
    """Per channel: the spectrum (now vs baseline), the envelope spectrum and the waterfall.

    ``clean``: the machine's features without sensor-fault windows; ``names``: recording file names."""
    import polars as pl

    eq = settings.equipment_for(eid)
    out: dict[str, list[str]] = {"spectrum": [], "envelope": [], "spectrogram": []}
    if clean.height == 0:
        return out
    per = (clean.group_by("recording_id").agg(pl.col("window_start").min().alias("t"), pl.col("sample_rate_hz").first(),
                                              pl.col("rpm").first()).sort("t"))
    pick = np.unique(np.linspace(0, per.height - 1, min(WATERFALL_RECORDINGS, per.height)).round().astype(int))
    recent = [per.row(int(i), named=True) for i in pick]  # evenly over the history: first and latest included
    first, base_name = _reference(ws, eid, per)
    signals = {}
    for rec in {first["recording_id"]: first, **{r["recording_id"]: r for r in recent}}.values():
        got = read_signal(ws, settings, eid, rec["recording_id"], float(rec["sample_rate_hz"]))
        if got is not None:
            signals[rec["recording_id"]] = (rec, *got)
    latest = recent[-1]
    if latest["recording_id"] not in signals:
        return out
    _, x_now, channels = signals[latest["recording_id"]]
    rpm = latest["rpm"] or eq.rpm
    shaft = rpm / 60.0 if rpm else None
    sample_rate_hz = float(latest["sample_rate_hz"])
    length = settings.features.frame_length
    for c, channel in enumerate(channels):
        if channel not in set(clean["channel"].to_list()):
            continue  # a channel flagged as a sensor fault in the latest recording
        geometry = eq.bearing_for(channel)  # its measurement point's bearing, else the machine's
        faults = fault_frequencies_hz(geometry, rpm) if geometry is not None and rpm else None
        freqs, now, unit_label = spectra.line_spectrum(x_now[:, c], sample_rate_hz, eq.units, length)
        base = None
        if first["recording_id"] in signals and first["recording_id"] != latest["recording_id"]:
            _, x_base, ch_base = signals[first["recording_id"]]
            if channel in ch_base and float(first["sample_rate_hz"]) == sample_rate_hz:
                base = spectra.line_spectrum(x_base[:, ch_base.index(channel)], sample_rate_hz, eq.units, length)[1]
        out["spectrum"].append(spectra.spectrum_chart(
            freqs, now, base if base is not None and base.shape == now.shape else None, unit_label, channel=channel,
            when=latest["t"], name=names.get(latest["recording_id"], latest["recording_id"][:12]),
            base_when=first["t"] if base is not None else None, shaft_hz=shaft, faults_hz=faults,
            base_name=base_name))
        last = clean.filter((pl.col("recording_id") == latest["recording_id"]) & (pl.col("channel") == channel))
        if faults and shaft and "envelope_band_lo_hz" in last.columns and last.height:
            chart = _envelope_chart(settings, last, x_now[:, c], sample_rate_hz, channel,
                                    names.get(latest["recording_id"], ""), eq.units, shaft, faults)
            if chart:
                out["envelope"].append(chart)
        columns = [(r, sig[:, chs.index(channel)]) for rid, (r, sig, chs) in signals.items()
                   if r in recent and channel in chs and float(r["sample_rate_hz"]) == sample_rate_hz]
        if len(columns) >= 2:
            specs = [spectra.line_spectrum(x, sample_rate_hz, eq.units, length) for _, x in columns]
            if all(s[1].shape == specs[0][1].shape for s in specs):
                top = spectra.VELOCITY_TOP_HZ if unit_label.startswith("velocity") else float(freqs[-1])
                out["spectrogram"].append(spectra.waterfall(
                    [r["t"] for r, _ in columns], [names.get(r["recording_id"], "") for r, _ in columns],
                    [s[1] for s in specs], specs[0][0], channel=channel, unit_label=unit_label, top_hz=top))
    return out
