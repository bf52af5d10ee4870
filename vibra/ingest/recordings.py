"""A recording as vibra reads it: its resolved sample rate, start and rpm, its times checked, its indicators.

Shared by ingest (a new file) and the features rebuild (a kept raw waveform or its source file read again),
so both compute a recording's windows the same way.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from vibra.errors import InputError
from vibra.ingest.faults import RetryableInputError
from vibra.readers.timestamps import from_filename
from vibra.settings import Equipment, Settings

if TYPE_CHECKING:
    from vibra.workspace import Workspace

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def utc_of(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def check_times(source: str, start: datetime, sample_rate_hz: float, n_samples: int, settings: Settings,
                now: datetime | None = None) -> None:
    """Refuse times no recording can have, before any timestamp is built from them.

    ``n_samples`` at ``sample_rate_hz`` from ``start`` must span at most ``[ingest] max_span_s`` and lie
    between 1970-01-01 and now + ``[ingest] max_clock_skew_s``. Checked once with one window before
    reading (a nonsense sample rate fails at once) and again with the whole file before writing.
    Timestamps are microseconds in int64: past about 292,000 years they wrap, and Polars panics.
    """
    limits = settings.ingest
    if start.tzinfo is None:  # a naive time is UTC (as everywhere in vibra)
        start = start.replace(tzinfo=timezone.utc)
    if not (math.isfinite(sample_rate_hz) and sample_rate_hz > 0):
        raise InputError(f"{source}: sample rate {sample_rate_hz!r} Hz is not a positive number; fix the time column or "
                         "sample_rate_hz")
    span_s = n_samples / sample_rate_hz
    if not span_s <= limits.max_span_s:
        raise InputError(f"{source}: {n_samples} samples at {sample_rate_hz:.6g} Hz span {span_s:.3g} s, more than [ingest] "
                         f"max_span_s = {limits.max_span_s:g} s; check the time column (a jump, or the wrong unit?) "
                         "or sample_rate_hz")
    if start < EPOCH:
        raise InputError(f"{source}: recording starts {start:%Y-%m-%d %H:%M:%S} UTC, before 1970; check the file "
                         "name, its time column or the start rule")
    now = now or datetime.now(timezone.utc)
    if start.timestamp() + span_s > now.timestamp() + limits.max_clock_skew_s:
        raise RetryableInputError(f"{source}: recording starts {start:%Y-%m-%d %H:%M:%S} UTC and ends after now + "
                                  f"[ingest] max_clock_skew_s ({limits.max_clock_skew_s:g} s); check the file name, "
                                  "its time column or the recorder's clock")


def resolve(equipment: Equipment, settings: Settings, path: Path, mtime: float, *, file_sample_rate_hz: float | None,
            file_start: datetime | None, file_rpm: float | None) -> tuple[float, datetime, float | None, list[str]]:
    """Sample rate, start time and rpm of a recording from what the file said and the settings.

    Precedence: the file's own values; then a matching ``[[equipment.<id>.files]]`` rule; then the
    equipment; then the workspace default (rate) or the file name / start rule / mtime (start).
    """
    warnings = []
    rule = equipment.rule_for(path.name)
    sample_rate_hz = (file_sample_rate_hz or (rule and rule.sample_rate_hz) or equipment.sample_rate_hz
            or (settings.ingest.sample_rate_hz or None))
    if not sample_rate_hz:
        raise InputError(f"{path}: unknown sample rate (no time column in the file, no "
                         f"[equipment.{equipment.equipment_id}] sample_rate_hz, no [ingest] sample_rate_hz); "
                         "set one in vibra.toml")
    start = file_start or from_filename(path.name) or (
        equipment.start_rule.start_for(path.name) if equipment.start_rule else None)
    if start is None:
        start = utc_of(mtime)
        warnings.append("no timestamp in the file or its name; used the file's modification time")
    rpm = file_rpm or (rule and rule.rpm) or equipment.rpm
    return float(sample_rate_hz), start, rpm, warnings



def compute_features(settings: Settings, equipment_id: str, recording_id: str, chunks, channels, sample_rate_hz: float,
                     start: datetime, rpm: float | None, source: str, *,
                     gaps: list[tuple[int, float]] | None = None, units: dict[str, str] | None = None):
    """A recording's indicators (FeatureResult with the physics warnings added), its times checked.

    A matching ``files`` rule with ``decimate`` low-passes and decimates the samples first.
    """
    # here, not at the top: numpy and numba load only when a file is computed (an unchanged rerun needs neither)
    from vibra.ingest.features import compute
    from vibra.physics.indicators import PhysicsInputs
    from vibra.signal.resample import decimate_chunks

    equipment = settings.equipment_for(equipment_id)
    rule = equipment.rule_for(Path(source).name)
    if rule is not None and rule.decimate:
        q = rule.decimate
        chunks, sample_rate_hz = decimate_chunks(chunks, q), sample_rate_hz / q
        gaps = ((i // q, g) for i, g in (gaps if gaps is not None else []))  # lazy: filled while streaming
    machine = PhysicsInputs.of(equipment, rpm)
    file_units = set((units or {}).values())
    if machine.units is None and len(file_units) == 1:  # the file's own units (TDMS, UFF) when the config has none
        machine = dataclasses.replace(machine, units=file_units.pop())
    result = compute(chunks, list(channels), sample_rate_hz=sample_rate_hz, start=start, params=settings.features,
                     equipment_id=equipment_id, recording_id=recording_id, source=source, machine=machine,
                     gaps=gaps, units=units)
    check_times(source, start, sample_rate_hz, result.n_samples, settings)
    result.warnings[:0] = machine.checks(sample_rate_hz, equipment_id)
    return result


def ensure_embedding_manifest(ws: Workspace, settings: Settings) -> str:
    """The manifest of the embedding the features written now carry (written once per definition)."""
    from vibra.discovery import embedding

    return embedding.ensure_manifest(ws.artifacts / "models" / "embedding", embedding.definition(settings.features.bands_hz))
