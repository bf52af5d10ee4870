"""Life fraction: the remaining life as a multiple of the time already run, from the library's lives."""

from __future__ import annotations

import math

import numpy as np

from vibra.errors import InputError
from vibra.prognostics.health import HIParams
from vibra.prognostics.rul.core import EVAL_LIFE_FRACTIONS, Estimate, LifeHI, eval_points, from_draws, onset_share


#: The HI kernel's width, the scale and the interval's widening are chosen by leave-one-life-out over the
#: library itself (nested: never on the machine being scored). These are the grids searched.
# kernel widths (HI in ln units, ln(time since onset / elapsed)); None: that feature is not used
BANDWIDTHS = tuple((bh, bu) for bh in (None, 0.5) for bu in (None, 1.0, 0.5))
SCALES = ("elapsed", "onset")  # ρ = RUL / elapsed time, or RUL / time since onset
#: the library points the distribution of ρ is made of: the questions after each life's onset (``onset``), or
#: :data:`~vibra.prognostics.rul.core.EVAL_LIFE_FRACTIONS` of every failed life whatever its HI (``life``: the
#: remaining life as a multiple of the time run, the HI unused — the life-fraction form of a prior)
POINT_SETS = ("onset", "life")

class LifeFraction:
    """RUL as a multiple of the time the machine has already run, learned from the library's lives.

    Every library life contributes the points it is asked at in :func:`tune` (after its onset is known:
    see :func:`eval_points`), each with ``ρ = RUL / elapsed`` — the life fraction ``f = 1 / (1 + ρ)`` —,
    its HI ``h`` and its onset share ``u = ln(time since onset / elapsed)``. For a machine at elapsed
    ``t`` the distribution of ``ln ρ`` is the library's, each life with the same total weight and each
    point weighted by a Gaussian kernel on ``h`` and on ``u`` (``bandwidth`` = (width on h, width on
    u); None: that feature unused); ``RUL = t·ρ`` (``scale="onset"``: ρ is a multiple of the time since
    onset instead). The onset share tells a machine just past a late onset (u ≪ 0: a short final stage)
    from one long past an early one (u ≈ 0: a long plateau). Life fraction is free of the time scale, so
    lives of hours (FEMTO) and of days (IMS) inform each other, and of the operating condition as far as
    the life's shape is. The predictive distribution is that weighted sample.
    """

    name = "life_fraction"

    def __init__(self, params: HIParams, *, bandwidth: tuple[float | None, float | None] | None = None,
                 scale: str = "elapsed", points: str = "onset"):
        self.scale = scale
        self.points = points
        self.params = params
        self.bandwidth = bandwidth
        self.tuning_: dict = {"tuned": False}

    def fit(self, library: list[LifeHI]) -> "LifeFraction":
        h, u, rho, w = [], [], [], []
        names = []
        for life in library:
            idx = self._points(life) if life.failed and life.length_s else []
            t, hi = life.times_s[idx], life.hi[idx]
            keep = (t > 0) & np.isfinite(hi)
            t, hi = t[keep], hi[keep]
            if t.size == 0:
                continue
            h.append(hi)
            # a life whose HI never left its band: onset share as at the onset itself (as predict takes it)
            u.append(onset_share(t, life.onset_s) if life.onset_s is not None else onset_share(t, t))
            rho.append(np.log((life.length_s - t) / self._base(t, life.onset_s)))
            w.append(np.full(t.size, 1.0 / t.size))
            names.append(life.name)
        if len(h) < 2:
            raise InputError(f"life fraction: {len(h)} failed lives with a detected onset; needs 2")
        self.h_, self.u_ = np.concatenate(h), np.concatenate(u)
        self.log_rho_, self.w_ = np.concatenate(rho), np.concatenate(w)
        self.lives_ = names
        return self

    def _points(self, life: LifeHI) -> list[int]:
        if self.points == "onset":
            return eval_points(life, self.params)
        last = int(np.searchsorted(life.times_s, life.length_s, side="left")) - 1  # true RUL > 0
        idx = {int(np.searchsorted(life.times_s, f * life.length_s, side="right")) - 1 for f in EVAL_LIFE_FRACTIONS}
        return sorted(i for i in idx if 0 <= i <= last)

    def weights(self, h_now: float, u_now: float) -> np.ndarray:
        """The weight of every library point of ln ρ for a machine with HI ``h_now`` and onset share ``u_now``."""
        w = self.w_
        z2 = np.zeros_like(w)
        for bw, x, now in zip(self.bandwidth or (None, None), (self.h_, self.u_), (h_now, u_now)):
            if bw is not None and np.isfinite(now):
                z2 = z2 + ((x - now) / bw) ** 2
        return w * np.exp(-0.5 * (z2 - z2.min()))  # shifted: a machine beyond the library's range keeps its nearest

    def _base(self, t: np.ndarray | float, onset_s: float | None):
        """The time ρ is a multiple of: the elapsed time, or (``scale="onset"``) the time since onset,
        floored at 1 % of the elapsed time."""
        t = np.asarray(t, dtype=float)
        if self.scale == "elapsed" or onset_s is None:
            return t
        return np.maximum(t - onset_s, 0.01 * t)

    def draws(self, elapsed: float, h_now: float, onset_s: float | None) -> tuple[np.ndarray, np.ndarray]:
        """(RUL draws in s, weights) for a machine at ``elapsed`` s with HI ``h_now``."""
        u_now = float(onset_share(np.array([elapsed]), onset_s if onset_s is not None else elapsed)[0])
        return float(self._base(elapsed, onset_s)) * np.exp(self.log_rho_), self.weights(h_now, u_now)

    def predict(self, current: LifeHI) -> Estimate:
        elapsed = float(current.times_s[-1])
        finite = current.hi[np.isfinite(current.hi)]
        h_now = float(finite[-1]) if finite.size else math.nan
        d, w = self.draws(elapsed, h_now, current.onset_s)
        bh, bu = self.bandwidth or (None, None)
        kernel = ", ".join(([f"HI kernel width {bh}"] if bh else []) + ([f"onset-share kernel width {bu}"] if bu else [])
                           ) or "all post-onset points alike"
        return from_draws(self.name, d, w, threshold=None,
                          threshold_source="none: remaining life as a multiple of the time run",
                          reason=f"RUL = {'elapsed' if self.scale == 'elapsed' else 'time since onset'} × "
                                 f"(remaining / that time) of {len(self.lives_)} library lives after their onset "
                                 f"({kernel})",
                          details={"bandwidth": self.bandwidth, "scale": self.scale, "tuning": self.tuning_})
