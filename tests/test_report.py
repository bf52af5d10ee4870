"""HTML reports: escaping, offline self-containment, and a real headless Chromium looking at them."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest

from vibra.report import fleet
from vibra.settings import load_settings
from vibra.workspace import init_workspace
from vibra_pipelines import anomaly, cluster, defects, forecast, ingest, readiness, report, status, synth

START = datetime(2026, 6, 1, tzinfo=timezone.utc)
EVIL = "<script>alert(1)</script>"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# requests Chromium makes on its own (updates, accounts), whatever page it shows
CHROMIUM_OWN = re.compile(r"(^|\.)(google\.com|googleapis\.com|gstatic\.com|gvt1\.com)$")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    ws, _ = init_workspace(root / "ws")
    # sensor faults on: fan-03 gets a spike, a flat-line, a clipped and a NaN-gap recording (seed 12)
    synth.run(root / "export", n_equipment=3, days=3, seed=12, start=START, sensor_faults=True, workspace=ws)
    text = ws.config_path.read_text().replace('label = "Pump 02"', f'label = "{EVIL}"')
    ws.config_path.write_text(text)
    settings = load_settings(ws.config_path, {})
    assert settings.equipment_for("pump-02").label == EVIL
    ingest.run(ws, settings, root / "export")
    anomaly.train(ws, settings, models=["iforest"], baseline_days=1)
    anomaly.detect(ws, settings)
    forecast.run(ws, settings, indicators=["velocity_rms_mm_s"])
    fast = replace(settings, cluster=replace(settings.cluster, umap_components=0))
    cluster.run(ws, fast)
    pump = status.recordings(ws).filter(pl.col("equipment_id") == "pump-02").sort("recorded_at")
    defects.label_recording(ws, fast, pump["recording_id"][-1], "bearing_outer_race")
    readiness.run(ws, settings)
    report.run(ws, settings, out=root / "out")  # a previous report: the second one says what changed
    result = report.run(ws, settings, out=root / "out")
    return ws, result


def _pages(result) -> dict[str, str]:
    out = Path(result.out)
    return {name: (out / name).read_text() for name in result.pages}


def test_every_page_is_written_and_user_text_is_escaped(rendered):
    _, result = rendered
    pages = _pages(result)
    assert {"index.html", "clusters.html", "readiness.html", "machines/pump-02.html"} <= set(pages)
    for name, html in pages.items():
        if not name.endswith(".html"):
            continue  # fleet.csv and fleet.json hold the label as data
        assert EVIL not in html, name
        # one inline script, on the fleet page only (sort and filter), never a script file
        assert html.lower().count("<script") == (1 if name == "index.html" else 0), name
        assert "<script src" not in html.lower(), name
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages["index.html"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages["machines/pump-02.html"]


def test_pages_reference_nothing_outside(rendered):
    _, result = rendered
    for name, html in _pages(result).items():
        if not name.endswith(".html"):
            continue
        refs = re.findall(r"""(?:src|href|srcset)\s*=\s*["']?([^"' >]+)""", html, re.I)
        assert all(not re.match(r"^(https?:)?//", r, re.I) for r in refs), (name, refs)
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", html, re.I) and "@import" not in html


def test_machine_page_has_the_charts_an_analyst_needs(rendered):
    _, result = rendered
    html = _pages(result)["machines/pump-02.html"]
    for title in ("Velocity RMS 10–1000 Hz, ISO 20816 zones, alert and danger", "history, forecast and next level",
                  "Anomaly score", "Bearing fault evidence", "Envelope spectrum", "BPFO", "Kurtosis"):
        assert title in html, title
    assert html.count("<svg") >= 6 and "zone D" in html and "time (UTC)" in html


def test_clusters_readiness_and_defect_sections(rendered):
    ws, result = rendered
    pages = _pages(result)
    clusters = pages["clusters.html"]
    manifest = cluster.latest_manifest(ws)
    assert 'id="clusters"' in clusters and manifest["version"] in clusters
    assert clusters.count("<tr><td>") == manifest["n_clusters"] and clusters.count("<circle") > 100
    assert "bearing_outer_race" in clusters and "fleet median" in clusters
    ready = pages["readiness.html"]
    assert 'id="readiness"' in ready and "label_coverage" in ready and "days_of_data" in ready
    assert "Data readiness" in pages["index.html"] and 'href="readiness.html"' in pages["index.html"]
    machine = pages["machines/pump-02.html"]
    assert 'id="defects"' in machine and "bearing_outer_race" in machine
    assert "Defect (kNN, last day)" in pages["index.html"]


def _chromium(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp / 'profile'}"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def chromium():
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run must install Debian's chromium")
        pytest.skip("chromium not installed")
    return CHROMIUM


def test_real_browser_renders_from_file_and_requests_nothing(rendered, tmp_path, chromium):
    _, result = rendered
    index = Path(result.index)
    netlog = tmp_path / "netlog.json"
    dom = _chromium([f"--log-net-log={netlog}", "--dump-dom", index.as_uri()], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'id="fleet"' in dom.stdout and dom.stdout.count('href="machines/') == 3
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom.stdout
    # no net log (or an empty one) would make "no host requested" pass without looking: require events
    assert netlog.exists() and netlog.stat().st_size > 0, "Chromium wrote no net log; the check would prove nothing"
    text = netlog.read_text()
    try:
        n_events = len(json.loads(text)["events"])
    except (ValueError, KeyError):  # a log cut short at exit: count the event records it holds
        n_events = len(re.findall(r'"phase":', text))
    assert n_events > 0, f"the net log holds no events ({netlog.stat().st_size} bytes)"
    hosts = set(re.findall(r'"(?:url|host)":"(?:https?://)?([^/":?]+)', text))
    assert {h for h in hosts if not CHROMIUM_OWN.search(h)} <= {"localhost"}, hosts
    machine = Path(result.out) / "machines" / "pump-02.html"
    page = _chromium(["--dump-dom", machine.as_uri()], tmp_path)
    assert page.stdout.count("<svg") >= 6
    shot = tmp_path / "fleet.png"
    _chromium(["--window-size=1200,900", f"--screenshot={shot}", index.as_uri()], tmp_path)
    assert shot.exists() and shot.stat().st_size > 10_000


def test_pdf_through_headless_chromium(rendered, tmp_path, chromium):
    ws, _ = rendered
    result = report.run(ws, load_settings(ws.config_path, {}), out=tmp_path / "pdf", equipment=["pump-02"], pdf=True)
    pdf = Path(result.out) / "index.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-" and (Path(result.out) / "machines" / "pump-02.pdf").exists()


def test_machine_page_and_fleet_table_show_the_bearing_diagnosis(rendered):
    from vibra_pipelines import diagnose

    ws, result = rendered
    pages = _pages(result)
    verdicts = diagnose.run(ws, load_settings(ws.config_path, {})).latest()
    assert len(verdicts) == 3  # every synth machine has rpm and bearing geometry
    assert "Bearing diagnosis (latest recording)" in pages["index.html"]
    for eid, latest in verdicts.items():
        machine = pages[f"machines/{eid}.html"]
        assert 'id="diagnosis"' in machine and latest["text"] in machine, eid
        assert latest["text"] in pages["index.html"], eid
        assert latest["verdict"] in {"outer_race", "inner_race", "ball", "no_fault_evidence", "ambiguous"}
        # the machine page's evidence bars say the same verdict as the fleet row (one meaning per answer)
        bars = re.search(r"Bearing fault evidence.*?</svg>", machine, re.S).group(0)
        from html import unescape

        assert latest["text"] in unescape(bars), eid


def _truth(ws) -> pl.DataFrame:
    return pl.read_csv(Path(ws.root).parent / "export" / "truth.csv")


def _recording_of(ws, file: str) -> str:
    recs = status.recordings(ws)
    (rid,) = recs.filter(pl.col("source_path").str.ends_with(file))["recording_id"].to_list()
    return rid


def test_a_spike_recording_raises_no_alarm_and_joins_no_cluster(rendered):
    from vibra.ingest import quality
    from vibra.report import summaries
    from vibra.storage.tables import read_features

    ws, result = rendered
    truth = _truth(ws)
    (file,) = truth.filter(pl.col("sensor_fault") == "spikes")["file"].to_list()
    eid = file.split("/")[0]
    rid = _recording_of(ws, file.split("/")[-1])
    feats = quality.mark_sensor_faults(ws, read_features(ws, eid))
    spiky = feats.filter(pl.col("recording_id") == rid)
    # the spike is in channel x only; kurtosis there reaches ~1900 (Gaussian = 3)
    assert spiky.filter(pl.col("channel") == "x")["sensor_fault"].to_list() == ["spikes"] * 3
    assert spiky.filter(pl.col("channel") == "x")["kurtosis"].max() > 100
    scores = anomaly.read_scores(ws, eid)
    assert scores.height > 0
    assert scores.filter((pl.col("recording_id") == rid) & (pl.col("channel") == "x")).height == 0  # never scored
    episodes = anomaly.episodes(ws, load_settings(ws.config_path, {}), equipment=[eid])
    assert all(c["z"] < 100 for e in episodes for c in e["top_indicators"] if c["indicator"] == "kurtosis")
    members = cluster.read_clusters(ws)
    assert members.height > 0
    assert members.filter((pl.col("recording_id") == rid) & (pl.col("channel") == "x")).height == 0
    knn = defects.read_defects(ws, [eid])
    assert knn.filter((pl.col("recording_id") == rid) & (pl.col("channel") == "x")).height == 0
    # nor is a bearing fault named from it: the channel says why, the verdict comes from the others
    (diag,) = [r for r in summaries.verdicts(ws, [eid]) if r["recording_id"] == rid]
    assert {c["channel"]: c["text"] for c in diag["channels"]}["x"] == "not diagnosable: sensor fault (spikes)"
    assert {c["channel"]: c["verdict"] for c in diag["channels"]}["x"] == "not_diagnosable"
    assert diag["channel"] != "x"
    # every sensor fault synth made is flagged with its own reason, and counted on the pages
    flagged = feats.filter(pl.col("sensor_fault").is_not_null()).select("recording_id", "sensor_fault").unique()
    assert set(flagged["sensor_fault"]) == {"spikes", "flat line", "clipping", "NaN gap"}
    pages = _pages(result)
    assert "1 recording with spikes" in pages["index.html"] and "1 recording with spikes" in pages[f"machines/{eid}.html"]
    assert 'class="flagged"' in pages[f"machines/{eid}.html"]  # drawn as marked points on the trends


def test_limits_zones_and_the_fleet_text(rendered):
    import csv
    import io

    from vibra.physics.limits import velocity_limits
    from vibra.storage.tables import read_features

    ws, result = rendered
    settings = load_settings(ws.config_path, {})
    rows = {r["equipment_id"]: r for r in csv.DictReader(io.StringIO((Path(result.out) / "fleet.csv").read_text()))}
    assert set(rows) == {"motor-01", "pump-02", "fan-03"}
    assert rows["motor-01"]["zone"] in {"A", "B"}  # the healthy machine (measured 1.17 mm/s, zone A)
    # the faulty machines before their onset are healthy too: their first 12 h sit in A/B
    for eid in ("pump-02", "fan-03"):
        lim = velocity_limits(settings.equipment_for(eid))
        first = read_features(ws, eid).sort("window_start").head(24)["velocity_rms_mm_s"].to_numpy()
        assert (first < lim.alert).all(), (eid, first.max(), lim)  # measured max 2.9 mm/s vs alert 4.5
    lim = velocity_limits(settings.equipment_for("pump-02"))
    assert (lim.alert, lim.danger) == (4.5, 8.875)  # group 2 flexible: B/C 4.5, 1.25 × C/D 7.1
    index = _pages(result)["index.html"]
    for eid, row in rows.items():
        assert row["velocity_mm_s"] and f"{float(row['velocity_mm_s']):.2f} mm/s" in index
        if row["zone"] in ("C", "D"):
            assert re.search(rf"in {row['zone']} since \d\d-\d\d \d\d:\d\d", index), eid
    # a machine past its alert level is measured to danger, not "exceeded 0 h"
    for row in rows.values():
        if row["next_limit_text"] and row["next_level"] != "beyond_danger":
            assert re.match(r"(alert|danger) velocity [\d.]+ mm/s (in \d+ (h|min|d)|: no crossing)", row["next_limit_text"])
    # a script reads numbers: every numeric column (unit in its name) is a number or empty, never words
    numeric = [c for c in next(iter(rows.values())) if c.endswith(("_s", "_mm_s")) or c in (
        "next_level_value", "crossing_probability", "excluded_recordings")]
    assert {"velocity_mm_s", "ttt_p50_s", "data_age_s", "next_level_value", "rul_planning_s"} <= set(numeric)
    for row in rows.values():
        for c in numeric:
            assert row[c] == "" or fleet._number(row[c]), (c, row[c])
        assert row["next_level"] in ("", "alert", "danger", "beyond_danger"), row["next_level"]
    assert any(r["next_level_value"] for r in rows.values())  # the fixture has a forecast to a level
    assert "Changed since previous report" in index and "no change" in index  # the second report of the fixture
    assert 'href="fleet.csv"' in index


def test_machine_page_spectra_and_evidence(rendered):
    ws, result = rendered
    html = _pages(result)["machines/pump-02.html"]
    for channel in ("x", "y"):  # every channel, not one picked silently
        assert f"Spectrum, channel {channel}: pump-02_" in html and f"Waterfall, channel {channel}" in html
    assert "first recording (06-01 00:00)" in html and "shaft 1×/2×/3×" in html  # no replacement, no choice and "= 3.58 orders" in html
    assert "velocity (mm/s RMS per line)" in html and "frequency (Hz)" in html
    assert re.search(r"pump-02_2026-06-0\dT\d\d-00-00\.csv", html)  # file names, not hashes, in the tables
    assert not re.search(r"\d\d:\d\d:\d\d\.\d{6}", html)  # timestamps to the minute
    # the outer-race machine: only the outer race bars are coloured (the verdict's rule)
    bars = re.search(r"Bearing fault evidence.*?</svg>", html, re.S).group(0)
    assert "named: outer race" in bars and bars.count('fill="#D55E00"><title>') == 1  # one coloured bar
    assert bars.count('fill="#8C8C8C"><title>') == 2  # inner race and ball now: grey


def test_fleet_page_sorts_and_filters_in_the_browser(rendered, tmp_path, chromium):
    _, result = rendered
    dom = _chromium(["--dump-dom", Path(result.index).as_uri()], tmp_path).stdout
    assert '<form id="filters">' in dom and "3 of 3 shown" in dom  # the script ran and showed the controls
    assert dom.count('<svg class="spark"') == 3
    html = _pages(result)["index.html"]
    assert '<form id="filters" hidden>' in html  # without the script the controls stay hidden, the table complete


def _publish_rul(ws, machines: list[dict]) -> None:
    """A RUL run's manifest and table, written by the stage's own publish (real store, real lake)."""
    from vibra.storage import artifacts
    from vibra_pipelines import rul as rul_stage

    now = datetime.now(timezone.utc)
    version = artifacts.new_version(now=now)
    cols = {"equipment_id": pl.String, "status": pl.String, "model": pl.String, "p10_s": pl.Float64,
            "p50_s": pl.Float64, "p90_s": pl.Float64, "threshold": pl.Float64, "elapsed_s": pl.Float64,
            "onset_s": pl.Float64, "indicator": pl.String, "reason": pl.String}
    table = pl.DataFrame([{k: m.get(k) for k in cols} for m in machines], schema=cols)
    rul_stage.publish(ws, version, now, {"version": version, "generated_at": now.isoformat(),
                                         "library": {"n_lives": 4, "n_failed": 4, "trusted": True},
                                         "machines": machines}, table)


@pytest.fixture(scope="module")
def rul_report(rendered, tmp_path_factory):
    """The fixture's workspace with a RUL run of three machines: one after onset (a model's answer), one
    without onset (the survival prior answered) and one replaced with no data since; then a report."""
    ws, _ = rendered
    after, before, replaced = sorted(tables_ids(ws))
    start = "2026-06-01T00:00:00+00:00"
    hist = {"elapsed_s": [0.0, 3600.0, 7200.0], "hi": [0.0, 0.2, 0.9]}
    _publish_rul(ws, [
        {"equipment_id": after, "status": "ok", "basis": "model", "model": "similarity", "life_start": start,
         "elapsed_s": 7200.0, "p10_s": 5000.0, "p50_s": 9000.0, "p90_s": 20000.0, "planning_s": 6100.0,
         "onset_s": 3600.0, "threshold": 1.5, "indicator": "rms", "reason": "after onset: similarity",
         "history": hist},
        {"equipment_id": before, "status": "ok", "basis": "prior_no_onset", "model": "survival_prior",
         "life_start": start, "elapsed_s": 7200.0, "p10_s": 11_000.0, "p50_s": 45_000.0, "p90_s": 98_000.0,
         "onset_s": None, "indicator": "rms", "reason": "no onset yet", "history": hist},
        {"equipment_id": replaced, "status": "no_data", "life_start": "2026-06-04T08:00:00+00:00",
         "reason": "no recordings since the last event"},
    ])
    result = report.run(ws, load_settings(ws.config_path, {}), out=tmp_path_factory.mktemp("rul") / "out")
    return (after, before, replaced), result


def _rul_cells(html: str) -> dict[str, str]:
    return dict(re.findall(r'<a href="machines/([^".]+)\.html">.*?<td class="rul rul-[^"]*"[^>]*>(.*?)</td>', html, re.S))


def test_rul_before_onset_is_no_number_and_after_onset_says_what_it_is(rul_report):
    """Only the machine after onset shows a RUL number, named "RUL, planning (early)" with its median
    beside it; without onset the prior's range, muted; replaced with no data since: says so. The
    numbers in fleet.csv are whole seconds, the words a column of their own."""
    (after, before, replaced), result = rul_report
    pages = _pages(result)
    index = pages["index.html"]
    assert "RUL, planning (early)" in index and "RUL P50" not in index
    rows = {r["equipment_id"]: r for r in csv.DictReader(io.StringIO(pages["fleet.csv"]))}
    # after onset: the planning answer and the median, in whole seconds; no prior range
    assert rows[after]["rul_state"] == "model"
    assert (rows[after]["rul_planning_s"], rows[after]["rul_p50_s"]) == ("6100", "9000")
    assert rows[after]["rul_prior_p10_s"] == "" and rows[after]["rul_text"] == "RUL, planning (early): 1.7 h"
    assert rows[after]["onset_at"] == "2026-06-01T01:00:00+00:00"
    # no onset: no RUL number anywhere, the prior's range as numbers of its own
    assert rows[before]["rul_state"] == "no_degradation" and rows[before]["rul_text"] == "no degradation yet"
    assert all(rows[before][k] == "" for k in ("rul_planning_s", "rul_p50_s", "rul_p10_s", "rul_p90_s"))
    assert (rows[before]["rul_prior_p10_s"], rows[before]["rul_prior_p90_s"]) == ("11000", "98000")
    # replaced, no data since: says so, not an indicator error
    assert rows[replaced]["rul_state"] == "no_data"
    assert rows[replaced]["rul_text"].startswith("no data since the last replacement or failure (2026-06-04 08:00")
    cells = _rul_cells(index)
    assert "<strong>1.7 h</strong>" in cells[after] and "median 2.5 h" in cells[after]
    assert cells[before].startswith('<span class="muted">no degradation yet')
    assert "typical remaining life 3.1 h–27.2 h" in cells[before]
    assert "<strong>" not in cells[before] and "median" not in cells[before]
    assert "no data since the last replacement" in cells[replaced]
    page = pages[f"machines/{before}.html"]
    head = re.search(r'<p id="rul"[^>]*>', page).group(0)
    para = re.search(r'<p id="rul"[^>]*>(.*?)</p>', page, re.S).group(1)
    assert 'class="muted"' in head and "no degradation yet" in para
    assert "RUL, planning" not in para and "P50" not in para
    assert "prior P10" in page and "RUL, planning (early)" not in page  # the chart: the prior's range, no point
    page = pages[f"machines/{after}.html"]
    assert re.search(r'<p id="rul">RUL, planning \(early\): <strong>1.7 h</strong>', page)
    assert "Degradation onset (RUL health indicator): 2026-06-01 01:00" in page


def test_rul_cells_as_the_browser_shows_them(rul_report, tmp_path, chromium):
    (after, before, replaced), result = rul_report
    cells = _rul_cells(_chromium(["--dump-dom", Path(result.index).as_uri()], tmp_path).stdout)
    assert "<strong>1.7 h</strong>" in cells[after]
    assert cells[before].startswith('<span class="muted">no degradation yet') and "<strong>" not in cells[before]
    assert "no data since the last replacement" in cells[replaced]
    page = _chromium(["--dump-dom", (Path(result.out) / "machines" / f"{before}.html").as_uri()], tmp_path).stdout
    assert "no degradation yet" in page and "RUL, planning (early)" not in page


def tables_ids(ws) -> list[str]:
    from vibra.storage.tables import equipment_ids

    return equipment_ids(ws)
