"""Small inline SVG plots beside :mod:`vibra.report.svg`'s charts: a sparkline for the fleet table,
grouped bars (baseline vs now, one family highlighted) and a waterfall of spectra."""

from __future__ import annotations

from datetime import datetime
from html import escape

import numpy as np

from vibra.report.svg import BOTTOM, LABEL_W, LEFT, PALETTE, RIGHT, TOP, W, _fmt, _ticks

GREY = "#B8B8B8"


def sparkline(values: list[float], *, width: int = 110, height: int = 26, limit: float | None = None,
              title: str = "") -> str:
    """A tiny trend (last values, oldest left), its last point as a dot, an optional limit as a dash."""
    y = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if y.shape[0] == 0:
        return ""
    lo, hi = float(np.min(y)), float(np.max(y))
    if limit is not None and limit < hi * 1.5:
        hi = max(hi, limit)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    xs = np.linspace(2, width - 4, y.shape[0]) if y.shape[0] > 1 else np.array([width / 2])
    ys = 2 + (1 - (y - lo) / (hi - lo)) * (height - 4)
    pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, ys))
    out = [f'<svg class="spark" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
           f"<title>{escape(title)}</title>"]
    if limit is not None and lo <= limit <= hi:
        ly = 2 + (1 - (limit - lo) / (hi - lo)) * (height - 4)
        out.append(f'<line x1="0" x2="{width}" y1="{ly:.1f}" y2="{ly:.1f}" stroke="{PALETTE[3]}" stroke-dasharray="3 2"/>')
    if y.shape[0] > 1:
        out.append(f'<polyline points="{pts}" fill="none" stroke="{PALETTE[0]}" stroke-width="1.3"/>')
    out.append(f'<circle cx="{xs[-1]:.1f}" cy="{ys[-1]:.1f}" r="2.5" fill="{PALETTE[0]}"/></svg>')
    return "".join(out)


def grouped_bars(title: str, y_label: str, groups: list[str], series: list[tuple[str, list[float]]], *,
                 highlight: int | None = None, ref: tuple[float, str] | None = None, note: str = "") -> str:
    """Bars per group (e.g. fault family), one bar per series (e.g. baseline, now). Only the group
    ``highlight`` is coloured; the others are grey, so one family that stands out is seen as one."""
    values = [v for _, vs in series for v in vs if v is not None and np.isfinite(v)]
    top = max(values + ([ref[0]] if ref else []) + [1e-9]) * 1.15
    # the key, then the note wrapped into lines inside the chart; the plot starts below them
    keys, x, row = [], LEFT, 0
    for s, (label, _) in enumerate(series):
        width = 14 + LABEL_W * len(label) + 12
        if x + width > W - RIGHT and x > LEFT:
            x, row = LEFT, row + 1
        keys.append((x, 27 + 14 * row, label, PALETTE[3] if s == len(series) - 1 else PALETTE[1]))
        x += width
    if ref:  # the reference line's text in the key, where no bar's value can sit on it
        width = 22 + LABEL_W * len(ref[1]) + 12
        if x + width > W - RIGHT and x > LEFT:
            x, row = LEFT, row + 1
        keys.append((x, 27 + 14 * row, ref[1], None))
    notes, line = [], ""
    for word in note.split():
        if line and LABEL_W * len(f"{line} {word}") > W - RIGHT - LEFT:
            notes.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    notes += [line] if line else []
    top_ = TOP + 14 * (row + len(notes))
    H = 250 + 14 * (row + len(notes))
    pw, ph = W - LEFT - RIGHT, H - top_ - BOTTOM
    out = [f'<svg class="chart" role="img" viewBox="0 0 {W} {H}">', f"<title>{escape(title)}</title>",
           f'<text x="{LEFT}" y="20" font-weight="bold">{escape(title)}</text>']
    for t in _ticks(0, top):
        y = top_ + (1 - t / top) * ph
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                   f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{_fmt(t)}</text>')
    slot = pw / max(len(groups), 1)
    bar = slot * 0.7 / max(len(series), 1)
    for g, name in enumerate(groups):
        lit = highlight == g
        for s, (label, vs) in enumerate(series):
            v = vs[g]
            h = 0 if v is None or not np.isfinite(v) else v / top * ph
            x = LEFT + g * slot + slot * 0.15 + s * bar
            colour = (PALETTE[3] if s == len(series) - 1 else PALETTE[1]) if lit else ("#8C8C8C" if s == len(series) - 1 else GREY)
            out.append(f'<rect x="{x:.1f}" y="{top_ + ph - h:.1f}" width="{bar * 0.92:.1f}" height="{h:.1f}" fill="{colour}">'
                       f"<title>{escape(name)}, {escape(label)}: {_fmt(v) if v is not None else '—'}</title></rect>")
            if v is not None and np.isfinite(v):
                out.append(f'<text x="{x + bar * 0.46:.1f}" y="{top_ + ph - h - 3:.1f}" text-anchor="middle" class="tick">'
                           f"{_fmt(v)}</text>")
        out.append(f'<text x="{LEFT + g * slot + slot / 2:.1f}" y="{H - BOTTOM + 16}" text-anchor="middle" class="tick"'
                   f'{" font-weight=" + chr(34) + "bold" + chr(34) if lit else ""}>{escape(name)}</text>')
    if ref:
        y = top_ + (1 - ref[0] / top) * ph
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#000" stroke-dasharray="6 3">'
                   f'<title>{escape(ref[1])}</title></line>')
    for x, y, label, colour in keys:
        mark = (f'<rect x="{x}" y="{y}" width="10" height="10" fill="{colour}"/>' if colour else
                f'<line x1="{x}" x2="{x + 18}" y1="{y + 5}" y2="{y + 5}" stroke="#000" stroke-dasharray="6 3"/>')
        out.append(f'<g class="key">{mark}<text x="{x + (14 if colour else 22)}" y="{y + 9}" class="legend">'
                   f'{escape(label)}</text></g>')
    if notes:  # the whole note once more as the group's tooltip: one string to read or copy
        out.append(f"<g><title>{escape(note)}</title>" + "".join(
            f'<text x="{LEFT}" y="{27 + 14 * (row + 1 + i) + 9}" class="legend muted note">{escape(text)}</text>'
            for i, text in enumerate(notes)) + "</g>")
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 8}" text-anchor="middle" class="axis">fault family</text>')
    out.append(f'<text transform="translate(14 {top_ + ph / 2}) rotate(-90)" text-anchor="middle" class="axis">'
               f"{escape(y_label)}</text></svg>")
    return "".join(out)


