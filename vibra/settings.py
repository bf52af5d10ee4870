"""Validated settings: defaults < ``vibra.toml`` < ``VIBRA_*`` environment < CLI.

The library reads no environment itself: the CLI or flow passes ``os.environ``
(or any mapping) to :func:`load_settings`, which returns one frozen
:class:`Settings` object that is passed down to every stage.

Every scalar setting is described once in :data:`SETTINGS`; the settings reference (docs/reference/settings.md, generated),
the environment-variable names and the validation messages all come from it.
"""

from __future__ import annotations

import difflib
import json
import tomllib
from dataclasses import asdict, dataclass, field, make_dataclass
from pathlib import Path
from typing import Any, Mapping

from vibra.equipment import (  # noqa: F401 - the machine types, re-exported for the settings' users
    BEARING_KEYS, EQUIPMENT_EXAMPLE, CSV_KEYS, EQUIPMENT_ID_RE, EQUIPMENT_KEYS, FILE_RULE_KEYS, FORMAT_KEYS, FORMAT_KINDS,
    START_RULE_KEYS, Bearing, CsvDialect, Equipment, FileFormat, FileRule, StartRule, equipment_toml, parse_equipment,
)
from vibra.errors import ConfigError
from vibra.spec import Spec, number_text, coerce



SETTINGS: tuple[Spec, ...] = (
    Spec("lake", "uri", str, "", doc="where the lake, the model artifacts and kept raw waveforms live: empty = this "
         "workspace's data/lake and artifacts; s3://bucket/prefix = object storage (credentials, region and an "
         "S3-compatible endpoint from the standard AWS_* environment: AWS_PROFILE or AWS_ACCESS_KEY_ID, AWS_REGION, "
         "AWS_ENDPOINT_URL); the DuckDB ledger stays in this workspace"),
    Spec("ingest", "workers", int, 0, 0, 256,
         "processes that ingest files at once (each one file at a time; the ledger stays with the parent): 0 = auto, "
         "the cores available but one per 100 files to do (a worker's start costs ~1.5 s of imports); 1 = in this "
         "process, with max_concurrent_files threads"),
    Spec("ingest", "max_concurrent_files", int, 2, 1, 64,
         "files read and processed at once by threads of one process (workers = 1, or a run too small for workers)"),
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
    Spec("ingest", "on_settings_change", str, "recompute", doc="what `vibra ingest` does with completed files whose "
         "settings changed since they were ingested (a machine's units, rpm, bearing, sample rate, the window "
         "settings): recompute their windows with the current settings (as `vibra features rebuild`), or only list "
         "them with the command that does it", choices=("recompute", "warn")),
    Spec("features", "frame_length", int, 4096, 64, 1_048_576,
         "window length in samples"),
    Spec("features", "hop_length", int, 4096, 1, 1_048_576,
         "samples between window starts (= frame_length: no overlap)"),
    Spec("features", "batch_windows", int, 256, 1, 65_536,
         "windows per FFT batch"),
    Spec("features", "diagnosis_window_s", float, 1.0, 0.01, 600.0,
         "bearing diagnosis: seconds per window of the recording-level envelope spectrum (rounded up to a power "
         "of two of samples, averaged over the whole recording; independent of frame_length)"),
    Spec("features", "rpm_search", float, 0.1, 0.0, 0.5,
         "running speed from the spectrum: searched within ± this share of the machine's rpm when a recording "
         "states none of its own (0: never estimated), and checked against the rpm a recording states"),
    Spec("features", "rpm_min", float, 0.0, 0.0, 1_000_000.0,
         "running speed from the spectrum for machines without rpm: lowest r/min searched (0 with rpm_max 0: none)"),
    Spec("features", "rpm_max", float, 0.0, 0.0, 1_000_000.0,
         "running speed from the spectrum for machines without rpm: highest r/min searched"),
    Spec("query", "max_points", int, 5000, 1, 10_000_000,
         "cap on the points `vibra query recent` returns"),
    Spec("sql", "memory_limit_mb", int, 2048, 64, 1_048_576,
         "memory one `vibra sql` statement may use (DuckDB's memory_limit, no spilling to disk), and the most its "
         "answer may hold before it is printed"),
    Spec("sql", "timeout_s", float, 60.0, 0.1, 86_400, "a `vibra sql` statement running longer is interrupted"),
    Spec("anomaly", "model", str, "iforest", doc="model family `vibra detect` and `vibra anomalies` use by default",
         choices=("iforest", "hst", "baseline")),
    Spec("anomaly", "baseline_days", float, 2.0, 0.01, 3650,
         "days from each machine's first window that train its models (the baseline period)"),
    Spec("anomaly", "baseline_max_share", float, 0.2, 0.05, 1.0,
         "largest share of a machine's monitored time its baseline may cover: a longer baseline_days is cut to "
         "this first share, with a warning (a baseline that holds the degradation never alarms on it; 1 = never cut)"),
    Spec("anomaly", "baseline_min_windows", int, 20, 2, 1_000_000,
         "fewest windows (all channels) a baseline needs; a machine with fewer is not trained and says why"),
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

BANDS_DOC = "band-energy bands, Hz: [low_hz, high_hz] pairs with 0 <= low < high"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple):
        return json.dumps([_toml_value_list(v) for v in value]).replace('"', "")
    return number_text(value) if float(value).is_integer() else repr(value)


