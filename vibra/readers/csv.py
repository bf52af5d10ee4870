"""CSV, gzip-compressed CSV and any delimited text, streamed in chunks.

Files ending ``.csv``/``.csv.gz`` have their delimiter (``, ; tab |``) and decimal mark (a decimal
comma with a non-comma delimiter) sniffed from the first lines (:func:`sniff`), or given by the
machine's ``csv = { delimiter = ";", decimal = "," }``; a machine's ``format =
{ kind = "text", delimiter = "\\t", header = false }`` reads its files (those
matching ``file_pattern``) with another delimiter and header rule whatever
their extension — e.g. the IMS bearing data's tab-separated, extension-less files.

A header row names the columns; every numeric column is a channel and an
optional time column (``time``, ``timestamp``, ``t``) holds absolute
timestamps or seconds from the start. A file whose first row is all numbers
is headerless: its columns are named by the equipment's ``channels`` list.
Files are read a block of whole lines at a time (gzip through a decompressing
stream) and each block is parsed by Polars, so no file is held in memory whole.

A UTF-8 byte-order mark is skipped. A row with more fields than the header is
an error naming the row (empty trailing fields are tolerated). The time column
is checked block by block (:class:`~vibra.readers.timestamps.TimeCheck`).
"""

from __future__ import annotations

import gzip
import itertools
import re
import zlib
from pathlib import Path

import numpy as np

from vibra.errors import InputError
from vibra.storage.hashing import ReadHash
from vibra.readers.base import TIME_NAMES, Recording
from vibra.readers.timestamps import TimeCheck, reconcile_rate, sample_rate_from_times
from vibra.equipment import Equipment

SKIP = {"-", ""}
_PEEK_BYTES = 65_536
# A block is about ``chunk_rows`` lines, within these bounds: Polars' per-call start-up shows below
# ~1 MiB, while its parse CPU per byte is flat from 4 to 16 MiB; every block in flight (its bytes, the
# parsed frame, its samples, the one parsed ahead) costs RSS. Ingesting a 342 MB CSV peaked at 544 MB
# of RSS with 16 MiB blocks, 435 MB with 7 MiB (262,144 rows), 400 MB with 4 MiB, 376 MB with 1 MiB.
MIN_BLOCK_BYTES = 1 << 20
MAX_BLOCK_BYTES = 4 << 20
BOM = b"\xef\xbb\xbf"


def _is_number(text: str, decimal: str = ".") -> bool:
    if decimal == ",":
        if "." in text:  # with a decimal comma a dot is no decimal point (nor, here, a thousands separator)
            return False
        text = text.replace(",", ".", 1)
    try:
        float(text)
        return True
    except ValueError:
        return False


CANDIDATES = (",", ";", "\t", "|")
SNIFF_LINES = 20
_DECIMAL_COMMA = re.compile(r"^[-+]?\d*,\d+(?:[eE][-+]?\d+)?$")
_DECIMAL_POINT = re.compile(r"^[-+]?\d*\.\d+(?:[eE][-+]?\d+)?$")


def _fields(lines: list[str], sep: str) -> list[list[str]]:
    import csv

    return [[f.strip() for f in row] for row in csv.reader(lines, delimiter=sep)]


def _override(equipment: Equipment) -> str:
    return f"[equipment.{equipment.equipment_id}]"


