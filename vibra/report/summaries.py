"""Read-only summaries of a workspace, shown by the CLI and rendered by the report: the ledger's status,
a machine's latest forecast, the latest clustering's table, the defect assignments and the alarm episodes.

They read the lake through :mod:`vibra.storage.tables`, the labels through :mod:`vibra.storage.labels`
and the artifacts through their stores; they write nothing, so any stage (or the report) may call them.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from vibra.diagnosis import bearing
from vibra.anomaly.alarms import k_of_m
from vibra.prognostics.forecast import crossing_state
from vibra.errors import InputError, NotReadyError
from vibra.anomaly import registry
from vibra.anomaly.matrix import standardise, transform
from vibra.storage import artifacts, ledger, tables
from vibra.storage.labels import labelled_windows
from vibra.storage.tables import (WINDOW_KEYS, equipment_ids, read_clusters, read_defects, read_features, read_scores,
                                 read_windows)

if TYPE_CHECKING:
    from vibra.settings import Settings
    from vibra.workspace import Workspace

KEYS = list(WINDOW_KEYS)


# -- the ledger ------------------------------------------------------------------------------------

def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def _baseline_from(ws: Workspace, equipment_id: str) -> str | None:
    """The file the machine's anomaly baseline starts at when one was chosen (`vibra baseline set`), else None."""
    from vibra.anomaly import reference

    chosen = reference.read(ws.artifacts, equipment_id)
    return chosen["source_path"].replace("\\", "/").rsplit("/", 1)[-1] if chosen else None


def status(ws: Workspace, equipment_ids: list[str] | None = None) -> dict:
    """Status payload: keys ``total_files, pending, processing, completed, failed, duplicates,
    features_total, last_recorded_at, equipment`` (per-equipment ``equipment_id, completed,
    failed, windows, last_recorded_at, baseline_from``)."""
    counts = ledger.status_counts(ws, equipment_ids)
    by_status, per_eq = counts.by_status, counts.per_equipment
    windows = {e: n for e, n in tables.window_counts(ws).items() if not equipment_ids or e in equipment_ids}
    equipment = [{"equipment_id": e, "completed": c, "failed": f, "windows": windows.get(e, 0),
                  "last_recorded_at": _iso(last), "baseline_from": _baseline_from(ws, e)} for e, c, f, last in per_eq]
    lasts = [row[3] for row in per_eq if row[3] is not None]
    return {
        "total_files": sum(by_status.values()),
        "pending": by_status.get("pending", 0),
        "processing": by_status.get("processing", 0),
        "completed": by_status.get("completed", 0),
        "failed": by_status.get("failed", 0),
        "duplicates": by_status.get("duplicate", 0),
        "features_total": sum(windows.values()),
        "last_recorded_at": _iso(max(lasts)) if lasts else None,
        "equipment": equipment,
    }


# -- forecasts -------------------------------------------------------------------------------------

def latest_forecast(ws: Workspace, equipment_id: str, *, channel: str | None = None, indicator: str | None = None) -> dict:
    """History and forecast of the latest run for one machine, in one payload (for a chart)."""
    import polars as pl

    df = tables.read_forecasts(ws, equipment_id)
    if df.height == 0:
        raise NotReadyError(f"no forecasts for {equipment_id!r} yet; run `vibra forecast` first")
    if channel:
        df = df.filter(pl.col("channel") == channel)
    if indicator:
        df = df.filter(pl.col("indicator") == indicator)
    if df.height == 0:
        raise InputError(f"no forecast of {equipment_id!r} for channel={channel!r} indicator={indicator!r}")
    latest = df.group_by("channel", "indicator").agg(pl.col("model_version").max())
    df = df.join(latest, on=["channel", "indicator", "model_version"]).sort("channel", "indicator", "ds")
    series = []
    for (ch, ind), part in df.group_by(["channel", "indicator"], maintain_order=True):
        first = part.row(0, named=True)
        hist = part.filter(pl.col("kind") == "history")
        fut = part.filter(pl.col("kind") == "forecast")
        series.append({
            "channel": ch, "indicator": ind, "model": first["model"], "model_version": first["model_version"],
            "generated_at": first["generated_at"].isoformat(), "status": first["status"], "limit": first["limit"],
            "limit_source": first["limit_source"],
            "time_to_threshold": _time_to_threshold(first),
            "history": [{"ds": t.isoformat(), "value": v} for t, v in zip(hist["ds"], hist["value"])],
            "forecast": [{"ds": r["ds"].isoformat(), **{k: r[k] for k in ("mean", "lo-80", "hi-80", "lo-95", "hi-95")
                                                        if k in r}} for r in fut.iter_rows(named=True)],
        })
    return {"equipment_id": equipment_id, "series": series}


