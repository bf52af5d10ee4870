"""Scores of a clustering and of the defect kNN against known ground truth (tests and benchmarks)."""

from __future__ import annotations

import numpy as np

from vibra.discovery.knn import UNKNOWN


def evaluate(truth: np.ndarray, cluster_id: np.ndarray, defect: np.ndarray, labelled: np.ndarray) -> dict:
    """Adjusted Rand index of the clusters, and the kNN on the windows that were not labelled.

    Parameters
    ----------
    truth : true class per window.
    cluster_id : cluster per window (-1 noise; noise counts as one more group for the ARI).
    defect : the kNN's defect per window (``unknown`` = abstained).
    labelled : True for windows whose label the kNN was trained on (left out of its scores).

    Returns
    -------
    ``ari``; ``per_class`` (for each true class among the unlabelled windows: windows, accuracy =
    share assigned their true class, abstention = share ``unknown``, and whether the class was
    ever labelled); ``accuracy_seen`` over the classes that were labelled, ``accuracy_answered``
    over the windows the kNN did not abstain on, and ``abstention_unseen`` over the classes that
    never were.
    """
    from sklearn.metrics import adjusted_rand_score

    truth, defect = np.asarray(truth).astype(str), np.asarray(defect).astype(str)
    seen_classes = set(truth[labelled].tolist())
    test = ~labelled
    out: dict = {"ari": round(float(adjusted_rand_score(truth, cluster_id)), 4), "per_class": {}}
    for c in sorted(set(truth[test].tolist())):
        m = test & (truth == c)
        out["per_class"][c] = {"windows": int(m.sum()), "accuracy": round(float(np.mean(defect[m] == c)), 4),
                               "abstention": round(float(np.mean(defect[m] == UNKNOWN)), 4),
                               "labelled_class": c in seen_classes}
    seen = test & np.isin(truth, list(seen_classes))
    unseen = test & ~np.isin(truth, list(seen_classes))
    answered = seen & (defect != UNKNOWN)
    out["accuracy_seen"] = round(float(np.mean(defect[seen] == truth[seen])), 4) if seen.any() else None
    out["accuracy_answered"] = round(float(np.mean(defect[answered] == truth[answered])), 4) if answered.any() else None
    out["abstention_seen"] = round(float(np.mean(defect[seen] == UNKNOWN)), 4) if seen.any() else None
    out["abstention_unseen"] = round(float(np.mean(defect[unseen] == UNKNOWN)), 4) if unseen.any() else None
    return out
