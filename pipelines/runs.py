"""Every command's run is recorded in the catalog's ``runs`` table."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator

from vibra import __version__
from vibra.settings import Settings
from vibra.storage import catalog
from vibra.workspace import Workspace


@contextmanager
def run_record(ws: Workspace, command: str, settings: Settings) -> Iterator[dict]:
    """Record start, end, status and counts of one command; the body fills the counts dict.

    A ``status`` key in the counts overrides the final status (e.g. ``partial``).
    """
    catalog.ensure(ws.catalog_path)
    run = {"run_id": f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}", "command": command,
           "started_at": datetime.now(timezone.utc), "status": "running", "settings": settings.as_dict(),
           "vibra_version": __version__}
    catalog.record_run(ws.catalog_path, run)
    counts: dict = {}
    try:
        yield counts
    except BaseException as exc:
        run.update(status="failed", ended_at=datetime.now(timezone.utc), counts={**counts, "error": str(exc)[:500]})
        catalog.record_run(ws.catalog_path, run)
        raise
    run.update(status=counts.pop("status", "ok"), ended_at=datetime.now(timezone.utc), counts=counts)
    catalog.record_run(ws.catalog_path, run)
