"""The nested model choice: leave-one-life-out over the library picks the model, its settings and the
interval's widening."""

from __future__ import annotations

import math

import numpy as np

from vibra.errors import InputError
from vibra.prognostics.health import HIParams
from vibra.prognostics.rul.core import (LATE_LIMIT, LATE_ZONE, OFFICIAL_FRACTIONS, OFFICIAL_LATE_FROM, Estimate,
                                        LifeHI, eval_points, from_draws, onset_known_index, quantiles, widen_draws)
from vibra.prognostics.rul.degradation import FLATS, ExpDegradation
from vibra.prognostics.rul.life_fraction import BANDWIDTHS, SCALES, LifeFraction
from vibra.prognostics.rul.life_ratio import LifeRatio
from vibra.prognostics.rul.metric import MIN_RUL_S, phm_accuracy, planning_point, reduced
from vibra.prognostics.rul.priors import WeibullPrior
from vibra.prognostics.rul.similarity import Similarity


WIDENINGS = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0)
TARGET_COVERAGE = 0.8  # the P10–P90 interval is widened until it covers this share of held-out lives' points

def answer_of(choice: dict, lf: Estimate | None, sim: Estimate | None, deg: Estimate | None) -> Estimate | None:
    """The estimate a model choice gives (before widening): ``life_fraction``; ``similarity``;
    ``exp_degradation`` (similarity when the HI is not rising); ``combined``: the equal mixture of the
    predictive distributions of similarity and (when usable) exponential degradation."""
    usable_deg = deg if deg is not None and deg.details.get("usable", True) else None
    kind = choice["model"]
    if kind == "life_fraction":
        return lf
    if kind == "similarity" or (kind == "exp_degradation" and usable_deg is None):
        return sim
    if kind == "exp_degradation":
        return usable_deg
    found = [e for e in (sim, usable_deg) if e is not None]
    if len(found) < 2:
        return found[0] if found else None
    parts = [reduced(e.draws_s, e.draw_weights) for e in found]
    return from_draws("combined", np.concatenate([d for d, _ in parts]), np.concatenate([w for _, w in parts]))


def widened_interval(q: tuple[float, float, float], widen: float) -> tuple[float, float]:
    """(P10, P90) of a distribution with quantiles ``q`` = (P10, P50, P90) once widened by ``widen`` about its
    median on the log scale (:func:`widen_draws` is monotone, so quantiles map to quantiles)."""
    lo, mid, hi = (math.log(max(x, MIN_RUL_S)) for x in q)
    return math.exp(mid - widen * (mid - lo)), math.exp(mid + widen * (hi - mid))


def _conformal_widening(per_life: list[list[tuple]]) -> float:
    """Split-conformal over lives (the exchangeable units): each held-out life needs the smallest factor in
    :data:`WIDENINGS` whose P10–P90 covers :data:`TARGET_COVERAGE` of its points; the library's factor is
    the ⌈(n + 1)·0.8⌉-th smallest of the n lives' needs. Rows: (true RUL, near end, (P10, P50, P90), draws)."""
    need = []
    for rows in per_life:
        ok = [wf for wf in WIDENINGS
              if np.mean([lo <= true <= hi for true, _, q, _ in rows for lo, hi in [widened_interval(q, wf)]])
              >= TARGET_COVERAGE]
        need.append(ok[0] if ok else WIDENINGS[-1])
    rank = min(len(need), math.ceil((len(need) + 1) * TARGET_COVERAGE))
    return sorted(need)[rank - 1]


def _candidates_at(held: LifeHI, i: int, lfs: dict, sim, degs: dict) -> dict[tuple, Estimate | tuple]:
    """Every candidate's predictive distribution for ``held`` truncated after point ``i``: life fraction as
    (draws, weights), the others as an :class:`Estimate`."""
    t = float(held.times_s[i])
    cur = LifeHI(held.name, held.times_s[: i + 1], held.hi[: i + 1], None, True, held.onset_s)
    out: dict[tuple, Estimate | tuple] = {}
    for key, lf in lfs.items():
        out[("life_fraction", key)] = lf.draws(t, float(held.hi[i]), held.onset_s)
    se = sim.predict(cur) if sim is not None else None
    out[("similarity", None)] = se
    for flat, deg in degs.items():
        de = deg.predict(cur) if deg is not None else None
        for kind in ("exp_degradation", "combined"):
            out[(kind, flat)] = answer_of({"model": kind}, None, se, de)
    return out


#: how candidates are ranked inside the library: ``late_first`` — the fewest answers > 50 % late in the last
#: 20 % of a life, then the best score; ``score`` — the best mean PHM 2012 accuracy (which already costs a late
#: answer four times an early one), the late count breaking ties
OBJECTIVE = "late_first"


