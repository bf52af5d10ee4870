"""Bearing diagnosis: kernels against plain references, synthetic faults with known defect
frequencies, and the leave-one-condition-out protocol on the real CWRU files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from vibra.diagnosis import bearing
from vibra.physics.bearing import Geometry
from vibra.settings import Bearing, load_settings
from vibra.workspace import init_workspace

from conftest import CWRU_PHYSICS_TOML, run_vibra, stage

B6205 = Bearing(9, 7.94, 39.04, 0.0)
G = Geometry.of(B6205)
FS, L = 12_000.0, 4096


# -- kernels against plain references ------------------------------------------------------------

def test_clashing_lines_are_dropped_from_both_families():
    lines = bearing._lines(G, 0.098)
    carriers = {f: [round(c, 2) for c, _ in groups] for f, groups in lines.items()}
    # 6205: 3×BPFO (10.75) ≈ 2×BPFI (10.83); 4×BPFO (14.34) ≈ 3×(2×BSF) (14.14)
    assert carriers == {"outer_race": [3.58, 7.17], "inner_race": [5.42, 16.25], "ball": [4.71, 9.43]}
    assert lines["inner_race"][0][1] == pytest.approx((G.bpfi - 1, G.bpfi + 1))


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


def _frames(x: np.ndarray) -> np.ndarray:
    n = x.shape[0] // L
    return x[: n * L].reshape(n, L)


@pytest.mark.parametrize("rpm", [1797.0, 1200.0, 2400.0])
def test_synthetic_faults_are_named_at_any_speed(rpm):
    cases = {"outer_race": _bearing_signal(G.bpfo, rpm, seed=1),
             "inner_race": _bearing_signal(G.bpfi, rpm, modulate=1.0, depth=0.8, seed=2),
             "ball": _bearing_signal(2 * G.bsf, rpm, modulate=G.ftf, depth=0.8, seed=3)}
    for fault, x in cases.items():
        v = bearing.verdicts(bearing.window_evidence(_frames(x), FS, rpm, G))
        # measured: 0.65–1.0 of 0.34 s windows named right (fewest for the ball at 2400 rpm), none wrong
        assert np.mean(v == fault) >= 0.6, (fault, rpm, v)
        assert np.isin(v, [fault, "unknown"]).all(), (fault, rpm, v)
        rec = bearing.recording_verdict(bearing.window_evidence(_frames(x), FS, rpm, G))
        assert rec.verdict == fault and bearing.FAMILY_TEXT[fault] in rec.text and "× the floor" in rec.text


def test_whitening_recovers_a_fault_the_discrete_lines_hide():
    # under shaft and gear-mesh lines far stronger than the impacts the plain envelope sees no
    # outer-race pattern, the whitened one does (measured: 1.0 of windows vs 0.0)
    x = _bearing_signal(G.bpfo, 1797.0, seed=7)
    whitened = bearing.verdicts(bearing.window_evidence(_frames(x), FS, 1797.0, G))
    plain = bearing.verdicts(bearing.window_evidence(_frames(x), FS, 1797.0, G, prewhiten=False))
    assert np.mean(whitened == "outer_race") >= 0.9 and np.mean(plain == "outer_race") <= 0.1, (whitened, plain)


def test_noise_is_unknown_and_the_rule_constants_hold_against_noise():
    # the verdict's floor and ratio are set so white noise is named in ~1 % of windows or fewer
    assert bearing.noise_named_share(L, n_windows=2000) <= 0.01  # measured 0.004 (3000 windows)
    x = np.random.default_rng(5).standard_normal((40, L))
    ev = bearing.window_evidence(x, FS, 1797.0, G)
    assert np.median(ev) == pytest.approx(1.0, abs=0.15)  # evidence is in multiples of what noise gives
    rec = bearing.recording_verdict(ev)
    assert rec.verdict == "unknown" and "no fault family stands out" in rec.text


def test_recording_verdict_rule_and_words():
    ev = np.array([[8.7, 1.1, 1.0]] * 5 + [[1.0, 1.0, 1.0]] * 2)
    v = bearing.recording_verdict(ev, band_text=" in 0.1–6 kHz")
    assert v.verdict == "outer_race" and v.text.startswith("outer race: BPFO harmonics 1–3 at 8.7× the floor in 0.1–6 kHz")
    assert v.window_share == pytest.approx({"outer_race": 5 / 7, "unknown": 2 / 7})
    close = bearing.recording_verdict(np.array([[3.0, 2.5, 1.0]]))
    assert close.verdict == "unknown" and "less than 1.5× apart" in close.text
    assert bearing.recording_verdict(np.full((3, 3), np.nan)).verdict == "unknown"


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
            assert bearing.recording_verdict(r.evidence["cpw_full"]).verdict == r.fault, r.file


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


def test_cwru_knn_from_one_recording_per_class_transfers(cwru):
    bench, records = cwru
    normal = [r for r in records if r.fault == "normal"]
    s = bench.knn_scores([r for r in records if r.fault != "normal"], bench.KNN, normal)
    # one recording per class labelled at one (load, size); the other nine recordings scored; the
    # centroid share is calibrated on the labelled condition alone (measured 0.4, 0.4, 0, 0)
    assert all(0.0 <= v <= 0.5 for v in s["shares"]) and max(s["shares"]) > 0, s["shares"]
    assert s["answered_right"] >= 0.99                # measured 0.996
    assert s["abstention"]["outer_race"] <= 0.12      # measured 0.103 (0.29 without the centroid share)
    assert s["abstention"]["inner_race"] <= 0.07      # measured 0.052
    assert s["abstention"]["ball"] <= 0.07            # measured 0.046
    for fault, share in s["unseen_abstention"].items():  # never labelled: abstained
        assert share >= 0.9, (fault, share)          # measured outer 1.0, inner 0.92, ball 0.998
    # the known weakness: healthy windows fall inside the ball class (measured: abstained 0.018)
    assert s["normal_abstention"] <= 0.1


def test_cwru_knn_with_normal_labelled_calls_the_ball_healthy(cwru):
    bench, records = cwru
    _, rows = bench.normal_labelled(records)
    for row in rows:  # Normal_0 + one inner- and one outer-race recording labelled per condition, ball never
        assert row["race_right"] >= 0.92, row        # measured 0.94–0.99
        assert row["race_abstained"] <= row["race_abstained_without"], row  # 1–6 % (6–40 % without the share)
        assert row["ball_normal"] >= 0.8, row         # measured 0.86–0.91: the known weakness, pinned


def test_cwru_knn_centroid_share_is_what_lowers_the_abstention(cwru):
    bench, records = cwru
    faults = [r for r in records if r.fault != "normal"]
    before = bench.knn_scores(faults, {**bench.KNN, "calibrate": False})
    # measured 0.29 without the share: the own spread of one recording is too narrow to transfer
    assert before["abstention"]["outer_race"] >= 0.25


# -- the product path -----------------------------------------------------------------------------

def test_ingest_stores_evidence_and_vibra_diagnose_names_the_fault(tmp_path, real_data):
    from vibra_pipelines import diagnose, ingest

    ws, _ = init_workspace(tmp_path / "ws")
    ws.config_path.write_text(CWRU_PHYSICS_TOML)
    names = ["OR021@6_1.mat", "IR021_1.mat", "B007_0.mat"]
    src = stage([real_data / "cwru_12k_de" / n for n in names], tmp_path / "src" / "cwru-de", hour_apart=True)
    assert ingest.run(ws, load_settings(ws.config_path, {}), src).failed == 0
    result = diagnose.run(ws, load_settings(ws.config_path, {}))
    got = {r["recording_id"]: r for r in result.recordings}
    assert len(got) == 3 and [r["first"] for r in result.recordings] == sorted(
        [r["first"] for r in result.recordings], reverse=True)  # newest first
    verdicts = sorted((r["verdict"], r["channel"]) for r in result.recordings)
    # drive-end channel names the race faults; the ball file stays unknown rather than a wrong race
    assert ("inner_race", "DE") in verdicts and ("outer_race", "DE") in verdicts
    assert sum(v == "unknown" for v, _ in verdicts) == 1
    outer = next(r for r in result.recordings if r["verdict"] == "outer_race")
    assert outer["text"].startswith("outer race: BPFO harmonics 1–3 at") and outer["evidence"]["outer_race"] >= 2.0
    assert " the floor in 0–6 kHz" in outer["text"]  # the whitened full band of a 12 kHz recording
    out = run_vibra("diagnose", "--json", "--home", str(ws.root), check=True)
    payload = json.loads(out.stdout)
    assert {r["verdict"] for r in payload["recordings"]} == {"outer_race", "inner_race", "unknown"}
    assert "≥ 2" in payload["rule"]
