"""Recording-level bearing diagnosis on real data (issue 31); writes its section of BENCHMARKS.md.

Run with ``just bench-real`` or ``.venv/bin/python benchmarks/real_recording.py [--out BENCHMARKS.md]``.

Protocol. Every shared CWRU recording, read as ingest reads it (:class:`vibra.diagnosis.recording.
SpectrumAccumulator`: the whitened SES of 1 s windows — 16,384 samples at 12 kHz, hop half a window —
averaged over the recording; float32 as ingest):

* **The family rule, leave one condition out** on the 12 drive-end fault recordings: the statistic
  (mean over lines, strongest line, significance sum) and whether the ball reads its odd BSF lines are
  chosen on one condition (0 hp, 1 hp, 0.007 in, 0.021 in: most right, then fewest wrong, then the
  largest margin over the rule on the diagnosable recordings) and scored on the other. The rule's floor
  (2× noise) and ratio (1.5×) are not re-chosen: they come from white noise.
* **The product's rule** (the one chosen on 3 of 4 tuning conditions) per file, with the window shares
  beside it; white-noise recordings (10 s at 12 kHz) scored by the same rule.
* **Fan end** (``cwru_12k_fe``, SKF 6203, fault in the fan-end bearing): the fan-end channel read with
  the 6203 geometry by the product's rule, nothing re-chosen.
* **Running speed from the spectrum** (:func:`vibra.physics.speed.estimate_rpm`): searched within ±10 %
  of the nominal speed as for a recording without rpm, against the file's RPM (CWRU), the test's
  nominal speed (FEMTO, IMS).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import itertools
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from real import REAL  # noqa: E402  the real-data location, shared with the other real-data benchmarks

from vibra.diagnosis import bearing, recording  # noqa: E402
from vibra.ingest.features import EVIDENCE_DTYPE  # noqa: E402
from vibra.physics.bearing import Geometry  # noqa: E402
from vibra.physics.speed import estimate_rpm  # noqa: E402
from vibra.settings import Bearing, FeatureSettings  # noqa: E402

START_MARK, END_MARK = "<!-- recording-diagnosis:start -->", "<!-- recording-diagnosis:end -->"
B6205 = Bearing(9, 7.94, 39.04, 0.0)
B6203 = Bearing(8, 6.746, 28.499, 0.0)
FEMTO_BEARING = Bearing(13, 3.5, 25.6, 0.0)
IMS_BEARING = Bearing(16, 0.331 * 25.4, 2.815 * 25.4, 15.17)
WINDOW_S = FeatureSettings().diagnosis_window_s
SEARCH = FeatureSettings().rpm_search
CANDIDATES = tuple(itertools.product(bearing.STATISTICS, (False, True)))
PRODUCT = (bearing.STATISTIC, bearing.BALL_ODD)
# Smith & Randall (2015), MSSP 64-65, Table B2: each 12 kHz drive-end record's grade on the drive-end channel,
# the best over their three methods (Y1 classic / Y2 non-classic: diagnosable; P1 / P2: partly; N1 / N2: not),
# the method in brackets where method 1 (raw-signal envelope) did not reach it. Read from two transcriptions of
# the table that agree on every record they share (no copy of the paper reachable here): the Vibration_Analysis
# project's reading notes (github.com/Nyfeu/Vibration_Analysis, docs/records/smith2015.md) and the
# bearings-adventure report (github.com/Mmaotttt/bearings-adventure, report/FACTS.md). Their Table B4 (fan end)
# was found in no transcription: the fan-end rows say so.
LITERATURE = {"IR007_0": "Y2 (record 105)", "IR007_1": "Y2 (106)", "B007_0": "N1 (118; no method)",
              "B007_1": "N1 (119; no method)", "OR007@6_0": "Y1 (130)", "OR007@6_1": "Y1 (131)",
              "IR021_0": "Y1 (209)", "IR021_1": "Y1 (210)", "B021_0": "Y2 (222; method 2, P1 by method 1)",
              "B021_1": "Y2 (223)", "OR021@6_0": "Y2 (234)", "OR021@6_1": "Y2 (235)"}


def agrees(grade: str, fault: str, verdict_: str) -> bool:
    """A Y grade wants the fault named, an N grade no fault named; a P grade (partly) accepts either."""
    if grade.startswith("Y"):
        return verdict_ == fault
    if grade.startswith("N"):
        return not bearing.named(verdict_)
    return not bearing.named(verdict_) or verdict_ == fault


@dataclass
class Rec:
    file: str
    fault: str
    load_hp: str
    size_in: str
    rpm: float
    nominal_rpm: float
    fs: float
    geometry: Geometry
    spectrum: recording.RecordingSpectrum
    window_evidence: np.ndarray

    def evidence(self, statistic: str = PRODUCT[0], ball_odd: bool = PRODUCT[1]) -> np.ndarray:
        return recording.recording_evidence(self.spectrum, self.rpm, self.geometry, statistic=statistic,
                                            ball_odd=ball_odd)

    @property
    def diagnosable(self) -> bool:  # what the targets count as a fault to name
        return self.fault not in ("normal",) and not (self.fault == "ball" and self.size_in == "0.007")


def read_spectrum(x: np.ndarray, fs: float) -> recording.RecordingSpectrum:
    acc = recording.SpectrumAccumulator(fs, recording.frame_length_for(WINDOW_S, fs), EVIDENCE_DTYPE)
    acc.feed(x)
    return acc.finish()


def load(folder_name: str, geometry_bearing: Bearing) -> list[Rec]:
    import scipy.io
    import scipy.signal

    folder = REAL / folder_name
    g = Geometry.of(geometry_bearing)
    out = []
    for row in csv.DictReader((folder / "labels.csv").open()):
        x = np.asarray(scipy.io.loadmat(str(folder / row["file"]))[row["de_key"]], dtype=np.float64).ravel()
        fs, rpm = float(row["sample_rate_hz"]), float(row["rpm_in_file"])
        if fs == 48_000:  # Normal_0: the other acquisition chain; brought to 12 kHz like the faults
            x, fs = scipy.signal.decimate(x, 4, ftype="fir", zero_phase=True), 12_000.0
        n = x.shape[0] // 4096
        win = bearing.window_evidence(x[: n * 4096].reshape(n, 4096).astype(EVIDENCE_DTYPE), fs, rpm, g)
        out.append(Rec(row["file"].removesuffix(".mat"), row["fault_type"], row["load_hp"],
                       row["fault_diameter_in"] or "-", rpm, float(row["nominal_rpm"]), fs, g, read_spectrum(x, fs), win))
    return out


def verdict(e: np.ndarray) -> str:
    return str(bearing.verdicts(e[None, :])[0])


def score(recs: list[Rec], cand) -> dict:
    """Recordings named right / wrong (another family) among the diagnosable ones, and the smallest margin."""
    right = wrong = 0
    margin = np.inf
    for r in recs:
        e = r.evidence(*cand)
        v = verdict(e)
        if r.diagnosable:
            right += v == r.fault
            j = bearing.FAMILIES.index(r.fault)
            second = float(np.max(np.delete(e, j)))
            margin = min(margin, e[j] / bearing.FLOOR, e[j] / (bearing.RATIO * second))
        if bearing.named(v) and v != r.fault:
            wrong += 1
    n = sum(r.diagnosable for r in recs)
    return {"right": right, "n": n, "wrong": wrong, "margin": float(margin)}


def choose(recs: list[Rec]):
    """The candidate with the most right, then the fewest wrong, then the largest margin (ties: listed first)."""
    return max(CANDIDATES, key=lambda c: (score(recs, c)["right"], -score(recs, c)["wrong"], score(recs, c)["margin"]))


FOLDS = (("load 0 hp → 1 hp", lambda r: r.load_hp == "0"), ("load 1 hp → 0 hp", lambda r: r.load_hp == "1"),
         ("0.007 in → 0.021 in", lambda r: r.size_in == "0.007"), ("0.021 in → 0.007 in", lambda r: r.size_in == "0.021"))


def loco(faults: list[Rec]) -> list[dict]:
    rows = []
    for name, tune in FOLDS:
        a = [r for r in faults if tune(r)]
        b = [r for r in faults if not tune(r)]
        c = choose(a)
        rows.append({"fold": name, "chosen": c, "tuned": score(a, c), "scored": score(b, c),
                     "scored_files": {r.file: verdict(r.evidence(*c)) for r in b}})
    return rows


def noise_named(g: Geometry, n: int = 300, seconds: float = 10.0, fs: float = 12_000.0, rpm: float = 1797.0,
                seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    named = 0
    for _ in range(n):
        sp = read_spectrum(rng.standard_normal(int(seconds * fs)), fs)
        named += bool(bearing.named(verdict(recording.recording_evidence(sp, rpm, g))))
    return named / n


def cand_text(c) -> str:
    return f"{bearing.STATISTIC_TEXT[c[0]]} lines" + (", odd BSF too" if c[1] else "")


def window_share_text(r: Rec) -> str:
    v = bearing.verdicts(r.window_evidence)
    names, counts = np.unique(v, return_counts=True)
    return ", ".join(f"{k.replace('_', ' ')} {100 * c / v.shape[0]:.0f} %" for k, c in
                     sorted(zip(names, counts), key=lambda t: -t[1]))


def evidence_text(e: np.ndarray) -> str:
    return " / ".join(f"{v:.1f}" for v in e)


def speed(recs: list[Rec]) -> list[tuple[str, float, float, bool]]:
    """(file, rpm in the file, estimated rpm, trusted) per recording."""
    out = []
    for r in recs:
        e = estimate_rpm(r.spectrum.speed_freqs_hz, r.spectrum.power, r.nominal_rpm * (1 - SEARCH),
                         r.nominal_rpm * (1 + SEARCH))
        out.append((r.file, r.rpm, float("nan") if e is None else e.rpm, e is not None and e.trusted))
    return out


def femto_ims_speed() -> list[str]:
    lines = []
    rpm_of = {"1": 1800.0, "2": 1650.0, "3": 1500.0}
    femto = REAL / "femto_learning"
    for b in sorted(femto.glob("Bearing*")) if femto.exists() else []:
        files = sorted(b.glob("acc_*.csv*"), key=lambda p: int(re.search(r"acc_(\d+)", p.name)[1]))[:20]
        errs, trusted = [], []
        for p in files:
            with (gzip.open if p.suffix == ".gz" else open)(p, "rt") as fh:
                x = np.loadtxt(fh, delimiter=",")[:, 4]
            sp = read_spectrum(x, 25_600.0)
            nominal = rpm_of[b.name[7]]
            e = estimate_rpm(sp.speed_freqs_hz, sp.power, nominal * (1 - SEARCH), nominal * (1 + SEARCH))
            errs.append(np.nan if e is None else 100 * (e.rpm - nominal) / nominal)
            trusted.append(e is not None and e.trusted)
        errs = np.array(errs)
        lines.append(f"| FEMTO {b.name} (first {len(files)} snapshots, 0.1 s each, horizontal) | {rpm_of[b.name[7]]:g} | "
                     f"{np.nanmedian(errs):+.2f} % | {np.nanmax(np.abs(errs)):.2f} % | "
                     f"{100 * np.mean(np.abs(errs) <= 1):.0f} % | {100 * np.mean(trusted):.0f} % |")
    ims = REAL / "ims_raw_test1"
    files = sorted(p for p in ims.iterdir() if re.fullmatch(r"[\d.]+", p.name)) if ims.exists() else []
    errs, trusted = [], []
    for p in files:
        data = np.loadtxt(p)
        for ch in range(data.shape[1]):
            sp = read_spectrum(data[:, ch], 20_000.0)
            e = estimate_rpm(sp.speed_freqs_hz, sp.power, 2000 * (1 - SEARCH), 2000 * (1 + SEARCH))
            errs.append(np.nan if e is None else 100 * (e.rpm - 2000) / 2000)
            trusted.append(e is not None and e.trusted)
    if errs:
        errs = np.array(errs)
        lines.append(f"| IMS test 1 ({len(files)} snapshots × 8 channels, 1 s each) | 2000 | {np.nanmedian(errs):+.2f} % | "
                     f"{np.nanmax(np.abs(errs)):.2f} % | {100 * np.mean(np.abs(errs) <= 1):.0f} % | "
                     f"{100 * np.mean(trusted):.0f} % |")
    return lines


def section() -> tuple[list[str], dict]:
    de = load("cwru_12k_de", B6205)
    faults = [r for r in de if r.fault != "normal"]
    figures: dict = {}
    lines = ["## CWRU bearing diagnosis at recording level (issue 31)", "",
             f"Per recording and channel, the cepstrally pre-whitened squared envelope spectrum of {WINDOW_S:g} s windows "
             "(16,384 samples at 12 kHz, hop half a window) averaged over the whole recording (~13 windows of a 10 s "
             "file); each family's lines read in orders over their local floor, combined by the family rule, divided "
             "by what white-noise recordings of the same length give (`vibra.diagnosis.recording`). Verdict: a family "
             f"at ≥ {bearing.FLOOR:g}× noise and ≥ {bearing.RATIO:g}× the next; `no_fault_evidence` below the floor; "
             "`ambiguous` when two stand within the ratio. Nothing below was chosen on the recordings it is scored on, "
             "except where said.", "",
             "### The family rule, chosen on one condition and scored on the other", "",
             "Candidates: the mean of a family's line strengths (the previous rule), its strongest line, or a "
             "significance sum 1 + Σ max(r − 1, 0); the ball with or without its odd BSF lines (1×, 3×). Chosen on the "
             "tuning condition by most recordings named right, then fewest wrong, then the largest margin over the "
             "rule (smallest of top ÷ floor and top ÷ (ratio × next) over the diagnosable recordings). The 0.007 in "
             "ball recordings count only as \"not called a race fault\".", "",
             "| tuned on → scored on | chosen | tuning: right / wrong / margin | scored: right / wrong / margin |",
             "|---|---|---|---|"]
    rows = loco(faults)
    figures["loco"] = rows
    for row in rows:
        t, s = row["tuned"], row["scored"]
        lines.append(f"| {row['fold']} | {cand_text(row['chosen'])} | {t['right']}/{t['n']} / {t['wrong']} / "
                     f"{t['margin']:.2f} | **{s['right']}/{s['n']}** / {s['wrong']} / {s['margin']:.2f} |")
    lines += ["", "Every candidate over all 12 fault recordings (right of 10 diagnosable / wrong / margin):", "",
              "| rule | right | wrong | margin |", "|---|---|---|---|"]
    for c in CANDIDATES:
        s = score(faults, c)
        lines.append(f"| {cand_text(c)}{' (product)' if c == PRODUCT else ''} | {s['right']}/{s['n']} | {s['wrong']} | "
                     f"{s['margin']:.2f} |")
    lines += ["", f"The product keeps **{cand_text(PRODUCT)}**: chosen on three of the four tuning conditions (the "
              "fourth chose the same sum without the odd BSF lines). All candidates name every diagnosable "
              "recording at recording level; the sum stands furthest above the rule.", ""]
    # product rule per file
    noise = noise_named(Geometry.of(B6205))
    figures["noise_named"] = noise
    lines += ["### The product's rule per file (drive end)", "",
              f"White Gaussian noise (300 recordings of 10 s at 12 kHz, 6205 at 1797 r/min): named a fault in "
              f"**{100 * noise:.1f} %**.", "",
              "| file | fault | load (hp) | size (in) | rpm (file) | evidence outer / inner / ball (× noise) | verdict | "
              "window shares (0.34 s windows, secondary) | Smith & Randall (2015) |", "|---|---|---|---|---|---|---|---|---|"]
    per_file = {}
    for r in de:
        e = r.evidence()
        v = verdict(e)
        per_file[r.file] = v
        ok = (v == r.fault) if r.diagnosable else (not bearing.named(v) or v == r.fault)
        mark = "" if ok else " **(bad)**"
        lines.append(f"| {r.file} | {r.fault.replace('_', ' ')} | {r.load_hp} | {r.size_in} | {r.rpm:g} | "
                     f"{evidence_text(e)} | {v.replace('_', ' ')}{mark} | {window_share_text(r)} | "
                     f"{LITERATURE.get(r.file, '— (healthy record, not graded)')} |")
    figures["de"] = per_file
    race = [r for r in faults if r.fault != "ball"]
    n_right = sum(per_file[r.file] == r.fault for r in race)
    wrong = sum(bearing.named(per_file[r.file]) and per_file[r.file] != r.fault for r in faults)
    lines += ["", f"Race faults named right: **{n_right}/{len(race)}**; wrong family named: **{wrong}**; "
              f"0.021 in ball named ball: {sum(per_file[f] == 'ball' for f in ('B021_0', 'B021_1'))}/2; 0.007 in ball "
              f"called a race fault: {sum(per_file[f] in ('outer_race', 'inner_race') for f in ('B007_0', 'B007_1'))}/2. "
              "Normal_0 (the other acquisition chain, decimated to 12 kHz) is the healthy row. Agreement with "
              "Smith & Randall's grades (a Y grade wants the fault named, an N grade no fault named): "
              f"**{sum(agrees(LITERATURE[r.file], r.fault, per_file[r.file]) for r in faults)}/{len(faults)}** "
              "fault records.", ""]
    # fan end
    fe = load("cwru_12k_fe", B6203)
    noise_fe = noise_named(Geometry.of(B6203), n=100, seed=1)
    lines += ["### Fan end (SKF 6203): the same rule, nothing re-chosen", "",
              "Fan-end channel, 6203 geometry (8 balls; BPFO 3.053, BPFI 4.947, 2×BSF 3.978 orders), rpm from each "
              f"file. White noise through the 6203 chain (100 recordings): named {100 * noise_fe:.0f} %.", "",
              "| file | fault | size (in) | position | evidence outer / inner / ball | verdict (FE channel) | window shares |",
              "|---|---|---|---|---|---|---|"]
    fe_v = {}
    positions = {r["file"].removesuffix(".mat"): r["outer_race_position"]
                 for r in csv.DictReader((REAL / "cwru_12k_fe" / "labels.csv").open())}
    for r in fe:
        e = r.evidence()
        v = verdict(e)
        fe_v[r.file] = v
        bad = " **(wrong)**" if bearing.named(v) and v != r.fault else ""
        lines.append(f"| {r.file} | {r.fault.replace('_', ' ')} | {r.size_in} | {positions[r.file] or '-'} | "
                     f"{evidence_text(e)} | {v.replace('_', ' ')}{bad} | {window_share_text(r)} |")
    figures["fe"] = fe_v
    fe_race = [r for r in fe if r.fault != "ball"]
    lines += ["", f"Fan end: race faults named right {sum(fe_v[r.file] == r.fault for r in fe_race)}/{len(fe_race)}, "
              f"ball {sum(fe_v[r.file] == 'ball' for r in fe if r.fault == 'ball')}/3, wrong family named "
              f"**{sum(bearing.named(v) and v != r.fault for r, v in zip(fe, fe_v.values()))}**. Noticed, not acted on "
              "(it would be tuning on these files): the 6203's 1×BSF (1.99 orders) sits on the 2× shaft harmonic and "
              "its BPFO (3.05) beside 3× — Smith & Randall report fan-end lines that \"lock onto\" shaft harmonics — "
              "so the odd BSF lines lift the ball evidence of some fan-end race recordings (OR007@3: ambiguous). "
              "Smith & Randall's fan-end grades (their Table B4) were found in no transcription, so this table has no "
              "literature column; the reading notes of their text call ball faults the hardest case at both bearings.", ""]
    # speed
    lines += ["### Running speed from the spectrum", "",
              "Harmonic sum over 1×–8× of the line prominence (dB over the running median, capped at 20 dB) in the "
              f"averaged Hann power spectrum of 4 s windows (`vibra.physics.speed`), searched within ±{100 * SEARCH:g} % "
              "of the nominal speed, as for a recording that states none. **Disclosed**: the 4 s speed window was set "
              "after the 1 s diagnosis windows put two fan-end outer-race files 1.5–1.7 % off (their BPFO, 3.05 "
              "orders, two bins from 3×).", "",
              "| file | rpm in file | estimated | error | trusted |", "|---|---|---|---|---|"]
    errs = []
    for tag, recs in (("DE", de), ("FE", fe)):
        for name, stated, est, trusted in speed(recs):
            err = 100 * (est - stated) / stated
            errs.append(err)
            lines.append(f"| {tag} {name} | {stated:g} | {est:.1f} | {err:+.2f} %{' **(bad)**' if abs(err) > 1 else ''} | "
                         f"{'yes' if trusted else '**no**'} |")
    figures["rpm_max_error_pct"] = float(np.nanmax(np.abs(errs)))
    lines += ["", f"Largest error on the {len(errs)} CWRU recordings: **{figures['rpm_max_error_pct']:.2f} %** "
              "(target: within 1 % on every one).", "",
              "| data | nominal rpm | median error | largest error | within 1 % | trusted (used by the diagnosis) |",
              "|---|---|---|---|---|---|"]
    lines += femto_ims_speed()
    lines += ["", "FEMTO snapshots are 0.1 s long (10 Hz bins, a third of the shaft rate) and IMS snapshots 1 s: the "
              "speed cannot be read to 1 % from one of them, and the estimate is rarely trusted there — an untrusted "
              "estimate is never used (the nominal rpm is). Trusted = a spectrum bin ≤ 1 % of the shaft rate (4 s windows "
              "at 12 kHz: 0.6 %; 0.1 s: 33 %) and harmonics ≥ 8 dB over the floor on average, "
              "above the best white noise reaches (2.4–5.6 dB in 45 noise recordings); the CWRU files score "
              "13–19 dB. **Disclosed**: this threshold was raised from 3 dB after seeing the IMS scores (3–7 dB) — "
              "the new value is set from noise, not from IMS.", ""]
    return lines, figures


def write_section(path: Path, body: str) -> None:
    """Replace the text between the markers (or insert the section before the window-level one)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{START_MARK}\n{body.rstrip()}\n{END_MARK}"
    if START_MARK in text and END_MARK in text:
        head, rest = text.split(START_MARK, 1)
        text = head + block + rest.split(END_MARK, 1)[1]
    elif "<!-- real-diagnosis:start -->" in text:
        head, rest = text.split("<!-- real-diagnosis:start -->", 1)
        text = head + block + "\n\n<!-- real-diagnosis:start -->" + rest
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args()
    if not (REAL / "cwru_12k_de").exists():
        sys.exit(f"real data not found at {REAL}; set VIBRA_REAL_DATA")
    lines, _ = section()
    head = [f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `just bench-real` (benchmarks/real_recording.py).", ""]
    write_section(Path(args.out), "\n".join(head + lines))
    print(f"wrote the recording-level diagnosis section of {args.out}")


if __name__ == "__main__":
    main()
