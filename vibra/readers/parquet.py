"""Parquet files, read a row-group batch at a time.

Numeric columns are channels; a ``time``/``timestamp``/``t`` column gives
seconds from start (numeric) or absolute timestamps (timestamp type).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vibra.errors import InputError
from vibra.readers.base import TIME_NAMES, Recording
from vibra.readers.timestamps import TimeCheck, reconcile_rate, sample_rate_from_times
from vibra.equipment import Equipment


def _seconds(column, origin_us: int | None):
    """Seconds of a time column chunk: numeric as it is, timestamps from ``origin_us`` (µs since epoch)."""
    import pyarrow as pa

    if pa.types.is_timestamp(column.type):
        us = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy(zero_copy_only=False)
        return (us - origin_us) / 1e6
    return column.to_numpy(zero_copy_only=False).astype(np.float64)


def read_parquet(path: Path, equipment: Equipment, chunk_rows: int, on_time_gap: str = "split") -> Recording:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(str(path))
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc}); check the file's format") from None
    schema = pf.schema_arrow
    time_col = next((f.name for f in schema if f.name.lower() in TIME_NAMES), None)
    channels = [f.name for f in schema if f.name != time_col
                and (pa.types.is_floating(f.type) or pa.types.is_integer(f.type))]
    text = [f.name for f in schema if f.name != time_col and f.name not in channels]
    if not channels:
        raise InputError(f"{path}: no numeric columns; channels must be numeric")
    if pf.metadata.num_rows == 0:
        raise InputError(f"{path}: no data rows; export the recording again")
    recording = Recording(channels=channels, chunks=iter(()))
    if text:
        recording.warnings.append(f"non-numeric columns {text} ignored")
    check, origin_us = None, None
    if time_col is not None:
        first = pf.read_row_group(0, columns=[time_col]).column(0)
        if pa.types.is_timestamp(first.type):
            origin_us = first.slice(0, 1).cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()[0]
            recording.start = first.cast(pa.timestamp("us", tz="UTC"))[0].as_py()
        sample_rate_hz, notes = reconcile_rate(path, sample_rate_from_times(_seconds(first.slice(0, 10_000), origin_us)),
                                     equipment)
        recording.sample_rate_hz = sample_rate_hz
        recording.warnings += notes
        check = TimeCheck(path, sample_rate_hz, on_time_gap, recording.gaps)
    columns = channels + ([time_col] if check is not None else [])

    def chunks():
        try:
            for batch in pf.iter_batches(batch_size=chunk_rows, columns=columns):
                if check is not None:
                    check.feed(_seconds(batch.column(time_col), origin_us))
                yield np.column_stack([batch.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
                                       for c in channels])
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{path}: Parquet data unreadable ({exc}); re-copy the file") from None
        if check is not None:
            recording.warnings.extend(check.warnings())

    recording.chunks = chunks()
    return recording
