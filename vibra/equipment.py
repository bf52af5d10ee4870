"""Machines: what the files of one machine do not say themselves (``[equipment.<id>]`` of
``vibra.toml``), and the parsing and validation of those sections.

:func:`parse_equipment` turns one ``[equipment.<id>]`` table into a frozen :class:`Equipment`;
:func:`vibra.settings.load_settings` calls it for every section. ``vibra synth`` writes sections
back with :func:`equipment_toml`.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from vibra.errors import ConfigError
from vibra.spec import Spec, coerce

EQUIPMENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# The commented example at the end of the vibra.toml template (vibra.settings.toml_template).
EQUIPMENT_EXAMPLE = """\
# One section per machine; `vibra synth` appends the sections of the machines it makes.
# [equipment.pump-01]
# sample_rate_hz = 12800
# units = "g"
# rpm = 1780
# channels = ["time", "x", "y"]   # column names for headerless CSV ("-" skips a column)
# bearing = { n_elements = 9, ball_diameter_mm = 7.94, pitch_diameter_mm = 39.04, contact_angle_deg = 0 }
# points = { drive_end = ["DE"], fan_end = { channels = ["FE"], bearing = { n_elements = 8, ball_diameter_mm = 6.746,
#            pitch_diameter_mm = 28.499 } } }   # measurement points: a verdict each, a point's own geometry
# iso_group = 2
# iso_support = "flexible"   # group 2 (15–300 kW) flexible: A/B 2.3, B/C 4.5, C/D 7.1 mm/s
"""

EQUIPMENT_KEYS = {
    "sample_rate_hz", "units", "rpm", "channels", "bearing", "iso_group", "iso_support",
    "alarm_limits_mm_s", "alert_danger_mm_s", "label", "envelope_band_hz", "files", "start_rule", "format", "file_pattern", "full_scale",
    "csv", "bearing_channel", "points",
}
POINT_KEYS = {"channels", "bearing"}
FORMAT_KEYS = {"kind", "delimiter", "header"}
CSV_KEYS = {"delimiter", "decimal"}
# `format.kind`: "text" (delimited text, any extension) or a reader of vibra.readers.READERS
FORMAT_KINDS = ("text", "csv", "parquet", "mat", "audio", "tdms", "uff")
FILE_RULE_KEYS = {"glob", "sample_rate_hz", "rpm", "decimate"}
START_RULE_KEYS = {"regex", "origin", "step_s"}
BEARING_KEYS = {"n_elements", "ball_diameter_mm", "pitch_diameter_mm", "contact_angle_deg"}


# The scalar machine keys and the numbers inside the structured ones, declared as the settings are
# (:class:`vibra.spec.Spec`): one validation, one message shape. What relates two values (a ball smaller
# than the pitch circle, increasing limits) is checked by hand below.
def _spec(key: str, kind: type, low: float | None = None, high: float | None = None, **more: Any) -> Spec:
    return Spec("equipment", key, kind, None, low, high, **more)


EQUIPMENT_SPECS = {s.key: s for s in (
    _spec("sample_rate_hz", float, 0, 10_000_000, low_open=True),
    _spec("rpm", float, 0, 1_000_000, low_open=True),
    _spec("full_scale", float, 0, 1e12, low_open=True),
    _spec("iso_group", int, choices=(1, 2), doc="ISO 20816-3 machine group"),
    _spec("iso_support", str, choices=("rigid", "flexible")),
    _spec("units", str),
    _spec("label", str),
    _spec("file_pattern", str),
    _spec("bearing_channel", str, doc="the channel of the bearing's own sensor: its verdict is the recording's"),
)}
BEARING_SPECS = {s.key: s for s in (
    _spec("n_elements", int, 3, 100),
    _spec("ball_diameter_mm", float, 0, None, low_open=True),
    _spec("pitch_diameter_mm", float, 0, None, low_open=True),
    _spec("contact_angle_deg", float, 0, 90, high_open=True),
)}
FILE_RULE_SPECS = {s.key: s for s in (
    _spec("glob", str),
    _spec("sample_rate_hz", float, 0, None, low_open=True),
    _spec("rpm", float, 0, None, low_open=True),
    _spec("decimate", int, 2, 64),
)}
STEP_SPEC = _spec("step_s", float, 0, None, low_open=True)


def _checked(specs: dict[str, Spec], table: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The declared keys of ``table``, each validated (``<prefix>key = value: must be …``)."""
    return {k: coerce(specs[k], v, f"{prefix}{k} = {v!r}") for k, v in table.items() if k in specs}


