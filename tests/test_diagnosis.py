"""Bearing diagnosis: kernels against plain references, synthetic faults with known defect
frequencies, and the leave-one-condition-out protocol on the real CWRU files."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from vibra.diagnosis import bearing, recording
from vibra.physics.bearing import Geometry
from vibra.settings import Bearing, load_settings
from vibra.workspace import init_workspace

from conftest import CWRU_PHYSICS_TOML, run_vibra, stage

B6205 = Bearing(9, 7.94, 39.04, 0.0)
G = Geometry.of(B6205)
FS, L = 12_000.0, 4096


# -- kernels against plain references ------------------------------------------------------------

def test_clashing_lines_are_dropped_from_both_families():
    lines = bearing._lines(G, 0.098, False)
    carriers = {f: [round(c, 2) for _, c, _ in groups] for f, groups in lines.items()}
    # 6205: 3×BPFO (10.75) ≈ 2×BPFI (10.83); 4×BPFO (14.34) ≈ 3×(2×BSF) (14.14)
    assert carriers == {"outer_race": [3.58, 7.17], "inner_race": [5.42, 16.25], "ball": [4.71, 9.43]}
    assert lines["inner_race"][0][2] == pytest.approx((G.bpfi - 1, G.bpfi + 1))
    # the odd BSF lines: 1×BSF (2.36) kept; 3×BSF (7.07) clashes with 2×BPFO (7.17) and goes — without
    # taking 2×BPFO from the outer race (the odd lines never remove a race line)
    odd = bearing._lines(G, 0.098, True)
    assert [label for label, _, _ in odd["ball"]] == ["2×BSF ±FTF", "4×BSF", "BSF"]
    assert odd["outer_race"] == lines["outer_race"]
    assert bearing.lines_text("outer_race", G, 0.098) == "significance sum over 1×BPFO, 2×BPFO"


def test_family_statistics():
    a, b = np.array([1.0, 5.0]), np.array([3.0, 0.5])
    assert bearing.combine([a, b], "mean").tolist() == [2.0, 2.75]
    assert bearing.combine([a, b], "max").tolist() == [3.0, 5.0]
    assert bearing.combine([a, b], "sum").tolist() == [3.0, 5.0]  # 1 + (0 + 2), 1 + (4 + 0)
    with pytest.raises(ValueError, match="statistic"):
        bearing.combine([a], "median")


# -- synthetic faults with known defect frequencies ----------------------------------------------

def _bearing_signal(order: float, rpm: float, *, seconds: float = 6.0, modulate: float | None = None,
                    depth: float = 0.0, seed: int = 0, impulse: float = 1.0) -> np.ndarray:
    """Impacts at ``order`` × shaft speed ringing a 3.2 kHz resonance, amplitude-modulated at
    ``modulate`` orders, over shaft harmonics far stronger than the impacts and noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    t = np.arange(n) / FS
    fr = rpm / 60
    x = sum(3.0 / k * np.sin(2 * np.pi * k * fr * t + k) for k in range(1, 6))  # strong discrete lines
    x += 2.0 * np.sin(2 * np.pi * 31 * fr * t)  # a gear-mesh-like line
    ring = np.exp(-900 * np.arange(200) / FS) * np.sin(2 * np.pi * 3200 * np.arange(200) / FS)
    period = 1 / (order * fr)
    times = np.arange(0, seconds - 0.02, period) * (1 + 0.01 * rng.standard_normal(1))  # ~1 % slip
    times += rng.normal(0, 0.01 * period, times.shape)  # jitter between impacts
    times = times[(times >= 0) & (times * FS + 200 < n)]
    for tk in times:
        k = int(tk * FS)
        amp = impulse * (1 + depth * np.cos(2 * np.pi * (modulate or 0) * fr * tk))
        x[k:k + 200] += amp * ring
    return x + 0.3 * rng.standard_normal(n)


