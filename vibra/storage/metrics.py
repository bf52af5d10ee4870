"""Prometheus text-format metrics in ``artifacts/metrics/vibra.prom`` (for node_exporter's textfile collector).

Several commands own different metric families in the one file. :func:`update`
reads the file, replaces the families it is given (gauges) or adds to them
(counters), and writes the whole file back atomically under a lock, so two
commands finishing at once never lose each other's families.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)\s*$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

Labels = tuple[tuple[str, str], ...]


@dataclass
class Family:
    name: str
    kind: str  # gauge | counter
    help: str
    samples: dict[Labels, float] = field(default_factory=dict)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _unescape(value: str) -> str:
    return value.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def parse(text: str) -> dict[str, Family]:
    """Families of a file this module wrote (HELP, TYPE, samples)."""
    families: dict[str, Family] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            families.setdefault(name, Family(name, "gauge", "")).help = help_
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            families.setdefault(name, Family(name, kind.strip(), "")).kind = kind.strip()
        elif line and not line.startswith("#"):
            m = _SAMPLE.match(line)
            if not m:
                continue
            name, labels, value = m.groups()
            key = tuple(sorted((k, _unescape(v)) for k, v in _LABEL.findall(labels or "")))
            families.setdefault(name, Family(name, "gauge", "")).samples[key] = float(value)
    return families


def render(families: dict[str, Family]) -> str:
    out = []
    for fam in sorted(families.values(), key=lambda f: f.name):
        out.append(f"# HELP {fam.name} {fam.help}")
        out.append(f"# TYPE {fam.name} {fam.kind}")
        for labels, value in sorted(fam.samples.items()):
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            out.append(f"{fam.name}{{{text}}} {_fmt(value)}" if text else f"{fam.name} {_fmt(value)}")
    return "\n".join(out) + "\n"


def labels(**kv: object) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in kv.items()))


def update(path: Path, *, gauges: list[Family] = (), counters: list[Family] = (), merge: list[Family] = ()) -> None:
    """Replace the given gauge families, set the samples of the ``merge`` gauges (keeping the family's
    other samples) and add the given counter increments; atomic, locked."""
    from vibra.storage.lake import write_text
    from vibra.storage.locks import exclusive

    path.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(path.with_name(".vibra.prom.lock"), timeout_s=60.0, what="metrics update"):
        families = parse(path.read_text()) if path.exists() else {}
        for fam in gauges:
            families[fam.name] = Family(fam.name, "gauge", fam.help, dict(fam.samples))
        for fam in merge:
            have = families.get(fam.name) or Family(fam.name, "gauge", fam.help)
            have.help = fam.help
            have.samples.update(fam.samples)
            families[fam.name] = have
        for fam in counters:
            have = families.get(fam.name) or Family(fam.name, "counter", fam.help)
            have.kind, have.help = "counter", fam.help
            for key, inc in fam.samples.items():
                have.samples[key] = have.samples.get(key, 0.0) + inc
            families[fam.name] = have
        write_text(path, render(families))


def gauge(name: str, help_: str, samples: dict[Labels, float] | float) -> Family:
    if not isinstance(samples, dict):
        samples = {(): float(samples)}
    return Family(name, "gauge", help_, {k: float(v) for k, v in samples.items()})


def counter(name: str, help_: str, samples: dict[Labels, float] | float) -> Family:
    if not isinstance(samples, dict):
        samples = {(): float(samples)}
    return Family(name, "counter", help_, {k: float(v) for k, v in samples.items()})