def _time_to_threshold(first: dict) -> dict:
    """A stored run's time to threshold with its state (runs before the states stored 0 h for a limit
    already past: no hours then, the state says it)."""
    state = crossing_state({"state": first.get("ttt_state"), "p50_h": first["ttt_p50_h"]}, first["status"])
    hours = {k: (None if state == "already_past" else first[f"ttt_{k}"]) for k in ("p10_h", "p50_h", "p90_h")}
    return {**hours, "crossing_probability": first["crossing_probability"], "state": state}


# -- clusters and defects --------------------------------------------------------------------------

def assignments(ws: Workspace, equipment: list[str] | None = None) -> list[dict]:
    """Per equipment and recording: windows per assigned defect (``unknown`` included)."""
    import polars as pl

    df = read_defects(ws, equipment)
    if df.height == 0:
        return []
    grouped = (df.group_by("equipment_id", "recording_id", "defect")
               .agg(pl.len().alias("windows"), pl.col("defect_confidence").mean().alias("mean_confidence"),
                    pl.col("window_start").min().alias("first"))
               .sort("equipment_id", "first", "recording_id", "defect"))
    out: dict = {}
    for r in grouped.iter_rows(named=True):
        item = out.setdefault((r["equipment_id"], r["recording_id"]), {
            "equipment_id": r["equipment_id"], "recording_id": r["recording_id"], "first": r["first"].isoformat(),
            "windows": {}, "mean_confidence": {}})
        item["windows"][r["defect"]] = int(r["windows"])
        item["mean_confidence"][r["defect"]] = round(float(r["mean_confidence"]), 3)
    return list(out.values())


def cluster_table(ws: Workspace, settings: Settings) -> dict:
    """``vibra clusters``: each cluster of the latest clustering with its label, evidence and drift."""
    import polars as pl

    manifest = artifacts.store(ws.artifacts, "clustering").latest_manifest()
    if not manifest:
        raise NotReadyError("no clustering yet; run `vibra cluster` first")
    members = read_clusters(ws)
    labelled = labelled_windows(ws, members)
    direct = (labelled.filter(pl.col("cluster_id") >= 0).group_by("cluster_id", "defect", "label_source")
              .agg(pl.len().alias("n")).sort("n", descending=True))
    defects = read_defects(ws)
    knn_major = pl.DataFrame()
    if defects.height:
        knn_major = (members.join(defects.select(*KEYS, "defect"), on=KEYS)
                     .group_by("cluster_id", "defect").agg(pl.len().alias("n")).sort("n", descending=True))
    rows = []
    for c in manifest["clusters"]:
        cid = c["cluster_id"]
        mine = direct.filter(pl.col("cluster_id") == cid)
        label, source, labelled_n = None, None, int(mine["n"].sum()) if mine.height else 0
        if mine.height:
            label = mine["defect"][0]
            source = f"{mine['label_source'][0]}: {mine['n'][0]} of {labelled_n} labelled windows"
        elif knn_major.height and knn_major.filter(pl.col("cluster_id") == cid).height:
            k = knn_major.filter(pl.col("cluster_id") == cid)
            label, source = k["defect"][0], f"knn: {k['n'][0]} of {c['size']} windows"
        mix = {}
        for d, n in mine.group_by("defect").agg(pl.col("n").sum()).iter_rows() if mine.height else []:
            mix[d] = int(n)
        rows.append({**c, "label": label, "label_source": source, "labelled_windows": labelled_n,
                     "labels_in_cluster": dict(sorted(mix.items(), key=lambda kv: -kv[1]))})
    return {"version": manifest["version"], "created_at": manifest["created_at"],
            "embedding_version": manifest["embedding_version"], "windows": manifest["windows"],
            "n_clusters": manifest["n_clusters"], "noise_ratio": manifest["noise_ratio"],
            "noise_windows": int(members.filter(pl.col("cluster_id") < 0).height),
            "validity": manifest["validity"], "drift": manifest["drift"], "psi": manifest["psi"], "clusters": rows}