def sniff(path: Path, text: str, equipment: Equipment) -> tuple[str, str]:
    """The delimiter and decimal mark of a CSV file from its first lines.

    A delimiter among ``, ; tab |`` qualifies when it splits every line into the same number
    (≥ 2) of fields; when several do, the one whose data fields are most often numbers wins (so
    ``0,5;1,25`` reads as two decimal-comma values, not three). A decimal comma is taken when a
    non-comma delimiter's fields look like ``0,123``. One column, or no qualifying delimiter,
    reads as comma-separated (the later parse names any bad line). The ``csv`` setting of the
    machine overrides either guess. Raises InputError when two readings are equally plausible
    or the decimal mark is mixed, naming the line to add.
    """
    dialect = equipment.csv
    if dialect is not None and dialect.delimiter is not None:
        return dialect.delimiter, dialect.decimal
    parts = text.split("\n")
    lines = [ln.rstrip("\r") for ln in (parts[:-1] if len(parts) > 1 else parts)[:SNIFF_LINES] if ln.strip()]
    fix = (f"add csv = {{ delimiter = \";\", decimal = \",\" }} (with this file's delimiter and decimal mark) "
           f"to {_override(equipment)} in vibra.toml")
    scored = []
    for sep in CANDIDATES:
        if dialect is not None and dialect.decimal == "," and sep == ",":
            continue
        rows = _fields(lines, sep)
        counts = {len(r) for r in rows}
        if len(counts) != 1 or counts.pop() < 2:
            continue
        data = [f for r in rows[1:] or rows for f in r]
        numeric = sum(_is_number(f) or (sep != "," and _is_number(f, ",")) for f in data) / max(1, len(data))
        scored.append((numeric, sep, data))
    if not scored:
        return ",", dialect.decimal if dialect is not None else "."
    scored.sort(key=lambda t: -t[0])
    if len(scored) > 1 and scored[0][0] == scored[1][0]:
        shown_seps = " and ".join(repr(s) for _, s, _ in scored[:2])
        raise InputError(f"{path}: cannot tell the delimiter: the first lines split evenly on {shown_seps}; {fix}")
    _, sep, data = scored[0]
    if dialect is not None:
        return sep, dialect.decimal
    commas = sum(bool(_DECIMAL_COMMA.match(f)) for f in data)
    points = sum(bool(_DECIMAL_POINT.match(f)) for f in data)
    if sep == "," or not commas:
        return sep, "."
    if points:
        raise InputError(f"{path}: cannot tell the decimal mark: numbers like 0,5 and 0.5 in the same lines "
                         f"(delimiter {sep!r}); {fix}")
    return sep, ","


def _peek(path: Path, gz: bool) -> str:
    try:
        if gz:
            with gzip.open(path, "rb") as fh:
                raw = fh.read(_PEEK_BYTES)
        else:
            with open(path, "rb") as fh:
                raw = fh.read(_PEEK_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        if getattr(exc, "errno", None):  # the file cannot be read (permissions, I/O): the caller says so
            raise
        raise InputError(f"{path}: truncated or corrupt gzip ({exc}); re-copy the file from its source") from None
    if raw.startswith(BOM):
        raw = raw[len(BOM):]
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


def _layout(path: Path, text: str, equipment: Equipment, sep: str,
            header: bool | None, decimal: str = ".") -> tuple[list[str], bool, str | None, bool]:
    """Column names, headerless?, time column name, time column numeric? (``decimal``: the decimal mark)"""
    lines = [ln.rstrip("\r") for ln in text.split("\n", 3)[:3] if ln.strip()]
    first = [f.strip().strip('"') for f in lines[0].split(sep)]
    headerless = all(_is_number(f, decimal) for f in first) if header is None else not header
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
        twice = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"{path}: duplicate column names {', '.join(shown(n) for n in twice[:3])}; "
                         "give each column its own name")
    time_col = next((n for n in names if n.lower() in TIME_NAMES), None)
    time_numeric = True
    if time_col is not None:
        idx = names.index(time_col)
        values = data[0].split(sep)
        time_numeric = idx < len(values) and _is_number(values[idx].strip().strip('"'), decimal)
    return names, headerless, time_col, time_numeric


_POLARS_PARSE = re.compile(r"could not parse [`'\"](?P<value>.*?)[`'\"] as dtype .*?column [`'\"](?P<col>[^`'\"]+)")
NULLS = ["", "NaN", "nan", "NA", "N/A", "n/a", "null"]


SHOWN_CHARS = 24  # how much of a file's own text an error message may quote (escaped): enough to find it


def shown(text: object, limit: int = SHOWN_CHARS) -> str:
    """A snippet of file content for an error message: escaped (repr) and cut to ``limit`` characters,
    so an error never carries more than a hint of what the file holds."""
    text = str(text)
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "…"


def _text_error(path: Path, column: str, value: str, row: int | None) -> InputError:
    where = f" at row {row}" if row is not None else ""
    return InputError(f"{path}: column {shown(column)} has text{where} ({shown(value)}); channels must be numeric — "
                      "fix or remove that value")


def _locate_text(block: bytes, column: str, names: list[str], sep: str,
                 decimal: str = ".") -> tuple[str, int] | None:
    """First non-numeric value of a column in a block and its 1-based row there (errors only)."""
    import polars as pl

    try:
        df = pl.read_csv(block, has_header=False, new_columns=names, infer_schema=False, truncate_ragged_lines=True,
                         separator=sep)
    except pl.exceptions.PolarsError:  # not even readable as text columns (e.g. an unterminated quote)
        return None
    value = pl.col(column).str.strip_chars()
    number = value.str.replace(",", ".", literal=True) if decimal == "," else value
    bad = (df.with_row_index("row", offset=1)
           .filter(value.is_not_null() & number.cast(pl.Float64, strict=False).is_null()
                   & ~value.is_in(NULLS))
           .select("row", column).head(1))
    if bad.height:
        return bad[column][0], int(bad["row"][0])
    return None


