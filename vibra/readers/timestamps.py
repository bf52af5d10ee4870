"""Recording start times from file names and time columns (all UTC)."""

from __future__ import annotations

import re
from datetime import datetime, timezone

# 2026-01-05T13-20-00, 2026-01-05 13:20:00, 2026-01-05_13-20-00, 20260105_132000, 20260105T132000
_PATTERNS = (
    re.compile(r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})[T_ ](?P<h>\d{2})[-:](?P<mi>\d{2})[-:](?P<s>\d{2})"),
    re.compile(r"(?<!\d)(?P<y>\d{4})(?P<mo>\d{2})(?P<d>\d{2})[T_-]?(?P<h>\d{2})(?P<mi>\d{2})(?P<s>\d{2})(?!\d)"),
    re.compile(r"(?P<y>\d{4})\.(?P<mo>\d{2})\.(?P<d>\d{2})\.(?P<h>\d{2})\.(?P<mi>\d{2})\.(?P<s>\d{2})"),
)


def from_filename(name: str) -> datetime | None:
    """Timestamp embedded in a file name, e.g. ``2026-01-05T13-20-00`` or ``20260105_132000``.

    Also the IMS style ``2004.02.12.10.32.39``. Returns None when absent or not a valid date.
    """
    for pattern in _PATTERNS:
        for m in pattern.finditer(name):
            try:
                return datetime(int(m["y"]), int(m["mo"]), int(m["d"]), int(m["h"]), int(m["mi"]),
                                int(m["s"]), tzinfo=timezone.utc)
            except ValueError:
                continue
    return None


def sample_rate_from_times(seconds) -> float | None:
    """Sample rate (Hz) from time values in seconds.

    The mean of the regular steps (positive, under 1.5 × the median: gaps left
    out) rather than the median step, which is off for stamps rounded to a coarse
    tick: 78.125 µs written as 78 or 79 µs reads 12820.5 Hz by the median, 12800 Hz
    by the mean; written to 10 µs (70 or 80 µs), 12500 Hz against 12800 Hz.
    None when fewer than 90 % of the steps are positive (out of order, or stamps
    coarser than the samples).
    """
    import numpy as np

    t = np.asarray(seconds, dtype=np.float64)
    t = t[np.isfinite(t)]
    if t.shape[0] < 2:
        return None
    steps = np.diff(t)
    if np.count_nonzero(steps > 0) < 0.9 * steps.shape[0]:
        return None
    median = float(np.median(steps))
    step = float(steps[(steps > 0) & (steps < 1.5 * median)].mean())
    return float(f"{1.0 / step:.6g}")


# A configured rate within this relative distance of the time column's wins (rounded stamps).
RATE_TOLERANCE = 0.005


def reconcile_rate(path, file_rate_hz: float | None, equipment) -> tuple[float | None, list[str]]:
    """The rate to use when a file's time column and the configuration both give one.

    Within :data:`RATE_TOLERANCE` the configured rate wins (time stamps rounded to
    microseconds or milliseconds bend the measured rate slightly) and a warning says
    so; farther apart, one of the two is wrong and the file is refused.
    """
    from vibra.errors import InputError

    rule = equipment.rule_for(path.name)
    configured = (rule.sample_rate_hz if rule else None) or equipment.sample_rate_hz
    if configured is None or file_rate_hz is None:
        return file_rate_hz, []
    gap = abs(file_rate_hz - configured) / configured
    if gap == 0:
        return configured, []
    where = (f"[[equipment.{equipment.equipment_id}.files]] glob {rule.glob!r}" if rule and rule.sample_rate_hz
             else f"[equipment.{equipment.equipment_id}]")
    if gap < RATE_TOLERANCE:
        return configured, [f"time column gives {file_rate_hz:g} Hz, {100 * gap:.2f} % from the configured "
                            f"{configured:g} Hz ({where} sample_rate_hz); used {configured:g} Hz"]
    raise InputError(f"{path}: time column gives {file_rate_hz:g} Hz but {where} sample_rate_hz = {configured:g} "
                     f"({100 * gap:.1f} % apart); correct sample_rate_hz, or remove it to use the file's time column")


class TimeCheck:
    """Follows a recording's time column chunk by chunk: backward steps, repeats and gaps.

    A gap is a step longer than 1.5 sample periods (plus 2 µs for rounded stamps);
    gaps and repeats are not looked for when the column gives no rate (``sample_rate_hz``
    None: stamps coarser than the samples repeat by nature), backward steps always are.
    With ``on_time_gap = "split"`` each gap is recorded in ``gaps`` as (index of the
    first sample after it, seconds beyond one period) so no window spans it and the
    windows after it carry their true times; with ``"refuse"`` the first gap, repeat
    or backward step fails the file.
    """

    def __init__(self, path, sample_rate_hz: float | None, on_time_gap: str, gaps: list):
        self.path = path
        self.period_s = 1.0 / sample_rate_hz if sample_rate_hz else None
        self.on_time_gap = on_time_gap
        self.gaps = gaps
        self.rows = 0
        self.last: float | None = None
        self.backward = 0
        self.repeated = 0
        self.first_backward: int | None = None
        self.first_repeated: int | None = None

    def feed(self, seconds) -> None:
        """Check the next chunk's time values (seconds on one origin for the whole file)."""
        import numpy as np

        from vibra.errors import InputError

        t = np.asarray(seconds, dtype=np.float64)
        prev = np.concatenate([[np.nan if self.last is None else self.last], t])
        step = np.diff(prev)  # step[i]: from the value before row i to row i (NaN: unknown)
        rows = self.rows + 1 + np.arange(t.shape[0])  # 1-based data rows
        back = np.flatnonzero(step < 0)
        none = np.empty(0, dtype=np.int64)
        # without a rate the column is coarser than the samples (or out of order): repeats are expected
        same = np.flatnonzero(step == 0) if self.period_s else none
        gap = np.flatnonzero(step > max(1.5 * self.period_s, self.period_s + 2e-6)) if self.period_s else none
        if self.on_time_gap == "refuse" and (back.size or same.size or gap.size):
            first = min(i for i in (back[:1].tolist() + same[:1].tolist() + gap[:1].tolist()))
            kind = ("goes backward" if step[first] < 0 else "repeats" if step[first] == 0
                    else f"jumps {step[first]:.6g} s (a gap)")
            raise InputError(f"{self.path}: time column {kind} at row {rows[first]}; [ingest] on_time_gap = "
                             "\"refuse\" — fix the export, or set on_time_gap = \"split\" to keep the file")
        if back.size:
            self.backward += back.size
            self.first_backward = self.first_backward or int(rows[back[0]])
        if same.size:
            self.repeated += same.size
            self.first_repeated = self.first_repeated or int(rows[same[0]])
        for i in gap:
            self.gaps.append((int(rows[i] - 1), float(step[i] - self.period_s)))
        finite = t[np.isfinite(t)]
        if finite.size:
            self.last = float(finite[-1])
        self.rows += t.shape[0]

    def warnings(self) -> list[str]:
        out = []
        if self.backward:
            out.append(f"time column goes backward {self.backward} time(s), first at row {self.first_backward} "
                       "(rows out of order?); samples were taken in file order")
        if self.repeated:
            out.append(f"time column repeats a value {self.repeated} time(s), first at row {self.first_repeated}")
        if self.gaps:
            row, extra = self.gaps[0]
            total = sum(s for _, s in self.gaps)
            out.append(f"time column has {len(self.gaps)} gap(s), first at row {row + 1} ({extra:.6g} s), "
                       f"{total:.6g} s in all; windows do not span a gap")
        return out