def _rank(score: float, late: int) -> tuple:
    return (late, -round(score, 12)) if OBJECTIVE == "late_first" else (-round(score, 12), late)


def tune(lives: list[LifeHI], params: HIParams) -> dict:
    """The model and its settings for this library, chosen by leave-one-life-out over ``lives`` (nested:
    the machine being estimated is never among them).

    For each held-out failed life with an onset, every candidate is fitted on the other lives and asked
    at the points of :func:`eval_points` (the design of the benchmark's truncation points). Candidates:
    life fraction for every scale in :data:`SCALES` and kernel in :data:`BANDWIDTHS`, and its whole-life form
    (``points="life"``: ρ at every question fraction of every life, the HI unused); similarity;
    exponential degradation and the similarity + degradation mixture for every slope-prior width in
    :data:`FLATS`. Each candidate's interval is widened by a split-conformal rule over lives
    (:func:`_conformal_widening`) and its answer is the planning point (:func:`planning_point`) of the
    widened distribution or of the model's own (``planning_widen``, chosen here as well); the winner has
    the fewest answers more than 50 % late in the last 20 % of a life, then the best mean PHM 2012
    accuracy (each held-out life weighs the same). Fewer than three such lives: the mixture, unwidened,
    said so (``tuned`` False).
    """
    usable = [life for life in lives if life.failed and life.length_s and eval_points(life, params)]
    if len(usable) < 3:
        return {"tuned": False, "model": "combined", "flat": 10.0, "widen": 1.0,
                "reason": f"{len(usable)} failed lives with an onset; choosing a model needs 3"}
    # results[candidate key] = per held-out life, rows of (true RUL, near end, (P10, P50, P90), (draws, weights))
    results: dict[tuple, list[list[tuple]]] = {}
    at_index: dict[tuple, dict] = {}  # (candidate, held-out life, index) → (draws, weights): the official-grid rows
    grid: dict[str, list] = {}  # held-out life → per official cut: (fraction, true RUL, prior answer, life-ratio row)
    for held in usable:
        train = [x for x in lives if x is not held]
        lfs = {(sc, bw, "onset"): LifeFraction(params, bandwidth=bw, scale=sc).fit(train)
               for sc in SCALES for bw in BANDWIDTHS}
        lfs[("elapsed", None, "life")] = LifeFraction(params, points="life").fit(train)
        try:
            sim = Similarity().fit(train)
        except InputError:
            sim = None
        degs = {}
        for flat in FLATS:
            try:
                degs[flat] = ExpDegradation(smooth_points=params.smooth_points, flat=flat, n_draws=1000).fit(train)
            except InputError:
                degs[flat] = None
        rows: dict[tuple, list[tuple]] = {}
        for i in eval_points(held, params):
            t = float(held.times_s[i])
            true, end = held.length_s - t, t >= LATE_ZONE * held.length_s
            for key, e in _candidates_at(held, i, lfs, sim, degs).items():
                if e is None:
                    continue
                d, w = reduced(*e) if isinstance(e, tuple) else reduced(e.draws_s, e.draw_weights)
                rows.setdefault(key, []).append((true, end, quantiles(d, w), (d, w)))
                at_index[(key, held.name, i)] = (d, w)
        for key, r in rows.items():
            results.setdefault(key, []).append(r)
        grid[held.name] = _official_rows(held, train, params)
    best, per_model = None, {}
    for key, per_life in results.items():
        if len(per_life) < len(usable):
            continue  # a candidate that could not answer for every held-out life is not compared
        widen = _conformal_widening(per_life)
        coverage = float(np.mean([lo <= true <= hi for r in per_life for true, _, q, _ in r
                                  for lo, hi in [widened_interval(q, widen)]]))
        # the planning answer from the calibrated (widened) distribution or from the model's own: chosen here too
        for pw in dict.fromkeys((widen, 1.0)):
            answers = [[(true, end, planning_point(widen_draws(d, pw, w), w)) for true, end, _, (d, w) in r]
                       for r in per_life]
            score = float(np.mean([np.mean([phm_accuracy(true, a) for true, _, a in r]) for r in answers]))
            late = sum(a > LATE_LIMIT * true for r in answers for true, end, a in r if end)
            if best is None or _rank(score, late) < _rank(best[1], best[2]):
                best = (key, score, late, widen, coverage, pw)
            if key[0] not in per_model or _rank(score, late) < _rank(per_model[key[0]]["score"],
                                                                      per_model[key[0]]["late_near_end"]):
                per_model[key[0]] = {"settings": [key[1]], "score": round(score, 4), "late_near_end": int(late),
                                     "widen": widen, "planning_widen": pw}
    key, score, late, widen, coverage, pw = best
    official = _official_choice(usable, grid, at_index, key, pw, params)
    choice = {"answer": official["answer"], "ratio_widen": official["ratio_widen"], "official_grid": official,
              "tuned": True, "model": key[0], "held_out_lives": len(usable), "score": round(score, 4),
              "late_near_end": int(late), "coverage": round(coverage, 4), "widen": widen, "planning_widen": pw,
              "flat": 10.0, "candidates": per_model}
    if key[0] == "life_fraction":
        choice.update(scale=key[1][0], bandwidth=key[1][1], points=key[1][2])
    else:
        choice.update(flat=key[1] or 10.0)
    return choice


