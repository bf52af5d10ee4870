"""Defects: the defect catalog, labels with provenance, the kNN that assigns defects to every window.

Labels live in the catalog (``labels``; a cluster label also stores the windows
it covered when it was made, in ``label_windows``, so it survives re-clustering).
A window's label is the most recent label covering it. The kNN is trained on the
labelled windows' embeddings and writes ``defect``, ``defect_confidence`` (or
``unknown``) for every window to ``data/lake/defects/``. It is retrained when
label coverage moved by more than ``defects.retrain_coverage_change`` (relative)
or ``defects.retrain_new_clusters`` clusters were labelled since it was trained;
``vibra label`` and ``vibra cluster`` check this rule after they change anything.
"""

from __future__ import annotations

import csv
import getpass
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from vibra.discovery import knn, retrain
from vibra.errors import InputError, NotReadyError
from vibra.storage.hashing import sha256_file
from vibra.settings import Settings
from vibra.diagnosis.bearing import FLOOR as EVIDENCE_FLOOR
from vibra.discovery.embedding import has_evidence, matrix as embedding_matrix, named_families
from vibra.storage import artifacts, ledger, tables
from vibra.storage import labels as storage_labels
from vibra.storage.labels import (  # noqa: F401 - label_digest, list_events re-exported for the CLI
    EVENT_MARGIN, Population, data_span, label_digest, labelled_clusters, labelled_windows, list_events, population)
from vibra.storage.tables import WINDOW_KEYS, read_clusters, read_defects  # noqa: F401 - read_defects re-exported
from vibra.report.summaries import assignments, cluster_table  # noqa: F401 - `vibra defects assignments`, `vibra clusters`
from vibra.workspace import Workspace

from vibra_pipelines.runs import recorded

KEYS = list(WINDOW_KEYS)

DEFECT_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
LABEL_COLUMNS = ledger.LABEL_COLUMNS


def knn_store(ws: Workspace) -> artifacts.VersionedStore:
    return artifacts.store(ws.artifacts, "knn")


def _who(who: str | None) -> str:
    if who:
        return who
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


# -- the defect catalog -------------------------------------------------------------------------

def defect_types(ws: Workspace) -> list[dict]:
    return ledger.defect_types(ws)


@recorded("defects add", lambda row: {"name": row["name"]})
def add_defect(ws: Workspace, settings: Settings, name: str, description: str = "", who: str | None = None) -> dict:
    if not DEFECT_RE.match(name):
        raise InputError(f"defect name {name!r}: use lower-case letters, digits and _ (e.g. bearing_outer_race)")
    if not ledger.add_defect_type(ws, name, description, _who(who)):
        raise InputError(f"defect {name!r} is already in the catalog; `vibra defects list` shows them")
    return {"name": name, "description": description}


def _check_defect(ws: Workspace, defect: str) -> None:
    known = [d["name"] for d in defect_types(ws)]
    if defect not in known:
        raise InputError(f"defect {defect!r} is not in the catalog; choose one of {', '.join(known)} "
                         f"or add it with `vibra defects add {defect}`")


# -- labels ---------------------------------------------------------------------------------------

def _insert_label(ws: Workspace, row: dict, windows=None) -> dict:
    row = {**{c: None for c in LABEL_COLUMNS}, **row}
    row["label_id"] = row["label_id"] or uuid.uuid4().hex[:12]
    row["created_at"] = datetime.now(timezone.utc)
    ledger.insert_label(ws, row, windows)
    return row


@recorded("label cluster", lambda r: {"windows": r.get("n_windows"), "defect": r.get("defect")})
def label_cluster(ws: Workspace, settings: Settings, cluster_id: int, defect: str, *, who: str | None = None,
                  note: str = "", progress: Callable[[str], None] | None = None) -> dict:
    """Label every window of a cluster of the latest clustering."""
    import polars as pl

    _check_defect(ws, defect)
    manifest = latest_manifest(ws)
    if not manifest:
        raise NotReadyError("no clustering yet; run `vibra cluster` first")
    if cluster_id < 0:
        raise InputError(f"cluster {cluster_id}: -1 is noise (windows in no cluster), not a cluster; label a "
                         "recording instead with `vibra label recording`")
    members = read_clusters(ws).filter(pl.col("cluster_id") == cluster_id)
    if members.height == 0:
        known = sorted(int(c) for c in manifest["sizes"])
        raise InputError(f"cluster {cluster_id} is not in clustering {manifest['version']}; clusters are {known}")
    row = _insert_label(ws, {"kind": "cluster", "defect": defect, "clustering_version": manifest["version"],
                             "cluster_id": cluster_id, "n_windows": members.height, "source": "cli",
                             "created_by": _who(who), "note": note}, members)
    return {**_public(row), "retrain": after_change(ws, settings, trigger="label", progress=progress)}


