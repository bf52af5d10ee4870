"""Which windows of a machine train its anomaly models: the baseline period, and when it must be cut.

A baseline is meant to be the machine's healthy normal. ``[anomaly] baseline_days`` counts from the
machine's first window; on a short history (a test rig run to failure in hours, a machine added
yesterday) those days cover all the data, the degradation is learned as normal and never alarms.
So a baseline may cover at most ``baseline_max_share`` of the machine's monitored time (first to last
window): a longer one is cut to that first share, and the cut is said, never silent. A baseline with
fewer than ``baseline_min_windows`` windows (all channels) is refused with the reason and the fix.
An explicit ``--since`` / ``--until`` period is the user's choice and is never cut (only counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta



@dataclass(frozen=True)
class Baseline:
    """The chosen period: windows with ``start <= window_start < end``; ``cut`` says the days were shortened;
    ``warning`` is the line to show (or ""), ``refusal`` the reason not to train (or "")."""

    start: datetime
    end: datetime
    windows: int
    cut: bool = False
    warning: str = ""
    refusal: str = ""

    @property
    def span_s(self) -> float:
        return (self.end - self.start).total_seconds()

    def as_dict(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "span_s": self.span_s,
                "windows": self.windows, "cut": self.cut, "warning": self.warning, "refusal": self.refusal}


def _text(span: timedelta) -> str:
    """``17 min``, ``7.8 h``, ``3.0 d``."""
    h = span.total_seconds() / 3600
    return f"{h * 60:.0f} min" if h < 1 else f"{h:.1f} h" if h < 48 else f"{h / 24:.1f} d"


def choose(equipment_id: str, starts, *, days: float, max_share: float, min_windows: int,
           explicit: bool = False) -> Baseline:
    """The baseline of one machine from its windows' start times.

    Parameters
    ----------
    starts : polars.Series or sequence of datetime
        ``window_start`` of every usable window of the machine (any order, all channels).
    days : float
        ``baseline_days``: the period counts from the first window.
    max_share : float
        Largest share of the monitored time (first to last window) the period may cover, in (0, 1].
    min_windows : int
        Fewest windows the period needs.
    explicit : bool
        The rows are already the user's ``--since`` / ``--until`` period: keep them all.
    """
    times = sorted(starts)
    if not times:
        return Baseline(datetime.min, datetime.min, 0, refusal="no usable windows (all missing or sensor faults)")
    first, last = times[0], times[-1]
    span = last - first
    if explicit:
        end, cut, warning = last + timedelta(microseconds=1), False, ""
    else:
        end = first + timedelta(days=days)
        cut = bool(max_share < 1 and span.total_seconds() > 0 and end - first > span * max_share)
        warning = ""
        if cut:
            end = first + span * max_share
            covered = min(1.0, timedelta(days=days) / span)
            warning = (f"{equipment_id}: baseline_days = {days:g} would cover {100 * covered:.0f} % of its "
                       f"{_text(span)} of data; trained on its first "
                       f"{100 * max_share:.0f} % ({_text(end - first)}) instead "
                       "(set [anomaly] baseline_max_share, or choose the period with --since/--until)")
    n = sum(1 for t in times if t < end)
    refusal = ""
    if n < min_windows:
        what = f"its first {100 * max_share:.0f} % of data" if cut else "the baseline"
        refusal = (f"{what} holds {n} windows (< baseline_min_windows = {min_windows}); ingest more data, "
                   "widen --since/--until, or lower [anomaly] baseline_min_windows")
    return Baseline(first, end, n, cut, warning, refusal)
