"""How a remaining-life answer reads in the fleet table, on the machine page and in ``vibra rul``."""

from __future__ import annotations

import math

from vibra.prognostics.rul.core import PRIOR_WHY


def rul_text(p10_s: float, p50_s: float, p90_s: float, basis: str = "model") -> str:
    """How an answer reads in the fleet table, on the machine page and in ``vibra rul``.

    A model's answer: ``4.2 h (1.0 h–9.0 h)`` (P50 (P10–P90)). The survival prior says what it is:
    ``no onset yet — survival prior P50 12.5 h (3.0 h–20.1 h)``.
    """
    span = f"{format_duration(p50_s)} ({format_duration(p10_s)}–{format_duration(p90_s)})"
    if basis == "model":
        return span
    return f"{PRIOR_WHY.get(basis, basis)} — survival prior P50 {span}"

def format_duration(seconds: float | None) -> str:
    """``95`` → ``1.6 min``; ``7200`` → ``2.0 h``; ``360000`` → ``4.2 d``; None → ``—``."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