@recorded("label recording", lambda r: {"recording_id": r.get("recording_id"), "defect": r.get("defect")})
def label_recording(ws: Workspace, settings: Settings, recording: str, defect: str, *, who: str | None = None,
                    note: str = "", source: str = "cli", progress: Callable[[str], None] | None = None) -> dict:
    _check_defect(ws, defect)
    rid, eid = ledger.resolve_recording(ws, recording)
    row = _insert_label(ws, {"kind": "recording", "defect": defect, "equipment_id": eid, "recording_id": rid,
                             "source": source, "created_by": _who(who), "note": note})
    return {**_public(row), "retrain": after_change(ws, settings, trigger="label", progress=progress)}


def _time(value: str, where: str) -> datetime:
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{where}: {value!r} is not an ISO 8601 time; write e.g. 2026-03-01T00:00:00Z") from None
    # stored and shown in UTC: 2026-03-01T11:00+05:00 is 2026-03-01T06:00Z
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def _read_csv(path: Path, columns: set[str], fix: str) -> tuple[list[dict], list[str]]:
    """A labels or events CSV: its rows (keys and values stripped) and a warning per column it does not use.

    A UTF-8 byte-order mark (Excel's "CSV UTF-8") is skipped; a column vibra does not know is named, not
    silently dropped."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            raw = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc}); give a UTF-8 CSV file") from None
    if not raw:
        raise InputError(f"{path}: no rows; {fix}")
    header = [k.strip() for k in raw[0] if k is not None]
    extra = [k for k in header if k and k not in columns]
    warnings = [f"{path}: column(s) {extra} not used (vibra reads {', '.join(sorted(columns))})"] if extra else []
    rows = []
    for n, r in enumerate(raw, start=2):
        if None in r:  # csv.DictReader puts the fields beyond the header under the key None
            raise InputError(f"{path} line {n}: {len(header) + len(r[None])} fields, the header has {len(header)}; "
                             "quote a value that holds a comma")
        rows.append({k.strip(): (v or "").strip() for k, v in r.items() if k})
    return rows, warnings


def _check_span(ws: Workspace, equipment_id: str, at: datetime, where: str, allow: bool) -> None:
    """An event must lie within the machine's recorded data (give or take :data:`EVENT_MARGIN`): a failure
    in 2099 or 1990 is a typo that would give `vibra rul` a life of thousands of years."""
    span = data_span(ws, equipment_id)
    if allow or span is None:
        return
    first, last = span
    if not first - EVENT_MARGIN <= at <= last + EVENT_MARGIN:
        raise InputError(f"{where}: {at:%Y-%m-%dT%H:%M:%SZ} is outside {equipment_id}'s data "
                         f"({first:%Y-%m-%dT%H:%M:%SZ} to {last:%Y-%m-%dT%H:%M:%SZ}, give or take "
                         f"{EVENT_MARGIN.days} days); check the date, or pass --allow-outside-data if it is right")


@recorded("label import", lambda r: {"imported": r.get("imported")})
def label_import(ws: Workspace, settings: Settings, path: Path, *, who: str | None = None,
                 progress: Callable[[str], None] | None = None) -> dict:
    """Labels from a CSV with columns ``equipment_id, recording_id, start, end, defect[, note]``.

    Each row names either a recording (``recording_id``: id, prefix or file name) or a
    time range of one machine (``equipment_id``, ``start``, ``end``). Every row is
    checked before any is stored: one bad row refuses the file, naming the line.
    """
    fix = "needs a header with defect and either recording_id or equipment_id,start,end"
    rows, warnings = _read_csv(path, {"equipment_id", "recording_id", "start", "end", "defect", "note"}, fix)
    if "defect" not in rows[0]:
        raise InputError(f"{path}: {fix}")
    known = {d["name"] for d in defect_types(ws)}
    have = ledger.equipment_ids(ws)
    todo = []
    for n, r in enumerate(rows, start=2):
        where = f"{path} line {n}"
        if r["defect"] not in known:
            raise InputError(f"{where}: defect {r['defect']!r} is not in the catalog; add it with `vibra defects add`")
        if r.get("recording_id"):
            rid, eid = ledger.resolve_recording(ws, r["recording_id"])
            todo.append({"kind": "recording", "defect": r["defect"], "equipment_id": eid, "recording_id": rid,
                         "note": r.get("note", "")})
        elif r.get("equipment_id") and r.get("start") and r.get("end"):
            if r["equipment_id"] not in have:
                raise InputError(f"{where}: equipment {r['equipment_id']!r} has no recordings; check the id")
            start, end = _time(r["start"], where), _time(r["end"], where)
            if end <= start:
                raise InputError(f"{where}: end {r['end']} is not after start {r['start']}; swap them")
            todo.append({"kind": "range", "defect": r["defect"], "equipment_id": r["equipment_id"], "start_at": start,
                         "end_at": end, "note": r.get("note", "")})
        else:
            raise InputError(f"{where}: give recording_id, or equipment_id with start and end")
    stored = [_public(_insert_label(ws, {**t, "source": f"import:{Path(path).name}", "created_by": _who(who)}))
              for t in todo]
    return {"imported": len(stored), "labels": stored, "warnings": warnings,
            "retrain": after_change(ws, settings, trigger="label", progress=progress)}


def _public(row: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items() if v is not None}


def list_labels(ws: Workspace) -> list[dict]:
    return [_public(row) for row in ledger.labels(ws)]


# -- the kNN --------------------------------------------------------------------------------------

def latest_manifest(ws: Workspace) -> dict | None:
    """The latest clustering's manifest, or None."""
    return artifacts.store(ws.artifacts, "clustering").latest_manifest()


