"""When the defect kNN is retrained: the rule ``vibra label`` and ``vibra cluster`` apply after they change
anything (``defects.retrain_coverage_change``, ``defects.retrain_new_clusters``)."""

from __future__ import annotations


def retrain_reason(trained: dict | None, *, embedding_version: str, classes: set[str], coverage: float,
                   labelled_clusters: set[str], coverage_change: float, new_clusters: int) -> str | None:
    """Why the kNN should be retrained now, or None.

    ``trained``: the current kNN's manifest (None: none yet); the rest describes the labelled windows
    now: their embedding version, defect classes, label coverage (labelled / all windows, 0–1) and
    labelled clusters (``<clustering version>:<cluster id>``). Retrain when there is no kNN, the
    embedding or the classes changed, coverage moved by more than ``coverage_change`` (relative), or
    ``new_clusters`` or more clusters were labelled since it was trained.
    """
    if trained is None:
        return "no kNN trained yet"
    if trained.get("embedding_version") != embedding_version:
        return "the embedding version changed"
    if set(trained["classes"]) != set(classes):
        return "the labelled defect classes changed"
    before = trained["coverage_at_train"]
    change = abs(coverage - before) / before if before else float("inf")
    if change > coverage_change:
        return f"label coverage moved from {before:.2%} to {coverage:.2%} (more than {coverage_change:.0%})"
    new = set(labelled_clusters) - set(trained.get("labelled_clusters", []))
    if len(new) >= new_clusters:
        return f"{len(new)} clusters labelled since the last training"
    return None