def _toml_value_list(value: Any) -> Any:
    return [_toml_value_list(v) for v in value] if isinstance(value, tuple) else _toml_value(value)


def toml_template() -> str:
    """The commented ``vibra.toml`` that ``vibra init`` writes (and the repository's own): every setting of
    :data:`SETTINGS` at its default, with its meaning and range, under its section; then a machine example."""
    import textwrap

    lines = ["# vibra workspace settings. Precedence: CLI option > VIBRA_* environment > this file > defaults.",
             "# Every setting is listed in docs/reference/settings.md. Uncomment a setting to change it."]
    for section in SECTIONS:
        lines += ["", f"[{section}]"]
        rows = [(s.key, s.default, f"{s.doc} ({s.allowed})") for s in SETTINGS if s.section == section]
        if section == "features":
            rows.append(("bands_hz", DEFAULT_BANDS_HZ, BANDS_DOC))
        for key, default, doc in rows:  # the setting, then what it means, indented (never read as a setting)
            lines.append(f"# {key} = {_toml_value(default)}")
            lines += textwrap.wrap(doc, 106, initial_indent="#     ", subsequent_indent="#     ")
    return "\n".join(lines) + "\n\n" + EQUIPMENT_EXAMPLE


def _section(name: str, section: str, *extra: tuple[str, type, Any]) -> type:
    """The frozen dataclass of one ``[section]``: a field per :data:`SETTINGS` row of it, whose default is
    the row's (plus ``extra`` fields for the structured settings outside the table). A new setting is
    one row of the table; the class, the ``vibra.toml`` template and the reference follow from it."""
    fields = [(s.key, s.kind, field(default=s.default)) for s in SETTINGS if s.section == section]
    fields += [(key, kind, field(default=default)) for key, kind, default in extra]
    cls = make_dataclass(name, fields, frozen=True)
    # make_dataclass would name its module "types": set it, so the class pickles (Dask workers get settings)
    cls.__module__, cls.__qualname__ = __name__, name
    cls.__doc__ = f"``[{section}]`` of ``vibra.toml`` (fields and defaults: :data:`SETTINGS`)."
    return cls


LakeSettings = _section("LakeSettings", "lake")
IngestSettings = _section("IngestSettings", "ingest")
FeatureSettings = _section("FeatureSettings", "features", ("bands_hz", tuple, DEFAULT_BANDS_HZ))
QuerySettings = _section("QuerySettings", "query")
SqlSettings = _section("SqlSettings", "sql")
AnomalySettings = _section("AnomalySettings", "anomaly")
ForecastSettings = _section("ForecastSettings", "forecast")
ClusterSettings = _section("ClusterSettings", "cluster")
DefectSettings = _section("DefectSettings", "defects")
ReadinessSettings = _section("ReadinessSettings", "readiness")
FlowSettings = _section("FlowSettings", "flows")

# section name → its class, in the order of Settings' fields and of the run manifests
SECTIONS: dict[str, type] = {
    "lake": LakeSettings, "ingest": IngestSettings, "features": FeatureSettings, "query": QuerySettings,
    "sql": SqlSettings, "anomaly": AnomalySettings,
    "forecast": ForecastSettings, "cluster": ClusterSettings, "defects": DefectSettings,
    "readiness": ReadinessSettings, "flows": FlowSettings,
}


@dataclass(frozen=True)
class Settings:
    lake: LakeSettings = field(default_factory=LakeSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    features: FeatureSettings = field(default_factory=FeatureSettings)
    query: QuerySettings = field(default_factory=QuerySettings)
    sql: SqlSettings = field(default_factory=SqlSettings)
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
        out: dict[str, Any] = {name: asdict(getattr(self, name)) for name in SECTIONS}
        out["equipment"] = {k: asdict(v) for k, v in self.equipment.items()}
        return out



def _coerce(spec: Spec, value: Any, origin: str) -> Any:
    return coerce(spec, value, f"{origin} {spec.section}.{spec.key} = {value!r}")


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

    known_sections = {*SECTIONS, "equipment", "workspace"}
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
    equipment = {eid: parse_equipment(eid, table, origin) for eid, table in equipment_raw.items()}
    anomaly = AnomalySettings(**values["anomaly"])
    if anomaly.alarm_k > anomaly.alarm_m:
        raise ConfigError(f"anomaly.alarm_k = {anomaly.alarm_k} is larger than alarm_m = {anomaly.alarm_m}: "
                          "an alarm could never fire; use alarm_k <= alarm_m")
    built = {name: cls(**values[name]) for name, cls in SECTIONS.items() if name not in ("features", "anomaly")}
    return Settings(**built, features=features, anomaly=anomaly, equipment=equipment,
                    warnings=tuple(unknown_env(env)))
