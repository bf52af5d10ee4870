"""Lives cut from a machine's history by its failure / replacement events (vibra.prognostics.lives)."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from vibra.prognostics.lives import hi_params_for, split_lives


def _at(s: float) -> datetime:
    return datetime.fromtimestamp(s, timezone.utc)


def test_events_cut_failed_censored_and_current_lives():
    t = np.arange(0.0, 1000.0, 10.0)
    cols = {"rms": np.linspace(1, 2, t.size)}
    events = [{"at": _at(300.0), "kind": "failure"}, {"at": _at(320.0), "kind": "replacement"},  # failed, then replaced
              {"at": _at(700.0), "kind": "replacement"}]  # replaced before failing: censored
    lives, current, start = split_lives("m", t, cols, events, rpm=1500.0)
    assert [(x.name, x.failed, x.end_s) for x in lives] == [("m#1", True, 300.0), ("m#2", False, 380.0)]
    assert lives[0].times_s[0] == 0.0 and lives[1].times_s[0] == 0.0  # times since each life started
    assert start == 700.0 and current.times_s[0] == 10.0 and current.times_s[-1] == 290.0
    assert all(x.rpm == 1500.0 for x in lives + [current])
    # a failure and nothing since: no current life
    assert split_lives("m", t, cols, [{"at": _at(2000.0), "kind": "failure"}])[1] is None


def test_the_healthy_baseline_fits_the_shortest_failed_life():
    t = np.arange(0.0, 1000.0, 10.0)
    lives, _, _ = split_lives("m", t, {"rms": np.ones(t.size)}, [{"at": _at(200.0), "kind": "failure"}])
    assert hi_params_for(lives).baseline_points == 5  # 21 points: a fifth, floored at 5
    assert hi_params_for([]).baseline_points == 12  # no failed life: the 60-point default's fifth