def _spectrum(x: np.ndarray, chunk: int | None = None) -> recording.RecordingSpectrum:
    acc = recording.SpectrumAccumulator(FS, recording.frame_length_for(1.0, FS))
    for b in range(0, x.shape[0], chunk or x.shape[0]):
        acc.feed(x[b:b + (chunk or x.shape[0])])
    return acc.finish()


def _frames(x: np.ndarray) -> np.ndarray:
    n = x.shape[0] // L
    return x[: n * L].reshape(n, L)


@pytest.mark.parametrize("rpm", [1797.0, 1200.0, 2400.0])
def test_synthetic_faults_are_named_at_any_speed(rpm):
    cases = {"outer_race": _bearing_signal(G.bpfo, rpm, seed=1),
             "inner_race": _bearing_signal(G.bpfi, rpm, modulate=1.0, depth=0.8, seed=2),
             "ball": _bearing_signal(2 * G.bsf, rpm, modulate=G.ftf, depth=0.8, seed=3)}
    for fault, x in cases.items():
        win = bearing.window_evidence(_frames(x), FS, rpm, G)
        v = bearing.verdicts(win)
        # measured: 0.65–1.0 of 0.34 s windows named right (fewest for the ball at 2400 rpm), none wrong
        assert np.mean(v == fault) >= 0.6, (fault, rpm, v)
        assert np.isin(v, [fault, "no_fault_evidence", "ambiguous"]).all(), (fault, rpm, v)
        rec_ev = recording.recording_evidence(_spectrum(x), rpm, G)
        rec = bearing.recording_verdict(rec_ev, win, geometry=G, resolution_orders=FS / 16384 / (rpm / 60))
        assert rec.verdict == fault and rec.families == (fault,), (fault, rpm, rec)
        assert rec.text.startswith(bearing.FAMILY_TEXT[fault] + ": significance sum over ") and "× noise" in rec.text


def test_whitening_recovers_a_fault_the_discrete_lines_hide():
    # under shaft and gear-mesh lines far stronger than the impacts the plain envelope sees no
    # outer-race pattern, the whitened one does (measured: 1.0 of windows vs 0.0)
    x = _bearing_signal(G.bpfo, 1797.0, seed=7)
    whitened = bearing.verdicts(bearing.window_evidence(_frames(x), FS, 1797.0, G))
    plain = bearing.verdicts(bearing.window_evidence(_frames(x), FS, 1797.0, G, prewhiten=False))
    assert np.mean(whitened == "outer_race") >= 0.9 and np.mean(plain == "outer_race") <= 0.1, (whitened, plain)


def test_noise_names_nothing_and_the_rule_constants_hold_against_noise():
    # the verdict's floor and ratio are set so white noise is named in ~1 % of windows or fewer
    assert bearing.noise_named_share(L, n_windows=2000) <= 0.01  # measured 0.004 (3000 windows)
    rng = np.random.default_rng(5)
    ev = bearing.window_evidence(rng.standard_normal((40, L)), FS, 1797.0, G)
    assert np.median(ev) == pytest.approx(1.0, abs=0.15)  # evidence is in multiples of what noise gives
    rec_ev = [recording.recording_evidence(_spectrum(rng.standard_normal(120_000)), 1797.0, G) for _ in range(20)]
    assert np.median(rec_ev) == pytest.approx(1.0, abs=0.15)  # the recording-level null has the same meaning
    # measured: 0 of 300 noise recordings named (BENCHMARKS.md); here 20
    assert not bearing.named(bearing.verdicts(np.array(rec_ev))).any()
    rec = bearing.recording_verdict(rec_ev[0], ev)
    assert rec.verdict == "no_fault_evidence" and rec.text.startswith("no fault evidence: every family below 2×")