@dataclass(frozen=True)
class Bearing:
    """Rolling-element bearing geometry (millimetres, degrees)."""

    n_elements: int
    ball_diameter_mm: float
    pitch_diameter_mm: float
    contact_angle_deg: float = 0.0


@dataclass(frozen=True)
class MeasurementPoint:
    """One entry of ``points``: a bearing of the machine and the channels of its sensors. Its ``bearing`` is
    its own geometry (None: the machine's ``bearing``). ``vibra diagnose`` gives each point its verdict."""

    name: str
    channels: tuple[str, ...]
    bearing: Bearing | None = None


@dataclass(frozen=True)
class FileRule:
    """``[[equipment.<id>.files]]``: settings for the files whose name matches ``glob``."""

    glob: str
    sample_rate_hz: float | None = None
    rpm: float | None = None
    decimate: int | None = None


@dataclass(frozen=True)
class StartRule:
    """``start_rule``: recording start = ``origin + step_s × N``, N the number ``regex`` captures
    from the file name (for exports whose names carry a sequence number, not a time)."""

    regex: str
    origin: datetime
    step_s: float

    def start_for(self, name: str) -> datetime | None:
        m = re.search(self.regex, name)
        if not m or not m.groups():
            return None
        return self.origin + timedelta(seconds=float(m.group(1)) * self.step_s)


@dataclass(frozen=True)
class FileFormat:
    """``format = { kind = "text", delimiter = "\\t", header = false }``: how a machine's files are read
    whatever their extension (``header`` None: detected, a first row of numbers being data)."""

    kind: str
    delimiter: str = ","
    header: bool | None = None


@dataclass(frozen=True)
class CsvDialect:
    """``csv = { delimiter = ";", decimal = "," }``: a machine's CSV dialect when sniffing it is not wanted
    or fails (``delimiter`` None: sniffed from the first lines)."""

    delimiter: str | None = None
    decimal: str = "."


@dataclass(frozen=True)
class Equipment:
    """``[equipment.<id>]``: what the files of one machine do not say themselves."""

    equipment_id: str
    sample_rate_hz: float | None = None
    units: str | None = None
    rpm: float | None = None
    channels: tuple[str, ...] | None = None
    bearing: Bearing | None = None
    iso_group: int | None = None
    iso_support: str | None = None
    alarm_limits_mm_s: tuple[float, ...] | None = None
    alert_danger_mm_s: tuple[float, float] | None = None  # velocity alert and danger (trip) levels
    label: str | None = None
    envelope_band_hz: tuple[float, float] | None = None
    files: tuple[FileRule, ...] = ()
    start_rule: StartRule | None = None
    format: FileFormat | None = None
    file_pattern: str | None = None  # glob, or a regular expression when it starts with "^"
    full_scale: float | None = None  # physical value of digital full scale (audio files)
    csv: CsvDialect | None = None
    bearing_channel: str | None = None  # the bearing's own sensor: its verdict comes first (vibra diagnose)
    points: tuple[MeasurementPoint, ...] = ()  # measurement points: a verdict each (vibra diagnose)

    def point_of(self, channel: str) -> MeasurementPoint | None:
        """The measurement point a channel belongs to (None: no point names it)."""
        return next((p for p in self.points if channel in p.channels), None)

    def bearing_for(self, channel: str) -> Bearing | None:
        """The geometry of the bearing a channel measures: its point's own, else the machine's."""
        point = self.point_of(channel)
        return point.bearing if point is not None and point.bearing is not None else self.bearing

    def format_for(self, name: str) -> FileFormat | None:
        """The machine's ``format`` if it applies to this file name (every file without ``file_pattern``)."""
        if self.format is None:
            return None
        if self.file_pattern is None:
            return self.format
        if self.file_pattern.startswith("^"):
            return self.format if re.search(self.file_pattern, name) else None
        return self.format if fnmatch.fnmatch(name, self.file_pattern) else None

    def rule_for(self, name: str) -> FileRule | None:
        """The first ``files`` rule whose glob matches a file name."""
        return next((r for r in self.files if fnmatch.fnmatch(name, r.glob)), None)


