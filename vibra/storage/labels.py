"""Labels read back: which defect a window carries, the label set's digest, failure and replacement events,
and the population the defect kNN learns from.

Labels live in the catalog (``labels``; a cluster label also stores the windows it covered in
``label_windows``, so it survives re-clustering), queried through :mod:`vibra.storage.ledger`. A
window's label is the most recent label covering it. Writing labels is the ``defects`` stage's; reading them is shared by the stages
(readiness, snapshot, RUL, report) through this module.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from vibra.discovery import embedding

from vibra.ingest import quality
from vibra.storage import catalog, ledger
from vibra.storage.tables import WINDOW_KEYS, read_windows

if TYPE_CHECKING:
    from vibra.settings import Settings
    from vibra.workspace import Workspace

KEYS = list(WINDOW_KEYS)


def labelled_windows(ws: Workspace, windows):
    """``windows`` (with KEYS and window_start) joined with their labels: defect and label_source.

    A window covered by several labels takes the most recent one.
    """
    import duckdb
    import polars as pl

    if windows.height == 0 or not ws.catalog_path.exists():
        return windows.head(0).with_columns(defect=pl.lit(None, pl.String), label_source=pl.lit(None, pl.String))
    labels, lw = ledger.label_frames(ws)
    if labels.height == 0:
        return windows.head(0).with_columns(defect=pl.lit(None, pl.String), label_source=pl.lit(None, pl.String))
    keys = windows.select(*KEYS, "window_start")
    with duckdb.connect() as con:  # an in-memory join of frames already read: no lake file is opened here
        con.execute("SET TimeZone = 'UTC'")
        con.register("w", keys.to_arrow())
        con.register("labels", labels.to_arrow())
        con.register("lw", lw.to_arrow() if lw.height else pl.DataFrame(schema={"label_id": pl.String, **{
            k: keys.schema[k] for k in KEYS}}).to_arrow())
        hits = catalog.frame(con, """
            WITH hit AS (
              SELECT w.equipment_id, w.recording_id, w.channel, w.window_index, l.defect, l.kind, l.source, l.created_at
              FROM w JOIN labels l ON l.kind = 'recording' AND l.recording_id = w.recording_id
              UNION ALL
              SELECT w.equipment_id, w.recording_id, w.channel, w.window_index, l.defect, l.kind, l.source, l.created_at
              FROM w JOIN labels l ON l.kind = 'range' AND l.equipment_id = w.equipment_id
                   AND w.window_start >= l.start_at AND w.window_start < l.end_at
              UNION ALL
              SELECT w.equipment_id, w.recording_id, w.channel, w.window_index, l.defect, l.kind, l.source, l.created_at
              FROM w JOIN lw USING (equipment_id, recording_id, channel, window_index)
                     JOIN labels l ON l.label_id = lw.label_id)
            SELECT equipment_id, recording_id, channel, window_index, defect,
                   kind || ' (' || source || ')' AS label_source
            FROM hit QUALIFY row_number() OVER (PARTITION BY equipment_id, recording_id, channel, window_index
                                                ORDER BY created_at DESC) = 1""")
    return windows.join(hits, on=KEYS, how="inner")


def label_digest(ws: Workspace) -> str:
    """A hash of the label set (for snapshots and reports)."""
    return hashlib.sha256(",".join(ledger.label_ids(ws)).encode()).hexdigest()[:16]


def labelled_clusters(ws: Workspace) -> list[str]:
    """``<clustering_version>:<cluster_id>`` of every cluster label."""
    return ledger.cluster_labels(ws)


def list_events(ws: Workspace, equipment: list[str] | None = None) -> list[dict]:
    """Failure and replacement events, per machine in time order: equipment_id, kind, at, source, note."""
    rows = ledger.events(ws)
    out = [{"equipment_id": e, "kind": k, "at": t.astimezone(timezone.utc), "source": s, "created_by": c,
            "note": n or ""} for e, k, t, s, c, n in rows]
    return [r for r in out if not equipment or r["equipment_id"] in equipment]


# how far outside its recorded data a failure or replacement may lie without --allow-outside-data: a failure
# is often logged hours after the last recording, a replacement days before the first
EVENT_MARGIN = timedelta(days=7)


def data_span(ws: Workspace, equipment_id: str) -> tuple[datetime, datetime] | None:
    """(start of the first, end of the last) completed recording of a machine, UTC; None without any."""
    return ledger.recorded_span(ws, equipment_id)


def remove_label(ws: Workspace, ident: str) -> dict:
    """Delete the label whose id is ``ident`` (or an unambiguous prefix of 6+ characters) and the windows it
    covered, in one transaction; returns its row. Raises InputError naming the fix when none or several match."""
    from vibra.errors import InputError

    columns = ("label_id", "kind", "defect", "equipment_id", "start_at", "note")
    ident = ident.strip()
    rows = ledger.find_labels(ws, ident, columns)
    exact = [r for r in rows if r[0] == ident]
    if exact:
        rows = exact
    if not rows:
        raise InputError(f"label {ident!r}: no label has this id; `vibra label list` shows the ids")
    if len(rows) > 1:
        raise InputError(f"label {ident!r} is ambiguous ({len(rows)} labels match); give more of the id")
    ledger.delete_label(ws, rows[0][0])
    return dict(zip(columns, rows[0]))


@dataclass
class Population:
    """The current embeddings and their labels."""

    windows: object  # polars frame: KEYS, window_start, embedding
    labelled: object  # windows with defect, label_source
    embedding_version: str

    @property
    def coverage(self) -> float:
        return self.labelled.height / self.windows.height if self.windows.height else 0.0


def population(ws: Workspace, settings: Settings, windows=None, embedding_version: str | None = None) -> Population:
    """The current embedding's windows and their labels; ``windows`` (KEYS, window_start, embedding) when the
    caller has already read them (e.g. the clustering), else read from the lake."""
    if windows is not None:
        return Population(windows, labelled_windows(ws, windows), embedding_version or "")
    raw = read_windows(ws, ["embedding", "embedding_version", *quality.COLUMNS])
    raw = quality.drop_sensor_faults(ws, raw).drop(quality.COLUMNS, strict=False)  # a sensor fault gets no defect
    if raw.height == 0:
        return Population(raw, raw, "")
    df, version, _ = embedding.current_only(raw, settings.features.bands_hz)
    return Population(df, labelled_windows(ws, df), version)
