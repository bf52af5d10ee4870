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
    """Sample rate (Hz) from the median spacing of time values in seconds."""
    import numpy as np

    t = np.asarray(seconds, dtype=np.float64)
    t = t[np.isfinite(t)]
    if t.shape[0] < 2:
        return None
    step = float(np.median(np.diff(t)))
    if not step > 0:
        return None
    return float(f"{1.0 / step:.6g}")
