"""The query stage: recent hourly points, read by partition pruning (newest dates first)."""

from __future__ import annotations

from vibra.errors import InputError, NotReadyError
from vibra.settings import EQUIPMENT_ID_RE, Settings
from vibra.storage.lake import partition_dates, partition_files, read_frame
from vibra.workspace import Workspace


def recent(ws: Workspace, settings: Settings, equipment_id: str, *, channel: str | None = None,
           indicator: str = "rms", limit: int = 100, since=None):
    """The latest ``limit`` hourly points (capped by ``query.max_points``), newest first, from ``since``
    (an aware datetime) on when given.

    Only the newest date partitions of the one machine are opened, until enough
    rows are found. Returns a Polars frame: ``hour, channel, n_windows,
    <indicator>_mean, <indicator>_max, <indicator>_p95``.
    """
    import polars as pl

    if not EQUIPMENT_ID_RE.match(equipment_id):
        raise InputError(f"equipment id {equipment_id!r} is not valid; use letters, digits, '_', '.', '-'")
    limit = max(1, min(limit, settings.query.max_points))
    table = ws.table("hourly")
    dates = partition_dates(table, equipment_id)
    if not dates:
        raise NotReadyError(f"no hourly data for equipment {equipment_id!r}; run `vibra ingest` first "
                         "or check the id with `vibra status`")
    frames, found = [], 0
    for date in dates:
        for path in partition_files(table, equipment_id, [date]):
            df = read_frame([path])
            wanted = [f"{indicator}_mean", f"{indicator}_max", f"{indicator}_p95"]
            if wanted[0] not in df.columns:
                known = sorted({c.rsplit("_", 1)[0] for c in df.columns if c.endswith("_mean")})
                raise InputError(f"indicator {indicator!r} has no hourly aggregate; choose one of {known}")
            if channel is not None:
                df = df.filter(pl.col("channel") == channel)
            if since is not None:
                df = df.filter(pl.col("hour") >= since)
            df = df.select("hour", "channel", "n_windows", *wanted)
            frames.append(df)
            found += df.height
        if found >= limit or (since is not None and date < since.date().isoformat()):
            break
    out = pl.concat(frames) if frames else pl.DataFrame()
    if channel is not None and out.height == 0:
        raise InputError(f"equipment {equipment_id!r} has no channel {channel!r} in its hourly data")
    return out.sort(["hour", "channel"], descending=[True, False]).head(limit)
