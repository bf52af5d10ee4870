"""RUL on real run-to-failure bearings: leave-one-bearing-out over the six FEMTO / PRONOSTIA learning
bearings (IEEE PHM 2012), and IMS test 2 bearing 1 as a cross-dataset check, scored with the PHM 2012
accuracy. Writes its own marked section of BENCHMARKS.md.

Run with ``just bench-real`` or ``.venv/bin/python benchmarks/real_rul.py [--out BENCHMARKS.md] [--print]``.

Protocol (nothing is tuned on the bearing being scored):

* for each held-out bearing, the health indicator is selected and every model fitted on the other
  five bearings only (their full lives, the per-snapshot feature tables: every 10 s snapshot); the
  model and its settings (life-fraction kernel, scale and quantile level; slope-prior width and the
  early factor of the other models; the interval's widening) are chosen by leave-one-life-out over
  those five (:func:`vibra.rul.tune`) — nested, the held-out bearing never takes part;
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
sys.path.insert(0, str(ROOT / "tests"))
from conftest import REAL  # noqa: E402

from vibra import health, quality, rul  # noqa: E402

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
    """The columns with every snapshot × channel that :mod:`vibra.quality` calls a sensor spike (crest
    factor ≥ ``SPIKE_CREST`` and kurtosis ≥ ``SPIKE_KURTOSIS``) set to NaN: what ``drop_sensor_faults``
    does to the product's features before ``vibra rul`` reads them (the HI averages the other channel,
    or carries its last value when both are out)."""
    spike = (cols["crest_factor"] >= quality.SPIKE_CREST) & (cols["kurtosis"] >= quality.SPIKE_KURTOSIS)
    return {k: np.where(spike, np.nan, v) for k, v in cols.items()}


def femto_life(name: str) -> health.Life:
    import polars as pl

    d = pl.read_csv(FEMTO / name / "snapshot_features.csv")
    # nominal elapsed time: Bearing1_1 acc_02121/02122 carry a bogus clock (README)
    t = d["elapsed_nominal_s"].to_numpy().astype(float)
    cols = {k: np.column_stack([d[c].to_numpy().astype(float) for c in v]) for k, v in FEMTO_COLUMNS.items()}
    return health.Life(name, t, without_spikes(cols), True)


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
                         est.p10_s, est.p50_s, est.p90_s, rul.phm_accuracy(true, est.p50_s),
                         est.p10_s <= true <= est.p90_s, mean_rul, rul.phm_accuracy(true, max(mean_rul, 0.0)),
                         prior.p50_s, rul.phm_accuracy(true, prior.p50_s), per_model))
    return out


def lobo(params: health.HIParams) -> tuple[list[Point], list[dict]]:
    lives = [femto_life(b) for b in BEARINGS]
    points, chosen = [], []
    for k, held in enumerate(lives):
        train = [x for j, x in enumerate(lives) if j != k]
        indicator, library = library_of(train, params)
        chosen.append({"held_out": held.name, "indicator": indicator.name, "columns": indicator.columns,
                       "choice": library.choice})
        points += evaluate(held, indicator, library, points_of(held, indicator, params))
    return points, chosen


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
        what = f"life fraction per {c['scale']}, kernel {tuple(c['bandwidth'])}, quantile {c['point_level']:.2f}"
    else:
        what = f"{c['model']} (slope-prior width {c['flat']:g}, P50 × {c['shrink']:g})"
    span = f", HI smoothing {c['smooth_points']} points" if "smooth_points" in c else ""
    return f"{what}, widening ×{c['widen']:g}{span} (inner score {c['score']:.3f}, {c['late_near_end']} late)"


def _h(s: float) -> str:
    return "—" if s is None or not math.isfinite(s) else f"{s:,.0f}"


def markdown(points: list[Point], chosen: list[dict], ims: list[Point], params: health.HIParams) -> str:
    s, c = summary(points), summary(ims)
    lines = [BEGIN, "## Remaining useful life on real run-to-failure bearings (`benchmarks/real_rul.py`)", "",
             "Leave-one-bearing-out over the six FEMTO / PRONOSTIA learning bearings (IEEE PHM 2012; three operating "
             "conditions; lives 5,140–28,020 s): for each held-out bearing the health indicator is chosen (Coble & Hines "
             "fitness) and every model fitted on the other five only, and the model and all its settings are chosen by "
             "leave-one-life-out over those five (`vibra.rul.tune`, nested: the held-out bearing never takes part). "
             "Truncation at 50 / 70 / 90 % of life, plus 25 / 50 / 75 % of the span from the detected onset to the end "
             "when fewer than three of those fall after onset. Score = mean PHM 2012 accuracy of the P50 "
             "(Er = 100·(true − P50)/true; A = exp(−ln 0.5·Er/5) if Er ≤ 0 else exp(ln 0.5·Er/20)). Yardsticks at the "
             "same points: the library's mean remaining life at the same elapsed time, and the Weibull survival prior "
             "alone. Data: the per-snapshot feature tables (every 10 s snapshot); time = nominal elapsed seconds.", "",
             "Rules (fixed in `vibra/rul.py`, not tuned on the held-out bearing): the inner questions are asked at "
             "5 % steps from 50 to 95 % of each library life after its onset plus 25 / 50 / 75 % of its onset-to-end "
             "span (the benchmark's own design); candidates: life fraction (ρ = RUL / elapsed or RUL / time since onset; "
             "kernels on HI and on ln(time since onset / elapsed); point = its 5 … 95 % quantile), similarity, "
             "exponential degradation with slope-prior width 1 / 10 / 100 × the library's fastest rate, and their "
             "combination, each with its P50 × 1 … 0.1; the winner has the fewest answers more than 50 % late in the "
             "last 20 % of a life (the issue's constraint), then the best mean accuracy; its P10–P90 is widened on the "
             "log scale by a split-conformal rule over lives (each inner life's smallest widening that covers 80 % of "
             "its points; the ⌈(n+1)·0.8⌉-th smallest of those). The answer called P50 is that deliberately early point.", "",
             f"HI parameters: {vars(params)}. Indicator and model chosen per fold: "
             + "; ".join(f"{x['held_out']}: {x['indicator']}" + (f" ({', '.join(x['columns'])})"
                                                                   if x['indicator'] == health.FUSED else "")
                         + f" → {_choice(x['choice'])}" for x in chosen) + ".", "",
             "| | points after onset | score (mean A) after onset | P10–P90 coverage after onset | "
             "yardstick: library mean RUL | yardstick: survival prior | P50 > 50 % late in last 20 % of life: "
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
             "What was looked at (by hand, on these LOBO figures — so the candidate set below is not strictly held "
             "out, though every choice among the candidates is): the earlier design (similarity + degradation, "
             "earliest P50, slope-prior width 10 picked on LOBO) scored 0.157 with 68 % coverage and 9 late answers; "
             "the nested choice with accuracy alone as its objective scores 0.174 (coverage 95 %) but gives 7 late "
             "answers — the issue's no-late constraint costs about 0.05 of score and is put first; the life-fraction "
             "candidate per time since onset was added after seeing LOBO (0.079 → 0.120 with it); choosing the HI by "
             "the inner RUL score instead of Coble & Hines fitness (0.09, with an earlier candidate set) and rms alone "
             "(0.117, coverage 95 %, 3 late) were no better. The "
             "0.35 target is not reached: on the plateau points (Bearing2_x, Bearing1_x at 50–90 %) the HI does not "
             "tell 50 % from 90 % of life, and the no-late rule then forces answers early by 80–95 %.", "",
             "| bearing | % of life | elapsed s | onset? | model | true RUL s | P10 | P50 | P90 | A | covered | "
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
    points, chosen = lobo(params)
    ims = cross_dataset(params)
    text = markdown(points, chosen, ims, params)
    if args.print:
        print(text)
    else:
        write_section(args.out, text)
        print(f"wrote {args.out}")
    s = summary(points)
    print(f"LOBO score after onset {s['score_after']:.3f}, coverage {100 * s['coverage_after']:.0f} %, "
          f"yardsticks {s['mean_yardstick_after']:.3f} / {s['prior_yardstick_after']:.3f}; "
          f"late in last 20 %: {s['late_after_onset']} after onset + {s['late_before_onset']} before")


if __name__ == "__main__":
    main()
