"""The alarm list (issue 28): states new / acknowledged / cleared kept in the catalog, `vibra alarms
[--ack ID --by NAME]`, and the report's alarm page."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from vibra.anomaly.alarm_list import alarm_id, reconcile
from conftest import run_vibra

NOW = datetime(2026, 7, 1, tzinfo=timezone.utc)


def _episode(start: str, end: str) -> dict:
    return {"equipment_id": "pump-02", "channel": "x", "start": start, "end": end, "peak_score": 0.8}


def test_states_follow_the_episode_and_keep_the_acknowledgement():
    ep = _episode("2026-06-02T10:00:00+00:00", "2026-06-02T14:00:00+00:00")
    aid = alarm_id("pump-02", "x", "anomaly", ep["start"])
    (row,) = reconcile([ep], {"pump-02": "2026-06-02T14:00:00+00:00"}, {}, NOW)
    assert row["alarm_id"] == aid and row["state"] == "new" and row["cleared_at"] is None
    acked = {**row, "state": "acknowledged", "acked_by": "ana", "acked_at": "2026-06-02T15:00:00+00:00"}
    assert reconcile([ep], {"pump-02": "2026-06-02T14:00:00+00:00"}, {aid: acked}, NOW) == []  # nothing changed
    # the machine recorded again and the episode did not go on: cleared, the acknowledgement kept
    (cleared,) = reconcile([ep], {"pump-02": "2026-06-02T18:00:00+00:00"}, {aid: acked}, NOW)
    assert cleared["state"] == "cleared" and cleared["acked_by"] == "ana" and cleared["cleared_at"] == ep["end"]


@pytest.fixture(scope="module")
def plant(tmp_path_factory):
    root = tmp_path_factory.mktemp("alarms")
    home = root / "plant"
    run_vibra("init", str(home), check=True)
    run_vibra("synth", "--out", str(root / "export"), "--equipment", "2", "--days", "2", "--seed", "3", "--no-sensor-faults",
              "--home", str(home), check=True)
    run_vibra("ingest", str(root / "export"), "--home", str(home), check=True)
    run_vibra("train", "--model", "iforest", "--baseline-days", "0.5", "--home", str(home), check=True)
    run_vibra("detect", "--home", str(home), check=True)
    return home


def test_alarms_listed_acknowledged_and_shown_on_the_report(plant):
    home = str(plant)
    listed = json.loads(run_vibra("alarms", "--json", "--home", home, check=True).stdout)
    alarms = listed["alarms"]
    assert alarms, "the synthetic faults raise alarm episodes"
    assert {a["state"] for a in alarms} <= {"new", "cleared"} and any(a["state"] == "new" for a in alarms)
    first = next(a for a in alarms if a["state"] == "new")
    assert {"alarm_id", "equipment_id", "channel", "level", "started_at", "state", "acked_by", "acked_at"} <= set(first)
    assert "." not in first["started_at"][:19]  # to the second
    out = run_vibra("alarms", "--ack", first["alarm_id"], "--by", "ana", "--home", home, check=True).stdout
    assert f"alarm {first['alarm_id']}" in out and "acknowledged by ana" in out
    again = {a["alarm_id"]: a for a in json.loads(run_vibra("alarms", "--json", "--home", home, check=True).stdout)["alarms"]}
    assert again[first["alarm_id"]]["state"] == "acknowledged" and again[first["alarm_id"]]["acked_by"] == "ana"
    only_new = json.loads(run_vibra("alarms", "--state", "new", "--json", "--home", home, check=True).stdout)["alarms"]
    assert first["alarm_id"] not in {a["alarm_id"] for a in only_new}
    bad = run_vibra("alarms", "--ack", "nope", "--by", "ana", "--home", home)
    assert bad.returncode == 1 and "no alarm 'nope'" in bad.stderr
    run_vibra("report", "--home", home, check=True)
    page = (plant / "reports" / "alarms.html").read_text()
    assert first["alarm_id"] in page and "ana, " in page and 'href="alarms.html"' in (plant / "reports" / "index.html").read_text()
