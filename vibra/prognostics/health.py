"""Health indicators learned from run-to-failure lives, and the onset of degradation.

A *life* is one machine's history from its install (or last replacement, or first data) to
its failure. Every candidate indicator (a column of the features table) becomes a health
indicator (HI) the same way on every life, so that lives of different machines and
operating conditions compare:

1. channels are combined by the mean of their values;
2. the value is made relative to the life's own healthy baseline (the median of its first
   ``baseline_points`` points) and put on a log scale: ``HI = ln(x / median(x_baseline))``,
   so a healthy machine sits near 0 whatever its load or speed, and exponential growth of
   the amplitude becomes a straight line;
3. it is smoothed causally (a running median over ``smooth_points`` points, which removes
   isolated spikes, then an exponentially weighted mean with the same span) — only the past
   is used, as at prediction time.

Candidates are scored over the library with the definitions of Coble & Hines (2009), the
ones MATLAB's Predictive Maintenance Toolbox uses, each in [0, 1]:

* monotonicity ``M = mean_lives |#(Δx > 0) − #(Δx < 0)| / (n − 1)``;
* trendability ``T = min_pairs |corr(x_i, x_j)|`` with every life resampled onto a common
  grid of life fraction (0 … 1);
* prognosability ``P = exp(−std(x_fail) / mean|x_fail − x_start|)``.

Their sum is the fitness. The fused candidate is the first principal component of the top
candidates' HIs (each standardised over the library), signed to rise with wear.

Onset (first prediction time): the HI leaves its healthy band when it stays above
``mean + k·std`` of its baseline points, and at least ``min_rise`` above the baseline mean,
for ``persist_points`` consecutive points; the onset is the first of those points (the HI left
its band there), known ``persist_points − 1`` points later, when the rule can be decided.

Pure functions over arrays; nothing here reads or writes files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vibra.errors import InputError

# Candidate indicator columns of the features table, in order of preference on ties.
CANDIDATES = ("rms", "velocity_rms_mm_s", "peak", "peak_to_peak", "kurtosis", "crest_factor", "impulse_factor",
              "env_bpfo", "env_bpfi", "env_bsf", "env_ftf", "spectral_kurtosis_max", "order_1x")
FUSED = "fused_pc1"
# Band-energy candidates (:mod:`vibra.prognostics.bands`, and the features table's ``band_*_hz``): any column
# with one of these prefixes, scored like the others when :func:`band_candidates` lists them
BAND_PREFIXES = ("band_", "envband_")


@dataclass(frozen=True)
class HIParams:
    """How raw features become a health indicator and when degradation starts.

    ``baseline_points``: the first points of a life taken as healthy; ``smooth_points``: span of
    the causal smoothing; ``band_k``: width of the healthy band in baseline standard deviations;
    ``min_rise``: the smallest HI rise counted as onset (ln units: 0.3 ≈ +35 % amplitude);
    ``persist_points``: consecutive points above the band before onset is declared; ``onset_k``: when set,
    the k-of-m rule instead — onset once ``onset_k`` of the last ``persist_points`` points are above the band
    (one dip back into the band does not restart the count); ``top_k``: candidates fused.
    """

    baseline_points: int = 60
    smooth_points: int = 9
    band_k: float = 4.0
    min_rise: float = 0.3
    persist_points: int = 5
    onset_k: int | None = None
    top_k: int = 3


@dataclass
class Life:
    """One life: times in seconds since its start and raw indicator values (one array per column;
    several channels are given as a 2-D array, shape (n_points, n_channels)).

    ``failed`` is False for a life that ended in a replacement without failure (right-censored):
    it counts in the survival prior but not in the degradation library. ``rpm`` / ``load_n``: its
    operating condition when known (the survival prior scales lifetimes by it).
    """

    name: str
    times_s: np.ndarray
    columns: dict[str, np.ndarray]
    failed: bool = True
    end_s: float | None = None  # life length in s; default: the last time
    rpm: float | None = None  # operating condition, when known: shaft speed
    load_n: float | None = None  # and radial load (N)

    @property
    def length_s(self) -> float:
        return float(self.end_s if self.end_s is not None else self.times_s[-1])


def causal_smooth(x: np.ndarray, span: int) -> np.ndarray:
    """Running median over the last ``span`` points, then an EWMA with the same span (α = 2/(span+1)).

    Causal: point i depends on points ≤ i only. NaNs are carried over from the previous value.
    """
    x = np.asarray(x, dtype=float)
    n = x.shape[0]
    if n == 0 or span <= 1:
        return x.copy()
    filled = x.copy()
    for i in range(n):  # carry the last finite value forward (leading NaNs take the first finite one)
        if not np.isfinite(filled[i]):
            filled[i] = filled[i - 1] if i else np.nan
    if not np.isfinite(filled[0]):
        first = np.flatnonzero(np.isfinite(filled))
        if first.size == 0:
            return filled
        filled[: first[0]] = filled[first[0]]
    from numpy.lib.stride_tricks import sliding_window_view

    padded = np.concatenate([np.full(span - 1, filled[0]), filled])
    med = np.median(sliding_window_view(padded, span), axis=1)
    alpha = 2.0 / (span + 1.0)
    out = np.empty(n)
    acc = med[0]
    for i in range(n):
        acc = alpha * med[i] + (1 - alpha) * acc
        out[i] = acc
    return out


def raw_hi(values: np.ndarray, params: HIParams) -> np.ndarray | None:
    """``ln(x / baseline median)`` of one column (channels averaged), unsmoothed; None when unusable
    (no positive baseline: e.g. a physics column that is NaN without rpm)."""
    v = np.asarray(values, dtype=float)
    if v.ndim == 2:  # the mean over the channels that have a value: NaN where none has (np.nanmean warns there)
        present = ~np.isnan(v)
        count = present.sum(axis=1)
        v = np.where(count > 0, np.where(present, v, 0.0).sum(axis=1) / np.maximum(count, 1), np.nan)
    base = v[: params.baseline_points]
    base = base[np.isfinite(base)]
    if base.size < 3:
        return None
    ref = float(np.median(base))
    if not ref > 0:
        return None
    with np.errstate(all="ignore"):
        return np.log(np.where(v > 0, v, np.nan) / ref)


def hi_of(values: np.ndarray, params: HIParams) -> np.ndarray | None:
    """The smoothed health indicator of one column (see the module docstring)."""
    r = raw_hi(values, params)
    return None if r is None else causal_smooth(r, params.smooth_points)


# -- scores ------------------------------------------------------------------------------------

def monotonicity(his: list[np.ndarray]) -> float:
    """Coble & Hines: mean over lives of |#positive − #negative differences| / (n − 1)."""
    vals = []
    for h in his:
        d = np.diff(h[np.isfinite(h)])
        if d.size:
            vals.append(abs(int((d > 0).sum()) - int((d < 0).sum())) / d.size)
    return float(np.mean(vals)) if vals else 0.0


