"""Similarity: the machine's recent HI trajectory matched against every library life."""

from __future__ import annotations

import math

import numpy as np

from vibra.errors import InputError
from vibra.prognostics.health import end_value
from vibra.prognostics.rul.core import Estimate, LifeHI, from_draws


class Similarity:
    """RUL from the library lives whose HI trajectory best matches the machine's recent one."""

    name = "similarity"

    def __init__(self, *, window_s: float = 600.0, spread_log: float = 0.35, min_points: int = 6):
        self.window_s = window_s
        self.spread_log = spread_log
        self.min_points = min_points

    def fit(self, library: list[LifeHI]) -> "Similarity":
        self.library_ = [life for life in library if life.failed and life.length_s]
        if len(self.library_) < 2:
            raise InputError(f"similarity: {len(self.library_)} failed lives in the library; needs 2")
        self.threshold_ = float(np.mean([end_value(life.hi) for life in self.library_]))
        return self

    def _match(self, life: LifeHI, rel_t: np.ndarray, seg: np.ndarray, after_onset: bool) -> tuple[float, float]:
        """(distance, RUL) of the best position of the recent segment (times ``rel_t`` ≤ 0 before now)
        in ``life``: the segment is slid along the life (after the life's onset when the machine is
        past its own, so a degrading machine is matched with the degrading stage) and the position
        with the smallest RMS difference gives ``RUL = length − position``."""
        t, h = life.times_s, life.hi
        ok = np.isfinite(h)
        t, h = t[ok], h[ok]
        span = -float(rel_t[0])
        ends = t[t >= t[0] + span]
        if life.onset_s is not None and after_onset:
            ends = ends[ends >= life.onset_s]
        if ends.size == 0:
            return math.inf, 0.0
        ends = ends[:: max(1, ends.size // 400)]  # ≤ 400 candidate positions per life
        ref = np.interp(ends[:, None] + rel_t[None, :], t, h)
        d = np.sqrt(np.mean((ref - seg[None, :]) ** 2, axis=1))
        i = int(np.argmin(d))
        return float(d[i]), max(float(life.length_s) - float(ends[i]), 0.0)

    def predict(self, current: LifeHI) -> Estimate:
        t, h = current.times_s, current.hi
        ok = np.isfinite(h)
        t, h = t[ok], h[ok]
        now = float(t[-1])
        keep = t >= now - self.window_s
        if keep.sum() < self.min_points:  # sparse data (e.g. hourly): the last min_points points instead
            keep = np.zeros_like(keep)
            keep[-self.min_points:] = True
        rel_t, seg = t[keep] - now, h[keep]
        matches = [self._match(life, rel_t, seg, current.onset_s is not None) for life in self.library_]
        d = np.array([m[0] for m in matches])
        rul = np.array([m[1] for m in matches])
        finite = np.isfinite(d)
        if not finite.any():
            raise InputError("similarity: no library life is long enough to match the current window")
        d, rul = d[finite], rul[finite]
        d0 = max(float(d.min()), 1e-3)
        w = np.exp(-0.5 * (d / d0) ** 2)
        # each life's RUL spread by a log-normal kernel: samples = rul · exp(spread · z)
        z = np.array([-1.2816, -0.5244, 0.0, 0.5244, 1.2816])  # normal deciles 10/30/50/70/90
        samples = (np.maximum(rul, 1.0)[:, None] * np.exp(self.spread_log * z)[None, :]).ravel()
        return from_draws(self.name, samples, np.repeat(w, z.size), threshold=self.threshold_,
                          threshold_source="mean HI at failure of the library (for reference)",
                          reason=f"the last {-rel_t[0]:.0f} s ({rel_t.size} points) of HI matched against {len(rul)} lives",
                          details={"lives": [{"name": life.name, "distance": float(dd), "rul_s": float(r),
                                              "weight": float(ww)}
                                             for life, dd, r, ww in zip([x for x, f in zip(self.library_, finite) if f],
                                                                        d, rul, w / w.sum())]})