def latest_knn(ws: Workspace) -> dict | None:
    return knn_store(ws).latest_manifest()


def retrain_reason(ws: Workspace, settings: Settings, pop: Population) -> str | None:
    """Why the kNN should be retrained now, or None (:func:`vibra.discovery.retrain.retrain_reason`)."""
    if pop.labelled.height == 0:
        return None
    return retrain.retrain_reason(
        latest_knn(ws), embedding_version=pop.embedding_version, classes=set(pop.labelled["defect"].unique().to_list()),
        coverage=pop.coverage, labelled_clusters=set(labelled_clusters(ws)),
        coverage_change=settings.defects.retrain_coverage_change, new_clusters=settings.defects.retrain_new_clusters)


def train(ws: Workspace, settings: Settings, pop: Population | None = None, reason: str = "asked") -> dict:
    """Fit the kNN on every labelled window; write the version folder and point ``latest`` at it."""
    pop = pop or population(ws, settings)
    if pop.labelled.height < 2:
        raise NotReadyError("fewer than 2 labelled windows; label a cluster or a recording first (`vibra label`)")
    cfg = settings.defects
    x = embedding_matrix(pop.labelled)
    y = pop.labelled["defect"].to_numpy()
    try:
        model = knn.fit(x, y, k=cfg.k, radius_quantile=cfg.radius_quantile, radius_factor=cfg.radius_factor,
                        evidence=has_evidence(x))
    except ValueError as exc:  # every labelled window was of a bearing class without bearing evidence
        raise NotReadyError(f"the defect kNN has nothing to learn: {exc}; label a recording whose envelope "
                            "evidence reaches the floor (`vibra diagnose` names its fault), or a healthy one") from None
    now = datetime.now(timezone.utc)
    store = knn_store(ws)
    with store.staging() as tmp:
        knn.save(model, tmp / "model.npz")
        sha = sha256_file(tmp / "model.npz")
        version = artifacts.new_version(sha[:8], now=now)
        classes, counts = np.unique(y.astype(str), return_counts=True)
        return store.commit(tmp, version, {
            "knn_version": version, "created_at": now.isoformat(), "reason": reason,
            "embedding_version": pop.embedding_version, "coverage_at_train": pop.coverage,
            "n_labels": int(pop.labelled.height), "classes": classes.tolist(),
            "class_counts": dict(zip(classes.tolist(), counts.tolist())), "k": cfg.k, "radius": model.radius,
            "radii": model.radii,
            "unlearned": model.unlearned,
            "evidence_gate": f"bearing-class windows whose recording-level evidence is below {EVIDENCE_FLOOR:g}× noise "
                             "in every family are not learned; such windows are answered no_fault_evidence, never "
                             "a bearing class",
            "radius_rule": f"per class: {cfg.radius_factor:g} × q{cfg.radius_quantile:g} of the class's labelled windows' "
                           f"mean distance to their {cfg.k} nearest labelled neighbours of the same class; beyond it a "
                           "window is unknown unless its recording-level evidence names the bearing family of the "
                           "class its neighbours vote for (the verdict's rule) and it is within that class's reach "
                           "(the distance from its centroid to the nearest other class's centroid)",
            "reach": model.reach,
            "labelled_clusters": labelled_clusters(ws),
        })