def _on_grid(h: np.ndarray, n: int = 100) -> np.ndarray:
    h = h[np.isfinite(h)]
    return np.interp(np.linspace(0, 1, n), np.linspace(0, 1, h.size), h)


def trendability(his: list[np.ndarray]) -> float:
    """Coble & Hines: the smallest |Pearson correlation| between any two lives, each resampled onto
    the same grid of life fraction (so lives of different lengths compare)."""
    grids = [_on_grid(h) for h in his if np.isfinite(h).sum() >= 2]
    if len(grids) < 2:
        return 0.0
    worst = 1.0
    for i in range(len(grids)):
        for j in range(i + 1, len(grids)):
            a, b = grids[i], grids[j]
            if a.std() == 0 or b.std() == 0:
                return 0.0
            worst = min(worst, abs(float(np.corrcoef(a, b)[0, 1])))
    return worst


def end_value(h: np.ndarray, points: int = 5) -> float:
    """The HI at failure: the mean of the last ``points`` smoothed values."""
    f = h[np.isfinite(h)]
    return float(np.mean(f[-points:]))


def prognosability(his: list[np.ndarray], points: int = 5) -> float:
    """Coble & Hines: exp(−std(failure values) / mean |failure − start value|)."""
    ends, starts = [], []
    for h in his:
        f = h[np.isfinite(h)]
        if f.size >= 2:
            ends.append(np.mean(f[-points:]))
            starts.append(np.mean(f[:points]))
    if len(ends) < 2:
        return 0.0
    spread = float(np.mean(np.abs(np.array(ends) - np.array(starts))))
    return float(np.exp(-np.std(ends) / spread)) if spread > 0 else 0.0


