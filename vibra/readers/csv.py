"""CSV and gzip-compressed CSV, streamed in chunks.

A header row names the columns; every numeric column is a channel and an
optional time column (``time``, ``timestamp``, ``t``) holds absolute
timestamps or seconds from the start. A file whose first row is all numbers
is headerless: its columns are named by the equipment's ``channels`` list.
Plain files stream through Polars' batched reader; gzip files through
PyArrow's streaming reader over a decompressing stream, so neither is held
in memory whole.
"""

from __future__ import annotations

import gzip
import itertools
import re
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np

from vibra.errors import InputError
from vibra.readers.base import TIME_NAMES, Recording
from vibra.readers.timestamps import sample_rate_from_times
from vibra.settings import Equipment

SKIP = {"-", ""}
_PEEK_BYTES = 65_536
# Files below this size are parsed in one call (cheaper per file); larger ones stream in chunks.
SMALL_FILE_BYTES = 16 << 20


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _peek(path: Path, gz: bool) -> str:
    try:
        if gz:
            with gzip.open(path, "rb") as fh:
                raw = fh.read(_PEEK_BYTES)
        else:
            with open(path, "rb") as fh:
                raw = fh.read(_PEEK_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: truncated or corrupt gzip ({exc}); re-copy the file from its source") from None
    if not raw.strip():
        raise InputError(f"{path}: file is empty; remove it or export the recording again")
    if b"\x00" in raw:
        raise InputError(f"{path}: binary content, not CSV text; check the file's format and extension")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(raw) - 4:  # a multi-byte character cut at the peek boundary is fine
            raise InputError(f"{path}: not UTF-8 text at byte {exc.start}; save the CSV as UTF-8") from None
        return raw[: exc.start].decode("utf-8")


def _layout(path: Path, text: str, equipment: Equipment) -> tuple[list[str], bool, str | None, bool]:
    """Column names, headerless?, time column name, time column numeric?"""
    lines = [ln for ln in text.split("\n", 3)[:3] if ln.strip()]
    first = [f.strip().strip('"') for f in lines[0].split(",")]
    headerless = all(_is_number(f) for f in first)
    if headerless:
        if equipment.channels is None:
            names = [f"ch{i}" for i in range(len(first))]
        else:
            names = list(equipment.channels)
            if len(names) != len(first):
                raise InputError(
                    f"{path}: headerless file has {len(first)} columns but [equipment.{equipment.equipment_id}] "
                    f"channels lists {len(names)}; give one name per column (\"-\" skips one)")
        data = lines
    else:
        names = first
        data = lines[1:]
        if not data:
            raise InputError(f"{path}: header only, no data rows; export the recording again")
    names = [f"__skip_{i}" if n in SKIP else n for i, n in enumerate(names)]
    if len(set(names)) != len(names):
        raise InputError(f"{path}: duplicate column names in {names}; give each column its own name")
    time_col = next((n for n in names if n.lower() in TIME_NAMES), None)
    time_numeric = True
    if time_col is not None:
        idx = names.index(time_col)
        values = data[0].split(",")
        time_numeric = idx < len(values) and _is_number(values[idx].strip())
    return names, headerless, time_col, time_numeric


_POLARS_PARSE = re.compile(r"could not parse [`'\"](?P<value>.*?)[`'\"] as dtype .*?column [`'\"](?P<col>[^`'\"]+)")
_ARROW_PARSE = re.compile(r"column #(?P<idx>\d+): Row #(?P<row>\d+): CSV conversion error to \w+: invalid value '(?P<value>.*?)'",
                          re.IGNORECASE | re.DOTALL)


def _text_error(path: Path, column: str, value: str, row: int | None) -> InputError:
    where = f" at row {row}" if row is not None else ""
    return InputError(f"{path}: column '{column}' has text{where} ({value!r}); channels must be numeric — "
                      "fix or remove that value")


def _locate_text(path: Path, column: str, has_header: bool, names: list[str]) -> tuple[str, int] | None:
    """First non-numeric value of a column and its 1-based data row (slow path, errors only)."""
    import polars as pl

    lf = pl.scan_csv(path, has_header=has_header, new_columns=None if has_header else names,
                     infer_schema=False, truncate_ragged_lines=True)
    bad = (lf.with_row_index("row", offset=1)
           .filter(pl.col(column).is_not_null() & pl.col(column).str.strip_chars().cast(pl.Float64, strict=False).is_null()
                   & ~pl.col(column).str.strip_chars().str.to_lowercase().is_in(["", "nan", "na", "n/a", "null"]))
           .select("row", column).head(1).collect())
    if bad.height:
        return bad[column][0], int(bad["row"][0])
    return None


def _plain_batches(path: Path, names: list[str], headerless: bool, keep: list[str], time_col: str | None,
                   time_numeric: bool, chunk_rows: int):
    import polars as pl

    overrides = {n: pl.Float64 for n in keep}
    if time_col is not None:
        overrides[time_col] = pl.Float64 if time_numeric else pl.String
    lf = pl.scan_csv(path, has_header=not headerless, new_columns=names if headerless else None,
                     schema_overrides=overrides, null_values=["", "NaN", "nan", "NA", "N/A", "n/a", "null"],
                     truncate_ragged_lines=True)
    cols = keep + ([time_col] if time_col else [])
    small = path.stat().st_size < SMALL_FILE_BYTES
    try:
        frames = [lf.select(cols).collect()] if small else lf.select(cols).collect_batches(chunk_size=chunk_rows)
        for df in frames:
            yield (df.select(keep).to_numpy().astype(np.float64, copy=False),
                   df[time_col] if time_col else None)
    except pl.exceptions.PolarsError as exc:
        msg = str(exc)
        m = _POLARS_PARSE.search(msg)
        column = m["col"] if m else next((c for c in keep if f"'{c}'" in msg or f"`{c}`" in msg), None)
        if column:
            found = _locate_text(path, column, not headerless, names)
            if found:
                raise _text_error(path, column, found[0], found[1]) from None
        first = msg.strip().splitlines()[0] if msg.strip() else type(exc).__name__
        raise InputError(f"{path}: cannot parse as CSV ({first}); check the file's delimiter and columns") from None


def _gzip_batches(path: Path, names: list[str], headerless: bool, keep: list[str], time_col: str | None,
                  time_numeric: bool, chunk_rows: int):
    import pyarrow as pa
    import pyarrow.csv as pcsv

    types = {n: pa.float64() for n in keep}
    if time_col is not None:
        types[time_col] = pa.float64() if time_numeric else pa.string()
    include = keep + ([time_col] if time_col else [])
    try:
        stream = pa.input_stream(str(path), compression="gzip")
        reader = pcsv.open_csv(
            stream,
            read_options=pcsv.ReadOptions(column_names=names if headerless else None, block_size=8 << 20),
            convert_options=pcsv.ConvertOptions(column_types=types, include_columns=include),
        )
        for batch in reader:
            for offset in range(0, batch.num_rows, chunk_rows):
                part = batch.slice(offset, chunk_rows)
                values = np.column_stack([part.column(c).to_numpy(zero_copy_only=False) for c in keep]) \
                    if keep else np.empty((part.num_rows, 0))
                yield values.astype(np.float64, copy=False), (part.column(time_col) if time_col else None)
    except pa.ArrowInvalid as exc:
        m = _ARROW_PARSE.search(str(exc))
        if m:
            raise _text_error(path, include[int(m["idx"])] if int(m["idx"]) < len(include) else "?", m["value"],
                              int(m["row"]) - (0 if headerless else 1)) from None
        raise InputError(f"{path}: cannot parse as CSV ({str(exc).splitlines()[0]}); "
                         "check the delimiter and columns") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: truncated or corrupt gzip ({str(exc).splitlines()[0]}); "
                         "re-copy the file from its source") from None