# -- alarm episodes --------------------------------------------------------------------------------

def has_scores(ws: Workspace, equipment: list[str] | None = None) -> bool:
    """Whether any window of ``equipment`` (every machine by default) has an anomaly score: no alarm
    episode means "quiet" only then, else "not scored yet"."""
    return bool(tables.files_of(ws, tables.SCORES, equipment))


def episodes(ws: Workspace, settings: Settings, *, equipment: list[str] | None = None, model: str | None = None,
             since: datetime | None = None, top: int = 3, scores_table=None, features_table=None) -> list[dict]:
    """Alarm episodes: runs of windows where ``alarm_k`` of the last ``alarm_m`` windows of a
    channel are over threshold, with the indicators that stand out most at the peak.

    ``scores_table``, ``features_table``: the scores and features of the one machine asked for, when the
    caller has read them already (polars DataFrames; None: read here).
    """
    import polars as pl

    model_type = model or settings.anomaly.model
    k, m = settings.anomaly.alarm_k, settings.anomaly.alarm_m
    out = []
    for eid in equipment_ids(ws, equipment):
        scores = scores_table if scores_table is not None else read_scores(ws, eid, since)
        if scores.height == 0:
            continue
        for scope in registry.scopes_for(ws.artifacts, eid):
            version = registry.pointers(scope).get(model_type)
            if version is None:
                continue
            _, manifest = registry.manifest_of(scope, model_type, version)
            cur = (scores.filter((pl.col("model_type") == model_type) & (pl.col("model_version").is_in(registry.lineage(manifest)))
                                 & (pl.col("scope") == scope.name))
                   .sort("channel", "window_start"))
            if cur.height == 0:
                continue
            cur = k_of_m(cur, k=k, m=m)
            alarms = cur.filter(pl.col("alarm"))
            if alarms.height == 0:
                continue
            feats = features_table if features_table is not None else read_features(ws, eid, since)
            for (channel, _), ep in alarms.group_by(["channel", "episode"], maintain_order=True):
                peak = ep.sort("score", descending=True).head(1)
                row = feats.join(peak.select(KEYS), on=KEYS)
                contributors = []
                if row.height:
                    z = standardise(row, manifest["features"], manifest["standardisation"], manifest["standardise_by"])[0]
                    order = np.argsort(-np.abs(np.nan_to_num(z)))[:top]
                    raw = transform(row, manifest["features"])[0]
                    contributors = [{"indicator": manifest["features"][i], "z": round(float(z[i]), 2),
                                     "value": float(row[manifest["features"][i]][0])} for i in order
                                    if np.isfinite(raw[i])]
                out.append({
                    "equipment_id": eid, "channel": channel, "model_type": model_type, "model_version": version,
                    "start": ep["window_start"].min().isoformat(), "end": ep["window_start"].max().isoformat(),
                    "windows": ep.height, "peak_score": float(ep["score"].max()),
                    "threshold": float(ep["threshold"][0]), "top_indicators": contributors,
                })
    return sorted(out, key=lambda e: (e["equipment_id"], e["start"]))


# -- remaining useful life, as shown -------------------------------------------------------------------

#: The one name of the RUL number wherever it is shown (``vibra rul``, the fleet table, the machine page,
#: ``fleet.csv``): the point answer planned on — deliberately early, because a late answer costs four
#: times an early one (PHM 2012) — never "P50". Its key is ``planning_s``; the median is ``p50_s``.
RUL_NAME = "RUL, planning (early)"
NO_DEGRADATION = "no degradation yet"
#: The numeric RUL fields of a display row, all seconds (None where they do not apply).
RUL_NUMBERS = ("rul_planning_s", "rul_p50_s", "rul_p10_s", "rul_p90_s", "rul_prior_p10_s", "rul_prior_p90_s")