def test_recording_verdict_one_meaning_per_answer():
    win = np.array([[8.7, 1.1, 1.0]] * 5 + [[1.0, 1.0, 1.0]] * 2)
    v = bearing.recording_verdict(np.array([8.7, 1.1, 1.0]), win, band_text=" in 0–6 kHz", geometry=G,
                                  resolution_orders=0.098)
    assert v.verdict == "outer_race" and v.families == ("outer_race",)
    assert v.text.startswith("outer race: significance sum over 1×BPFO, 2×BPFO at 8.7× noise in 0–6 kHz; next inner race 1.1×")
    assert v.window_share == pytest.approx({"outer_race": 5 / 7, "no_fault_evidence": 2 / 7})
    close = bearing.recording_verdict(np.array([3.0, 2.5, 1.0]))
    assert close.verdict == "ambiguous" and close.families == ("outer_race", "inner_race")
    assert "outer race 3.0× and inner race 2.5× noise, less than 1.5× apart" in close.text
    gone = bearing.recording_verdict(np.full(3, np.nan), np.full((3, 3), np.nan), missing=("rpm",))
    assert gone.verdict == "not_diagnosable" and gone.missing == ("rpm",) and gone.text == "not diagnosable: no rpm"
    # recordings ingested before the recording level existed: the median of the windows, said so
    old = bearing.recording_verdict(np.full(3, np.nan), win)
    assert old.verdict == "outer_race" and "median of the windows" in old.text
    assert set(bearing.VERDICTS) == {"outer_race", "inner_race", "ball", "no_fault_evidence", "ambiguous",
                                     "not_diagnosable"}


def test_recording_spectrum_does_not_depend_on_the_chunks():
    x = _bearing_signal(G.bpfo, 1797.0, seed=4, seconds=4.0)
    whole, parts = _spectrum(x), _spectrum(x, chunk=7_777)
    assert whole.n_windows == parts.n_windows == 4  # 16,384-sample windows, hop 8,192, in 48,000 samples
    np.testing.assert_allclose(parts.ses, whole.ses, rtol=1e-6)
    np.testing.assert_allclose(parts.power, whole.power, rtol=1e-9)
    short = _spectrum(x[:5000])  # shorter than one window: read as one window of its own length
    assert short.n_windows == 1 and short.frame_length == 5000


def test_running_speed_from_the_spectrum_under_mains_lines():
    from vibra.physics.speed import estimate_rpm

    rng = np.random.default_rng(3)
    t = np.arange(int(10 * FS)) / FS
    fr = 1772 / 60
    x = sum(1.0 / k * np.sin(2 * np.pi * k * fr * t + k) for k in range(1, 9))
    x += sum(3.0 * np.sin(2 * np.pi * 60 * k * t) for k in (1, 2, 3))  # mains, far stronger: its 30 Hz would be 1800
    x += rng.standard_normal(t.shape[0])
    sp = _spectrum(x)
    e = estimate_rpm(sp.speed_freqs_hz, sp.power, 1797 * 0.9, 1797 * 1.1)
    assert e.trusted and abs(e.rpm - 1772) / 1772 < 0.002, e  # measured 1772.0
    assert estimate_rpm(sp.speed_freqs_hz, sp.power, 1.0, 2.0) is None  # below two bins: not searched
    r = recording.read_channel(sp, bearing=B6205, rpm=1700.0, rpm_stated=True, rpm_search=0.1, channel="DE")
    assert r.rpm == 1700.0 and "disagrees with the stated 1700 r/min" in r.warnings[0]
    r = recording.read_channel(sp, bearing=B6205, rpm=1797.0, rpm_stated=False, rpm_search=0.1, channel="DE")
    assert abs(r.rpm - 1772) < 4 and "no rpm of its own" in r.warnings[0]
    r = recording.read_channel(sp, bearing=B6205, rpm=None, rpm_stated=False, rpm_search=0.1, rpm_range=(1600, 1900))
    assert abs(r.rpm - 1772) < 4 and np.isfinite(r.evidence).all()
    r = recording.read_channel(sp, bearing=None, rpm=1772.0, rpm_stated=True, rpm_search=0.1)
    assert np.isnan(r.evidence).all()


# -- the real CWRU files, leave one condition out --------------------------------------------------

@pytest.fixture(scope="module")
def cwru():
    from conftest import REAL

    if not (REAL / "cwru_12k_de").exists():
        pytest.skip(f"real data not found at {REAL}")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import real_diagnosis  # the benchmark's own protocol, not a copy

    return real_diagnosis, real_diagnosis.load_cwru()


