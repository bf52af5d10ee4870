"""Life ratio: the simplest robust answer — the remaining life as one ratio of the time run before onset, and of
the time since onset after it, each ratio the library's own PHM 2012 optimum."""

from __future__ import annotations

import numpy as np

from vibra.errors import InputError
from vibra.prognostics.health import HIParams
from vibra.prognostics.rul.core import LATE_LIMIT, OFFICIAL_FRACTIONS, OFFICIAL_LATE_FROM, Estimate, LifeHI, from_draws, onset_known_index
from vibra.prognostics.rul.metric import planning_point


#: cap each ratio so that no library cut at ≥ 85 % of its life is answered > 50 % late (the late rule as a constraint)
LATE_CAP = True


class LifeRatio:
    """RUL = ρ × elapsed before the onset is known, RUL = ρ' × (time since onset) after it.

    Every failed library life is cut at each fraction of :data:`OFFICIAL_FRACTIONS` of its life (the PHM 2012
    protocol's truncations); at each cut its true ratio ``(L − t) / base`` is one point of the pre-onset set
    (base = elapsed ``t``; the onset not yet known at ``t``: :func:`onset_known_index`) or of the post-onset
    set (base = time since onset, floored at 1 % of ``t``). Each life weighs the same within a set. The
    predictive distribution of the RUL is ``base × ratio`` over that set; its planning point
    (:func:`planning_point`) is exactly the one ratio with the best mean PHM 2012 accuracy over the library's
    own cuts (the accuracy depends only on answer / truth), capped so that no library cut at ≥ 85 % of its life
    is answered more than 50 % late (the late rule as a constraint). A set with points from fewer than 2 lives falls
    back to the pre-onset form over every cut. The HI is used only for the onset.
    """

    name = "life_ratio"

    def __init__(self, params: HIParams):
        self.params = params

    def fit(self, library: list[LifeHI]) -> "LifeRatio":
        sets: dict[str, list] = {"elapsed": [], "onset": []}
        all_elapsed = []
        for life in library:
            if not (life.failed and life.length_s):
                continue
            k = onset_known_index(life, self.params)
            mine: dict[str, list] = {"elapsed": [], "onset": []}
            late_zone: dict[str, list] = {"elapsed": [], "onset": []}
            ev, ev_late = [], []
            for f in OFFICIAL_FRACTIONS:
                i = int(np.searchsorted(life.times_s, f * life.length_s, side="right")) - 1
                if i < 0:
                    continue
                t = float(life.times_s[i])
                true = life.length_s - t
                if true <= 0 or t <= 0:
                    continue
                ev.append(np.log(true / t))
                ev_late.append(f >= OFFICIAL_LATE_FROM - 1e-9)
                key = "onset" if k is not None and i >= k else "elapsed"
                mine[key].append(np.log(true / (t if key == "elapsed" else max(t - life.onset_s, 0.01 * t))))
                late_zone[key].append(f >= OFFICIAL_LATE_FROM - 1e-9)
            for key, v in mine.items():
                if v:
                    sets[key].append((np.array(v), np.array(late_zone[key])))
            if ev:
                all_elapsed.append((np.array(ev), np.array(ev_late)))
        if len(all_elapsed) < 2:
            raise InputError(f"life ratio: {len(all_elapsed)} failed lives; needs 2")
        self.sets_ = {}
        for key, per_life in sets.items():
            use = per_life if len(per_life) >= 2 else all_elapsed
            scale = key if len(per_life) >= 2 else "elapsed"
            d = np.exp(np.concatenate([v for v, _ in use]))
            w = np.concatenate([np.full(v.size, 1.0 / v.size) for v, _ in use])
            zone = np.concatenate([z for _, z in use])
            rho = planning_point(d, w)
            # the late rule as a constraint: no library cut at ≥ 85 % of its life answered > 50 % late
            cap = LATE_LIMIT * float(d[zone].min()) if zone.any() and LATE_CAP else np.inf
            self.sets_[key] = (scale, d, w / w.sum(), min(rho, cap), len(use))
        return self

    def draws(self, elapsed: float, onset_s: float | None) -> tuple[np.ndarray, np.ndarray, str, float]:
        scale, d, w, rho, _ = self.sets_["elapsed" if onset_s is None else "onset"]
        base = elapsed if scale == "elapsed" else max(elapsed - onset_s, 0.01 * elapsed)
        return base * d, w, scale, rho

    def predict(self, current: LifeHI, *, widen: float = 1.0) -> Estimate:
        elapsed = float(current.times_s[-1])
        d, w, scale, rho = self.draws(elapsed, current.onset_s)
        n = self.sets_["elapsed" if current.onset_s is None else "onset"][4]
        what = "elapsed" if scale == "elapsed" else "time since onset"
        # P10–P90 from the distribution widened (coverage); the planning answer from the model's own (its ρ)
        e = from_draws(self.name, d, w, widen=widen, planning_widen=1.0, threshold=None,
                          threshold_source="none: remaining life as a ratio of the time run",
                          reason=f"RUL = {what} × ρ {rho:.3f} (the best PHM 2012 ratio over the library's own "
                                 f"55–95 % cuts, {n} lives){'' if widen == 1.0 else f'; interval widened ×{widen:g}'}",
                          details={"scale": scale, "ratio": rho, "widen": widen})
        e.planning_s = (elapsed if scale == "elapsed" else max(elapsed - current.onset_s, 0.01 * elapsed)) * rho
        return e
