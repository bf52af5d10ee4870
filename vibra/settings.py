"""Validated settings: defaults < ``vibra.toml`` < ``VIBRA_*`` environment < CLI.

The library reads no environment itself: the CLI or flow passes ``os.environ``
(or any mapping) to :func:`load_settings`, which returns one frozen
:class:`Settings` object that is passed down to every stage.

Every scalar setting is described once in :data:`SETTINGS`; the settings reference (docs/reference/settings.md, generated),
the environment-variable names and the validation messages all come from it.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping

from vibra.errors import ConfigError

EQUIPMENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Spec:
    """One scalar setting: where it lives, its type, range and meaning."""

    section: str
    key: str
    kind: type
    default: Any
    low: float | None = None
    high: float | None = None
    doc: str = ""
    choices: tuple[str, ...] = ()

    @property
    def env(self) -> str:
        return f"VIBRA_{self.section}_{self.key}".upper()

    @property
    def allowed(self) -> str:
        if self.kind is str:
            return "one of " + ", ".join(self.choices) if self.choices else "text"
        if self.kind is bool:
            return "true or false"
        noun = "an integer" if self.kind is int else "a number"
        if self.low is not None and self.high is not None:
            return f"{noun} in {_num(self.low)}..{_num(self.high)}"
        if self.low is not None:
            return f"{noun} >= {_num(self.low)}"
        return noun


SETTINGS: tuple[Spec, ...] = (
    Spec("ingest", "max_concurrent_files", int, 2, 1, 64,
         "files read and processed at once (threads)"),
    Spec("ingest", "sample_rate_hz", float, 0.0, 0, 10_000_000,
         "workspace default sample rate when neither the file nor the equipment gives one (0 = none)"),
    Spec("ingest", "chunk_rows", int, 262_144, 4_096, 67_108_864,
         "rows read per chunk; bounds memory per file"),
    Spec("ingest", "lock_timeout_s", float, 3600.0, 0, 86_400,
         "how long a second ingest waits for the one running before giving up"),
    Spec("ingest", "keep_raw", bool, False, None, None,
         "also store each recording's waveform in data/lake/raw (float32) so `vibra features rebuild` "
         "needs no export"),
    Spec("ingest", "on_time_gap", str, "split", doc="a file whose time column has gaps, repeated or backward "
         "stamps: `split` warns and keeps no window across a gap; `refuse` fails the file",
         choices=("split", "refuse")),
    Spec("ingest", "max_clock_skew_s", float, 86_400.0, 0, 31_622_400,
         "how far after now a recording may end (recorder clocks run ahead); later ones are refused"),
    Spec("ingest", "max_span_s", float, 604_800.0, 1, 31_622_400,
         "longest time one file may span (samples / sample rate); longer ones are refused as a bad time column "
         "or sample rate"),
    Spec("ingest", "on_change", str, "replace", doc="what a completed file whose content changed does: its new "
         "version replaces the old windows, or the change is refused and the old version kept",
         choices=("replace", "refuse")),
    Spec("features", "frame_length", int, 4096, 64, 1_048_576,
         "window length in samples"),
    Spec("features", "hop_length", int, 4096, 1, 1_048_576,
         "samples between window starts (= frame_length: no overlap)"),
    Spec("features", "batch_windows", int, 256, 1, 65_536,
         "windows per FFT batch"),
    Spec("query", "max_points", int, 5000, 1, 10_000_000,
         "cap on the points `vibra query recent` returns"),
    Spec("anomaly", "model", str, "iforest", doc="model family `vibra detect` and `vibra anomalies` use by default",
         choices=("iforest", "hst", "baseline")),
    Spec("anomaly", "baseline_days", float, 2.0, 0.01, 3650,
         "days from each machine's first window that train its models (the baseline period)"),
    Spec("anomaly", "threshold_quantile", float, 0.98, 0.5, 0.999999,
         "quantile of the training scores a new model's threshold is set at"),
    Spec("anomaly", "alarm_k", int, 3, 1, 10_000, "an alarm needs alarm_k of the last alarm_m windows over threshold"),
    Spec("anomaly", "alarm_m", int, 5, 1, 10_000, "window count of the alarm debounce (see alarm_k)"),
    Spec("anomaly", "seed", int, 0, 0, 2**31 - 1, "random seed of the model families"),
    Spec("forecast", "horizon_h", float, 72.0, 1, 24 * 365, "how far `vibra forecast` looks ahead, hours"),
    Spec("forecast", "freq_s", float, 3600.0, 1, 86_400 * 7, "grid step of the forecast series, seconds"),
    Spec("forecast", "min_points", int, 48, 8, 1_000_000, "shortest history forecast (fewer: insufficient_data)"),
    Spec("forecast", "n_jobs", int, 1, 1, 64, "processes statsforecast fits series with"),
    Spec("cluster", "min_cluster_size", int, 0, 0, 1_000_000,
         "smallest group HDBSCAN calls a cluster (0 = auto: max(15, 1 % of the fitted sample))"),
    Spec("cluster", "umap_components", int, 5, 0, 64,
         "dimensions UMAP reduces the embedding to before HDBSCAN (0 = cluster the embedding itself, no UMAP)"),
    Spec("cluster", "umap_neighbors", int, 30, 2, 1000, "UMAP's n_neighbors: larger keeps more global structure"),
    Spec("cluster", "sample", int, 20_000, 100, 10_000_000,
         "windows the clustering is fitted on (stratified by equipment); the rest are assigned to the nearest"),
    Spec("cluster", "seed", int, 0, 0, 2**31 - 1, "random seed of the sample and of UMAP"),
    Spec("defects", "k", int, 5, 1, 200, "neighbours the defect kNN votes with"),
    Spec("defects", "radius_quantile", float, 0.9, 0.5, 1.0,
         "quantile of each class's labelled windows' own neighbour distances its abstention radius starts from"),
    Spec("defects", "radius_factor", float, 2.0, 0.1, 100.0,
         "radius = radius_factor × that quantile; a window farther from its labelled neighbours is `unknown`"),
    Spec("defects", "retrain_coverage_change", float, 0.05, 0.0, 10.0,
         "relative change of label coverage since the last kNN training that triggers a retrain"),
    Spec("defects", "retrain_new_clusters", int, 2, 1, 10_000,
         "newly labelled clusters since the last kNN training that trigger a retrain"),
    Spec("flows", "task_runner", str, "thread", doc="where flows run their per-file and per-machine tasks: threads "
         "in the flow's process, or Dask workers", choices=("thread", "dask")),
    Spec("flows", "dask_address", str, "", doc="Dask scheduler to use, e.g. tcp://scheduler:8786 (empty: start a "
         "local cluster)"),
    Spec("flows", "dask_workers", int, 2, 1, 1024, "workers of the local Dask cluster when no address is given"),
    Spec("flows", "retries", int, 2, 0, 100, "retries of a failed flow task (backoff 10 s, then 60 s, …)"),
    # readiness thresholds: green at or better than the first, red beyond the second, amber between
    Spec("readiness", "embedding_coverage_green", float, 0.90, 0, 1, "embedding coverage at or above: green"),
    Spec("readiness", "embedding_coverage_red", float, 0.70, 0, 1, "embedding coverage below: red"),
    Spec("readiness", "noise_ratio_green", float, 0.25, 0, 1, "share of windows in no cluster at or below: green"),
    Spec("readiness", "noise_ratio_red", float, 0.40, 0, 1, "share of windows in no cluster above: red"),
    Spec("readiness", "label_coverage_green", float, 0.60, 0, 1, "share of clusters labelled at or above: green"),
    Spec("readiness", "label_coverage_red", float, 0.30, 0, 1, "share of clusters labelled below: red"),
    Spec("readiness", "min_labeled_cluster", int, 15, 1, 1_000_000,
         "smallest labelled cluster (windows) below which it is red and flagged for merging"),
    Spec("readiness", "recency_green_h", float, 24.0, 0, 100_000, "hours since the newest window at or below: green"),
    Spec("readiness", "recency_red_h", float, 72.0, 0, 100_000, "hours since the newest window above: red"),
    Spec("readiness", "equipment_share_red", float, 0.60, 0, 1, "largest machine's share of embeddings above: red"),
    Spec("readiness", "missing_indicators_green", float, 0.02, 0, 1, "share of missing numeric indicators below: green"),
    Spec("readiness", "missing_indicators_red", float, 0.05, 0, 1, "share of missing numeric indicators above: red"),
    Spec("readiness", "class_imbalance_green", float, 10.0, 1, 1e9, "largest / smallest label class at or below: green"),
    Spec("readiness", "class_imbalance_red", float, 100.0, 1, 1e9, "largest / smallest label class above: red"),
    Spec("readiness", "missing_values_green", float, 0.001, 0, 1, "share of NaN samples per channel at or below: green"),
    Spec("readiness", "missing_values_red", float, 0.05, 0, 1, "share of NaN samples per channel above: red"),
    Spec("readiness", "flat_green", float, 0.01, 0, 1, "share of flat-line samples per channel at or below: green"),
    Spec("readiness", "flat_red", float, 0.10, 0, 1, "share of flat-line samples per channel above: red"),
    Spec("readiness", "clipping_green", float, 0.001, 0, 1, "share of clipped samples per channel at or below: green"),
    Spec("readiness", "clipping_red", float, 0.01, 0, 1, "share of clipped samples per channel above: red"),
    Spec("readiness", "gap_green_h", float, 24.0, 0, 100_000, "largest gap between recordings (hours) at or below: green"),
    Spec("readiness", "gap_red_h", float, 72.0, 0, 100_000, "largest gap between recordings (hours) above: red"),
    Spec("readiness", "min_days", float, 14.0, 0, 100_000, "days of data a machine needs before training (fewer: red)"),
)

DEFAULT_BANDS_HZ: tuple[tuple[float, float], ...] = (
    (0.0, 500.0), (500.0, 1000.0), (1000.0, 2000.0), (2000.0, 4000.0), (4000.0, 8000.0),
)

EQUIPMENT_KEYS = {
    "sample_rate_hz", "units", "rpm", "channels", "bearing", "iso_group", "iso_support",
    "alarm_limits_mm_s", "alert_danger_mm_s", "label", "envelope_band_hz", "files", "start_rule", "format", "file_pattern", "full_scale",
    "csv",
}
FORMAT_KEYS = {"kind", "delimiter", "header"}
CSV_KEYS = {"delimiter", "decimal"}
# `format.kind`: "text" (delimited text, any extension) or a reader of vibra.readers.READERS
FORMAT_KINDS = ("text", "csv", "parquet", "mat", "audio", "tdms", "uff")
FILE_RULE_KEYS = {"glob", "sample_rate_hz", "rpm", "decimate"}
START_RULE_KEYS = {"regex", "origin", "step_s"}
BEARING_KEYS = {"n_elements", "ball_diameter_mm", "pitch_diameter_mm", "contact_angle_deg"}


@dataclass(frozen=True)
class Bearing:
    """Rolling-element bearing geometry (millimetres, degrees)."""

    n_elements: int
    ball_diameter_mm: float
    pitch_diameter_mm: float
    contact_angle_deg: float = 0.0


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


@dataclass(frozen=True)
class IngestSettings:
    max_concurrent_files: int = 2
    sample_rate_hz: float = 0.0
    chunk_rows: int = 262_144
    lock_timeout_s: float = 3600.0
    keep_raw: bool = False
    on_time_gap: str = "split"
    max_clock_skew_s: float = 86_400.0
    max_span_s: float = 604_800.0
    on_change: str = "replace"


@dataclass(frozen=True)
class FeatureSettings:
    frame_length: int = 4096
    hop_length: int = 4096
    batch_windows: int = 256
    bands_hz: tuple[tuple[float, float], ...] = DEFAULT_BANDS_HZ


@dataclass(frozen=True)
class QuerySettings:
    max_points: int = 5000


@dataclass(frozen=True)
class AnomalySettings:
    model: str = "iforest"
    baseline_days: float = 2.0
    threshold_quantile: float = 0.98
    alarm_k: int = 3
    alarm_m: int = 5
    seed: int = 0


@dataclass(frozen=True)
class ForecastSettings:
    horizon_h: float = 72.0
    freq_s: float = 3600.0
    min_points: int = 48
    n_jobs: int = 1


@dataclass(frozen=True)
class ClusterSettings:
    min_cluster_size: int = 0
    umap_components: int = 5
    umap_neighbors: int = 30
    sample: int = 20_000
    seed: int = 0


@dataclass(frozen=True)
class DefectSettings:
    k: int = 5
    radius_quantile: float = 0.9
    radius_factor: float = 2.0
    retrain_coverage_change: float = 0.05
    retrain_new_clusters: int = 2


@dataclass(frozen=True)
class ReadinessSettings:
    embedding_coverage_green: float = 0.90
    embedding_coverage_red: float = 0.70
    noise_ratio_green: float = 0.25
    noise_ratio_red: float = 0.40
    label_coverage_green: float = 0.60
    label_coverage_red: float = 0.30
    min_labeled_cluster: int = 15
    recency_green_h: float = 24.0
    recency_red_h: float = 72.0
    equipment_share_red: float = 0.60
    missing_indicators_green: float = 0.02
    missing_indicators_red: float = 0.05
    class_imbalance_green: float = 10.0
    class_imbalance_red: float = 100.0
    missing_values_green: float = 0.001
    missing_values_red: float = 0.05
    flat_green: float = 0.01
    flat_red: float = 0.10
    clipping_green: float = 0.001
    clipping_red: float = 0.01
    gap_green_h: float = 24.0
    gap_red_h: float = 72.0
    min_days: float = 14.0


@dataclass(frozen=True)
class FlowSettings:
    task_runner: str = "thread"
    dask_address: str = ""
    dask_workers: int = 2
    retries: int = 2


@dataclass(frozen=True)
class Settings:
    ingest: IngestSettings = field(default_factory=IngestSettings)
    features: FeatureSettings = field(default_factory=FeatureSettings)
    query: QuerySettings = field(default_factory=QuerySettings)
    anomaly: AnomalySettings = field(default_factory=AnomalySettings)
    forecast: ForecastSettings = field(default_factory=ForecastSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    defects: DefectSettings = field(default_factory=DefectSettings)
    readiness: ReadinessSettings = field(default_factory=ReadinessSettings)
    flows: FlowSettings = field(default_factory=FlowSettings)
    equipment: Mapping[str, Equipment] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # e.g. an unknown VIBRA_* variable; the CLI shows them

    def equipment_for(self, equipment_id: str) -> Equipment:
        return self.equipment.get(equipment_id) or Equipment(equipment_id)

    def as_dict(self) -> dict[str, Any]:
        """Plain-JSON form of the resolved settings, for run manifests."""
        from dataclasses import asdict

        out = {"ingest": asdict(self.ingest), "features": asdict(self.features),
               "query": asdict(self.query), "anomaly": asdict(self.anomaly), "forecast": asdict(self.forecast),
               "cluster": asdict(self.cluster), "defects": asdict(self.defects), "readiness": asdict(self.readiness),
               "flows": asdict(self.flows)}
        out["equipment"] = {k: asdict(v) for k, v in self.equipment.items()}
        return out


def _coerce(spec: Spec, value: Any, origin: str) -> Any:
    where = f"{origin} {spec.section}.{spec.key} = {value!r}"
    try:
        if spec.kind is str:
            if spec.choices and value not in spec.choices:
                raise ValueError
            return str(value)
        if spec.kind is bool:
            if isinstance(value, str):
                if value.lower() not in {"1", "0", "true", "false", "yes", "no"}:
                    raise ValueError
                return value.lower() in {"1", "true", "yes"}
            if not isinstance(value, bool):
                raise ValueError
            return value
        if spec.kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            out: Any = int(value)
        else:
            if isinstance(value, bool):
                raise ValueError
            out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: must be {spec.allowed}") from None
    if not math.isfinite(out):  # nan passes every range comparison; inf makes waits endless
        raise ConfigError(f"{where}: not a finite number; must be {spec.allowed}")
    if (spec.low is not None and out < spec.low) or (spec.high is not None and out > spec.high):
        raise ConfigError(f"{where}: out of range; must be {spec.allowed}")
    return out


def _bands(value: Any, origin: str) -> tuple[tuple[float, float], ...]:
    """Bands from ``[[lo, hi], ...]`` (toml) or ``"lo-hi,lo-hi"`` (env/CLI)."""
    where = f"{origin} features.bands_hz = {value!r}"
    try:
        if isinstance(value, str):
            pairs = [tuple(float(v) for v in part.split("-")) for part in value.split(",") if part]
        else:
            pairs = [tuple(float(v) for v in pair) for pair in value]
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: must be a list of [low_hz, high_hz] pairs, e.g. \"0-500,500-1000\"") from None
    if not pairs or any(len(p) != 2 or not 0 <= p[0] < p[1] for p in pairs):
        raise ConfigError(f"{where}: each band needs 0 <= low_hz < high_hz, e.g. \"0-500,500-1000\"")
    return tuple((p[0], p[1]) for p in pairs)


def _equipment(equipment_id: str, raw: Mapping[str, Any], origin: str) -> Equipment:
    where = f"{origin} [equipment.{equipment_id}]"
    if not EQUIPMENT_ID_RE.match(equipment_id):
        raise ConfigError(f"{where}: equipment id must match {EQUIPMENT_ID_RE.pattern}")
    unknown = set(raw) - EQUIPMENT_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(EQUIPMENT_KEYS)}")

    def positive(key: str, high: float) -> float | None:
        if key not in raw:
            return None
        v = raw[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= high:
            raise ConfigError(f"{where} {key} = {v!r}: must be a number in (0, {high:g}]")
        return float(v)

    bearing = None
    if "bearing" in raw:
        b = raw["bearing"]
        if not isinstance(b, Mapping) or set(b) - BEARING_KEYS or not {"n_elements", "ball_diameter_mm", "pitch_diameter_mm"} <= set(b):
            raise ConfigError(f"{where} bearing = {b!r}: must be a table with n_elements, ball_diameter_mm, "
                              "pitch_diameter_mm and optional contact_angle_deg")
        n, d, big_d = b["n_elements"], b["ball_diameter_mm"], b["pitch_diameter_mm"]
        angle = b.get("contact_angle_deg", 0.0)
        if not (isinstance(n, int) and 3 <= n <= 100):
            raise ConfigError(f"{where} bearing.n_elements = {n!r}: must be an integer in 3..100")
        if not (isinstance(d, (int, float)) and isinstance(big_d, (int, float)) and 0 < d < big_d):
            raise ConfigError(f"{where} bearing: ball_diameter_mm = {d!r}, pitch_diameter_mm = {big_d!r}: "
                              "need 0 < ball_diameter_mm < pitch_diameter_mm")
        if not (isinstance(angle, (int, float)) and 0 <= angle < 90):
            raise ConfigError(f"{where} bearing.contact_angle_deg = {angle!r}: must be a number in 0..90")
        bearing = Bearing(n, float(d), float(big_d), float(angle))

    channels = raw.get("channels")
    if channels is not None:
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels) or not channels:
            raise ConfigError(f"{where} channels = {channels!r}: must be a list of column names, "
                              'one per column of a headerless file ("-" skips a column), e.g. ["time", "x", "y"]')
        channels = tuple(channels)

    iso_group = raw.get("iso_group")
    if iso_group is not None and iso_group not in (1, 2):
        raise ConfigError(f"{where} iso_group = {iso_group!r}: must be 1 or 2 (ISO 20816-3 machine group)")
    iso_support = raw.get("iso_support")
    if iso_support is not None and iso_support not in ("rigid", "flexible"):
        raise ConfigError(f"{where} iso_support = {iso_support!r}: must be \"rigid\" or \"flexible\"")
    units = raw.get("units")
    if units is not None and not isinstance(units, str):
        raise ConfigError(f"{where} units = {units!r}: must be a unit name such as \"g\", \"m/s^2\", \"mm/s\", \"A\"")
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
    label = raw.get("label")
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
        for key in ("sample_rate_hz", "rpm"):
            v = rule.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf):
                raise ConfigError(f"{where} files glob {rule['glob']!r}: {key} = {v!r} must be a positive number")
        q = rule.get("decimate")
        if q is not None and (isinstance(q, bool) or not isinstance(q, int) or not 2 <= q <= 64):
            raise ConfigError(f"{where} files glob {rule['glob']!r}: decimate = {q!r} must be an integer in 2..64")
        files.append(FileRule(str(rule["glob"]), *(float(rule[k]) if k in rule else None
                                                    for k in ("sample_rate_hz", "rpm")), q))
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
        step = r["step_s"]
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not 0 < step < math.inf:
            raise ConfigError(f"{where} start_rule.step_s = {step!r}: must be a positive number of seconds")
        start_rule = StartRule(r["regex"], origin, float(step))
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
    pattern = raw.get("file_pattern")
    if pattern is not None:
        if not isinstance(pattern, str) or not pattern:
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
        equipment_id=equipment_id,
        sample_rate_hz=positive("sample_rate_hz", 10_000_000),
        units=units,
        rpm=positive("rpm", 1_000_000),
        channels=channels,
        bearing=bearing,
        iso_group=iso_group,
        iso_support=iso_support,
        alarm_limits_mm_s=limits,
        alert_danger_mm_s=alert_danger,
        label=str(label) if label is not None else None,
        envelope_band_hz=band,
        files=tuple(files),
        start_rule=start_rule,
        format=fmt,
        file_pattern=pattern,
        full_scale=positive("full_scale", 1e12),
        csv=dialect,
    )


# VIBRA_* variables that are not settings but are read elsewhere (CLI options, tests, deployments)
OTHER_ENV = {"VIBRA_HOME", "VIBRA_REPO", "VIBRA_SOURCE", "VIBRA_REAL_DATA", "VIBRA_LOG_LEVEL", "VIBRA_LOG_FORMAT",
             "VIBRA_FEATURES_BANDS_HZ"}


def unknown_env(env: Mapping[str, str]) -> list[str]:
    """A warning for each ``VIBRA_*`` name that is no setting, naming the closest valid one."""
    known = {s.env for s in SETTINGS} | OTHER_ENV
    out = []
    for name in sorted(n for n in env if n.upper().startswith("VIBRA_") and n not in known):
        close = difflib.get_close_matches(name.upper(), sorted(known), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else "see docs/reference/settings.md"
        out.append(f"environment variable {name} is not a vibra setting and is ignored; {hint}")
    return out


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file or run `vibra init` elsewhere") from None


def load_settings(
    toml_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Resolve settings from defaults, a ``vibra.toml``, an environment and CLI overrides.

    Parameters
    ----------
    toml_path : path of ``vibra.toml`` (missing file = defaults).
    env : mapping of environment variables (only ``VIBRA_*`` keys are read).
    overrides : ``{"section.key": value}`` from CLI options; ``None`` values are ignored.
    """
    raw = read_toml(toml_path) if toml_path else {}
    origin = str(toml_path) if toml_path else "vibra.toml"
    env = env or {}
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}

    known_sections = {"ingest", "features", "query", "anomaly", "forecast", "cluster", "defects", "equipment",
                      "readiness", "flows", "workspace"}
    for section in raw:
        if section not in known_sections:
            raise ConfigError(f"{origin}: unknown section [{section}]; known: {sorted(known_sections)}")

    values: dict[str, dict[str, Any]] = {s.section: {} for s in SETTINGS}
    specs = {(s.section, s.key): s for s in SETTINGS}
    for section in values:
        table = raw.get(section, {})
        for key in table:
            if (section, key) not in specs and not (section, key) == ("features", "bands_hz"):
                allowed = sorted(k for s, k in specs if s == section)
                raise ConfigError(f"{origin} [{section}] {key}: unknown setting; allowed: {allowed}")
    for spec in SETTINGS:
        value, where = spec.default, None
        if spec.key in raw.get(spec.section, {}):
            value, where = raw[spec.section][spec.key], origin
        if spec.env in env:
            value, where = env[spec.env], f"environment {spec.env}:"
        if f"{spec.section}.{spec.key}" in overrides:
            value, where = overrides[f"{spec.section}.{spec.key}"], "option"
        values[spec.section][spec.key] = _coerce(spec, value, where) if where else value

    bands: Any = DEFAULT_BANDS_HZ
    if "bands_hz" in raw.get("features", {}):
        bands = _bands(raw["features"]["bands_hz"], origin)
    if "VIBRA_FEATURES_BANDS_HZ" in env:
        bands = _bands(env["VIBRA_FEATURES_BANDS_HZ"], "environment VIBRA_FEATURES_BANDS_HZ:")
    if "features.bands_hz" in overrides:
        bands = _bands(overrides["features.bands_hz"], "option")

    features = FeatureSettings(**values["features"], bands_hz=bands)
    if features.hop_length > features.frame_length:
        raise ConfigError(f"features.hop_length = {features.hop_length} is larger than frame_length = "
                          f"{features.frame_length}: samples would be skipped; use hop_length <= frame_length")

    equipment_raw = raw.get("equipment", {})
    if not isinstance(equipment_raw, Mapping):
        raise ConfigError(f"{origin} [equipment]: must hold [equipment.<id>] tables")
    equipment = {eid: _equipment(eid, table, origin) for eid, table in equipment_raw.items()}
    anomaly = AnomalySettings(**values["anomaly"])
    if anomaly.alarm_k > anomaly.alarm_m:
        raise ConfigError(f"anomaly.alarm_k = {anomaly.alarm_k} is larger than alarm_m = {anomaly.alarm_m}: "
                          "an alarm could never fire; use alarm_k <= alarm_m")
    return Settings(
        ingest=IngestSettings(**values["ingest"]),
        features=features,
        query=QuerySettings(**values["query"]),
        anomaly=anomaly,
        forecast=ForecastSettings(**values["forecast"]),
        cluster=ClusterSettings(**values["cluster"]),
        defects=DefectSettings(**values["defects"]),
        readiness=ReadinessSettings(**values["readiness"]),
        flows=FlowSettings(**values["flows"]),
        equipment=equipment,
        warnings=tuple(unknown_env(env)),
    )


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
