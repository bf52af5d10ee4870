"""Inline SVG charts: no JavaScript, no network, every text escaped.

Colours are the Okabe–Ito palette (distinguishable with the common colour-vision
deficiencies); zones and limits are also labelled in text, never told by colour alone.
Times are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape

import numpy as np

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
ZONE_COLOURS = {"A": "#d9f0e3", "B": "#fdf3c4", "C": "#fde0c2", "D": "#f8cfc6"}
W, H = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 46, 46
MAX_POINTS = 600


@dataclass
class Line:
    name: str
    x: list            # datetimes (UTC) or numbers
    y: list
    colour: str = PALETTE[0]
    dash: bool = False


@dataclass
class Chart:
    title: str
    y_label: str
    x_label: str = "time (UTC)"
    lines: list[Line] = field(default_factory=list)
    bands: list[tuple] = field(default_factory=list)       # (y_low, y_high, colour, label)
    hlines: list[tuple] = field(default_factory=list)      # (y, colour, label)
    intervals: list[tuple] = field(default_factory=list)   # (x list, lo list, hi list, colour, label)
    points: list[tuple] = field(default_factory=list)      # (x list, y list, colour, label[, "x" for a cross])
    vlines: list[tuple] = field(default_factory=list)      # (x, colour, label[, key name for the legend])
    robust: bool = True  # y axis up to the 0.5–99.5th percentile of the lines, values beyond marked at the edge


def _num(x) -> float:
    return x.timestamp() if isinstance(x, datetime) else float(x)


def downsample(x: list, y: list, max_points: int = MAX_POINTS) -> tuple[list, list]:
    """At most ``max_points`` points: each of ``max_points / 2`` buckets keeps its lowest and its
    highest value (at the bucket's first and last time), so spikes and dips survive."""
    n = len(x)
    if n <= max_points:
        return list(x), list(y)
    yy = np.asarray(y, dtype=float)
    edges = np.unique(np.linspace(0, n, max_points // 2 + 1).astype(int))[:-1]
    lows = np.fmin.reduceat(yy, edges)
    highs = np.fmax.reduceat(yy, edges)
    ends = np.r_[edges[1:], n] - 1
    xs, ys = [], []
    for a, b, lo, hi in zip(edges, ends, lows, highs):
        if np.isfinite(lo):
            xs += [x[a], x[b]]
            ys += [float(lo), float(hi)]
    return xs, ys


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    step = 10 ** np.floor(np.log10((hi - lo) / n))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    start = np.ceil(lo / step) * step
    return [float(v) for v in np.arange(start, hi + step * 0.001, step)]


def _fmt(v: float) -> str:
    if abs(v) < 1e-12:
        return "0"  # never "-0"
    if abs(v) >= 1000 and float(v).is_integer():
        return f"{v:,.0f}".replace(",", " ") if abs(v) >= 1e4 else f"{v:.0f}"
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"


ROBUST_Q = (0.5, 99.5)  # percentiles of the lines' values the y axis spans at most (with >= ROBUST_MIN points)
ROBUST_MIN = 50
# px per character of 11 px text, for laying out labels and keys, on the wide side (DejaVu Sans, Chromium's
# fallback on Debian, has 7.0 px digits; 6.2 let cursor labels and the key run into each other and off the chart)
LABEL_W = 6.6
LABEL_GAP, LABEL_ROW = 6, 14  # px between labels in a row; row pitch (an 11 px text box is about 13 px high)


def _y_range(chart: Chart) -> tuple[float, float] | None:
    line_y = np.array([float(v) for line in chart.lines for v in line.y if v is not None and np.isfinite(v)])
    other = [float(v) for iv in chart.intervals for v in list(iv[1]) + list(iv[2]) if v is not None and np.isfinite(v)]
    other += [h[0] for h in chart.hlines]
    marks = [float(v) for p in chart.points for v in p[1] if np.isfinite(v)]
    ys = list(line_y) + other + ([] if chart.robust and line_y.shape[0] else marks)
    if not ys:
        return None
    lo, hi = min(ys), max(ys)
    if chart.robust and line_y.shape[0] >= ROBUST_MIN:
        q_lo, q_hi = np.percentile(line_y, ROBUST_Q)
        p25, p75 = np.percentile(line_y, (25, 75))
        if p75 > p25:  # and no further than 6 interquartile ranges out (a lone window is past the 99.5th)
            q_lo, q_hi = max(q_lo, p25 - 6 * (p75 - p25)), min(q_hi, p75 + 6 * (p75 - p25))
        span = max(q_hi - q_lo, 1e-12)
        rest = other + [q_lo, q_hi]  # marked points (e.g. sensor faults) sit at the edge, never stretch the axis
        # one bad window must not flatten the chart: clip only far outliers
        if hi > q_hi + 0.5 * span or lo < q_lo - 0.5 * span:
            lo, hi = min(rest), max(rest)
            if hi - lo < span:
                hi = lo + span
    return lo, hi


def _rows(items: list[tuple[float, str]], right: float, n_rows: int = 3) -> list[tuple[int, float, str] | None]:
    """A text row per cursor label so that no two labels in a row overlap: (row, x, anchor), the label right of
    its line, or left of it ("end") where it would pass ``right``; None: no room (the label stays in the line's
    tooltip and the key). Labels are placed in the order given (the first have the first pick of the rows)."""
    taken: list[list[tuple[float, float]]] = [[] for _ in range(n_rows)]
    rows = []
    for x, text in items:
        width = LABEL_W * len(text)
        start, end, at, anchor = x + 3, x + 3 + width, x + 3, "start"
        if end > right:
            start, end, at, anchor = x - 3 - width, x - 3, x - 3, "end"
        row = next((r for r in range(n_rows)
                    if all(end + LABEL_GAP < a or b + LABEL_GAP < start for a, b in taken[r])), None)
        if row is not None:
            taken[row].append((start, end))
        rows.append(None if row is None else (row, at, anchor))
    return rows


def render(chart: Chart) -> str:
    xs = [_num(v) for line in chart.lines for v in line.x] + [_num(v) for iv in chart.intervals for v in iv[0]]
    xs += [_num(v) for p in chart.points for v in p[0]] + [_num(v[0]) for v in chart.vlines]
    yr = _y_range(chart)
    title = escape(chart.title)
    legend = list(dict.fromkeys([(line.name, line.colour) for line in chart.lines]
                                + [(iv[4], iv[3]) for iv in chart.intervals] + [(p[3], p[2]) for p in chart.points]
                                + [(v[3], v[1]) for v in chart.vlines if len(v) > 3]))
    key, x, row = [], LEFT, 0
    for name, colour in legend[:12]:  # the key: as many rows as it needs, the plot below it
        width = 14 + LABEL_W * len(name) + 12
        if x + width > W - RIGHT and x > LEFT:
            x, row = LEFT, row + 1
        key.append((x, 27 + 14 * row, name, colour))
        x += width
    top = TOP + 14 * row
    if not xs or yr is None:
        return (f'<svg class="chart" role="img" viewBox="0 0 {W} 60">'
                f'<title>{title}</title><text x="8" y="20" font-weight="bold">{title}</text>'
                '<text x="8" y="44">no data yet</text></svg>')
    x0, x1 = min(xs), max(xs)
    y0, y1 = yr
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1
    pad = 0.05 * (y1 - y0)
    y0, y1 = (y0 - pad if y0 < 0 or y0 - pad > 0 else 0.0), y1 + pad  # a positive axis does not dip below 0
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    pw, ph = W - LEFT - RIGHT, H - top - BOTTOM

    def px(v) -> float:
        return LEFT + (_num(v) - x0) / (x1 - x0) * pw

    def py(v) -> float:
        return top + (1 - (float(v) - y0) / (y1 - y0)) * ph

    out = [f'<svg class="chart" role="img" viewBox="0 0 {W} {H}">',
           f"<title>{title}</title>", f'<text x="{LEFT}" y="20" font-weight="bold">{title}</text>']
    for lo, hi, colour, label in chart.bands:
        a, b = max(lo, y0), min(hi, y1)
        if b <= a:
            continue
        out.append(f'<rect x="{LEFT}" y="{py(b):.1f}" width="{pw}" height="{py(a) - py(b):.1f}" fill="{colour}"/>')
        out.append(f'<text x="{W - RIGHT - 4}" y="{py(b) + 12:.1f}" text-anchor="end" class="band">{escape(label)}</text>')
    for t in _ticks(y0, y1):
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{py(t):.1f}" y2="{py(t):.1f}" class="grid"/>')
        out.append(f'<text x="{LEFT - 6}" y="{py(t) + 4:.1f}" text-anchor="end" class="tick">{_fmt(t)}</text>')
    is_time = any(isinstance(v, datetime) for line in chart.lines for v in line.x[:1]) or any(
        isinstance(v, datetime) for iv in chart.intervals for v in iv[0][:1])
    x_ticks = list(np.linspace(x0, x1, 5)) if is_time else _ticks(x0, x1, 6)
    for i, t in enumerate(x_ticks):
        label = datetime.fromtimestamp(t, timezone.utc).strftime("%m-%d %H:%M") if is_time else _fmt(t)
        anchor = "middle" if not is_time else "start" if i == 0 else "end" if i == len(x_ticks) - 1 else "middle"
        out.append(f'<text x="{px(t):.1f}" y="{H - BOTTOM + 16}" text-anchor="{anchor}" class="tick">{label}</text>')
        if not is_time:
            out.append(f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{top}" y2="{top + ph}" class="grid"/>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 8}" text-anchor="middle" class="axis">{escape(chart.x_label)}</text>')
    out.append(f'<text transform="translate(14 {top + ph / 2}) rotate(-90)" text-anchor="middle" class="axis">'
               f"{escape(chart.y_label)}</text>")
    for xs_, lo, hi, colour, label in chart.intervals:
        pts = [(px(a), py(b)) for a, b in zip(xs_, hi)] + [(px(a), py(b)) for a, b in reversed(list(zip(xs_, lo)))]
        out.append(f'<polygon points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in pts)}" fill="{colour}" '
                   f'fill-opacity="0.25"><title>{escape(label)}</title></polygon>')
    for y, colour, label in chart.hlines:
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{py(y):.1f}" y2="{py(y):.1f}" stroke="{colour}" '
                   f'stroke-width="1.5" stroke-dasharray="6 3"/>')
        out.append(f'<text x="{LEFT + 4}" y="{py(y) - 4:.1f}" class="limit" fill="{colour}">{escape(label)}</text>')
    order = sorted(range(len(chart.vlines)), key=lambda i: _num(chart.vlines[i][0]))
    labelled = [i for i in range(len(chart.vlines)) if chart.vlines[i][2]]  # the first given pick rows first
    rows = dict(zip(labelled, _rows([(px(chart.vlines[i][0]), chart.vlines[i][2]) for i in labelled], W - RIGHT)))
    for i in order:
        x, colour, label = chart.vlines[i][:3]
        out.append(f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{top}" y2="{top + ph}" stroke="{colour}" '
                   f'stroke-width="1.2" stroke-dasharray="3 3"><title>{escape(label)}</title></line>')
        if rows.get(i) is not None:  # a label with no room is in the key and the line's tooltip
            row, at, anchor = rows[i]
            out.append(f'<text x="{at:.1f}" y="{top + 11 + LABEL_ROW * row}" text-anchor="{anchor}" '
                       f'class="limit cursor" fill="{colour}">{escape(label)}</text>')
    for line in chart.lines:
        x, y = downsample(line.x, line.y)
        kept = [(px(a), py(min(max(b, y0), y1))) for a, b in zip(x, y) if b is not None and np.isfinite(b)]
        dash = ' stroke-dasharray="4 3"' if line.dash else ""
        if len(kept) == 1:  # one point is drawn as a point, not an invisible line
            out.append(f'<circle cx="{kept[0][0]:.1f}" cy="{kept[0][1]:.1f}" r="3.5" fill="{line.colour}">'
                       f"<title>{escape(line.name)}</title></circle>")
        else:
            pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in kept)
            out.append(f'<polyline points="{pts}" fill="none" stroke="{line.colour}" stroke-width="1.5"{dash}>'
                       f"<title>{escape(line.name)}</title></polyline>")
        beyond = [(a, b) for a, b in zip(x, y) if b is not None and np.isfinite(b) and (b > y1 or b < y0)]
        for a, b in beyond:  # off the axis: a marker at the edge, the value in its tooltip
            edge = top + 1 if b > y1 else top + ph - 1
            tip = -1 if b > y1 else 1
            out.append(f'<path d="M{px(a) - 4:.1f},{edge - 6 * tip:.1f} L{px(a) + 4:.1f},{edge - 6 * tip:.1f} '
                       f'L{px(a):.1f},{edge:.1f} Z" fill="{line.colour}" class="outside">'
                       f"<title>{escape(line.name)}: {_fmt(float(b))} (beyond the axis)</title></path>")
    for p in chart.points:
        xs_, ys_, colour, label = p[:4]
        cross = len(p) > 4 and p[4] == "x"
        for a, b in zip(xs_, ys_):
            cx, cy = px(a), py(min(max(float(b), y0), y1))
            if cross:
                out.append(f'<path d="M{cx - 4:.1f},{cy - 4:.1f}L{cx + 4:.1f},{cy + 4:.1f}M{cx - 4:.1f},{cy + 4:.1f}'
                           f'L{cx + 4:.1f},{cy - 4:.1f}" stroke="{colour}" stroke-width="2" class="flagged">'
                           f"<title>{escape(label)}: {_fmt(float(b))}</title></path>")
            else:
                out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{colour}"><title>{escape(label)}</title></circle>')
    for x, y, name, colour in key:
        out.append(f'<g class="key"><rect x="{x}" y="{y}" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{x + 14}" y="{y + 9}" class="legend">{escape(name)}</text></g>')
    out.append("</svg>")
    return "".join(out)
