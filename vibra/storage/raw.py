"""Raw waveforms kept in the lake, so features can be rebuilt without the plant export.

``data/lake/raw/date=YYYY-MM-DD/equipment=<id>/part-<recording_id[:16]>.parquet``: one
float32 column per channel, one row per sample, a row group per ingest chunk. Encoding:
BYTE_STREAM_SPLIT + zstd, lossless for float32 and about 1.15× smaller than plain float32
on vibration data. (Quantising to int32 micro-units with delta encoding is ~3× smaller but
assumes a unit and a resolution; vibra does not guess either.) What the file itself said
(sample rate, start, rpm, units) is kept in the Parquet key-value metadata under ``vibra``, so a
rebuild re-applies the current ``vibra.toml`` exactly as an ingest would; the gaps its time
column showed, known only once it has been read, under ``vibra_gaps`` in the footer.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

if TYPE_CHECKING:
    import numpy as np

from vibra.storage.atomic import replace_into, temp_path
from vibra.storage.lake import partition_dir, push

META_KEY = b"vibra"
GAPS_KEY = "vibra_gaps"


@dataclass(frozen=True)
class RawMeta:
    """What a source file said about itself, plus where it came from."""

    recording_id: str
    equipment_id: str
    source_path: str
    channels: list[str]
    file_sample_rate_hz: float | None
    file_start: str | None  # ISO-8601, UTC
    file_rpm: float | None
    mtime: float
    units: dict[str, str] | None = None
    gaps: list = field(default_factory=list)  # the reader's list: filled while the waveform streams

    @property
    def start(self) -> datetime | None:
        return datetime.fromisoformat(self.file_start) if self.file_start else None


def raw_path(table_dir: Path, date: str, meta: RawMeta) -> Path:
    return partition_dir(table_dir, date, meta.equipment_id) / f"part-{meta.recording_id[:16]}.parquet"


_LISTED: dict[tuple[str, str], tuple[float, dict]] = {}  # (raw folder, machine) → when listed, its files by name


def find(table_dir: Path, equipment_id: str, recording_id: str) -> Path | None:
    """The raw file of a recording, if it was kept (fetched into the cache for a lake on object storage)."""
    from vibra.storage import remote

    name = f"part-{recording_id[:16]}.parquet"
    store = remote.of(table_dir)
    if store is not None:  # one listing of the store's raw files serves many lookups (a rebuild asks for each)
        key = (str(table_dir), equipment_id)
        when, known = _LISTED.get(key, (-1e9, {}))
        if name not in known and time.monotonic() - when > 10.0:
            known = {p.name: (p, size) for p, size in store.listing(table_dir, ".parquet")
                     if p.parent.name == f"equipment={equipment_id}"}
            _LISTED[key] = (time.monotonic(), known)
        hit = known.get(name)
        return store.fetch(*hit) if hit else None
    if not table_dir.exists():
        return None
    return next(iter(table_dir.glob(f"date=*/equipment={equipment_id}/{name}")), None)


class RawWriter:
    """Tees a recording's chunks into its raw Parquet file; ``commit`` renames it into place."""

    def __init__(self, final: Path, meta: RawMeta):
        self.final = final
        self.meta = meta
        self.tmp = temp_path(final)
        self._writer = None

    def tee(self, chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        import numpy as np
        import pyarrow as pa
        import pyarrow.parquet as pq

        names = self.meta.channels
        schema = pa.schema([pa.field(n, pa.float32()) for n in names],
                           metadata={META_KEY: json.dumps({**asdict(self.meta), "gaps": []}).encode()})
        for chunk in chunks:
            if self._writer is None:
                self.final.parent.mkdir(parents=True, exist_ok=True)
                self._writer = pq.ParquetWriter(self.tmp, schema, compression="zstd", use_dictionary=False,
                                                use_byte_stream_split=True)
            block = np.asarray(chunk, dtype=np.float32).reshape(-1, len(names))
            self._writer.write_table(pa.table({n: block[:, j] for j, n in enumerate(names)}, schema=schema))
            yield chunk

    def commit(self) -> Path:
        if self._writer is not None:
            if self.meta.gaps:
                self._writer.add_key_value_metadata({GAPS_KEY: json.dumps([list(g) for g in self.meta.gaps])})
            self._writer.close()
            self._writer = None
            replace_into(self.tmp, self.final)
            push(self.final)
        return self.final

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.tmp.unlink(missing_ok=True)


def read(path: Path, batch_rows: int = 262_144) -> tuple[RawMeta, Iterator[np.ndarray]]:
    """Metadata and float64 chunks (rows, channels) of a raw file."""
    import numpy as np
    import pyarrow.parquet as pq

    from vibra.storage.lake import reading

    with reading([path]):  # a damaged raw file is named, not a bare pyarrow error
        pf = pq.ParquetFile(str(path))
    meta = RawMeta(**json.loads(pf.schema_arrow.metadata[META_KEY]))
    footer = pf.metadata.metadata or {}
    if GAPS_KEY.encode() in footer:
        meta.gaps.extend(tuple(g) for g in json.loads(footer[GAPS_KEY.encode()]))

    def chunks() -> Iterator[np.ndarray]:
        for batch in pf.iter_batches(batch_size=batch_rows, columns=meta.channels):
            out = np.empty((batch.num_rows, len(meta.channels)))
            for j, c in enumerate(meta.channels):
                out[:, j] = batch.column(c).to_numpy(zero_copy_only=False)
            yield out

    return meta, chunks()
