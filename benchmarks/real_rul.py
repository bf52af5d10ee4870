"""RUL on real run-to-failure bearings: leave-one-bearing-out over the six FEMTO / PRONOSTIA learning
bearings (IEEE PHM 2012), and IMS test 2 bearing 1 as a cross-dataset check, scored with the PHM 2012
accuracy. Writes its own marked section of BENCHMARKS.md.

Run with ``just bench-real`` or ``.venv/bin/python benchmarks/real_rul.py [--out BENCHMARKS.md] [--print]``.

Protocol (nothing is tuned on the bearing being scored):

* for each held-out bearing, the health indicator is selected and every model fitted on the other
  five bearings only (their full lives, the per-snapshot feature tables: every 10 s snapshot); the
  model and its settings (life-fraction kernel, scale and quantile level; slope-prior width and the
  early factor of the other models; the interval's widening) are chosen by leave-one-life-out over
  those five (:func:`vibra.prognostics.rul.tune`) — nested, the held-out bearing never takes part;
* the held-out bearing is truncated at 50, 70 and 90 % of its life, and — when fewer than three of
  those fall after its detected onset — at 25, 50 and 75 % of the span from its onset to its end;
  at each point the models see only the snapshots up to it;
* per point: true RUL, P10/P50/P90, PHM 2012 accuracy of the P50, whether P10–P90 covers the truth;
* two naive yardsticks at the same points: the library's mean remaining life at the same elapsed
  time (mean of L_i − t over library lives longer than t), and the survival prior alone.
* IMS test 2 bearing 1 (10-minute snapshots, different rig and load) is scored with the library of
  all six FEMTO bearings: HI, onset rule and models carry over unchanged (the time axis is absolute
  seconds, so the FEMTO prior is for lives of hours, not days — this is the hard part of the check).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
from real import REAL  # noqa: E402

import real_rul_hi  # noqa: E402

from vibra.ingest import quality  # noqa: E402
from vibra.prognostics import health, rul  # noqa: E402

FEMTO = REAL / "femto_learning"
IMS = REAL / "ims_test2_features" / "test2_timefeatures.csv"
BEARINGS = ("Bearing1_1", "Bearing1_2", "Bearing2_1", "Bearing2_2", "Bearing3_1", "Bearing3_2")
CANDS = None
SPANS = rul.SMOOTH_SPANS
FRACTIONS = (0.5, 0.7, 0.9)
ONSET_FRACTIONS = (0.25, 0.5, 0.75)
BEGIN, END = "<!-- real-rul:begin -->", "<!-- real-rul:end -->"
# the feature-table columns that are vibra indicators: name in vibra → columns (channels) in the table
FEMTO_COLUMNS = {"rms": ("rms_h", "rms_v"), "peak": ("peak_h", "peak_v"), "kurtosis": ("kurtosis_h", "kurtosis_v"),
                 "crest_factor": ("crest_h", "crest_v")}
IMS_COLUMNS = {"rms": ("B1_rms",), "peak": ("B1_max",), "kurtosis": ("B1_kurtosis",), "crest_factor": ("B1_crest",)}


def without_spikes(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The columns with every snapshot × channel that :mod:`vibra.ingest.quality` calls a sensor spike (crest
    factor ≥ ``SPIKE_CREST`` and kurtosis ≥ ``SPIKE_KURTOSIS``) set to NaN: what ``drop_sensor_faults``
    does to the product's features before ``vibra rul`` reads them (the HI averages the other channel,
    or carries its last value when both are out)."""
    spike = (cols["crest_factor"] >= quality.SPIKE_CREST) & (cols["kurtosis"] >= quality.SPIKE_KURTOSIS)
    return {k: np.where(spike, np.nan, v) for k, v in cols.items()}


def conditions() -> dict[str, tuple[float, float]]:
    """Each learning bearing's operating condition (rpm, radial load in N), from ``bearings.csv``."""
    import polars as pl

    d = pl.read_csv(FEMTO / "bearings.csv")
    return {r["bearing"]: (float(r["rpm"]), float(r["load_n"])) for r in d.iter_rows(named=True)}


def femto_life(name: str) -> health.Life:
    import polars as pl

    d = pl.read_csv(FEMTO / name / "snapshot_features.csv")
    rpm, load = conditions()[name]
    # nominal elapsed time: Bearing1_1 acc_02121/02122 carry a bogus clock (README)
    t = d["elapsed_nominal_s"].to_numpy().astype(float)
    cols = {k: np.column_stack([d[c].to_numpy().astype(float) for c in v]) for k, v in FEMTO_COLUMNS.items()}
    return health.Life(name, t, without_spikes(cols), True, rpm=rpm, load_n=load)


