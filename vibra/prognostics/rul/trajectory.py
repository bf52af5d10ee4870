"""Trajectory matching in life fraction: which fraction of its life is the machine at, judged by how its whole HI
history so far lines up with each library life stretched to end where that fraction says it would.

For a machine at elapsed time ``t`` and a library life ``i`` of length ``L_i``, the hypothesis "the machine is at
fraction ``f`` of its life" stretches life ``i`` onto the machine's clock (its point at ``f·L_i`` lands on now, so
machine time ``s`` reads life ``i`` at ``s·f·L_i/t``) and measures the RMS difference of the two HIs over the
machine's history (the points from ``FROM`` × t on; the early healthy stretch says little). Every (life, fraction)
pair of the grid :data:`GRID` is a hypothesis; its weight is ``exp(−½ (d/d_min)²)`` (``d_min`` the best match over
all pairs, floored), each life's weights summing to at most its best one, so that a life matched everywhere does not
crowd the others out. A hypothesis answers ``RUL = t·(1 − f)/f``: scale-free, as the lives differ 5× in length.
The planning answer is the expected-score optimum of that distribution.

Causal: only the machine's points up to now are read; the library lives are complete.
"""

from __future__ import annotations

import numpy as np

from vibra.errors import InputError
from vibra.prognostics.rul.core import Estimate, LifeHI, from_draws

GRID = tuple(float(round(f, 3)) for f in np.arange(0.3, 0.991, 0.01))  # life fractions a machine may be at
FROM = 0.3  # the machine's history compared from this share of its elapsed time on
MIN_DISTANCE = 0.05  # floor of d_min (HI units, ln amplitude): below it every near-perfect match counts alike


class FractionSimilarity:
    """RUL from the life fractions at which the library lives best match the machine's HI history."""

    name = "fraction_similarity"

    def __init__(self, *, grid: tuple[float, ...] = GRID, start: float = FROM, min_distance: float = MIN_DISTANCE):
        self.grid, self.start, self.min_distance = grid, start, min_distance

    def fit(self, library: list[LifeHI]) -> "FractionSimilarity":
        self.library_ = [x for x in library if x.failed and x.length_s]
        if len(self.library_) < 2:
            raise InputError(f"fraction similarity: {len(self.library_)} failed lives in the library; needs 2")
        return self

    def distances(self, times_s: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """RMS HI difference (n_lives, n_grid) of every hypothesis for a machine with this history."""
        t, h = np.asarray(times_s, dtype=float), np.asarray(hi, dtype=float)
        ok = np.isfinite(h)
        t, h = t[ok], h[ok]
        if t.size < 2:
            raise InputError("fraction similarity: fewer than 2 finite HI points so far")
        now = float(t[-1])
        sel = t >= self.start * now
        s, hs = t[sel], h[sel]
        f = np.asarray(self.grid)
        out = np.empty((len(self.library_), f.size))
        for i, life in enumerate(self.library_):
            lt, lh = life.times_s, life.hi
            good = np.isfinite(lh)
            ref = np.interp(s[None, :] * (f[:, None] * life.length_s / now), lt[good], lh[good])
            out[i] = np.sqrt(np.mean((ref - hs[None, :]) ** 2, axis=1))
        return out

    def predict(self, current: LifeHI) -> Estimate:
        now = float(current.times_s[-1])
        d = self.distances(current.times_s, current.hi)
        d0 = max(float(d.min()), self.min_distance)
        w = np.exp(-0.5 * (d / d0) ** 2)
        best = w.max(axis=1, keepdims=True)
        w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-300) * best  # each life weighs its best match
        f = np.asarray(self.grid)
        draws = np.broadcast_to(now * (1 - f) / f, w.shape).ravel()
        top = np.unravel_index(int(np.argmax(w)), w.shape)
        return from_draws(self.name, draws, w.ravel(), threshold=None,
                          threshold_source="none: life fraction from matching the whole HI history",
                          reason=f"HI history matched against {len(self.library_)} lives stretched to each life "
                                 f"fraction {self.grid[0]:g}–{self.grid[-1]:g} (best: {self.library_[top[0]].name} at "
                                 f"{100 * f[top[1]]:.0f} %)",
                          details={"best_life": self.library_[top[0]].name, "best_fraction": float(f[top[1]])})