def load_knn(ws: Workspace, manifest: dict) -> knn.KnnModel:
    """The kNN of ``manifest`` after checking its file's sha256 (a damaged file is refused, naming it)."""
    folder, _ = knn_store(ws).load(manifest["version"])
    return knn.load(folder / "model.npz")


def assign(ws: Workspace, settings: Settings, pop: Population | None = None) -> dict:
    """Defect and confidence for every window of the current embedding; replaces the ``defects`` table."""
    import polars as pl

    manifest = latest_knn(ws)
    if manifest is None:
        raise NotReadyError("no kNN yet; label a cluster or a recording first (`vibra label`)")
    pop = pop or population(ws, settings)
    if pop.windows.height == 0 or manifest["embedding_version"] != pop.embedding_version:
        return {"assigned": 0}
    model = load_knn(ws, manifest)
    x = embedding_matrix(pop.windows)
    defect, confidence, distance = knn.predict(model, x, evidence=has_evidence(x), named=named_families(x))
    out = pop.windows.select(*KEYS, "window_start").with_columns(
        defect=pl.Series(defect, dtype=pl.String), defect_confidence=pl.Series(confidence),
        neighbour_distance=pl.Series(distance), knn_version=pl.lit(manifest["version"]))
    tables.write_defects(ws, out, manifest["version"])
    shares = out.group_by("defect").agg(pl.len()).sort("defect")
    return {"assigned": out.height, "knn_version": manifest["version"], "per_defect": dict(shares.iter_rows())}


def after_change(ws: Workspace, settings: Settings, trigger: str, pop: Population | None = None,
                 progress: Callable[[str], None] | None = None) -> dict:
    """Apply the retrain rule after labels or clusters changed; reassign when a kNN exists.
    ``progress(stage)`` hears each stage (reading the windows, retraining, assigning)."""
    say = progress or (lambda message: None)
    if pop is None:
        say("reading the windows' embeddings for the defect kNN")
        pop = population(ws, settings)
    reason = retrain_reason(ws, settings, pop)
    out: dict = {"trigger": trigger, "coverage": pop.coverage, "retrained": False}
    if reason:
        say(f"retraining the defect kNN ({reason})")
        try:
            manifest = train(ws, settings, pop, reason)
        except NotReadyError as exc:  # the labels are stored; the automatic retrain waits for learnable ones
            out.update(reason=reason, not_retrained=str(exc))
        else:
            out.update(retrained=True, reason=reason, knn_version=manifest["version"])
    if latest_knn(ws) is not None:
        say("assigning defects to the windows")
        out["assignment"] = assign(ws, settings, pop)
    return out


def after_cluster(ws: Workspace, settings: Settings, result, progress: Callable[[str], None] | None = None) -> dict:
    """The retrain rule after ``vibra cluster`` (its :class:`ClusterResult`): the windows it just read are the
    population the kNN works on, so the lake is not read again. Fills and returns ``result.knn``."""
    frame, version = result.population if result.population is not None else (None, None)
    pop = population(ws, settings, frame, version) if frame is not None else None
    result.knn = after_change(ws, settings, trigger="cluster", pop=pop, progress=progress)
    return result.knn


@recorded("defects train", lambda r: {"n_labels": r["knn"]["n_labels"], "assigned": r["assignment"]["assigned"]})
def train_now(ws: Workspace, settings: Settings) -> dict:
    pop = population(ws, settings)
    manifest = train(ws, settings, pop, reason="asked (vibra defects train)")
    assigned = assign(ws, settings, pop)
    return {"knn": manifest, "assignment": assigned}


# -- failure and replacement events (run-to-failure histories for RUL) ----------------------------
# Stored as labels of kind 'failure' or 'replacement' (equipment_id, start_at = the event time), so they
# carry the same provenance (source, who, when) as defect labels. A machine's life runs from its install
# or last replacement (or its first data) to its failure; pipelines/rul.py turns them into lives.