def waterfall(title: str, times: list[datetime], freqs_hz: np.ndarray, amplitude: np.ndarray, *, unit: str,
              names: list[str] | None = None, max_points: int = 400) -> str:
    """A waterfall: one line spectrum per recording, stacked oldest at the back (top) to newest in front
    (bottom, drawn darker), each lifted by a fixed step; amplitude on a common linear scale so a line that
    grows over the machine's life stands out. ``amplitude`` is (n_times, n_freqs) in ``unit``."""
    n_t, n_f = amplitude.shape
    H = 120 + 22 * n_t
    pw, ph = W - LEFT - RIGHT - 90, H - TOP - BOTTOM
    step = max(1, -(-n_f // max_points))
    f = freqs_hz[::step]
    a = np.vstack([np.fmax.reduceat(np.nan_to_num(row, nan=0.0), np.arange(0, n_f, step)) for row in amplitude])
    top = float(np.percentile(a, 99.9)) if a.size and np.max(a) > 0 else 1.0
    lift = ph / (n_t + 3)  # each older spectrum sits this much higher; a line reaches up to 4 lifts
    f_top = float(f[-1]) if f.shape[0] else 1.0
    out = [f'<svg class="chart waterfall" role="img" viewBox="0 0 {W} {H}">', f"<title>{escape(title)}</title>",
           f'<text x="{LEFT}" y="20" font-weight="bold">{escape(title)}</text>']
    for i in range(n_t - 1, -1, -1):  # oldest first (at the back), so newer lines are drawn over it
        base = TOP + ph - (n_t - 1 - i) * lift
        ys = base - np.minimum(a[i] / top, 1.0) * 3 * lift
        pts = " ".join(f"{LEFT + fx / f_top * pw:.1f},{y:.1f}" for fx, y in zip(f, ys))
        newest = i == n_t - 1
        tip = ((names[i] + " ") if names and names[i] else "") + f"{times[i]:%Y-%m-%d %H:%M}"
        out.append(f'<g><title>{escape(tip)}</title><polygon points="{LEFT:.1f},{base:.1f} {pts} '
                   f'{LEFT + pw:.1f},{base:.1f}" fill="#ffffff" stroke="none"/>'
                   f'<polyline points="{pts}" fill="none" stroke="{"#0072B2" if newest else "#5a5a5a"}" '
                   f'stroke-width="{1.4 if newest else 0.8}"/></g>')
        out.append(f'<text x="{LEFT + pw + 6}" y="{base + 4:.1f}" class="tick">{times[i]:%m-%d %H:%M}</text>')
    for t in _ticks(0, f_top, 6):
        x = LEFT + t / f_top * pw
        out.append(f'<text x="{x:.1f}" y="{H - BOTTOM + 16}" text-anchor="middle" class="tick">{_fmt(t)}</text>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 8}" text-anchor="middle" class="axis">frequency (Hz); oldest '
               f"at the back; a line's full height = {_fmt(3 * top)} {escape(unit.split()[0])}</text></svg>")
    return "".join(out)
