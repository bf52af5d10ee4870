"""Failure and replacement labels are checked (issue 32, B11): event times within the machine's data (or
--allow-outside-data), stored in UTC, shown by `vibra label list`, removable with `vibra label remove`; an
events CSV saved by Excel (UTF-8 with a BOM) is read and a column vibra does not use is named."""

from __future__ import annotations

import json
from datetime import timedelta, timezone

import pytest

from vibra.errors import InputError
from vibra.settings import load_settings
from vibra.storage.labels import data_span, list_events
from vibra.workspace import find_workspace
from vibra_pipelines import defects

from conftest import run_vibra


@pytest.fixture(scope="module")
def plant(tmp_path_factory):
    root = tmp_path_factory.mktemp("events") / "plant"
    run_vibra("init", str(root), check=True)
    run_vibra("synth", "--out", "export", "--equipment", "1", "--days", "0.1", "--seed", "3", "--no-sensor-faults",
              cwd=root, check=True)
    run_vibra("ingest", "export", cwd=root, check=True)
    ws = find_workspace(root)
    (eid,) = {e["equipment_id"] for e in json.loads(run_vibra("status", "--json", cwd=root, check=True).stdout)["equipment"]}
    return ws, load_settings(ws.config_path, {}), eid


def _clear(ws):
    for event in defects.list_labels(ws):
        defects.remove_label(ws, load_settings(ws.config_path, {}), event["label_id"])


def test_an_event_outside_the_data_is_refused_unless_allowed(plant):
    ws, settings, eid = plant
    first, last = data_span(ws, eid)
    assert first < last
    for at in ("2099-01-01T00:00:00Z", "1990-06-01T00:00:00Z", (last + timedelta(days=8)).isoformat()):
        with pytest.raises(InputError, match=rf"outside {eid}'s data .* --allow-outside-data"):
            defects.label_event(ws, settings, eid, at)
    assert list_events(ws) == []
    inside = defects.label_event(ws, settings, eid, (last + timedelta(hours=2)).isoformat())
    allowed = defects.label_event(ws, settings, eid, "1990-06-01T00:00:00Z", kind="replacement",
                                  allow_outside_data=True)
    assert inside["start_at"] and allowed["start_at"].startswith("1990-06-01T00:00:00")
    assert len(list_events(ws)) == 2
    _clear(ws)


def test_an_offset_time_is_stored_in_utc_and_listed(plant):
    ws, settings, eid = plant
    first, _ = data_span(ws, eid)
    local = first.astimezone(timezone(timedelta(hours=5))) + timedelta(minutes=30)
    assert local.isoformat().endswith("+05:00")
    stored = defects.label_event(ws, settings, eid, local.isoformat(), note="seized")
    utc = (first + timedelta(minutes=30)).astimezone(timezone.utc)
    assert stored["start_at"] == utc.isoformat() and stored["start_at"].endswith("+00:00")
    assert list_events(ws)[0]["at"] == utc
    listed = json.loads(run_vibra("label", "list", "--json", "--home", str(ws.root), check=True).stdout)
    assert [r["start_at"] for r in listed["labels"]] == [utc.strftime("%Y-%m-%dT%H:%M:%SZ")]
    human = run_vibra("label", "list", "--home", str(ws.root), check=True).stdout
    assert utc.strftime("%Y-%m-%d") in human and "start_at" in human
    _clear(ws)


def test_label_remove_by_id_or_prefix(plant):
    ws, settings, eid = plant
    _, last = data_span(ws, eid)
    event = defects.label_event(ws, settings, eid, last.isoformat())
    with pytest.raises(InputError, match="no label has this id"):
        defects.remove_label(ws, settings, "nope-nope")
    out = run_vibra("label", "remove", event["label_id"][:8], "--json", "--home", str(ws.root), check=True)
    assert json.loads(out.stdout)["label_id"] == event["label_id"]
    assert list_events(ws) == [] and defects.list_labels(ws) == []


def test_an_excel_events_csv_with_a_bom_and_extra_columns(plant, tmp_path):
    ws, settings, eid = plant
    first, last = data_span(ws, eid)
    log = tmp_path / "events.csv"
    log.write_bytes("\ufeffequipment_id,at,kind,note,technician\r\n".encode()
                    + f"{eid},{last.isoformat()},failure,spalled,J. Doe\r\n".encode())
    out = run_vibra("label", "import-events", str(log), "--json", "--home", str(ws.root), check=True)
    body = json.loads(out.stdout)
    assert body["imported"] == 1 and "technician" in body["warnings"][0]
    assert "warning:" in out.stderr and "technician" in out.stderr
    # a row with more fields than the header is refused, naming the line
    log.write_text(f"equipment_id,at,kind\n{eid},{first.isoformat()},failure,extra\n")
    with pytest.raises(InputError, match="line 2: 4 fields, the header has 3"):
        defects.import_events(ws, settings, log)
    # and the span is checked row by row
    log.write_text(f"equipment_id,at,kind\n{eid},2099-01-01T00:00:00Z,failure\n")
    with pytest.raises(InputError, match=r"line 2: 2099-01-01T00:00:00Z is outside"):
        defects.import_events(ws, settings, log)
    assert defects.import_events(ws, settings, log, allow_outside_data=True)["imported"] == 1
    _clear(ws)