def test_cwru_fixed_rule_scored_on_every_fault_file(cwru):
    bench, records = cwru
    faults = [r for r in records if r.fault != "normal"]
    s = bench.score(faults, "cpw_full", bearing.FLOOR, bearing.RATIO)
    # nothing of the rule is fitted on CWRU (the constants are set against white noise)
    assert s["outer_race"]["right"] >= 0.95   # measured 0.983 (116 windows)
    assert s["inner_race"]["right"] >= 0.95   # measured 0.983
    assert s["ball"]["race"] <= 0.03          # measured 0.0: ball faults are not called a race fault
    assert s["ball"]["right"] >= 0.05         # measured 0.069: the ball target (50 %) is NOT met
    for r in faults:
        if r.fault != "ball":
            # the median of the windows (the previous recording rule) agrees on the race faults
            assert bearing.recording_verdict(np.full(3, np.nan), r.evidence["cpw_full"]).verdict == r.fault, r.file


@pytest.mark.parametrize("fold", ["load 0→1", "load 1→0", "size 0.007→0.021", "size 0.021→0.007"])
def test_cwru_tuned_on_one_condition_scored_on_the_other(cwru, fold):
    bench, records = cwru
    faults = [r for r in records if r.fault != "normal"]
    kind, arrow = fold.split(" ")
    a, b = arrow.split("→")
    key = (lambda r: str(r.load_hp)) if kind == "load" else (lambda r: r.size_in)
    method, floor, ratio = bench.tune([r for r in faults if key(r) == a])
    s = bench.score([r for r in faults if key(r) == b], method, floor, ratio)
    # measured: outer 0.97–1.0, inner 0.97–1.0, ball called a race 0.0 in every fold
    assert s["outer_race"]["right"] >= 0.95 and s["inner_race"]["right"] >= 0.95, (fold, method, s)
    assert s["ball"]["race"] <= 0.05, (fold, s)


def test_cwru_whitening_beats_the_plain_envelope_on_ball_files(cwru):
    bench, records = cwru
    faults = [r for r in records if r.fault != "normal"]
    cpw = bench.score(faults, "cpw_full", bearing.FLOOR, bearing.RATIO)
    plain = bench.score(faults, "env_full", bearing.FLOOR, bearing.RATIO)
    sk = bench.score(faults, "sk_band", bearing.FLOOR, bearing.RATIO)
    # measured: ball called a race 0.0 whitened vs 0.23 plain full band and 0.22 in the kurtogram band
    assert plain["ball"]["race"] > 0.15 and sk["ball"]["race"] > 0.15 and cpw["ball"]["race"] < 0.05


def test_cwru_ball_evidence_bounds_the_ball_target(cwru):
    bench, records = cwru
    _, figures = bench.ball_bound([r for r in records if r.fault != "normal"])
    # the bound, per file: windows with ball evidence at the floor under any of the four envelope methods
    assert figures["pooled_any_method"] <= 0.10            # measured 0.069: the 50 % target is out of reach
    for f in ("B007_0", "B007_1"):                         # no ball line at the floor anywhere, nor in 4× windows
        assert figures[f]["any_method"] == 0.0 and figures[f]["named_long"] == 0.0, (f, figures[f])
    for f in ("B021_0", "B021_1"):                         # measured 0.14 each: a minority of windows
        assert 0.10 <= figures[f]["any_method"] <= 0.2 and figures[f]["named"] >= 0.10, (f, figures[f])
    # even any single ball-related line above noise's q0.95: measured 0.0 / 0.07 / 0.14 / 0.28 of ball windows
    assert max(figures["single_line"][f] for f in ("B007_0", "B007_1", "B021_0", "B021_1")) <= 0.35


# the defect kNN on CWRU: tests/test_knn_real.py (benchmarks/real_knn.py)


# -- recording level (benchmarks/real_recording.py) ------------------------------------------------