def _duration(seconds: float | None) -> str:
    from vibra.prognostics.rul import format_duration

    return format_duration(seconds)


def rul_display(entry: dict | None, *, first_alarm: str | None = None) -> dict:
    """How one machine's latest RUL answer (a ``machines`` entry of the ``rul`` manifest) is shown.

    Keys: ``rul_state`` — ``model`` (a degradation model answered, after onset), ``no_degradation``
    (no onset yet: the survival prior answered), ``prior`` (the prior for another reason, e.g. a
    library too small), ``no_data`` (nothing recorded since the last replacement or failure), else
    the stage's status; the numbers :data:`RUL_NUMBERS`, seconds — ``rul_planning_s`` and the median
    only after onset, the prior's P10–P90 (the typical remaining life) only before; the texts
    ``rul_text`` (self-contained), ``rul_cell`` (under a column headed :data:`RUL_NAME`) and
    ``rul_detail`` (the median, or why there is no number); ``onset_at`` and ``first_alarm_at``
    (ISO: the RUL chain's onset and the first anomaly alarm of this life, when known), shown side by
    side because they can differ (docs/explanation.md, "Alarm and RUL onset").
    """
    view = _rul_view(entry, first_alarm)
    return view if view["rul_cell"] is not None or view["rul_text"] is None else {**view, "rul_cell": view["rul_text"]}


def _rul_view(entry: dict | None, first_alarm: str | None) -> dict:
    from datetime import timedelta

    out: dict = {k: None for k in RUL_NUMBERS} | {"rul_state": None, "rul_text": None, "rul_cell": None,
                                                 "rul_detail": None, "onset_at": None, "first_alarm_at": None}
    if not entry:
        return out
    start = entry.get("life_start")
    if entry.get("onset_s") is not None and start:
        out["onset_at"] = (datetime.fromisoformat(start) + timedelta(seconds=entry["onset_s"])).isoformat()
    if first_alarm and (not start or datetime.fromisoformat(first_alarm) >= datetime.fromisoformat(start)):
        out["first_alarm_at"] = first_alarm
    status = entry.get("status")
    if status == "no_data":
        since = f" ({start[:16].replace('T', ' ')})" if start else ""
        out.update(rul_state="no_data", rul_text=f"no data since the last replacement or failure{since}",
                   rul_detail="the RUL starts again with this life's first recording")
        return out
    if "p50_s" not in entry or entry.get("p50_s") is None:
        out.update(rul_state=status, rul_text=f"no RUL: {(status or 'unknown').replace('_', ' ')}",
                   rul_detail=entry.get("reason"))
        return out
    basis = entry.get("basis", "model")
    if basis == "model":
        # planning_s is the RUL stage's expected-score answer; a manifest written before it existed holds
        # only the quantiles, and its chosen early point was P10-like: fall back to p10_s there
        planning = entry.get("planning_s", entry["p10_s"])
        out.update(rul_state="model", rul_planning_s=planning, rul_p50_s=entry["p50_s"], rul_p10_s=entry["p10_s"],
                   rul_p90_s=entry["p90_s"], rul_text=f"{RUL_NAME}: {_duration(planning)}",
                   rul_cell=_duration(planning),
                   rul_detail=f"median {_duration(entry['p50_s'])} (P10–P90 {_duration(entry['p10_s'])}–"
                              f"{_duration(entry['p90_s'])}); {entry.get('model')}")
        return out
    typical = f"{_duration(entry['p10_s'])}–{_duration(entry['p90_s'])}"
    if basis == "prior_no_onset":
        out.update(rul_state="no_degradation", rul_text=NO_DEGRADATION)
    else:
        from vibra.prognostics.rul import PRIOR_WHY

        out.update(rul_state="prior", rul_text=f"no RUL: {PRIOR_WHY.get(basis, basis)}")
    out.update(rul_prior_p10_s=entry["p10_s"], rul_prior_p90_s=entry["p90_s"],
               rul_detail=f"typical remaining life {typical} (survival prior of the library's lives, not a "
                          "prediction of this machine)")
    return out