def ims_life() -> health.Life:
    import polars as pl

    d = pl.read_csv(IMS).rename({"": "time"}) if "" in pl.read_csv(IMS, n_rows=1).columns else pl.read_csv(IMS)
    d = d.head(d.height - 2)  # the last two rows are the rig stopped (SOURCE.md)
    ts = d[d.columns[0]].str.to_datetime("%Y-%m-%d %H:%M:%S")
    t = (ts - ts[0]).dt.total_seconds().to_numpy().astype(float)
    cols = {k: np.column_stack([d[c].to_numpy().astype(float) for c in v]) for k, v in IMS_COLUMNS.items()}
    # kurtosis in that table is excess (normal = 0); vibra's is Pearson (normal = 3)
    cols["kurtosis"] = cols["kurtosis"] + 3.0
    return health.Life("IMS test2 B1", t, without_spikes(cols), True)


@dataclass
class Point:
    bearing: str
    fraction: float
    elapsed_s: float
    true_rul_s: float
    after_onset: bool
    model: str
    p10: float
    p50: float
    p90: float
    accuracy: float
    covered: bool
    mean_rul: float
    mean_acc: float
    prior_p50: float
    prior_acc: float
    per_model: dict
    onset_s: float | None = None
    # the survival prior's probability of failing within 1.5 × the true RUL: the largest quantile level an
    # answer from the prior alone could use without being > 50 % late here
    prior_late_level: float = math.nan


def library_of(train: list[health.Life], params: health.HIParams) -> tuple[health.Indicator, rul.Library]:
    return rul.fit_lives(train, params, spans=SPANS, candidates=CANDS)


def points_of(life: health.Life, indicator: health.Indicator, params: health.HIParams) -> list[float]:
    """Truncation fractions of the held-out life (see the module docstring)."""
    h = indicator.transform(life.columns)
    i = health.onset_index(h, indicator.params)
    fracs = list(FRACTIONS)
    if i is not None:
        on = life.times_s[i] / life.length_s
        if sum(f > on for f in fracs) < 3:
            fracs += [on + f * (1 - on) for f in ONSET_FRACTIONS]
    return sorted(set(round(f, 4) for f in fracs))


def evaluate(life: health.Life, indicator: health.Indicator, library: rul.Library, fracs: list[float]) -> list[Point]:
    out = []
    length = life.length_s
    lib_lengths = np.array([x.length_s for x in library.lives])
    for f in fracs:
        n = int(np.searchsorted(life.times_s, f * length, side="right"))
        t = life.times_s[:n]
        # the HI is computed on the truncated data only (its baseline and smoothing are causal anyway)
        h = indicator.transform({k: v[:n] for k, v in life.columns.items()})
        est = rul.estimate(library, t, h)
        true = length - float(t[-1])
        longer = lib_lengths[lib_lengths > t[-1]]
        mean_rul = float(np.mean(longer - t[-1])) if longer.size else 0.0
        prior = library.prior.predict(rul.LifeHI("x", t, h))
        per_model = {k: v["p50_s"] for k, v in est.details.get("models", {}).items()}
        out.append(Point(life.name, f, float(t[-1]), true, est.details.get("onset_s") is not None, est.model,
                         est.p10_s, est.planning_s, est.p90_s, rul.phm_accuracy(true, est.planning_s),
                         est.p10_s <= true <= est.p90_s, mean_rul, rul.phm_accuracy(true, max(mean_rul, 0.0)),
                         prior.p50_s, rul.phm_accuracy(true, prior.p50_s), per_model, est.details.get("onset_s"),
                         1.0 - library.prior.survival(float(t[-1]) + rul.LATE_LIMIT * true)
                         / library.prior.survival(float(t[-1]))))
    return out


RHOS = np.exp(np.linspace(math.log(1e-3), math.log(30.0), 600))  # the constant-ρ family searched by the oracles


def _best(points: list[Point], answer, no_late: bool) -> tuple[float, float, int]:
    """(best mean accuracy, its ρ, its late count in the last 20 %) of ``answer(point, ρ)`` over :data:`RHOS`;
    with ``no_late`` among the ρ without a late answer only."""
    best = (-1.0, math.nan, 0)
    for r in RHOS:
        answers = [answer(p, r) for p in points]
        late = sum(p.fraction >= rul.LATE_ZONE and a > rul.LATE_LIMIT * p.true_rul_s for p, a in zip(points, answers))
        if no_late and late:
            continue
        score = float(np.mean([rul.phm_accuracy(p.true_rul_s, a) for p, a in zip(points, answers)]))
        if score > best[0]:
            best = (score, float(r), int(late))
    return best


def bounds(points: list[Point]) -> dict:
    """What predictors of this family could reach on these points, each told something the benchmark's
    models are not (so these are ceilings, not results), over the same points after onset:

    * ``rho_*_in_sample``: one constant ρ for all six bearings, chosen on their own truth:
      P50 = ρ × elapsed time, or ρ × time since the detected onset;
    * ``rho_*_per_bearing``: each bearing its own best constant ρ (knows its own truth);
    * ``factor_per_bearing``: each bearing's reported P50 times its own best constant factor — the best
      any fixed early factor on these answers could do.

    Each twice: free, and (``*_no_late``) among the values without an answer > 50 % late in the last 20 %.
    """
    return {**{k: v for k, v in _bounds(points, False).items()},
            **{f"{k}_no_late": v for k, v in _bounds(points, True).items()}}