@pytest.fixture(scope="module")
def recording_bench():
    from conftest import REAL

    if not (REAL / "cwru_12k_fe").exists():
        pytest.skip(f"real data not found at {REAL}")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import real_recording

    return real_recording, real_recording.load("cwru_12k_de", real_recording.B6205), \
        real_recording.load("cwru_12k_fe", real_recording.B6203)


def test_cwru_recording_level_verdicts_meet_the_targets(recording_bench):
    bench, de, fe = recording_bench
    for r in de:
        v = bench.verdict(r.evidence())
        if r.diagnosable:
            assert v == r.fault, (r.file, v, r.evidence())  # measured: all 10 (race faults 8/8, 0.021 in ball 2/2)
        else:
            assert v not in ("outer_race", "inner_race"), (r.file, v)  # 0.007 in ball and Normal_0: no race fault
    for row in bench.loco([r for r in de if r.fault != "normal"]):  # the rule chosen on the other condition
        assert row["scored"]["right"] == row["scored"]["n"] and row["scored"]["wrong"] == 0, row
    for r in fe:  # the fan end, nothing re-chosen: no wrong family (measured: race faults 6/8 named, ball 0/3)
        v = bench.verdict(r.evidence())
        assert v == r.fault or not bearing.named(v), (r.file, v, r.evidence())
    speeds = bench.speed(de + fe)
    assert max(abs(est - stated) / stated for _, stated, est, _ in speeds) < 0.005  # measured 0.11 % at most (target 1 %)
    assert all(trusted for *_, trusted in speeds)  # scores 13–19 dB against the 8 dB bar


# -- the product path -----------------------------------------------------------------------------

def test_ingest_stores_evidence_and_vibra_diagnose_names_the_fault(tmp_path, real_data):
    from vibra_pipelines import diagnose, ingest

    ws, _ = init_workspace(tmp_path / "ws")
    # the drive-end sensor is the faulty bearing's own: its verdict is the recording's, listed first
    ws.config_path.write_text(CWRU_PHYSICS_TOML.replace("[equipment.cwru-de]\n", "[equipment.cwru-de]\nbearing_channel = \"DE\"\n"))
    names = ["OR021@6_1.mat", "IR021_1.mat", "B007_0.mat"]
    src = stage([real_data / "cwru_12k_de" / n for n in names], tmp_path / "src" / "cwru-de", hour_apart=True)
    assert ingest.run(ws, load_settings(ws.config_path, {}), src).failed == 0
    result = diagnose.run(ws, load_settings(ws.config_path, {}))
    got = {r["recording_id"]: r for r in result.recordings}
    assert len(got) == 3 and [r["first"] for r in result.recordings] == sorted(
        [r["first"] for r in result.recordings], reverse=True)  # newest first
    verdicts = sorted((r["verdict"], r["channel"]) for r in result.recordings)
    # drive-end channel names the race faults; the 0.007 in ball file (not diagnosable in the literature) shows
    # no fault evidence rather than a wrong race
    assert ("inner_race", "DE") in verdicts and ("outer_race", "DE") in verdicts
    assert [v for v, _ in verdicts if v not in ("inner_race", "outer_race")] == ["no_fault_evidence"]
    assert all(r["channel"] == "DE" and r["channels"][0]["channel"] == "DE" and len(r["channels"]) == 3
               for r in result.recordings)  # every channel has its verdict; the bearing's own first
    outer = next(r for r in result.recordings if r["verdict"] == "outer_race")
    assert outer["text"].startswith("outer race: significance sum over 1×BPFO, 2×BPFO at") and \
        outer["evidence"]["outer_race"] >= 2.0  # measured 14.3 (recording level)
    assert " noise in 0–6 kHz" in outer["text"]  # the whitened full band of a 12 kHz recording
    assert abs(outer["rpm_estimated"] - 1771) / 1771 < 0.01 and outer["families"] == ["outer_race"]
    out = run_vibra("diagnose", "--json", "--home", str(ws.root), check=True)
    payload = json.loads(out.stdout)
    assert {r["verdict"] for r in payload["recordings"]} == {"outer_race", "inner_race", "no_fault_evidence"}
    assert "≥ 2" in payload["rule"]
    schema = json.loads((Path(__file__).resolve().parents[1] / "docs" / "schemas" / "diagnose.schema.json").read_text())
    import jsonschema

    jsonschema.validate(payload, schema)
    # the file each verdict comes from, beside its id: in the JSON and in the table
    files = sorted(p.name for p in Path(src).rglob("*.mat"))
    assert sorted(Path(r["source_path"]).name for r in payload["recordings"]) == files
    table = run_vibra("diagnose", "--home", str(ws.root), check=True).stdout
    assert all(name in table for name in files), table


