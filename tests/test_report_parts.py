"""The report's parts without a browser: limits, the sensor-fault predicate, chart axes and labels,
and a workspace with too little data."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl

from vibra.ingest import quality
from vibra.physics.limits import baseline_limits, next_limit_text, since, target, velocity_limits
from vibra.report import svg
from vibra.report.fleet import changes, to_csv
from vibra.settings import Equipment, load_settings
from vibra.workspace import init_workspace
from vibra_pipelines import forecast, ingest, report, synth

T0 = datetime(2026, 6, 1, tzinfo=timezone.utc)


def test_velocity_levels_from_the_class_or_the_machine():
    lim = velocity_limits(Equipment("p", iso_group=2, iso_support="flexible"))
    assert (lim.alert, lim.danger) == (4.5, 8.875)  # B/C, 1.25 × C/D (7.1)
    assert lim.next_level(2.9) == ("alert", 4.5) and lim.next_level(7.0) == ("danger", 8.875)
    assert lim.next_level(9.0) is None and lim.state(2.9) == "normal" and lim.state(9.0) == "danger"
    own = velocity_limits(Equipment("p", iso_group=2, iso_support="rigid", alert_danger_mm_s=(3.0, 6.0)))
    assert (own.alert, own.danger) == (3.0, 6.0) and "alert_danger_mm_s" in own.source
    assumed = velocity_limits(Equipment("p"))  # no class: group 2 flexible, and its source says it was assumed
    assert (assumed.alert, assumed.danger) == (4.5, 8.875) and "(assumed: no iso_group and iso_support" in assumed.source
    base = baseline_limits(np.linspace(1.0, 2.0, 100), "g")
    assert base.alert == np.quantile(np.linspace(1.0, 2.0, 100), 0.99) * 2 and base.danger == 2 * base.alert
    assert baseline_limits(np.ones(5)) is None  # too short a baseline: no levels claimed


def test_a_forecast_targets_the_next_level_not_yet_crossed():
    pump = Equipment("p", iso_group=2, iso_support="flexible")  # alert 4.5, danger 8.875 mm/s
    assert target(pump, "velocity_rms_mm_s", np.array([]), 2.9)[0] == 4.5
    assert target(pump, "velocity_rms_mm_s", np.array([]), 7.0) == (
        8.875, f"danger 8.875 mm/s from {velocity_limits(pump).source}")
    level, why = target(pump, "velocity_rms_mm_s", np.array([]), 9.0)
    assert level == 8.875 and why.endswith("(already exceeded)")
    base = np.linspace(1.0, 2.0, 100)  # any other indicator: from the baseline's p99
    assert target(pump, "rms", base, 1.0)[0] == baseline_limits(base).alert
    level, why = target(Equipment("p"), "velocity_rms_mm_s", np.ones(5), 1.0)  # no class: group 2 assumed, said
    assert level == 4.5 and why.startswith("alert 4.5 mm/s from B/C") and "(assumed: no iso_group" in why
    assert target(Equipment("p"), "rms", np.ones(5), 1.0) == (
        None, "no limit: no ISO class or alert/danger levels and too short a baseline")


def test_since_and_the_next_level_text():
    times = [T0 + timedelta(hours=i) for i in range(6)]
    assert since(times, np.array([1, 8, 2, 8, 9, 9.5]), 7.1) == times[3]  # the trailing run, not the first visit
    assert since(times, np.array([1, 8, 9, 9, 9, 3]), 7.1) is None
    text = next_limit_text("danger velocity", 11.2, "mm/s", {"p10_h": 9.0, "p50_h": 19.0, "p90_h": 40.0})
    assert text == "danger velocity 11.2 mm/s in 19 h (9 h–40 h)"
    assert next_limit_text("alert", 4.5, "mm/s", {"p10_h": 30.0, "p50_h": None, "p90_h": None}) == \
        "alert 4.5 mm/s: beyond horizon (P10 30 h)"  # never "in beyond horizon (… – beyond horizon)"
    assert next_limit_text("alert", 4.5, "mm/s", {"p10_h": 9.0, "p50_h": 19.0, "p90_h": None}) == \
        "alert 4.5 mm/s in 19 h (9 h–beyond horizon)"
    assert next_limit_text("alert", 4.5, "mm/s", {"state": "beyond_horizon", **dict.fromkeys(
        ("p10_h", "p50_h", "p90_h"))}) == "alert 4.5 mm/s: beyond horizon"
    assert next_limit_text("danger", 7.1, "mm/s", {"state": "already_past", "p50_h": None}) == \
        "danger 7.1 mm/s: already past"
    assert next_limit_text("alert", 4.5, "mm/s", {}) == "alert 4.5 mm/s: no crossing forecast"


def test_ledger_flags_flat_clipped_and_nan_channels_and_spikes_from_the_windows():
    stats = [{"channel": "x", "samples": 1000, "flat": 20, "clipped": 0, "nan": 0},
             {"channel": "y", "samples": 1000, "flat": 0, "clipped": 5, "nan": 0},
             {"channel": "z", "samples": 1000, "flat": 0, "clipped": 0, "nan": 3},
             {"channel": "w", "samples": 1000, "flat": 5, "clipped": 0, "nan": 0}]  # 0.5 % flat: fine
    found = quality.ledger_faults([("r1", json.dumps(stats))])
    assert found == {("r1", "x"): "flat line", ("r1", "y"): "clipping", ("r1", "z"): "NaN gap"}
    df = pl.DataFrame({"recording_id": ["r1", "r2", "r2", "r3"], "channel": ["x", "x", "x", "x"],
                       "crest_factor": [3.0, 3.0, 44.6, 6.3], "kurtosis": [3.0, 3.0, 1927.0, 10.9]})
    flagged = quality.flag(df, found)
    # r2 has one spiky window: the whole recording × channel goes; r3 is a bearing fault's impacts: kept
    assert flagged["sensor_fault"].to_list() == ["flat line", "spikes", "spikes", None]


def test_one_bad_window_does_not_flatten_the_axis():
    y = list(1.0 + 0.05 * np.sin(np.arange(200) / 7))
    y[120] = 1500.0
    chart = svg.Chart(title="kurtosis", y_label="–", lines=[svg.Line("x", list(range(200)), y)])
    html = svg.render(chart)
    ticks = [float(v) for v in re.findall(r'text-anchor="end" class="tick">([-\d.]+)</text>', html)]
    assert max(ticks) < 2 and 'class="outside"' in html
    assert "x: 1500 (beyond the axis)" in html  # the value is still told, at the edge
    chart.robust = False
    assert max(float(v) for v in re.findall(r'text-anchor="end" class="tick">([-\d.]+)</text>', svg.render(chart))) >= 1000


def test_one_point_is_drawn_and_labels_never_overlap_and_no_minus_zero():
    html = svg.render(svg.Chart(title="one", y_label="mm/s", lines=[svg.Line("x", [T0], [2.0])]))
    assert "<circle" in html and "no data yet" not in html
    rows = svg._rows([(10, "FTF 7.9 Hz"), (20, "1× 19.8 Hz"), (30, "2× 39.5 Hz"), (200, "BPFO 70 Hz")], 600)
    assert [r[0] for r in rows] == [0, 1, 2, 0] and all(r[2] == "start" for r in rows)
    assert svg._rows([(10, "a"), (11, "b")], 600, n_rows=1)[1] is None  # no room: no label (the line stays)
    (row, at, anchor), = svg._rows([(595, "BPFO 70 Hz")], 600)  # at the right edge: left of its line
    assert anchor == "end" and at == 592
    assert svg._fmt(-0.0) == "0" and svg._fmt(-1e-15) == "0" and svg._fmt(1000.0) == "1000"


def test_changes_and_csv():
    row = {"equipment_id": "p", "alarm": "alarm", "zone": "D", "state": "danger", "verdict": "outer_race",
           "defect": "bearing_outer_race", "changes": ["x"], "label": "=cmd()"}
    before = {"alarm": "normal", "zone": "C", "state": "alert", "verdict": "unknown", "defect": None}
    assert changes(row, before) == ["new alarm", "zone C → D", "now danger", "new verdict: outer race",
                                    "new defect: bearing_outer_race"]
    assert changes(row, {k: row[k] for k in before}) == []
    text = to_csv([row])
    assert text.splitlines()[0].startswith("equipment_id,label,zone") and ",'=cmd()," in text


def test_small_data_is_drawn_and_says_what_is_missing(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    synth.run(tmp_path / "export", n_equipment=1, days=3 / 24, seed=3, start=T0, sensor_faults=False, workspace=ws)
    settings = load_settings(ws.config_path, {})
    ingest.run(ws, settings, tmp_path / "export")
    fc = forecast.run(ws, settings)
    (s,) = [s for s in fc.series if s["channel"] == "x"]
    assert s["status"] == "insufficient_data"
    result = report.run(ws, settings, out=tmp_path / "out")
    html = (tmp_path / "out" / "machines" / "motor-01.html").read_text()
    needed, have = s["points_needed"], s["n_points"]
    assert f"insufficient data (needs {needed} points, has {have})" in html and "run `vibra forecast`" not in html
    velocity = re.search(r"<svg[^>]*>(?:(?!</svg>).)*Velocity RMS(?:(?!</svg>).)*</svg>", html, re.S).group(0)
    assert "no data yet" not in velocity and ("<polyline" in velocity or "<circle" in velocity)
    assert result.machines == 1