def _bounds(points: list[Point], no_late: bool) -> dict:
    after = [p for p in points if p.after_onset]
    out = {}
    kinds = {"elapsed": lambda p, r: r * p.elapsed_s,
             "onset": lambda p, r: r * max(p.elapsed_s - p.onset_s, 0.01 * p.elapsed_s),
             "factor": lambda p, r: r * p.p50}
    for kind, answer in kinds.items():
        if kind != "factor":
            out[f"rho_{kind}_in_sample"] = _best(after, answer, no_late)
        per = {}
        for b in sorted({p.bearing for p in after}):
            mine = [p for p in after if p.bearing == b]
            per[b] = (_best(mine, answer, no_late), len(mine))
        # the mean over points (as the score), each bearing at its own best
        score = sum(v[0] * n for v, n in per.values()) / max(1, sum(n for _, n in per.values()))
        late = sum(v[2] for v, _ in per.values())
        out[f"{'rho_' + kind if kind != 'factor' else 'factor'}_per_bearing"] = (score, {b: v[1] for b, (v, _) in per.items()},
                                                                                 late)
    return out


@dataclass
class Fold:
    """One leave-one-bearing-out fold: the held-out life, the training lives, and what was fitted on them."""

    held: health.Life
    train: list[health.Life]
    indicator: health.Indicator
    library: rul.Library


def folds(params: health.HIParams, names: tuple[str, ...] = BEARINGS) -> list[Fold]:
    """For each bearing of ``names``, the indicator and the library fitted on the others (nested)."""
    lives = [femto_life(b) for b in names]
    out = []
    for k, held in enumerate(lives):
        train = [x for j, x in enumerate(lives) if j != k]
        out.append(Fold(held, train, *library_of(train, params)))
    return out


def lobo(params: health.HIParams, fitted: list[Fold] | None = None) -> tuple[list[Point], list[dict]]:
    points, chosen = [], []
    for f in fitted or folds(params):
        chosen.append({"held_out": f.held.name, "indicator": f.indicator.name, "columns": f.indicator.columns,
                       "choice": f.library.choice})
        points += evaluate(f.held, f.indicator, f.library, points_of(f.held, f.indicator, params))
    return points, chosen


# -- the official protocol (IEEE PHM 2012): one answer per truncation ---------------------------------------

OFFICIAL = tuple(float(round(x, 2)) for x in np.arange(0.55, 0.951, 0.05))  # truncations, fractions of life
LATE_FROM = 0.85  # the rule: no answer more than 50 % late at truncations from here on


@dataclass
class Answer:
    """One official-protocol answer: the held-out bearing cut at ``fraction`` of its life, and the yardsticks'
    answers at the same point."""

    bearing: str
    fraction: float
    elapsed_s: float
    true_rul_s: float
    basis: str
    model: str
    planning_s: float
    p10_s: float
    p50_s: float
    p90_s: float
    prior_median_s: float  # the condition-matched survival prior's median (lifetimes only)
    ratio_fold: float  # the one ratio ρ fitted on the fold's training bearings (elapsed × ρ)

    @property
    def accuracy(self) -> float:
        return rul.phm_accuracy(self.true_rul_s, self.planning_s)

    @property
    def late(self) -> bool:
        return self.fraction >= LATE_FROM - 1e-9 and self.planning_s > rul.LATE_LIMIT * self.true_rul_s

    @property
    def covered(self) -> bool:
        return self.p10_s <= self.true_rul_s <= self.p90_s


def _cut(life: health.Life, fraction: float) -> int:
    """The number of snapshots up to ``fraction`` of the life (what exists at that point)."""
    return int(np.searchsorted(life.times_s, fraction * life.length_s, side="right"))


def fold_ratio(train: list[health.Life]) -> float:
    """The one ratio ρ (answer = elapsed × ρ) with the best mean PHM 2012 accuracy over the training bearings'
    own truncations at :data:`OFFICIAL` — a yardstick fixed inside the fold, never on the held-out bearing."""
    pts = [(x.times_s[_cut(x, f) - 1], x.length_s - x.times_s[_cut(x, f) - 1]) for x in train for f in OFFICIAL]
    scores = [np.mean([rul.phm_accuracy(true, r * t) for t, true in pts]) for r in RHOS]
    return float(RHOS[int(np.argmax(scores))])


