"""The alarm rule: a channel is in alarm while ``k`` of its last ``m`` windows are over threshold.

One isolated window over threshold is noise more often than a fault; requiring k of m keeps
single spikes out of alarms while a fault that persists raises one within m windows.
"""

from __future__ import annotations


def k_of_m(scores, *, k: int, m: int, flag: str = "is_anomaly", by: str = "channel"):
    """``scores`` (sorted by ``by`` then time) with ``alarm`` (k of the last m ``flag`` windows set,
    per ``by``) and ``episode`` (a number per run of equal ``alarm`` values, per ``by``) added.

    Parameters
    ----------
    scores : polars.DataFrame
        One row per window; ``flag`` is boolean.
    k, m : int
        Windows over threshold needed among the last ``m`` (1 <= k <= m).
    """
    import polars as pl

    if not 1 <= k <= m:
        raise ValueError(f"alarm rule needs 1 <= k <= m, got k={k}, m={m}")
    out = scores.with_columns(alarm=pl.col(flag).cast(pl.Int32).rolling_sum(m, min_samples=1).over(by) >= k)
    return out.with_columns(episode=(pl.col("alarm") != pl.col("alarm").shift(1).over(by))
                            .fill_null(True).cum_sum().over(by))


def isolated(scores, groups, *, k: int, m: int, above: float):
    """Which scores are isolated excursions: over ``above``, yet in no run of ``m`` consecutive windows
    of their group (channel) with ``k`` of them over ``above`` — a window that could never raise an
    alarm under the k-of-m rule on its own.

    Parameters
    ----------
    scores : ndarray, shape (n,)
        In time order within each group.
    groups : ndarray, shape (n,) or None
        Group label of each score (None: one group).
    k, m : int
        The alarm rule (1 <= k <= m); ``k = 1`` calls nothing isolated.
    above : float
        The level an excursion passes.

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    import numpy as np

    if not 1 <= k <= m:
        raise ValueError(f"alarm rule needs 1 <= k <= m, got k={k}, m={m}")
    scores = np.asarray(scores, dtype=np.float64)
    over = scores > above
    out = np.zeros(scores.shape[0], dtype=bool)
    labels = np.zeros(scores.shape[0]) if groups is None else np.asarray(groups)
    for g in np.unique(labels):
        idx = np.flatnonzero(labels == g)
        o = over[idx].astype(np.int64)
        width = min(m, idx.shape[0])
        # runs of `width` consecutive windows (one shorter run when the group is shorter than m)
        counts = np.convolve(o, np.ones(width, dtype=np.int64), mode="valid")
        busy = counts >= k
        # a window belongs to a busy run if any run covering it is busy
        covered = np.convolve(busy.astype(np.int64), np.ones(width, dtype=np.int64), mode="full")[:idx.shape[0]] > 0
        out[idx] = over[idx] & ~covered
    return out