def _blocks(fh, block_bytes: int, head: bytes = b""):
    """Bytes of whole lines, about ``block_bytes`` at a time (the last line completed by readline);
    ``head``: bytes already read from ``fh`` that start the first block."""
    while True:
        data = head + fh.read(block_bytes)
        head = b""
        if not data:
            return
        if not data.endswith(b"\n"):
            data += fh.readline()
        if not data.isspace():  # (not ``strip()``: that copies the block)
            yield data


def _extra_field_row(block: bytes, n_fields: int, sep: str) -> tuple[int, int] | None:
    """1-based row in a block with a non-empty field beyond ``n_fields``, and its field count (errors only)."""
    import csv
    import io

    for row, fields in enumerate(csv.reader(io.StringIO(block.decode("utf-8", "replace")), delimiter=sep), start=1):
        if len(fields) > n_fields and any(f.strip() for f in fields[n_fields:]):
            return row, len(fields)
    return None


def _extra_fields(exc: Exception) -> bool:
    """Polars' ways of saying a row has more fields than the schema (later rows / the first row)."""
    return "more fields" in str(exc) or "not specified in schema" in str(exc)


def _parse_block(pl, block: bytes, schema: dict, cols: list[str], sep: str, ragged: bool = False,
                 decimal: str = "."):
    """Parse one block. Polars reads NaN/nan and empty fields natively; a block holding other
    missing-value spellings (NA, N/A, null) is parsed again with them declared, which costs
    about a quarter more and so only happens when needed. ``ragged`` drops extra fields (the
    caller has checked they are empty). ``decimal`` "," parses decimal commas (``0,123``)."""
    extra = {"truncate_ragged_lines": True, "extra_columns": "ignore"} if ragged else {}
    extra["separator"] = sep
    if decimal == ",":
        extra["decimal_comma"] = True
    try:
        return pl.read_csv(block, has_header=False, schema=schema, **extra).select(cols)
    except pl.exceptions.PolarsError as exc:
        if _extra_fields(exc):
            raise
        return pl.read_csv(block, has_header=False, schema=schema, null_values=NULLS, **extra).select(cols)


def _batches(path: Path, gz: bool, names: list[str], headerless: bool, keep: list[str], time_col: str | None,
             time_numeric: bool, block_bytes: int, sep: str, decimal: str = ".", hashed: ReadHash | None = None):
    """Parse the file a block of lines at a time with Polars (multi-threaded within a block).

    Memory is bounded by the block size whatever the file size; gzip files are
    decompressed as a stream. The file's bytes (compressed, for gzip) are hashed into
    ``hashed`` in the same pass, finished once the last block is parsed.
    """
    import polars as pl

    schema = {n: pl.String for n in names}
    schema.update({n: pl.Float64 for n in keep})
    if time_col is not None:
        schema[time_col] = pl.Float64 if time_numeric else pl.String
    cols = keep + ([time_col] if time_col else [])
    rows_before = 0
    hashed = hashed or ReadHash(path)
    try:
        with hashed.open() as raw, (gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw) as fh:
            head = b""
            if not headerless:
                fh.readline()
            elif (head := fh.read(len(BOM))) == BOM:
                head = b""
            for block in _blocks(fh, block_bytes, head):
                try:
                    try:
                        df = _parse_block(pl, block, schema, cols, sep, decimal=decimal)
                    except pl.exceptions.PolarsError as exc:
                        if not _extra_fields(exc):
                            raise
                        extra = _extra_field_row(block, len(names), sep)
                        if extra is not None:
                            row = rows_before + extra[0] + (0 if headerless else 1)
                            raise InputError(f"{path}: line {row} has {extra[1]} fields but the file has "
                                             f"{len(names)} columns; fix that line (a stray delimiter?) or name "
                                             "the extra column in the header") from None
                        df = _parse_block(pl, block, schema, cols, sep, ragged=True, decimal=decimal)  # only empty trailing fields
                except pl.exceptions.PolarsError as exc:
                    msg = str(exc)
                    m = _POLARS_PARSE.search(msg)
                    column = m["col"] if m else next((c for c in keep if f"'{c}'" in msg or f"`{c}`" in msg), None)
                    found = _locate_text(block, column, names, sep, decimal) if column else None
                    if found:
                        raise _text_error(path, column, found[0], rows_before + found[1]) from None
                    # Polars quotes the offending bytes: say which error, not what the file holds
                    raise InputError(f"{path}: cannot parse as {'CSV' if sep == ',' else f'text delimited by {sep!r}'} "
                                     f"after row {rows_before} ({type(exc).__name__}); check the delimiter and columns"
                                     ) from None
                rows_before += df.height
                yield (df.select(keep).to_numpy().astype(np.float64, copy=False),
                       df[time_col] if time_col else None)
            hashed.finish()
    except (OSError, EOFError, zlib.error) as exc:
        if gz:
            raise InputError(f"{path}: truncated or corrupt gzip ({type(exc).__name__}); "
                             "re-copy the file from its source") from None
        raise InputError(f"{path}: cannot read ({exc.strerror or type(exc).__name__}); check the file") from None