def official(params: health.HIParams, fitted: list[Fold] | None = None) -> list[Answer]:
    """The official protocol: each fold's held-out bearing truncated at every fraction of :data:`OFFICIAL`; the
    answer is :func:`vibra.prognostics.rul.estimate`'s planning answer from the snapshots up to that point."""
    out = []
    for f in fitted or folds(params):
        life, ratio = f.held, fold_ratio(f.train)
        for frac in OFFICIAL:
            n = _cut(life, frac)
            t = life.times_s[:n]
            h = f.indicator.transform({k: v[:n] for k, v in life.columns.items()})
            est = rul.estimate(f.library, t, h, rpm=life.rpm, load_n=life.load_n)
            elapsed = float(t[-1])
            out.append(Answer(life.name, frac, elapsed, life.length_s - elapsed, est.basis, est.model, est.planning_s,
                              est.p10_s, est.p50_s, est.p90_s,
                              f.library.prior.rul_quantile(elapsed, 0.5, life.rpm, life.load_n), ratio))
    return out


def best_constant(answers: list[Answer]) -> tuple[float, float]:
    """(value, score) of the single constant answer with the best mean accuracy over ``answers``, chosen on their
    truth (hindsight). Exact: the mean is convex between two true values, so its maximum is at one of them."""
    cands = sorted({a.true_rul_s for a in answers})
    scores = [float(np.mean([rul.phm_accuracy(a.true_rul_s, c) for a in answers])) for c in cands]
    i = int(np.argmax(scores))
    return cands[i], scores[i]


def official_summary(answers: list[Answer]) -> dict:
    def mean(xs):
        return float(np.mean(xs)) if xs else float("nan")

    const, const_score = best_constant(answers)
    hind = max(RHOS, key=lambda r: mean([rul.phm_accuracy(a.true_rul_s, r * a.elapsed_s) for a in answers]))
    return {"n": len(answers), "score": mean([a.accuracy for a in answers]),
            "late": sum(a.late for a in answers), "coverage": mean([a.covered for a in answers]),
            "median_score": mean([rul.phm_accuracy(a.true_rul_s, a.p50_s) for a in answers]),
            "constant": const, "constant_score": const_score,
            "prior_median_score": mean([rul.phm_accuracy(a.true_rul_s, a.prior_median_s) for a in answers]),
            "ratio_fold_score": mean([rul.phm_accuracy(a.true_rul_s, a.ratio_fold * a.elapsed_s) for a in answers]),
            "ratio_hindsight": float(hind),
            "ratio_hindsight_score": mean([rul.phm_accuracy(a.true_rul_s, hind * a.elapsed_s) for a in answers]),
            "by_bearing": {b: mean([a.accuracy for a in answers if a.bearing == b])
                           for b in dict.fromkeys(a.bearing for a in answers)},
            "by_fraction": {f: mean([a.accuracy for a in answers if a.fraction == f]) for f in OFFICIAL}}


def cross_dataset(params: health.HIParams) -> list[Point]:
    lives = [femto_life(b) for b in BEARINGS]
    indicator, library = library_of(lives, params)
    ims = ims_life()
    return evaluate(ims, indicator, library, points_of(ims, indicator, params))


def summary(points: list[Point]) -> dict:
    after = [p for p in points if p.after_onset]
    late_end = [p for p in points if p.fraction >= rul.LATE_ZONE and p.p50 > rul.LATE_LIMIT * p.true_rul_s]

    def mean(xs):
        return float(np.mean(xs)) if xs else float("nan")

    return {"n": len(points), "n_after": len(after), "score_after": mean([p.accuracy for p in after]),
            "score_all": mean([p.accuracy for p in points]), "coverage_after": mean([p.covered for p in after]),
            "mean_yardstick_after": mean([p.mean_acc for p in after]),
            "prior_yardstick_after": mean([p.prior_acc for p in after]),
            "late_in_last_20pct": len(late_end),
            # a model's answers (after onset) and the survival prior's (before onset: no indicator has left its band)
            "late_after_onset": sum(p.after_onset for p in late_end),
            "late_before_onset": sum(not p.after_onset for p in late_end)}


def _choice(c: dict) -> str:
    if not c.get("tuned"):
        return f"{c['model']} (untuned)"
    if c["model"] == "life_fraction":
        what = (f"life fraction per {c['scale']}, kernel {tuple(c['bandwidth']) if c['bandwidth'] else None}, "
                f"points {c.get('points', 'onset')}")
    else:
        what = f"{c['model']} (slope-prior width {c['flat']:g})"
    span = f", HI smoothing {c['smooth_points']} points" if "smooth_points" in c else ""
    return f"{what}, widening ×{c['widen']:g}{span} (inner score {c['score']:.3f}, {c['late_near_end']} late)"


def _h(s: float) -> str:
    return "—" if s is None or not math.isfinite(s) else f"{s:,.0f}"


BOUND_ROWS = (("rho_elapsed_in_sample", "one ρ × elapsed for all six, chosen on their truth"),
              ("rho_onset_in_sample", "one ρ × time since onset for all six, chosen on their truth"),
              ("rho_elapsed_per_bearing", "each bearing its own best ρ × elapsed"),
              ("rho_onset_per_bearing", "each bearing its own best ρ × time since onset"),
              ("factor_per_bearing", "each bearing's reported answer × its own best factor"))