def rul_rows(ws: Workspace, settings: Settings, machines: list[dict]) -> list[dict]:
    """The ``machines`` entries of a RUL run, each with its :func:`rul_display` keys and the first
    anomaly alarm of its current life (for ``vibra rul``)."""
    starts = {m["equipment_id"]: m.get("life_start") for m in machines}
    known = set(equipment_ids(ws))
    alarms = first_alarms(ws, settings, [e for e in starts if e in known], since=starts) if starts else {}
    return [{**m, **rul_display(m, first_alarm=alarms.get(m["equipment_id"]))} for m in machines]


def first_alarms(ws: Workspace, settings: Settings, equipment: list[str] | None = None,
                 since: dict[str, str | None] | None = None) -> dict[str, str]:
    """``{equipment_id: start of its first alarm episode}`` (ISO; the default model), counting only
    episodes that start at or after ``since[equipment_id]`` (ISO, a life's start) when given."""
    since = since or {}
    first: dict[str, datetime] = {}
    for e in episodes(ws, settings, equipment=equipment):
        eid, at = e["equipment_id"], datetime.fromisoformat(e["start"])
        floor = since.get(eid)
        if (floor is None or at >= datetime.fromisoformat(floor)) and (eid not in first or at < first[eid]):
            first[eid] = at
    return {k: v.isoformat() for k, v in first.items()}


# -- bearing-fault verdicts --------------------------------------------------------------------------