def test_machine_page_envelope_chart_is_in_physical_units_with_family_cursors():
    from datetime import datetime, timezone

    from vibra.physics.bearing import fault_frequencies_hz
    from vibra.report import spectra, svg

    x = _bearing_signal(G.bpfo, 1797.0, seed=9, seconds=3.0)
    faults = fault_frequencies_hz(B6205, 1797.0)
    chart = svg.Chart(title="t", y_label="y")
    spectra._family_cursors(chart, 1797 / 60, faults, 600.0)
    colours = {v[1] for v in chart.vlines}
    assert svg.PALETTE[0] not in colours and len(colours) == 5  # shaft + 4 families, none the "now" colour
    assert [v[2] for v in chart.vlines if v[2]] == ["BPFO", "BPFI", "2×BSF", "FTF", "1×"]  # first harmonics only
    out = spectra.envelope_chart(x, FS, (2400.0, 4000.0), channel="DE", when=datetime(2026, 1, 1, tzinfo=timezone.utc),
                                 name="a", units="g", shaft_hz=1797 / 60, faults_hz=faults)
    assert "envelope amplitude, g 0-peak" in out and "windows averaged" in out and "BPFO × 1–3 (outer race)" in out


# -- measurement points: one verdict per bearing of a machine ------------------------------------

POINTS_TOML = """
[equipment.cwru-rig]
sample_rate_hz = 12000
units = "g"
bearing_channel = "FE"

[equipment.cwru-rig.points]
drive_end = { channels = ["DE"], bearing = { n_elements = 9, ball_diameter_mm = 7.94, pitch_diameter_mm = 39.04 } }
fan_end = { channels = ["FE"], bearing = { n_elements = 8, ball_diameter_mm = 6.746, pitch_diameter_mm = 28.499 } }
motor = ["MOTOR"]
"""