def scores(his: list[np.ndarray]) -> dict:
    m, t, p = monotonicity(his), trendability(his), prognosability(his)
    return {"monotonicity": round(m, 4), "trendability": round(t, 4), "prognosability": round(p, 4),
            "fitness": round(m + t + p, 4)}


# -- selection ---------------------------------------------------------------------------------

@dataclass
class Indicator:
    """The chosen health indicator: a single column or the fused first principal component.

    ``weights`` (fused only) map each component column's HI, standardised by ``means``/``scales``,
    to the fused value; learned over the library.
    """

    name: str
    columns: list[str]
    params: HIParams
    weights: list[float] = field(default_factory=list)
    means: list[float] = field(default_factory=list)
    scales: list[float] = field(default_factory=list)
    candidates: list[dict] = field(default_factory=list)

    def transform(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """The smoothed HI of one life (or a machine's current life so far) from its raw columns."""
        if self.name != FUSED:
            h = hi_of(columns[self.name], self.params)
            if h is None:
                raise InputError(f"indicator {self.name!r}: no positive baseline in the first "
                                 f"{self.params.baseline_points} points; choose another indicator")
            return h
        parts = []
        for c, mu, sd in zip(self.columns, self.means, self.scales):
            r = raw_hi(columns[c], self.params)
            if r is None:
                raise InputError(f"fused indicator needs {c!r}, which has no positive baseline here")
            parts.append((r - mu) / sd)
        fused = np.column_stack(parts) @ np.asarray(self.weights)
        # the fused value is shifted so the healthy baseline sits at 0, like a single column
        fused = fused - np.nanmedian(fused[: self.params.baseline_points])
        return causal_smooth(fused, self.params.smooth_points)

    def as_dict(self) -> dict:
        return {"name": self.name, "columns": self.columns, "weights": self.weights, "means": self.means,
                "scales": self.scales, "params": vars(self.params), "candidates": self.candidates}

    @classmethod
    def from_dict(cls, d: dict) -> "Indicator":
        return cls(d["name"], list(d["columns"]), HIParams(**d["params"]), list(d.get("weights", [])),
                   list(d.get("means", [])), list(d.get("scales", [])), list(d.get("candidates", [])))


def band_candidates(lives: list[Life], *, with_time: bool = True) -> tuple[str, ...]:
    """The band-energy columns (:data:`BAND_PREFIXES`) present in every life, in their first life's order, after
    ``rms`` and ``kurtosis`` when ``with_time`` and present: a candidate list for :func:`select`."""
    first = list(lives[0].columns) if lives else []
    base = [c for c in ("rms", "kurtosis") if with_time and c in first]
    bands = [c for c in first if c.startswith(BAND_PREFIXES)]
    return tuple(c for c in base + bands if all(c in life.columns for life in lives))


def select(lives: list[Life], *, params: HIParams = HIParams(), candidates: tuple[str, ...] | None = None) -> Indicator:
    """Score every candidate column over the failed lives and return the best indicator.

    A candidate missing (or without a positive baseline) in any life is listed with its reason
    and not chosen. The fused candidate is added when at least two candidates are usable, and
    chosen only if its fitness is higher than the best single one's.
    """
    failed = [life for life in lives if life.failed]
    if len(failed) < 2:
        raise InputError(f"{len(failed)} failed life(s) in the library; scoring an indicator needs at least 2 "
                         "(record failures with `vibra label failure`)")
    names = candidates or tuple(c for c in CANDIDATES if all(c in life.columns for life in failed))
    table: list[dict] = []
    raws: dict[str, list[np.ndarray]] = {}
    for c in names:
        rs = [raw_hi(life.columns[c], params) if c in life.columns else None for life in failed]
        if any(r is None for r in rs):
            table.append({"name": c, "usable": False, "reason": "missing or no positive baseline in some life"})
            continue
        his = [causal_smooth(r, params.smooth_points) for r in rs]
        s = scores(his)
        rising = np.median([end_value(h) for h in his]) > 0
        if not rising:
            table.append({"name": c, "usable": False, "reason": "does not rise towards failure", **s})
            continue
        raws[c] = rs
        table.append({"name": c, "usable": True, **s})
    usable = sorted((t for t in table if t["usable"]), key=lambda t: -t["fitness"])
    if not usable:
        raise InputError(f"no usable health indicator among {', '.join(names)}: none rises towards failure "
                         "in every life of the library")
    best = Indicator(usable[0]["name"], [usable[0]["name"]], params)
    top = [t["name"] for t in usable[: params.top_k]]
    if len(top) >= 2:
        fused = _fuse(top, raws, params)
        his = [fused.transform({c: life.columns[c] for c in top}) for life in failed]
        s = scores(his)
        table.append({"name": FUSED, "usable": True, "components": top, **s})
        if s["fitness"] > usable[0]["fitness"]:
            best = fused
    for t in table:
        t["chosen"] = t["name"] == best.name
    best.candidates = table
    return best


def _fuse(top: list[str], raws: dict[str, list[np.ndarray]], params: HIParams) -> Indicator:
    """First principal component of the standardised (unsmoothed) HIs of ``top``, pooled over lives."""
    stacked = np.column_stack([np.concatenate(raws[c]) for c in top])
    ok = np.isfinite(stacked).all(axis=1)
    stacked = stacked[ok]
    means, scales = stacked.mean(axis=0), stacked.std(axis=0)
    scales[scales == 0] = 1.0
    z = (stacked - means) / scales
    _, _, vt = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
    w = vt[0]
    if w.sum() < 0:  # sign so the component rises when the (rising) candidates rise
        w = -w
    return Indicator(FUSED, list(top), params, [float(v) for v in w], [float(v) for v in means],
                     [float(v) for v in scales])


# -- onset -------------------------------------------------------------------------------------

def healthy_band(h: np.ndarray, params: HIParams) -> tuple[float, float]:
    """(mean, upper edge) of the healthy band from the first ``baseline_points`` smoothed values."""
    base = h[: params.baseline_points]
    base = base[np.isfinite(base)]
    mu = float(np.mean(base)) if base.size else 0.0
    sd = float(np.std(base)) if base.size else 0.0
    return mu, max(mu + params.band_k * sd, mu + params.min_rise)


def onset_index(h: np.ndarray, params: HIParams) -> int | None:
    """Index of the first point of the first run of ``persist_points`` points above the healthy band
    (see the module docstring), or None; with ``params.onset_k`` set, the first point above the band in the
    first window of ``persist_points`` points holding at least ``onset_k`` of them (k-of-m). Causal: it depends
    on the points up to the window's end only, which is at most ``persist_points − 1`` after the onset."""
    if h.shape[0] <= params.baseline_points:
        return None
    _, upper = healthy_band(h, params)
    above = np.nan_to_num(h, nan=-np.inf) > upper
    above[: params.baseline_points] = False
    m = params.persist_points
    k = m if params.onset_k is None else min(max(int(params.onset_k), 1), m)
    counts = np.convolve(above.astype(int), np.ones(m, dtype=int))[: above.size]  # points above in (i − m, i]
    # a window must end on a point above the band (so the onset is decided when the rule is first met)
    hit = np.flatnonzero((counts >= k) & above)
    if hit.size == 0:
        return None
    i = int(hit[0])
    return int(np.flatnonzero(above[max(0, i - m + 1): i + 1])[0]) + max(0, i - m + 1)