# measured by hand this round, one full LOBO run each (score after onset, coverage, late after + before onset, IMS)
VARIANTS = (
    "| round 2 as merged (sensor spikes in the HI, smoothing 9 points) | 0.120 | 84 % | 0 + 1 | 0.062 |",
    "| sensor spikes out (`vibra.ingest.quality` rule) | 0.113 | 95 % | 0 + 1 | 0.062 |",
    "| … and onset persistence 10 points instead of 5 | 0.115 | 78 % | 0 + 2 | 0.062 |",
    "| … and onset persistence 20 points | 0.081 | 67 % | 4 + 1 | 0.072 |",
    "| … and smoothing 5 points, fixed (picked on LOBO, so not kept) | 0.156 | 95 % | 0 + 1 | 0.062 |",
    "| … and smoothing 3 points, fixed | 0.169 | 95 % | 1 + 2 | 0.063 |",
    "| … and smoothing chosen inside the library among 9 / 5 / 3 | 0.176 | 95 % | 1 + 2 | 0.063 |",
    "| **… and smoothing chosen inside the library among 9 / 5** | **0.141** | **95 %** | **0 + 1** | **0.062** |",
    "| … and a recent-rise kernel in life fraction (HI(t) − HI(0.9 t), width 0.25; chosen by no fold, removed) "
    "| 0.141 | 95 % | 0 + 1 | 0.062 |",
)


# tried this round on the official protocol, each a full run over the same 54 points (measured by hand)
OFFICIAL_TRIED = (
    "Tried on the same 54 points (each nested unless said; the kept product rule first). Disclosure: the life-ratio "
    "candidate, its late cap and the official-grid comparison were designed in issue 27's second round after seeing "
    "the previous table (product 0.068, elapsed × a fold ratio 0.222); every choice among candidates is made inside "
    "the fold, but the candidate set is not strictly held out.", "",
    "| variant | score | late at ≥ 85 % | P10–P90 covers |",
    "|---|---|---|---|",
    "| **the product: per fold, inner leave-one-life-out on the library's own 55–95 % cuts compares (a) the survival "
    "prior before onset + the model chosen after onset and (b) the life ratio (ρ × elapsed before onset, ρ' × time "
    "since onset after; each ρ the best PHM 2012 ratio over the library's cuts, capped so that no library cut "
    "≥ 85 % is > 50 % late); fewest inner late answers at ≥ 85 % first, then score; (b) won in all six folds; "
    "planning answer from its own distribution, P10–P90 conformally widened** | **0.091** | **1** | **93 %** |",
    "| the same, the life ratio's median as the answer | 0.188 | — | 93 % |",
    "| the product with the k-of-m onset (4 of the last 5 points above the band, `HIParams.onset_k = 4`; experiment, "
    "not the default) | 0.091 | 1 | 93 % |",
    "| the same life ratio without the late cap, ranked by inner score first (experiment, not kept: 16 answers "
    "> 50 % late) | 0.186 | 16 | 93 % |",
    "| issue 27's first round: model chosen inside the fold, fewest inner late answers first, then score; planning "
    "answer from the widened distribution; survival prior before onset | 0.068 | 3 | 83 % |",
    "| that round, the model's median as the answer | 0.173 | — | 83 % |",
    "| that round's models, the planning answer always from the model's own (unwidened) distribution (decided after "
    "seeing its table, so not kept) | 0.156 | 3 | 83 % |",
    "| that round, candidates ranked by inner score first (chosen after seeing its table, so not kept) | 0.115 | 13 "
    "| 70 % |",
    "| life fraction over the whole life (ρ at 50–97 % of every training life), kernel on HI and onset share, "
    "widths chosen by leave-one-life-out inside the fold (experiment, not in the product) | 0.160 | — | — |",
    "| the same, split by onset seen / not seen, HI kernel 0.5 (experiment) | 0.147 | — | — |",
    "| Bayesian life: condition-scaled Weibull prior on the life L × the library's density of the HI at life "
    "fraction t/L, four points of the history (experiment; kernel widths 0.03–0.1 in fraction, 0.1–0.3 in HI) "
    "| 0.08–0.115 | — | — |",
    "| survival prior alone (condition-scaled, onset evidence), planning answer (experiment) | 0.082 | — | — |",
    "",
    "Why the late rule costs so much here: at 95 % of a life the true RUL is 5 % / 95 % ≈ 0.053 × the elapsed time, "
    "so any answer ρ × elapsed with ρ > 0.079 is > 50 % late there; the cap that keeps the library's own ≥ 85 % cuts "
    "on time forces ρ ≈ 0.08 everywhere, which scores ≈ 0.04 at 55 % of a life. The uncapped optimum (ρ ≈ 0.25) "
    "scores 0.19–0.22 but is late at 85–95 % on nearly every bearing. With these health indicators (no onset before "
    "85–97 % of life on 3 of 6 bearings, and no HI that tells 55 % from 85 %), the 0.35 target and the late rule "
    "are not both reachable by any answer of the form ratio × time.",
)


