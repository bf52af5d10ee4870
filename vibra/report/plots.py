"""Small inline SVG plots beside :mod:`vibra.report.svg`'s charts: a sparkline for the fleet table,
grouped bars (baseline vs now, one family highlighted) and a spectrogram as a heat map."""

from __future__ import annotations

from datetime import datetime
from html import escape

import numpy as np

from vibra.report.svg import BOTTOM, CHAR_W, LEFT, PALETTE, RIGHT, TOP, W, _fmt, _ticks

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
    H = 250
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    out = [f'<svg class="chart" role="img" viewBox="0 0 {W} {H}">', f"<title>{escape(title)}</title>",
           f'<text x="{LEFT}" y="20" font-weight="bold">{escape(title)}</text>']
    for t in _ticks(0, top):
        y = TOP + (1 - t / top) * ph
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
            out.append(f'<rect x="{x:.1f}" y="{TOP + ph - h:.1f}" width="{bar * 0.92:.1f}" height="{h:.1f}" fill="{colour}">'
                       f"<title>{escape(name)}, {escape(label)}: {_fmt(v) if v is not None else '—'}</title></rect>")
            if v is not None and np.isfinite(v):
                out.append(f'<text x="{x + bar * 0.46:.1f}" y="{TOP + ph - h - 3:.1f}" text-anchor="middle" class="tick">'
                           f"{_fmt(v)}</text>")
        out.append(f'<text x="{LEFT + g * slot + slot / 2:.1f}" y="{H - BOTTOM + 16}" text-anchor="middle" class="tick"'
                   f'{" font-weight=" + chr(34) + "bold" + chr(34) if lit else ""}>{escape(name)}</text>')
    if ref:
        y = TOP + (1 - ref[0] / top) * ph
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#000" stroke-dasharray="6 3"/>'
                   f'<text x="{W - RIGHT - 4}" y="{y - 4:.1f}" text-anchor="end" class="limit">{escape(ref[1])}</text>')
    x = LEFT
    for s, (label, _) in enumerate(series):
        colour = PALETTE[3] if s == len(series) - 1 else PALETTE[1]
        out.append(f'<g class="key"><rect x="{x}" y="27" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{x + 14}" y="36" class="legend">{escape(label)}</text></g>')
        x += 14 + CHAR_W * len(label) + 12
    if note:
        out.append(f'<text x="{x}" y="36" class="legend muted">{escape(note)}</text>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 8}" text-anchor="middle" class="axis">fault family</text>')
    out.append(f'<text transform="translate(14 {TOP + ph / 2}) rotate(-90)" text-anchor="middle" class="axis">'
               f"{escape(y_label)}</text></svg>")
    return "".join(out)


def _viridis(u: float) -> str:
    """A perceptually ordered colour for u in [0, 1] (five viridis anchors, interpolated)."""
    anchors = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=float)
    u = min(max(u, 0.0), 1.0) * (len(anchors) - 1)
    i = min(int(u), len(anchors) - 2)
    c = anchors[i] + (anchors[i + 1] - anchors[i]) * (u - i)
    return "#{:02x}{:02x}{:02x}".format(*(int(round(v)) for v in c))


def heatmap(title: str, times: list[datetime], freqs_hz: np.ndarray, level_db: np.ndarray, *,
            unit: str = "dB", max_rows: int = 120, names: list[str] | None = None) -> str:
    """A spectrogram: one column per recording (oldest left), frequency up, level as colour with a
    colour key in ``unit``. ``level_db`` is (n_times, n_freqs)."""
    H = 280
    pw, ph = W - LEFT - RIGHT - 70, H - TOP - BOTTOM
    n_t, n_f = level_db.shape
    step = max(1, -(-n_f // max_rows))
    f = freqs_hz[: n_f - n_f % step or None]
    lv = level_db[:, : f.shape[0]].reshape(n_t, -1, step).max(axis=2) if step > 1 else level_db
    f = f[::step]
    finite = lv[np.isfinite(lv)]
    lo, hi = (np.percentile(finite, [5, 99.5]) if finite.size else (0.0, 1.0))
    hi = hi if hi > lo else lo + 1
    f_top = float(f[-1]) if f.shape[0] else 1.0
    out = [f'<svg class="chart" role="img" viewBox="0 0 {W} {H}">', f"<title>{escape(title)}</title>",
           f'<text x="{LEFT}" y="20" font-weight="bold">{escape(title)}</text>']
    cw, rh = pw / max(n_t, 1), ph / max(f.shape[0], 1)
    for i in range(n_t):
        tip = (names[i] if names else "") + f" {times[i]:%Y-%m-%d %H:%M}"
        out.append(f"<g><title>{escape(tip.strip())}</title>")
        for j in range(f.shape[0]):
            v = lv[i, j]
            if not np.isfinite(v):
                continue
            out.append(f'<rect x="{LEFT + i * cw:.1f}" y="{TOP + ph - (j + 1) * rh:.1f}" width="{cw + 0.3:.1f}" '
                       f'height="{rh + 0.3:.1f}" fill="{_viridis((v - lo) / (hi - lo))}"/>')
        out.append("</g>")
    for t in _ticks(0, f_top, 5):
        y = TOP + ph - t / f_top * ph
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{_fmt(t)}</text>')
    for i in sorted({0, n_t // 2, n_t - 1}):
        anchor = "start" if i == 0 else "end" if i == n_t - 1 else "middle"
        out.append(f'<text x="{LEFT + (i + 0.5) * cw:.1f}" y="{H - BOTTOM + 16}" text-anchor="{anchor}" class="tick">'
                   f"{times[i]:%m-%d %H:%M}</text>")
    kx = LEFT + pw + 22
    for k in range(20):
        out.append(f'<rect x="{kx}" y="{TOP + ph - (k + 1) * ph / 20:.1f}" width="14" height="{ph / 20 + 0.3:.1f}" '
                   f'fill="{_viridis(k / 19)}"/>')
    for v in _ticks(lo, hi, 4):
        y = TOP + ph - (v - lo) / (hi - lo) * ph
        out.append(f'<text x="{kx + 18}" y="{y + 4:.1f}" class="tick">{_fmt(v)}</text>')
    out.append(f'<text x="{kx}" y="{TOP - 6}" class="legend">{escape(unit)}</text>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 8}" text-anchor="middle" class="axis">recording start (UTC), '
               f"one column per recording</text>")
    out.append(f'<text transform="translate(14 {TOP + ph / 2}) rotate(-90)" text-anchor="middle" class="axis">'
               f"frequency (Hz)</text></svg>")
    return "".join(out)