EVENT_KINDS = ("failure", "replacement")


def _known_equipment(ws: Workspace) -> set[str]:
    ledger.ensure(ws)
    return ledger.equipment_ids(ws)


def _event_row(ws: Workspace, equipment_id: str, at: datetime, kind: str, note: str, where: str,
               known: set[str]) -> dict:
    if kind not in EVENT_KINDS:
        raise InputError(f"{where}: kind {kind!r}; use failure or replacement")
    if equipment_id not in known:
        raise InputError(f"{where}: equipment {equipment_id!r} has no recordings; check the id "
                         f"(known: {', '.join(sorted(known)) or 'none yet: run vibra ingest'})")
    return {"kind": kind, "equipment_id": equipment_id, "start_at": at, "note": note}


def _existing_events(ws: Workspace) -> set[tuple]:
    return ledger.event_keys(ws)


@recorded("label failure", lambda r: {"equipment_id": r.get("equipment_id"), "kind": r.get("kind")})
def label_event(ws: Workspace, settings: Settings, equipment_id: str, at: str, *, kind: str = "failure",
                note: str = "", who: str | None = None, allow_outside_data: bool = False) -> dict:
    """Record that ``equipment_id`` failed (or had its bearing/machine replaced) at ``at`` (ISO 8601, stored
    in UTC), which must lie within the machine's data unless ``allow_outside_data``."""
    row = _event_row(ws, equipment_id, _time(at, "--at"), kind, note, "label failure", _known_equipment(ws))
    _check_span(ws, equipment_id, row["start_at"], f"label {kind} {equipment_id} --at {at}", allow_outside_data)
    if (row["kind"], equipment_id, row["start_at"]) in _existing_events(ws):
        raise InputError(f"{equipment_id}: a {kind} at {row['start_at'].isoformat()} is already recorded; "
                         "`vibra label list` shows it")
    return _public(_insert_label(ws, {**row, "source": "cli", "created_by": _who(who)}))


@recorded("label import-events", lambda r: {"imported": r.get("imported"), "skipped": r.get("already_recorded")})
def import_events(ws: Workspace, settings: Settings, path: Path, *, who: str | None = None,
                  allow_outside_data: bool = False) -> dict:
    """Failure / replacement events from a maintenance-log CSV with columns ``equipment_id, at, kind[, note]``.

    Every row is checked before any is stored (one bad row refuses the file, naming the line; an event
    outside its machine's data too, unless ``allow_outside_data``); rows already recorded (same machine,
    kind and time) are skipped, so importing a log twice is harmless. Other columns are named in ``warnings``.
    """
    fix = "needs a header with equipment_id, at, kind (failure or replacement)[, note]"
    rows, warnings = _read_csv(path, {"equipment_id", "at", "kind", "note"}, fix)
    if not {"equipment_id", "at", "kind"} <= set(rows[0]):
        raise InputError(f"{path}: {fix}")
    known, existing = _known_equipment(ws), _existing_events(ws)
    todo, skipped = [], 0
    for n, r in enumerate(rows, start=2):
        where = f"{path} line {n}"
        row = _event_row(ws, r["equipment_id"], _time(r["at"], where), r["kind"], r.get("note", ""), where, known)
        _check_span(ws, row["equipment_id"], row["start_at"], where, allow_outside_data)
        key = (row["kind"], row["equipment_id"], row["start_at"])
        if key in existing:
            skipped += 1
            continue
        existing.add(key)
        todo.append(row)
    stored = [_public(_insert_label(ws, {**t, "source": f"import:{Path(path).name}", "created_by": _who(who)}))
              for t in todo]
    return {"imported": len(stored), "already_recorded": skipped, "events": stored, "warnings": warnings}


@recorded("label remove", lambda r: {"label_id": r.get("label_id"), "kind": r.get("kind")})
def remove_label(ws: Workspace, settings: Settings, ident: str, *, progress: Callable[[str], None] | None = None) -> dict:
    """Delete one label (an id or an unambiguous prefix, from `vibra label list`); a defect label's removal
    applies the kNN's retrain rule as adding one does."""
    row = _public(storage_labels.remove_label(ws, ident))
    if row["kind"] not in EVENT_KINDS:
        row["retrain"] = after_change(ws, settings, trigger="label", progress=progress)
    return row