#: how the official-grid comparison ranks: ``late_first`` (fewest late at ≥ 85 %, then score) or ``score``
OFFICIAL_RANK = "late_first"


def _official_rows(held: LifeHI, train: list[LifeHI], params: HIParams) -> list[tuple]:
    """``held`` cut at every fraction of :data:`OFFICIAL_FRACTIONS`: (fraction, true RUL, index, onset known,
    the survival prior's planning answer, the life-ratio model's (P10, P50, P90), draws, planning answer)."""
    prior = WeibullPrior().fit(train)
    try:
        ratio = LifeRatio(params).fit(train)
    except InputError:
        ratio = None
    k = onset_known_index(held, params)
    out = []
    for f in OFFICIAL_FRACTIONS:
        i = int(np.searchsorted(held.times_s, f * held.length_s, side="right")) - 1
        t = float(held.times_s[i])
        true = held.length_s - t
        if i < 0 or true <= 0:
            continue
        known = k is not None and i >= k
        cur = LifeHI(held.name, held.times_s[: i + 1], held.hi[: i + 1], None, True,
                     held.onset_s if known else None, rpm=held.rpm, load_n=held.load_n)
        pa = prior.predict(cur).planning_s
        if ratio is None:
            out.append((f, true, i, known, pa, None, None, None))
            continue
        d, w, scale, rho = ratio.draws(t, cur.onset_s)
        base = t if scale == "elapsed" else max(t - cur.onset_s, 0.01 * t)
        out.append((f, true, i, known, pa, quantiles(d, w), (d, w), base * rho))
    return out


def _official_choice(usable: list[LifeHI], grid: dict, at_index: dict, key: tuple, pw: float,
                     params: HIParams) -> dict:
    """The inner leave-one-life-out comparison on the PHM 2012 protocol's grid (each held-out library life cut
    at :data:`OFFICIAL_FRACTIONS`, one answer per cut): the incumbent (the survival prior before the onset is
    known, the model chosen above after) against the life-ratio model (:class:`LifeRatio`, planning from its
    own distribution). Ranked by the fewest answers > 50 % late at cuts ≥ :data:`OFFICIAL_LATE_FROM`, then the
    best mean accuracy (each life the same weight). The life ratio's P10–P90 widening is split-conformal over
    the same lives (:func:`_conformal_widening`)."""
    inc, lr, ratio_rows = [], [], []
    for held in usable:
        a, b, rr = [], [], []
        for f, true, i, known, prior_answer, q, dw, ratio_answer in grid[held.name]:
            if known and (key, held.name, i) in at_index:
                d, w = at_index[(key, held.name, i)]
                ans = planning_point(widen_draws(d, pw, w), w)
            else:
                ans = prior_answer
            a.append((f, true, ans))
            if q is not None:
                b.append((f, true, ratio_answer))
                rr.append((true, f >= OFFICIAL_LATE_FROM, q, dw))
        inc.append(a), lr.append(b), ratio_rows.append(rr)

    def figures(per_life):
        score = float(np.mean([np.mean([phm_accuracy(t, x) for _, t, x in r]) for r in per_life if r]))
        late = sum(x > LATE_LIMIT * t for r in per_life for f, t, x in r if f >= OFFICIAL_LATE_FROM - 1e-9)
        return round(score, 4), int(late)

    s_inc, l_inc = figures(inc)
    out = {"incumbent_score": s_inc, "incumbent_late": l_inc, "answer": "incumbent", "ratio_widen": 1.0}
    if all(len(r) == len(a) and r for r, a in zip(lr, inc)):
        s_lr, l_lr = figures(lr)
        out.update(life_ratio_score=s_lr, life_ratio_late=l_lr)
        rank = (lambda s_, l_: (l_, -s_)) if OFFICIAL_RANK == "late_first" else (lambda s_, l_: (-s_, l_))
        if rank(s_lr, l_lr) < rank(s_inc, l_inc):
            out.update(answer="life_ratio", ratio_widen=_conformal_widening(ratio_rows))
    return out