def parse_equipment(equipment_id: str, raw: Mapping[str, Any], origin: str) -> Equipment:
    """One ``[equipment.<id>]`` table of ``origin`` (a file name, for messages) as an :class:`Equipment`;
    a bad key or value raises :class:`~vibra.errors.ConfigError` naming it and the fix."""
    where = f"{origin} [equipment.{equipment_id}]"
    if not EQUIPMENT_ID_RE.match(equipment_id):
        raise ConfigError(f"{where}: equipment id must match {EQUIPMENT_ID_RE.pattern}")
    unknown = set(raw) - EQUIPMENT_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(EQUIPMENT_KEYS)}")

    values = _checked(EQUIPMENT_SPECS, raw, f"{where} ")
    bearing = _bearing(raw["bearing"], f"{where} bearing") if "bearing" in raw else None
    points = _points(raw["points"], where) if "points" in raw else ()

    channels = raw.get("channels")
    if channels is not None:
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels) or not channels:
            raise ConfigError(f"{where} channels = {channels!r}: must be a list of column names, "
                              'one per column of a headerless file ("-" skips a column), e.g. ["time", "x", "y"]')
        channels = tuple(channels)

    limits = raw.get("alarm_limits_mm_s")
    if limits is not None:
        if not (isinstance(limits, list) and len(limits) == 3 and all(isinstance(v, (int, float)) for v in limits)
                and 0 < limits[0] < limits[1] < limits[2]):
            raise ConfigError(f"{where} alarm_limits_mm_s = {limits!r}: must be three increasing numbers "
                              "(A/B, B/C, C/D boundaries in mm/s RMS)")
        limits = tuple(float(v) for v in limits)
    alert_danger = raw.get("alert_danger_mm_s")
    if alert_danger is not None:
        if not (isinstance(alert_danger, list) and len(alert_danger) == 2
                and all(isinstance(v, (int, float)) for v in alert_danger) and 0 < alert_danger[0] < alert_danger[1]):
            raise ConfigError(f"{where} alert_danger_mm_s = {alert_danger!r}: must be two increasing numbers "
                              "(alert and danger levels in mm/s RMS), e.g. [4.5, 9.0]")
        alert_danger = (float(alert_danger[0]), float(alert_danger[1]))
    band = raw.get("envelope_band_hz")
    if band is not None:
        if not (isinstance(band, list) and len(band) == 2 and all(isinstance(v, (int, float)) for v in band)
                and 0 <= band[0] < band[1]):
            raise ConfigError(f"{where} envelope_band_hz = {band!r}: must be [low_hz, high_hz] with 0 <= low < high")
        band = (float(band[0]), float(band[1]))
    files = []
    for rule in raw.get("files", []):
        if not isinstance(rule, Mapping) or "glob" not in rule or set(rule) - FILE_RULE_KEYS:
            raise ConfigError(f"{where} files: each [[equipment.{equipment_id}.files]] needs glob = \"…\" and "
                              f"may set sample_rate_hz, rpm, decimate; got {dict(rule) if isinstance(rule, Mapping) else rule!r}")
        files.append(FileRule(**_checked(FILE_RULE_SPECS, rule, f"{where} files glob {rule['glob']!r}: ")))
    start_rule = None
    if "start_rule" in raw:
        r = raw["start_rule"]
        if not isinstance(r, Mapping) or set(r) != START_RULE_KEYS:
            raise ConfigError(f"{where} start_rule = {r!r}: must be {{ regex = \"acc_(\\\\d+)\", "
                              "origin = 2010-12-01T00:00:00Z, step_s = 10 }")
        origin = r["origin"]
        if isinstance(origin, str):
            try:
                origin = datetime.fromisoformat(origin.replace("Z", "+00:00"))
            except ValueError:
                raise ConfigError(f"{where} start_rule.origin = {origin!r}: not an ISO-8601 time") from None
        if not isinstance(origin, datetime):
            raise ConfigError(f"{where} start_rule.origin = {origin!r}: must be a date-time such as 2010-12-01T00:00:00Z")
        if origin.tzinfo is None:
            origin = origin.replace(tzinfo=timezone.utc)
        try:
            compiled = re.compile(r["regex"])
        except (re.error, TypeError):
            raise ConfigError(f"{where} start_rule.regex = {r['regex']!r}: not a valid regular expression") from None
        if compiled.groups != 1:
            raise ConfigError(f"{where} start_rule.regex = {r['regex']!r}: needs exactly one (group) capturing the number")
        step = coerce(STEP_SPEC, r["step_s"], f"{where} start_rule.step_s = {r['step_s']!r}")
        start_rule = StartRule(r["regex"], origin, step)
    fmt = None
    if "format" in raw:
        f = raw["format"]
        if (not isinstance(f, Mapping) or set(f) - FORMAT_KEYS or f.get("kind") not in FORMAT_KINDS
                or not (isinstance(f.get("delimiter", ","), str) and len(f.get("delimiter", ",")) == 1)
                or f.get("header", None) not in (None, True, False)):
            raise ConfigError(f"{where} format = {f!r}: must be {{ kind = \"text\", delimiter = \"\\t\", header = false }} "
                              f"(kind one of {', '.join(FORMAT_KINDS)}; delimiter one character; header true/false)")
        fmt = FileFormat(f["kind"], f.get("delimiter", ","), f.get("header"))
    dialect = None
    if "csv" in raw:
        c = raw["csv"]
        example = 'csv = { delimiter = ";", decimal = "," }'
        if not isinstance(c, Mapping) or set(c) - CSV_KEYS or not c:
            raise ConfigError(f"{where} csv = {c!r}: must be {example} (keys delimiter and/or decimal)")
        delimiter, decimal = c.get("delimiter"), c.get("decimal", ".")
        if delimiter is not None and not (isinstance(delimiter, str) and len(delimiter) == 1
                                          and delimiter not in "\r\n\"0123456789.-+eE"):
            raise ConfigError(f"{where} csv.delimiter = {delimiter!r}: must be one character such as \",\", \";\", "
                              "\"\\t\" or \"|\"")
        if decimal not in (".", ","):
            raise ConfigError(f"{where} csv.decimal = {decimal!r}: must be \".\" or \",\"")
        if decimal == "," and delimiter == ",":
            raise ConfigError(f"{where} csv = {c!r}: a decimal comma cannot go with a comma delimiter; "
                              "use delimiter = \";\" (the usual pairing)")
        if delimiter is not None and fmt is not None:
            raise ConfigError(f"{where}: both format.delimiter and csv.delimiter; keep one "
                              "(format's applies to the files matching file_pattern)")
        dialect = CsvDialect(delimiter, decimal)
    pattern = values.get("file_pattern")
    if pattern is not None:
        if not pattern:
            raise ConfigError(f"{where} file_pattern = {pattern!r}: must be a glob such as \"????.??.??.??.??.??\" "
                              "or a regular expression starting with ^")
        if pattern.startswith("^"):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"{where} file_pattern = {pattern!r}: not a valid regular expression ({exc})") from None
        if fmt is None:
            raise ConfigError(f"{where} file_pattern = {pattern!r} without format: say how those files are read, "
                              "e.g. format = { kind = \"text\", delimiter = \"\\t\", header = false }")
    return Equipment(
        equipment_id=equipment_id, channels=channels, bearing=bearing, alarm_limits_mm_s=limits,
        alert_danger_mm_s=alert_danger, envelope_band_hz=band, files=tuple(files), start_rule=start_rule,
        format=fmt, csv=dialect, points=points, **values,
    )


