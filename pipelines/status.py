"""The status stage: ledger counts and lake totals, overall and per equipment."""

from __future__ import annotations

from vibra.ingest import staleness
from vibra.report import summaries
from vibra.storage import ledger
from vibra.workspace import Workspace


def run(ws: Workspace, equipment_ids: list[str] | None = None, settings=None) -> dict:
    """``vibra status``: the ledger's and the lake's totals (:func:`vibra.report.summaries.status`); with
    ``settings``, also the completed files computed with other settings than these (``stale``: per machine
    ``equipment_id, files, why``; ``stale_files``; ``stale_command``, the command that recomputes them)."""
    payload = summaries.status(ws, equipment_ids)
    if settings is not None:
        stale = staleness.find(ws, settings, equipment_ids)
        payload["stale"] = [{"equipment_id": s.equipment_id, "files": s.files, "why": s.why} for s in stale]
        payload["stale_files"] = sum(s.files for s in stale)
        payload["stale_command"] = staleness.rebuild_command(stale) if stale else None
    return payload


def recordings(ws: Workspace):
    """The ledger's completed and duplicate recordings as a Polars frame: ``recording_id, equipment_id,
    source_path, recorded_at`` (for joining features, scores or ground truth to their files)."""
    import polars as pl

    schema = {"recording_id": pl.String, "equipment_id": pl.String, "source_path": pl.String,
              "recorded_at": pl.Datetime("us", "UTC")}
    rows = ledger.current(ws, status=("completed", "duplicate"))
    return pl.DataFrame([{k: r[k] for k in schema} for r in rows], schema=schema)


def known_equipment(ws: Workspace, settings) -> list[str]:
    """Machines the workspace knows: configured in ``vibra.toml`` or seen by ingest."""
    return sorted(set(settings.equipment) | ledger.equipment_ids(ws))


def check_equipment(ws: Workspace, settings, equipment_ids: list[str]) -> list[str]:
    """``equipment_ids`` as given, each known, or an InputError naming the closest known ones.

    A misspelled machine must never silently match nothing (a CI gate on ``pump-2`` would pass).
    """
    import difflib

    from vibra.errors import InputError

    known = known_equipment(ws, settings)
    for eid in equipment_ids:
        if eid not in known:
            close = difflib.get_close_matches(eid, known, n=3, cutoff=0.5)
            hint = (f"did you mean {', '.join(close)}?" if close
                    else f"known: {', '.join(known[:10])}{' …' if len(known) > 10 else ''}" if known
                    else "no machine is configured or ingested yet; run `vibra ingest` first")
            raise InputError(f"unknown equipment '{eid}'; {hint}")
    return equipment_ids