def _time_seconds(values, numeric: bool, path: Path) -> tuple[np.ndarray, object]:
    """Seconds (relative to the first value) and the absolute start, if the column is absolute."""
    import polars as pl

    series = values if isinstance(values, pl.Series) else pl.Series(values.to_pylist() if hasattr(values, "to_pylist") else values)
    if numeric:
        return series.cast(pl.Float64).to_numpy(), None
    try:
        stamps = series.str.strip_chars().str.to_datetime(time_zone="UTC", time_unit="us")
    except pl.exceptions.PolarsError:
        try:
            stamps = series.str.strip_chars().str.to_datetime(time_unit="us").dt.replace_time_zone("UTC")
        except pl.exceptions.PolarsError:
            raise InputError(f"{path}: time column value {series[0]!r} is neither seconds nor an ISO-8601 "
                             "timestamp; use e.g. 2026-01-05T13:20:00Z or seconds from start") from None
    start = stamps[0]
    seconds = (stamps - start).dt.total_microseconds().to_numpy() / 1e6
    return seconds, start


def read_csv(path: Path, equipment: Equipment, chunk_rows: int) -> Recording:
    gz = path.name.lower().endswith(".gz")
    names, headerless, time_col, time_numeric = _layout(path, _peek(path, gz), equipment)
    keep = [n for n in names if not n.startswith("__skip_") and n != time_col]
    if not keep:
        raise InputError(f"{path}: no channel columns besides the time column; nothing to analyse")
    batches = (_gzip_batches if gz else _plain_batches)(path, names, headerless, keep, time_col, time_numeric,
                                                        chunk_rows)
    first = next(batches, None)
    if first is None or first[0].shape[0] == 0:
        raise InputError(f"{path}: no data rows; export the recording again")
    recording = Recording(channels=keep, chunks=iter(()))
    if headerless and equipment.channels is None:
        recording.warnings.append(f"headerless CSV: columns named ch0..ch{len(names) - 1}; "
                                  f"set [equipment.{equipment.equipment_id}] channels to name them")
    if time_col is not None:
        seconds, start = _time_seconds(first[1], time_numeric, path)
        recording.sample_rate_hz = sample_rate_from_times(seconds)
        recording.start = start
    recording.chunks = (chunk for chunk, _ in itertools.chain([first], batches))
    return recording
