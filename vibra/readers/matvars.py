"""Which variables of a MATLAB file are its channels: the CWRU naming (``X097_DE_time``, ``X097RPM``) or
every numeric vector of the longest length, and the scalars ``rpm``, ``fs``, ``sample_rate_hz``. Shared by the
v5 reader (:mod:`vibra.readers.mat`) and the v7.3 one (:mod:`vibra.readers.mat73`)."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from vibra.errors import InputError

_CWRU_CHANNEL = re.compile(r"^X(?P<num>\d+)_(?P<ch>[A-Z]+)_time$")
_CWRU_RPM = re.compile(r"^X(?P<num>\d+)RPM$")


@dataclass
class Choice:
    """Which variables of a MATLAB file are the channels (channel name → variable name), and its scalars."""

    channels: dict[str, str]
    length: int
    rpm: float | None = None
    sample_rate_hz: float | None = None
    warnings: list[str] = field(default_factory=list)


def choose(path: Path, vectors: dict[str, int], scalars: dict[str, float]) -> Choice:
    """Apply the naming conventions to a file's numeric vectors ({name: length}) and scalars ({name: value})."""
    by_number: dict[str, dict[str, str]] = defaultdict(dict)
    rpm_by_number: dict[str, float] = {}
    for name in vectors:
        if m := _CWRU_CHANNEL.match(name):
            by_number[m["num"]][m["ch"]] = name
    for name, value in scalars.items():
        if m := _CWRU_RPM.match(name):
            rpm_by_number[m["num"]] = value
    warnings: list[str] = []
    sample_rate_hz = None
    if by_number:
        stem_numbers = set(re.findall(r"\d+", path.stem))
        match = [n for n in by_number if n in stem_numbers or n.lstrip("0") in {s.lstrip("0") for s in stem_numbers}]
        number = match[0] if match else max(by_number, key=lambda n: len(by_number[n]))
        if len(by_number) > 1:
            warnings.append(f"file holds variables of records {sorted(by_number)}; used X{number}")
        series = by_number[number]
        rpm = rpm_by_number.get(number)
    else:
        series = {name: name for name in vectors}
        lower = {k.lower(): v for k, v in scalars.items()}
        rpm = lower.get("rpm")
        sample_rate_hz = lower.get("sample_rate_hz", lower.get("fs"))
    if not series:
        raise InputError(f"{path}: no numeric signal vectors inside; expected e.g. X097_DE_time")
    length = max(vectors[v] for v in series.values())
    dropped = sorted(k for k, v in series.items() if vectors[v] != length)
    if dropped:
        warnings.append(f"channels {dropped} are shorter than the others and were left out")
    channels = {k: series[k] for k in sorted(series) if vectors[series[k]] == length}
    return Choice(channels, length, rpm, sample_rate_hz, warnings)