def verdicts(ws: Workspace, equipment: list[str] | None = None, settings=None) -> list[dict]:
    """The bearing-fault verdict of every recording (of ``equipment``), newest first per machine, from the
    evidence columns the features carry (:mod:`vibra.diagnosis`): per channel, the recording-level evidence
    (the whitened SES averaged over the recording) with the indicator windows' shares as secondary evidence;
    a recording's verdict is its channel's with the clearest named fault (then ambiguous, then no fault
    evidence, then not diagnosable). A channel whose sensor failed (:mod:`vibra.ingest.quality`) is not
    diagnosable: it says so and never names a fault. With ``settings``, the text names the lines read, each
    channel is read with its measurement point's bearing geometry, and ``points`` gives each measurement point
    (``[equipment.<id>] points``) the verdict of its strongest channel."""
    import polars as pl

    from vibra.diagnosis import recording
    from vibra.ingest import quality
    from vibra.physics.bearing import Geometry

    cols = list(bearing.EVIDENCE_COLUMNS)
    rec_cols = list(recording.READING_COLUMNS)
    df = read_windows(ws, cols + rec_cols + list(quality.COLUMNS) + ["sample_rate_hz", "rpm"], equipment=equipment)
    if df.height == 0:
        return []
    df = quality.mark_sensor_faults(ws, df.with_columns([pl.col(c).cast(pl.Float64) for c in cols + rec_cols + ["rpm"]]))
    groups = (df.group_by("equipment_id", "recording_id", "channel", maintain_order=True)
              .agg(pl.col("window_start").min().alias("first"), pl.col("sample_rate_hz").max(),
                   pl.col("sensor_fault").first(), *[pl.col(c) for c in cols],
                   *[pl.col(c).first() for c in rec_cols + ["rpm"]]))
    per_recording: dict[tuple[str, str], list[dict]] = {}
    window_s = settings.features.diagnosis_window_s if settings is not None else 1.0
    for row in groups.iter_rows(named=True):
        ev = np.column_stack([np.asarray(row[c], dtype=np.float64) for c in cols])
        rec_ev = np.array([np.nan if row[c] is None else row[c] for c in recording.RECORDING_EVIDENCE_COLUMNS])
        rpm = _finite(row["diagnosis_rpm"]) or _finite(row["rpm"])
        if row["sensor_fault"]:  # the sensor made this signal, not the bearing: no fault is named from it
            v = bearing.recording_verdict(np.full(3, np.nan), ev, missing=("working sensor",))
            v = bearing.Verdict(**{**v.__dict__, "text": f"not diagnosable: sensor fault ({row['sensor_fault']})"})
        else:
            eq = settings.equipment_for(row["equipment_id"]) if settings is not None else None
            own_bearing = eq.bearing_for(row["channel"]) if eq is not None else None  # its point's, else the machine's
            geometry = Geometry.of(own_bearing) if own_bearing is not None else None
            missing = ()
            if not (np.isfinite(rec_ev).any() or np.isfinite(ev).any()):
                missing = tuple(m for m, gone in (("rpm", not rpm), ("bearing geometry", eq is not None and geometry is None))
                                if gone) or (("rpm or bearing geometry",) if eq is None else ("enough samples",))
            resolution = None
            if row["sample_rate_hz"] and rpm:
                length = recording.frame_length_for(window_s, row["sample_rate_hz"])
                resolution = row["sample_rate_hz"] / length / (rpm / 60.0)
            band = f" in 0–{row['sample_rate_hz'] / 2000:.3g} kHz" if row["sample_rate_hz"] else ""  # the whitened full band
            v = bearing.recording_verdict(rec_ev, ev, geometry=geometry, resolution_orders=resolution, band_text=band,
                                          missing=missing, rpm=rpm, rpm_estimated=_finite(row["rpm_estimated"]))
        per_recording.setdefault((row["equipment_id"], row["recording_id"]), []).append(
            {"channel": row["channel"], "first": row["first"], **v.as_dict()})
    rows = []
    rank = {**{f: 0 for f in bearing.FAMILIES}, bearing.AMBIGUOUS: 1, bearing.NO_EVIDENCE: 2, bearing.NOT_DIAGNOSABLE: 3}
    for (eid, rid), channels in per_recording.items():
        eq = settings.equipment_for(eid) if settings is not None else None
        own = eq.bearing_channel if eq is not None else None

        def strength(c: dict, own: str | None = own) -> tuple:
            top = max((x for x in c["evidence"].values() if x is not None and np.isfinite(x)), default=-np.inf)
            return (c["channel"] != own, rank[c["verdict"]], -top, c["channel"])  # the bearing's own channel first

        channels.sort(key=strength)
        best = channels[0]
        point = eq.point_of(best["channel"]) if eq is not None else None
        rows.append({"equipment_id": eid, "recording_id": rid, "first": best["first"].isoformat(),
                     "verdict": best["verdict"], "families": best["families"], "missing": best["missing"],
                     "channel": best["channel"], "text": best["text"],
                     "point": point.name if point is not None else None,
                     "points": _point_verdicts(eq.points if eq is not None else (), channels),
                     "evidence": {k: _round(v) for k, v in best["evidence"].items()},
                     "window_share": {k: round(v, 3) for k, v in best["window_share"].items()},
                     "n_windows": best["n_windows"], "rpm": _round(best["rpm"]),
                     "rpm_estimated": _round(best["rpm_estimated"]),
                     "channels": [{"channel": c["channel"], "verdict": c["verdict"], "families": c["families"],
                                   "missing": c["missing"], "text": c["text"],
                                   "evidence": {k: _round(v) for k, v in c["evidence"].items()}}
                                  for c in channels]})
    rows.sort(key=lambda r: (r["equipment_id"], r["first"]), reverse=True)
    rows.sort(key=lambda r: r["equipment_id"])
    return rows


def _point_verdicts(points, channels: list[dict]) -> list[dict]:
    """One verdict per measurement point (``[equipment.<id>] points``), in the order the settings list them: that
    of its strongest channel (``channels`` come sorted, the bearing's own first). A point none of whose channels
    is in the recording is not diagnosable and says which channels it looked for."""
    out = []
    for point in points:
        mine = [c for c in channels if c["channel"] in point.channels]
        if not mine:
            names = ", ".join(point.channels)
            out.append({"point": point.name, "verdict": bearing.NOT_DIAGNOSABLE, "families": [],
                        "missing": [f"channel {names}"], "channel": None, "evidence": {},
                        "text": f"not diagnosable: no channel {names} in this recording (check points.{point.name})"})
            continue
        best = mine[0]
        out.append({"point": point.name, "verdict": best["verdict"], "families": best["families"],
                    "missing": best["missing"], "channel": best["channel"], "text": best["text"],
                    "evidence": {k: _round(v) for k, v in best["evidence"].items()}})
    return out


def _finite(v) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


def _round(v: float | None) -> float | None:
    return round(float(v), 2) if v is not None and np.isfinite(v) else None