def _time_seconds(series, numeric: bool, path: Path, origin=None) -> tuple[np.ndarray, object]:
    """Seconds from ``origin`` (default: the first value) and the absolute start, if the column is absolute."""
    import polars as pl

    if numeric:
        return series.cast(pl.Float64).to_numpy(), None
    try:
        stamps = series.str.strip_chars().str.to_datetime(time_zone="UTC", time_unit="us")
    except pl.exceptions.PolarsError:
        try:
            stamps = series.str.strip_chars().str.to_datetime(time_unit="us").dt.replace_time_zone("UTC")
        except pl.exceptions.PolarsError:
            bad = series.str.strip_chars().str.to_datetime(time_unit="us", strict=False).is_null() & series.is_not_null()
            value = series.filter(bad)[0] if bad.any() else series[0]
            raise InputError(f"{path}: time column value {shown(value)} is neither seconds nor an ISO-8601 "
                             "timestamp; use e.g. 2026-01-05T13:20:00Z or seconds from start") from None
    start = stamps[0] if origin is None else origin
    seconds = (stamps - start).dt.total_microseconds().to_numpy() / 1e6
    return seconds, start


def read_csv(path: Path, equipment: Equipment, chunk_rows: int, on_time_gap: str = "split") -> Recording:
    gz = path.name.lower().endswith(".gz")
    fmt = equipment.format_for(path.name)
    text = _peek(path, gz)
    if fmt is not None:
        sep, header = fmt.delimiter, fmt.header
        decimal = equipment.csv.decimal if equipment.csv is not None else "."
    else:
        (sep, decimal), header = sniff(path, text, equipment), None
    names, headerless, time_col, time_numeric = _layout(path, text, equipment, sep, header, decimal)
    keep = [n for n in names if not n.startswith("__skip_") and n != time_col]
    if not keep:
        raise InputError(f"{path}: no channel columns besides the time column; nothing to analyse")
    bytes_per_row = max(8, len(text.encode()) // max(1, text.count("\n")))
    block_bytes = min(MAX_BLOCK_BYTES, max(MIN_BLOCK_BYTES, chunk_rows * bytes_per_row))
    hashed = ReadHash(path)
    batches = _batches(path, gz, names, headerless, keep, time_col, time_numeric, block_bytes, sep, decimal, hashed)
    first = next(batches, None)
    if first is None or first[0].shape[0] == 0:
        raise InputError(f"{path}: no data rows; export the recording again")
    recording = Recording(channels=keep, chunks=iter(()), content_hash=hashed)
    if headerless and equipment.channels is None:
        recording.warnings.append(f"headerless file: columns named ch0..ch{len(names) - 1}; "
                                  f"set [equipment.{equipment.equipment_id}] channels to name them")
    if time_col is None:
        recording.chunks = (chunk for chunk, _ in itertools.chain([first], batches))
        return recording
    seconds, start = _time_seconds(first[1], time_numeric, path)
    sample_rate_hz, notes = reconcile_rate(path, sample_rate_from_times(seconds), equipment)
    recording.sample_rate_hz, recording.start = sample_rate_hz, start
    recording.warnings += notes
    check = TimeCheck(path, sample_rate_hz, on_time_gap, recording.gaps)

    def chunks():
        origin = start if not time_numeric else None
        for chunk, times in itertools.chain([first], batches):
            check.feed(_time_seconds(times, time_numeric, path, origin)[0])
            yield chunk
        recording.warnings.extend(check.warnings())

    recording.chunks = chunks()
    return recording
