"""National Instruments TDMS (LabVIEW, NI DAQ) through ``npTDMS``, streamed.

Every numeric channel of every group is a vibra channel, named ``channel`` when
the file has one group and ``group/channel`` otherwise. The waveform properties
give the rest: ``wf_increment`` (seconds per sample) the sample rate,
``wf_start_time`` the start, ``unit_string`` the units. Channels must share one
length and increment: the largest such set is kept and the others are named in
a warning. Data is read ``chunk_rows`` samples at a time per channel
(``TdmsFile.open`` reads only the segment index up front), so memory stays
bounded for multi-gigabyte files.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from vibra.errors import InputError
from vibra.readers.base import Recording, rate_from_increment
from vibra.equipment import Equipment


def _start(value) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, np.datetime64):
        us = value.astype("datetime64[us]").astype(np.int64)
        return datetime.fromtimestamp(0, tz=timezone.utc) + np.timedelta64(int(us), "us").item()
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return None


def read_tdms(path: Path, equipment: Equipment, chunk_rows: int, on_time_gap: str = "split") -> Recording:
    from nptdms import TdmsFile

    try:
        fh = TdmsFile.open(str(path))
    except Exception as exc:  # npTDMS raises ValueError, KeyError, struct.error… for garbage
        raise InputError(f"{path}: not a readable TDMS file ({type(exc).__name__}: {exc}); "
                         "check the file's format and extension") from None
    groups = fh.groups()
    found, empty = [], []
    try:
        for group in groups:
            for channel in group.channels():
                if channel.dtype is None or np.dtype(channel.dtype).kind not in "fiu":
                    continue
                name = channel.name if len(groups) == 1 else f"{group.name}/{channel.name}"
                if len(channel) == 0:
                    empty.append(name)
                    continue
                inc = channel.properties.get("wf_increment")
                rate_from_increment(path, inc, f"channel {name!r} wf_increment")  # 1e-300 s is no recorder's
                found.append((name, channel, len(channel), float(inc) if inc is not None else None))
    except InputError:
        fh.close()
        raise
    if not found:
        fh.close()
        raise InputError(f"{path}: no numeric channels with data in the TDMS file"
                         f"{f' ({empty} hold 0 samples: a file cut short?)' if empty else ''}; check the export")
    shape, _ = Counter((n, inc) for _, _, n, inc in found).most_common(1)[0]
    kept = [f for f in found if (f[2], f[3]) == shape]
    recording = Recording(channels=[f[0] for f in kept], chunks=iter(()), declared_samples=shape[0])
    length, increment = shape
    # each channel left out is named with why: a file cut short leaves its last channels shorter or empty
    recording.warnings += [f"channel {name!r} holds 0 samples (a file cut short?); left out" for name in empty]
    for name, _, n, inc in found:
        if (n, inc) != shape:
            what = (f"{n} samples, the others {length}" + (" (a file cut short?)" if n < length else "")
                    if n != length else f"wf_increment {inc!r} s, the others {increment!r} s")
            recording.warnings.append(f"channel {name!r} holds {what}; left out")
    if increment:
        recording.sample_rate_hz = float(f"{rate_from_increment(path, increment, 'wf_increment'):.9g}")
    first = kept[0][1]
    recording.start = _start(first.properties.get("wf_start_time"))
    units = {name: str(ch.properties["unit_string"]) for name, ch, _, _ in kept if ch.properties.get("unit_string")}
    recording.units = units or None

    def chunks():
        try:
            for offset in range(0, length, chunk_rows):
                n = min(chunk_rows, length - offset)
                yield np.column_stack([np.asarray(ch.read_data(offset=offset, length=n), dtype=np.float64)
                                       for _, ch, _, _ in kept])
        except (OSError, ValueError, EOFError) as exc:
            raise InputError(f"{path}: TDMS data unreadable ({exc}); re-copy the file") from None
        finally:
            fh.close()

    recording.chunks = chunks()
    return recording