def official_markdown(answers: list[Answer], band_lines: list[str] | None = None) -> list[str]:
    """The official-protocol section: the headline table with the yardsticks on the same points, per bearing,
    per truncation, and every answer."""
    o = official_summary(answers)
    lines = ["### The official protocol (IEEE PHM 2012): one answer per truncation", "",
             "Leave one learning bearing out (the indicator, its smoothing, the model and all its settings fitted and "
             "chosen on the other five only, nested as below); truncate it at "
             + ", ".join(f"{100 * f:.0f}" for f in OFFICIAL) + " % of its life; one answer per truncation from the "
             "snapshots up to that point (`vibra.prognostics.rul.estimate`'s planning answer, `planning_s`: the "
             "expected-score optimum of the predictive distribution; before onset the survival prior's or the life "
             "ratio's, whichever the fold's inner comparison chose, "
             "`basis` prior). Score = the PHM 2012 accuracy (Nectoux et al. 2012: Er = 100·(ActRUL − RUL̂)/ActRUL; "
             "A = exp(−ln 0.5·Er/5) if Er ≤ 0 (late), exp(+ln 0.5·Er/20) if Er > 0 (early)), mean over the "
             f"{o['n']} answers. Yardsticks on the same points: the best single constant answer for every point, "
             "chosen on the truth (hindsight); the condition-matched survival prior's median (the Weibull of the "
             "fold's lifetimes moved to the bearing's speed and load by the bearing life law, no HI); elapsed × one "
             "ratio ρ — fitted on the fold's five training bearings at the same truncation fractions (nested), and "
             "the best ρ in hindsight. Late: answers more than 50 % late (RUL̂ > 1.5 × ActRUL) at truncations "
             f"≥ {100 * LATE_FROM:.0f} %.", "",
             "| | score (mean A) | the model's median instead | late at ≥ 85 % | P10–P90 covers | best constant "
             "in hindsight | survival prior median (condition-matched) | elapsed × ρ fitted in the fold | "
             "elapsed × best ρ in hindsight |",
             "|---|---|---|---|---|---|---|---|---|",
             f"| FEMTO official LOBO (6 bearings × {len(OFFICIAL)} truncations) | **{o['score']:.3f}** | "
             f"{o['median_score']:.3f} | {o['late']} | {100 * o['coverage']:.0f} % | {o['constant_score']:.3f} "
             f"({o['constant']:,.0f} s) | {o['prior_median_score']:.3f} | {o['ratio_fold_score']:.3f} | "
             f"{o['ratio_hindsight_score']:.3f} (ρ = {o['ratio_hindsight']:.3f}) |", "",
             "Targets (issue 27): score ≥ 0.35 and ≥ the best hindsight constant + 0.05; no answer > 50 % late at "
             "truncations ≥ 85 %; P10–P90 covers the truth in ≥ 80 % of truncations.", "",
             *OFFICIAL_TRIED, "",
             "| per bearing | " + " | ".join(o["by_bearing"]) + " |",
             "|---|" + "---|" * len(o["by_bearing"]),
             "| score | " + " | ".join(f"{v:.3f}" for v in o["by_bearing"].values()) + " |", "",
             "| per truncation (% of life) | " + " | ".join(f"{100 * f:.0f}" for f in OFFICIAL) + " |",
             "|---|" + "---|" * len(OFFICIAL),
             "| score | " + " | ".join(f"{v:.3f}" for v in o["by_fraction"].values()) + " |", "",
             "| bearing | % of life | true RUL s | basis | model | planning answer | P10 | P50 (median) | P90 | A | "
             "prior median | elapsed × ρ (fold) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for a in answers:
        lines.append(f"| {a.bearing} | {100 * a.fraction:.0f} | {_h(a.true_rul_s)} | {a.basis} | {a.model} | "
                     f"{_h(a.planning_s)} | {_h(a.p10_s)} | {_h(a.p50_s)} | {_h(a.p90_s)} | {a.accuracy:.3f} | "
                     f"{_h(a.prior_median_s)} | {_h(a.ratio_fold * a.elapsed_s)} (ρ {a.ratio_fold:.3f}) |")
    return lines + [""] + (band_lines or [])


def markdown(points: list[Point], chosen: list[dict], ims: list[Point], params: health.HIParams,
             answers: list[Answer] | None = None, band_lines: list[str] | None = None) -> str:
    s, c, b = summary(points), summary(ims), bounds(points)
    oracles = [b[k + "_no_late"][0] for k in ("rho_elapsed_per_bearing", "rho_onset_per_bearing", "factor_per_bearing")]
    lines = [BEGIN, "## Remaining useful life on real run-to-failure bearings (`benchmarks/real_rul.py`)", "",
             *(official_markdown(answers, band_lines) if answers else []),
             "### Leave-one-bearing-out at several points per life (diagnostic, kept from issue 17)", "",
             "Leave-one-bearing-out over the six FEMTO / PRONOSTIA learning bearings (IEEE PHM 2012; three operating "
             "conditions; lives 5,140–28,020 s): for each held-out bearing the health indicator is chosen (Coble & Hines "
             "fitness) and every model fitted on the other five only, and the model and all its settings are chosen by "
             "leave-one-life-out over those five (`vibra.prognostics.rul.tune`, nested: the held-out bearing never takes part). "
             "Truncation at 50 / 70 / 90 % of life, plus 25 / 50 / 75 % of the span from the detected onset to the end "
             "when fewer than three of those fall after onset. Score = mean PHM 2012 accuracy of the planning answer "
             "(Er = 100·(true − answer)/true; A = exp(−ln 0.5·Er/5) if Er ≤ 0 else exp(ln 0.5·Er/20)). Yardsticks at the "
             "same points: the library's mean remaining life at the same elapsed time, and the Weibull survival prior "
             "alone. Data: the per-snapshot feature tables (every 10 s snapshot); time = nominal elapsed seconds.", "",
             "Rules (fixed in `vibra/prognostics/rul/`, not tuned on the held-out bearing): the inner questions are asked at "
             "5 % steps from 50 to 95 % of each library life after its onset plus 25 / 50 / 75 % of its onset-to-end "
             "span (the benchmark's own design); candidates: life fraction (ρ = RUL / elapsed or RUL / time since onset; "
             "kernels on HI and on ln(time since onset / elapsed); or ρ at every question fraction of every life, the HI "
             "unused), similarity, exponential degradation with slope-prior width 1 / 10 / 100 × the library's fastest "
             "rate, and their mixture; each answers with the planning point of its distribution (widened, or its own: "
             "chosen too); the winner has the fewest answers more than 50 % late in the "
             "last 20 % of a life (the issue's constraint), then the best mean accuracy; its P10–P90 is widened on the "
             "log scale by a split-conformal rule over lives (each inner life's smallest widening that covers 80 % of "
             "its points; the ⌈(n+1)·0.8⌉-th smallest of those). "
             "The HI's causal smoothing span is chosen the same way among 9 and 5 points (`vibra.prognostics.rul.fit_lives`: fewest "
             "inner late answers, then the best inner score). Sensor spikes are out before the HI: a snapshot × channel "
             "with crest factor ≥ 20 and kurtosis ≥ 100 (`vibra.ingest.quality`'s rule, which `drop_sensor_faults` applies in "
             "the product) is dropped, the HI averaging the other channel. Onset: the smoothed HI above mean + 4 SD of "
             "its first 60 points (and ≥ 0.3 above their mean) for 5 points in a row.", "",
             f"HI parameters: {vars(params)}, the smoothing span chosen per fold among {list(SPANS)} points. "
             "Indicator and model chosen per fold: "
             + "; ".join(f"{x['held_out']}: {x['indicator']}" + (f" ({', '.join(x['columns'])})"
                                                                   if x['indicator'] == health.FUSED else "")
                         + f" → {_choice(x['choice'])}" for x in chosen) + ".", "",
             "| | points after onset | score (mean A) after onset | P10–P90 coverage after onset | "
             "yardstick: library mean RUL | yardstick: survival prior | answer > 50 % late in last 20 % of life: "
             "model after onset + survival prior before onset |",
             "|---|---|---|---|---|---|---|",
             f"| FEMTO LOBO (6 bearings) | {s['n_after']} of {s['n']} | **{s['score_after']:.3f}** | "
             f"{100 * s['coverage_after']:.0f} % | {s['mean_yardstick_after']:.3f} | {s['prior_yardstick_after']:.3f} | "
             f"{s['late_after_onset']} + {s['late_before_onset']} |",
             f"| IMS test 2 bearing 1 (library: all six FEMTO) | {c['n_after']} of {c['n']} | {c['score_after']:.3f} | "
             f"{100 * c['coverage_after']:.0f} % | {c['mean_yardstick_after']:.3f} | {c['prior_yardstick_after']:.3f} | "
             f"{c['late_after_onset']} + {c['late_before_onset']} |", "",
             "Targets: score ≥ 0.35 after onset, beating both yardsticks clearly; coverage ≥ 80 %; no P50 more than "
             "50 % late in the last 20 % of a life.", "",
             "Bounds — what a predictor of the constant-ρ family, or this one with a better early factor, could "
             "reach on the same after-onset points if it were told each bearing's truth (ceilings, not results; "
             "`real_rul.bounds`): P50 = ρ × elapsed time, or ρ × time since the detected onset, or the reported answer × "
             "a constant factor; ρ searched on a log grid 0.001 … 30.", "",
             "| oracle | free: score (late) | with no answer > 50 % late in the last 20 %: score |",
             "|---|---|---|",
             *[f"| {label} | {b[key][0]:.3f} ({b[key][2]}) | {b[key + '_no_late'][0]:.3f} |" for key, label in BOUND_ROWS],
             "",
             "Before onset the answer is the survival prior, said as such (`basis`); the prior's own probability of "
             "failing within 1.5 × the true remaining life at the late-zone points before onset (the quantile level an "
             "answer from elapsed time alone would have needed not to be late): "
             + ("; ".join(f"{p.bearing} at {100 * p.fraction:.0f} %: {100 * p.prior_late_level:.1f} %"
                          for p in points + ims if not p.after_onset and p.fraction >= rul.LATE_ZONE) or "none") + ".", "",
             "Variants tried in issue 17's round, when the answer was a hand-picked quantile or P50 × a factor (each a "
             "full LOBO run; the kept one in bold; the earlier rounds' history is in "
             "git):", "",
             "| variant | score after onset | coverage | late: after + before onset | IMS score |",
             "|---|---|---|---|---|",
             *VARIANTS, "",
             "Earlier rounds, looked at by hand on LOBO (so the candidate set is not strictly held out, though every "
             "choice among the candidates is): similarity + degradation with the earliest P50 (0.157, 68 %, 9 late); "
             "the nested choice with accuracy alone as its objective (0.174, 95 %, 7 late); the life-fraction candidate "
             "per time since onset was added after seeing LOBO (0.079 → 0.120). The 0.35 target is not reached: on "
             "the plateau points (Bearing2_x, Bearing1_x at 50–90 %) the HI does not tell 50 % from 90 % of life, and "
             "the no-late rule then forces answers early by 80–95 %; even an oracle that knows each bearing's best "
             f"constant ρ or early factor reaches only {min(oracles):.2f}–{max(oracles):.2f} without a late answer "
             "(above).", "",
             "| bearing | % of life | elapsed s | onset? | model | true RUL s | P10 | planning answer | P90 | A | covered | "
             "mean-RUL yardstick P50 (A) | prior P50 (A) | per model P50 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in points + ims:
        per = ", ".join(f"{k} {_h(v)}" for k, v in p.per_model.items()) or "—"
        lines.append(f"| {p.bearing} | {100 * p.fraction:.0f} | {_h(p.elapsed_s)} | {'yes' if p.after_onset else 'no'} | "
                     f"{p.model} | {_h(p.true_rul_s)} | {_h(p.p10)} | {_h(p.p50)} | {_h(p.p90)} | {p.accuracy:.3f} | "
                     f"{'yes' if p.covered else 'no'} | {_h(p.mean_rul)} ({p.mean_acc:.3f}) | "
                     f"{_h(p.prior_p50)} ({p.prior_acc:.3f}) | {per} |")
    lines += ["", END]
    return "\n".join(lines)


def write_section(path: Path, text: str) -> None:
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + text + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(new)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    ap.add_argument("--print", action="store_true", help="print the section instead of writing it")
    args = ap.parse_args()
    if not FEMTO.exists():
        sys.exit(f"real data not found at {FEMTO}; set VIBRA_REAL_DATA")
    params = health.HIParams()
    fitted = folds(params)
    answers = official(params, fitted)
    blives = real_rul_hi.band_lives(FEMTO, BEARINGS, conditions())
    band_results, band_chosen = real_rul_hi.official_bands(blives, answers, [f.held for f in fitted])
    band_lines = real_rul_hi.markdown(band_results, band_chosen, real_rul_hi.hi_scores(blives), official_summary)
    points, chosen = lobo(params, fitted)
    ims = cross_dataset(params)
    text = markdown(points, chosen, ims, params, answers, band_lines)
    if args.print:
        print(text)
    else:
        write_section(args.out, text)
        print(f"wrote {args.out}")
    o = official_summary(answers)
    print(f"official protocol: score {o['score']:.3f} (median {o['median_score']:.3f}), late {o['late']}, coverage "
          f"{100 * o['coverage']:.0f} %; best constant {o['constant_score']:.3f}, prior median "
          f"{o['prior_median_score']:.3f}, elapsed × ρ fold {o['ratio_fold_score']:.3f} / hindsight "
          f"{o['ratio_hindsight_score']:.3f}")
    for key in real_rul_hi.VARIANT_ROWS:
        b = official_summary(band_results[key])
        print(f"  band HIs, {key}: score {b['score']:.3f} (median {b['median_score']:.3f}), late {b['late']}, "
              f"coverage {100 * b['coverage']:.0f} %, per bearing "
              + ", ".join(f"{k} {v:.3f}" for k, v in b["by_bearing"].items()))
    s = summary(points)
    print(f"LOBO score after onset {s['score_after']:.3f}, coverage {100 * s['coverage_after']:.0f} %, "
          f"yardsticks {s['mean_yardstick_after']:.3f} / {s['prior_yardstick_after']:.3f}; "
          f"late in last 20 %: {s['late_after_onset']} after onset + {s['late_before_onset']} before")


if __name__ == "__main__":
    main()