def test_a_verdict_per_measurement_point_each_read_with_its_own_bearing(tmp_path, real_data):
    """The CWRU rig as one machine with its two bearings as points (the fan-end 6203 and the drive-end 6205, one
    accelerometer each): the fan-end faults are named at the fan-end point, read with its own geometry, through
    the CLI as a user runs it; a point whose channel no file has says so; the report shows every point."""
    ws, _ = init_workspace(tmp_path / "ws")
    ws.config_path.write_text(ws.config_path.read_text() + POINTS_TOML)
    names = ["IR014_0.mat", "OR014@6_0.mat"]
    src = stage([real_data / "cwru_12k_fe" / n for n in names], tmp_path / "src" / "cwru-rig", hour_apart=True)
    run_vibra("ingest", str(src), "--home", str(ws.root), check=True)
    payload = json.loads(run_vibra("diagnose", "--json", "--home", str(ws.root), check=True).stdout)
    import jsonschema

    schema = json.loads((Path(__file__).resolve().parents[1] / "docs" / "schemas" / "diagnose.schema.json").read_text())
    jsonschema.validate(payload, schema)
    by_file = {Path(r["source_path"]).name: r for r in payload["recordings"]}
    for name, family in (("IR014_0.mat", "inner_race"), ("OR014@6_0.mat", "outer_race")):
        r = by_file[name]
        points = {p["point"]: p for p in r["points"]}
        assert list(points) == ["drive_end", "fan_end", "motor"]  # the settings' order
        fan = points["fan_end"]
        assert (fan["verdict"], fan["channel"]) == (family, "FE"), fan
        assert fan["evidence"][family] >= 4.0  # measured 6.1 (IR014_0) and 18.5 (OR014@6_0) with the 6203 lines
        assert (r["verdict"], r["point"], r["channel"]) == (family, "fan_end", "FE")
        assert points["drive_end"]["channel"] == "DE" and points["drive_end"]["verdict"] != "not_diagnosable"
        assert points["motor"]["verdict"] == "not_diagnosable" and points["motor"]["channel"] is None
        assert "no channel MOTOR" in points["motor"]["text"]
    table = run_vibra("diagnose", "--home", str(ws.root), check=True).stdout
    assert "fan_end · FE" in table and "drive_end · DE" in table, table
    run_vibra("report", "--out", str(tmp_path / "site"), "--home", str(ws.root), check=True)
    html = (tmp_path / "site" / "machines" / "cwru-rig.html").read_text()
    assert 'id="points"' in html and "fan_end" in html and "drive_end" in html
    from test_report import CHROMIUM, _chromium  # the report tests' headless Chromium

    if CHROMIUM is not None:  # the page as the browser shows it: a row per point, the newest recording's
        dom = _chromium(["--dump-dom", (tmp_path / "site" / "machines" / "cwru-rig.html").as_uri()], tmp_path).stdout
        table = re.search(r'<table id="points">(.*?)</table>', dom, re.S).group(1)
        rows = [re.findall(r"<td>(.*?)</td>", r, re.S)[:3] for r in re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]]
        newest = max(payload["recordings"], key=lambda r: r["first"])
        assert rows == [[p["point"], p["channel"] or "—", p["verdict"].replace("_", " ")] for p in newest["points"]]
        assert rows[1][:2] == ["fan_end", "FE"] and rows[1][2] in ("inner race", "outer race"), rows
    # the same points without the fan end's own geometry (the machine's 6205 for every channel): the next ingest
    # recomputes both files (the geometry changed), and the fan-end inner race is no longer named — the point's
    # own bearing is what finds it
    config = ws.config_path.read_text()
    six_two_o_three = ', bearing = { n_elements = 8, ball_diameter_mm = 6.746, pitch_diameter_mm = 28.499 }'
    assert six_two_o_three in config
    ws.config_path.write_text(config.replace(six_two_o_three, "").replace(
        "bearing_channel", "bearing = { n_elements = 9, ball_diameter_mm = 7.94, pitch_diameter_mm = 39.04 }\nbearing_channel"))
    run_vibra("ingest", str(src), "--home", str(ws.root), check=True)
    again = json.loads(run_vibra("diagnose", "--json", "--home", str(ws.root), check=True).stdout)
    fan = {Path(r["source_path"]).name: r["points"][1] for r in again["recordings"]}["IR014_0.mat"]
    assert fan["point"] == "fan_end" and fan["verdict"] != "inner_race", fan


def test_measurement_points_geometry_makes_recordings_stale_grouping_does_not():
    from vibra.ingest import staleness

    def body(points):
        eq = {"equipment_id": "m", "bearing": None, "points": points, "units": "g"}
        return {"equipment": eq, "features": {}, "sample_rate_hz": None}

    b6203 = {"n_elements": 8, "ball_diameter_mm": 6.746, "pitch_diameter_mm": 28.499, "contact_angle_deg": 0.0}
    before = {"equipment": {"equipment_id": "m", "bearing": None, "units": "g"}, "features": {}}  # before points existed
    grouped = body([{"name": "fan_end", "channels": ["FE"], "bearing": None}])
    own = body([{"name": "fan_end", "channels": ["FE"], "bearing": b6203}])
    assert staleness.differences(before, body([])) == []
    assert staleness.differences(before, grouped) == []  # regrouping channels recomputes nothing
    assert staleness.differences(grouped, own) == [f"point_bearings: none → {json.dumps({'FE': b6203})}"]
