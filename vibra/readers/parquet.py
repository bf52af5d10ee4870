"""Parquet files, read a row-group batch at a time.

Numeric columns are channels; a ``time``/``timestamp``/``t`` column gives
seconds from start (numeric) or absolute timestamps (timestamp type).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vibra.errors import InputError
from vibra.readers.base import TIME_NAMES, Recording
from vibra.readers.timestamps import sample_rate_from_times
from vibra.settings import Equipment


def read_parquet(path: Path, equipment: Equipment, chunk_rows: int) -> Recording:
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
    if time_col is not None:
        first = pf.read_row_group(0, columns=[time_col]).column(0)
        if pa.types.is_timestamp(first.type):
            stamps = first.cast(pa.timestamp("us", tz="UTC")).to_pylist()
            recording.start = stamps[0]
            seconds = np.array([(s - stamps[0]).total_seconds() for s in stamps[:10_000]])
        else:
            seconds = first.to_numpy(zero_copy_only=False)[:10_000]
        recording.sample_rate_hz = sample_rate_from_times(seconds)

    def chunks():
        try:
            for batch in pf.iter_batches(batch_size=chunk_rows, columns=channels):
                yield np.column_stack([batch.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
                                       for c in channels])
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{path}: Parquet data unreadable ({exc}); re-copy the file") from None

    recording.chunks = chunks()
    return recording
