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