def _bearing(b: Any, where: str) -> Bearing:
    """A ``bearing = { … }`` table (``where`` names it in messages) as a validated :class:`Bearing`."""
    if not isinstance(b, Mapping) or set(b) - BEARING_KEYS or not {"n_elements", "ball_diameter_mm", "pitch_diameter_mm"} <= set(b):
        raise ConfigError(f"{where} = {b!r}: must be a table with n_elements, ball_diameter_mm, "
                          "pitch_diameter_mm and optional contact_angle_deg")
    geometry = {"contact_angle_deg": 0.0, **_checked(BEARING_SPECS, b, f"{where}.")}
    if not geometry["ball_diameter_mm"] < geometry["pitch_diameter_mm"]:
        raise ConfigError(f"{where}: ball_diameter_mm = {b['ball_diameter_mm']!r}, pitch_diameter_mm = "
                          f"{b['pitch_diameter_mm']!r}: need 0 < ball_diameter_mm < pitch_diameter_mm")
    return Bearing(**geometry)


def _points(raw: Any, where: str) -> tuple[MeasurementPoint, ...]:
    """``points = { name = ["ch", …] | { channels = [...], bearing = { … } }, … }``: each point's channels
    (a channel in one point at most) and its own geometry if it has one."""
    example = ('points = { drive_end = ["DE"], fan_end = { channels = ["FE"], bearing = { n_elements = 8, '
               'ball_diameter_mm = 6.746, pitch_diameter_mm = 28.499 } } }')
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(f"{where} points = {raw!r}: must be a table of measurement points, e.g. {example}")
    out, seen = [], {}
    for name, value in raw.items():
        at = f"{where} points.{name}"
        if not EQUIPMENT_ID_RE.match(str(name)):
            raise ConfigError(f"{at}: a point name must match {EQUIPMENT_ID_RE.pattern}")
        table = value if isinstance(value, Mapping) else {"channels": value}
        channels = table.get("channels")
        if (set(table) - POINT_KEYS or not isinstance(channels, list) or not channels
                or not all(isinstance(c, str) and c for c in channels)):
            raise ConfigError(f"{at} = {value!r}: must be a list of channel names or "
                              "{ channels = [...], bearing = { … } }, e.g. " + example)
        for c in channels:
            if c in seen:
                raise ConfigError(f"{at}: channel {c!r} is already in points.{seen[c]}; a channel belongs to one point")
            seen[c] = name
        bearing = _bearing(table["bearing"], f"{at}.bearing") if "bearing" in table else None
        out.append(MeasurementPoint(str(name), tuple(channels), bearing))
    return tuple(out)


def equipment_toml(equipment: Equipment) -> str:
    """``[equipment.<id>]`` section text for an :class:`Equipment` (used by ``synth``)."""
    lines = [f"[equipment.{equipment.equipment_id}]"]
    for key in ("sample_rate_hz", "units", "rpm", "iso_group", "iso_support", "label", "envelope_band_hz"):
        value = getattr(equipment, key)
        if value is not None:
            lines.append(f"{key} = {json.dumps(list(value) if isinstance(value, tuple) else value)}")
    if equipment.channels:
        lines.append(f"channels = {json.dumps(list(equipment.channels))}")
    if equipment.bearing:
        b = equipment.bearing
        lines.append(f"bearing = {{ n_elements = {b.n_elements}, ball_diameter_mm = {b.ball_diameter_mm!r}, "
                     f"pitch_diameter_mm = {b.pitch_diameter_mm!r}, contact_angle_deg = {b.contact_angle_deg!r} }}")
    return "\n".join(lines) + "\n"
