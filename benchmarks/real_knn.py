"""The defect kNN on real bearings (issue 31 item 6), leave one condition out; writes its section of BENCHMARKS.md.

Run with ``just bench-real`` or ``.venv/bin/python benchmarks/real_knn.py [--out BENCHMARKS.md]``.

Protocol. Every recording read as ingest reads it (:func:`vibra.ingest.features.compute`, the product's
defaults): its windows' embedding (revision 3: with the profile of the channel's recording-level evidence)
and the kNN of :mod:`vibra.discovery.knn` with the product's ``[defects]`` settings and evidence gate.

* **Drive end, leave one condition out** (``cwru_12k_de``, DE channel, SKF 6205): the three fault recordings of
  one (load, size) condition labelled (0 hp / 1 hp × 0.007 / 0.021 in); every window of the other nine fault
  recordings and of Normal_0 scored. Per recording the majority answer of its windows. Everything the kNN
  calibrates (radii, centroid share) comes from the labelled recordings of the fold.
* **Fan end** (``cwru_12k_fe``, FE channel, SKF 6203, fault in the fan-end bearing): each of the four
  drive-end models scores the 11 fan-end recordings, nothing re-chosen (labels from another bearing, other
  sensor position).
* **Before**: the same folds with the revision-2 embedding (without the recording profile) and no evidence gate —
  the kNN that learned "ball" as "no race evidence".

The trap: CWRU's only healthy recording (Normal_0) comes from another acquisition chain (48 kHz, decimated to
12 kHz here), so anything that separates it may be separating the chain, not the health.

The figures are written between ``<!-- real-knn:start -->`` and ``<!-- real-knn:end -->``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from real import REAL  # noqa: E402
from common import write_between  # noqa: E402

from vibra.diagnosis.bearing import FLOOR, NO_EVIDENCE  # noqa: E402
from vibra.discovery import embedding, knn  # noqa: E402
from vibra.physics.indicators import PhysicsInputs  # noqa: E402
from vibra.settings import Bearing, DefectSettings, FeatureSettings  # noqa: E402
from vibra.signal.indicators import band_column  # noqa: E402

START_MARK, END_MARK = "<!-- real-knn:start -->", "<!-- real-knn:end -->"
B6205 = Bearing(9, 7.94, 39.04, 0.0)
B6203 = Bearing(8, 6.746, 28.499, 0.0)
FAULTS = ("outer_race", "inner_race", "ball")
ANSWERS = (*FAULTS, "normal", NO_EVIDENCE, knn.UNKNOWN)
CONDITIONS = [(0, "0.007"), (1, "0.007"), (0, "0.021"), (1, "0.021")]
_D = DefectSettings()
KNN = {"k": _D.k, "radius_quantile": _D.radius_quantile, "radius_factor": _D.radius_factor}
# revision 2's evidence dimensions: each window's own evidence (for the "before" rows)
REV2 = tuple(d for d in embedding._DIMENSIONS if d[2] != "evidence_profile")


@dataclass(eq=False)  # compared by identity
class Rec:
    file: str
    fault: str
    load_hp: int
    size_in: str
    x: np.ndarray        # revision-3 embedding rows
    x_before: np.ndarray  # revision-2 embedding rows
    recording_evidence: np.ndarray  # (3,) outer, inner, ball (× noise)


def load(folder: str, geometry: Bearing) -> list[Rec]:
    import scipy.io
    import scipy.signal

    from vibra.ingest import features

    params = FeatureSettings()
    bands = [band_column(lo, hi) for lo, hi in params.bands_hz]
    out = []
    for row in csv.DictReader((REAL / folder / "labels.csv").open()):
        v = scipy.io.loadmat(str(REAL / folder / row["file"]))
        x = np.asarray(v[row["de_key"]], dtype=np.float64).ravel()
        fs, rpm = float(row["sample_rate_hz"]), float(row["rpm_in_file"])
        if fs == 48_000:  # Normal_0: the other acquisition chain; brought to 12 kHz like the faults
            x, fs = scipy.signal.decimate(x, 4, ftype="fir", zero_phase=True), 12_000.0
        table = features.compute([x[:, None]], ["ch"], sample_rate_hz=fs, start=datetime(2026, 1, 1, tzinfo=timezone.utc),
                                 params=params, equipment_id=folder, recording_id=row["file"],
                                 machine=PhysicsInputs(units="g", rpm=rpm, bearing=geometry)).table
        cols = {c: table[c].to_numpy() for c in table.columns if table[c].dtype.is_numeric()}
        saved = embedding._DIMENSIONS
        try:
            embedding._DIMENSIONS = REV2
            before = embedding.vectors(cols, bands, fs)
        finally:
            embedding._DIMENSIONS = saved
        out.append(Rec(file=row["file"].removesuffix(".mat"), fault=row["fault_type"], load_hp=int(row["load_hp"]),
                       size_in=row["fault_diameter_in"] or "-", x=embedding.matrix(table), x_before=before,
                       recording_evidence=np.array([cols[f"recording_evidence_{f}"][0] for f in FAULTS])))
    return out


def fit(train: list[Rec], gated: bool, extra: list[Rec] = ()) -> knn.KnnModel:
    recs = [*train, *extra]
    x = np.vstack([r.x if gated else r.x_before for r in recs])
    y = np.concatenate([[r.fault] * r.x.shape[0] for r in recs])
    return knn.fit(x, y, **KNN, evidence=embedding.has_evidence(x) if gated else None)


def answer(model: knn.KnnModel, r: Rec, gated: bool) -> np.ndarray:
    x = r.x if gated else r.x_before
    return knn.predict(model, x, evidence=embedding.has_evidence(x) if gated else None,
                       named=embedding.named_families(x) if gated else None)[0]


def majority(v: np.ndarray) -> str:
    names, counts = np.unique(v, return_counts=True)
    return str(names[np.argmax(counts)])


def folds(de: list[Rec], fe: list[Rec], gated: bool) -> list[dict]:
    """One row per (labelled condition, scored recording): the windows' answers."""
    faults = [r for r in de if r.fault != "normal"]
    rows = []
    for load_hp, size in CONDITIONS:
        train = [r for r in faults if r.load_hp == load_hp and r.size_in == size]
        model = fit(train, gated)
        for r in [*(r for r in de if r not in train), *fe]:
            got = answer(model, r, gated)
            rows.append({"condition": f"{load_hp} hp, {size} in", "set": "fe" if r in fe else "de", "rec": r,
                         "answers": got, "majority": majority(got), "unlearned": model.unlearned,
                         "learned": set(model.classes)})
    model = fit(faults, gated)  # the whole drive-end library, as a user would label it, scores the other bearing
    for r in fe:
        got = answer(model, r, gated)
        rows.append({"condition": "all drive-end faults", "set": "fe_all", "rec": r, "answers": got,
                     "majority": majority(got), "unlearned": model.unlearned, "learned": set(model.classes)})
    return rows


def pct(v: float) -> str:
    return "—" if v != v else f"{100 * v:.0f} %"


def per_class(rows: list[dict]) -> list[str]:
    """Window-level precision / recall / abstention per true class, and per recording by majority."""
    truth = np.concatenate([[r["rec"].fault] * r["answers"].shape[0] for r in rows])
    got = np.concatenate([r["answers"] for r in rows])
    rt = np.array([r["rec"].fault for r in rows])
    rg = np.array([r["majority"] for r in rows])
    out = ["| class | windows | precision | recall | abstained (unknown / no evidence) | recordings right by majority "
           "| recordings named another fault |", "|---|---|---|---|---|---|---|"]
    for c in (*FAULTS, "normal"):
        mine = truth == c
        if not mine.any():
            continue
        said = got == c
        prec = float(np.mean(truth[said] == c)) if said.any() else float("nan")
        wrong = int(np.sum((rt == c) & np.isin(rg, [f for f in FAULTS if f != c])))
        out.append(f"| {c.replace('_', ' ')} | {int(mine.sum())} | {pct(prec)} | "
                   f"{pct(np.mean(got[mine] == c)) if c != 'normal' else '— (never labelled)'} | "
                   f"{pct(np.mean(got[mine] == knn.UNKNOWN))} / {pct(np.mean(got[mine] == NO_EVIDENCE))} | "
                   f"{int(np.sum((rt == c) & (rg == c)))}/{int(np.sum(rt == c))} | {wrong} |")
    return out


def recording_rows(rows: list[dict]) -> list[str]:
    out = ["| labelled condition | recording | true | recording evidence outer / inner / ball (× noise) | majority | "
           "answers (share of windows) |", "|---|---|---|---|---|---|"]
    for r in rows:
        rec = r["rec"]
        names, counts = np.unique(r["answers"], return_counts=True)
        order = np.argsort(-counts)
        mix = ", ".join(f"{names[i]} {pct(counts[i] / r['answers'].shape[0])}" for i in order)
        ok = r["majority"] == rec.fault
        bad = "" if ok else " ✗"
        out.append(f"| {r['condition']} | {rec.file} | {rec.fault} | "
                   + " / ".join(f"{e:.1f}" for e in rec.recording_evidence)
                   + f" | {'**' if not ok else ''}{r['majority']}{'**' if not ok else ''}{bad} | {mix} |")
    return out


def scorable(row: dict) -> bool:
    """Whether a score could be right: its class was learned in the fold and its recording reaches the floor."""
    return row["rec"].fault in row["learned"] and float(row["rec"].recording_evidence.max()) >= FLOOR


def tally(rows: list[dict]) -> tuple[int, int, int, int, int, int]:
    """(fault recordings right, scored, named another fault, abstained, right of the scorable, scorable)."""
    f = [r for r in rows if r["rec"].fault != "normal"]
    right = sum(r["majority"] == r["rec"].fault for r in f)
    wrong = sum(r["majority"] in FAULTS and r["majority"] != r["rec"].fault for r in f)
    abst = sum(r["majority"] in (knn.UNKNOWN, NO_EVIDENCE) for r in f)
    can = [r for r in f if scorable(r)]
    return right, len(f), wrong, abst, sum(r["majority"] == r["rec"].fault for r in can), len(can)


def section(de: list[Rec], fe: list[Rec]) -> tuple[list[str], dict]:
    now = folds(de, fe, gated=True)
    before = folds(de, fe, gated=False)
    de_now = [r for r in now if r["set"] == "de"]
    fe_now = [r for r in now if r["set"] == "fe"]
    fe_all = [r for r in now if r["set"] == "fe_all"]
    normal = [r for r in de_now if r["rec"].fault == "normal"]
    figures = {"de": tally(de_now), "fe": tally(fe_now), "fe_all": tally(fe_all),
               "de_before": tally([r for r in before if r["set"] == "de"]),
               "fe_before": tally([r for r in before if r["set"] == "fe"]),
               "normal": [r["majority"] for r in normal]}
    unlearned = sorted({f"{c} ({r['condition']})" for r in now for c in r["unlearned"]})

    def line(name, t):
        return (f"| {name} | **{t[0]}/{t[1]}** ({pct(t[0] / t[1])}) | {t[4]}/{t[5]} | {t[2]} | {t[3]} |")

    lines = ["## Defect kNN on CWRU: recording-level evidence, absence not a class (`benchmarks/real_knn.py`)", "",
             "Protocol: the product's embedding (revision 3: revision 2's window dimensions plus the family profile "
             "of the recording's evidence — the whitened squared envelope spectrum averaged over the whole "
             "recording and channel, on every window: log10 of each family over the strongest, clipped at 1/3) "
             "and kNN (k = "
             f"{KNN['k']}, radius {KNN['radius_factor']:g} × q{KNN['radius_quantile']:g} and the calibrated centroid "
             "share; beyond it, within the class's reach — its centroid's distance to the nearest other class's "
             "centroid —, a window keeps its class when its recording's evidence names that class's family) "
             "with its evidence gate: a labelled window of a bearing class (outer race, inner race, ball) "
             f"whose recording reaches {FLOOR:g}× noise in no family is not learned, and a scored window without such "
             f"evidence is answered `{NO_EVIDENCE}`, never a bearing class. The floor is the verdict's, set against "
             "white noise; nothing was chosen on these recordings. **Leave one condition out**: the three fault "
             "recordings of one (load, size) condition labelled, the other nine fault recordings and Normal_0 "
             "scored (each fault recording is scored by the three folds it is not in: 36 recording scores); per "
             "recording the majority of its windows. **Fan end**: the same four drive-end models score the fan-end "
             "channel of the 11 `cwru_12k_fe` recordings (SKF 6203 geometry, 44 scores), nothing re-chosen. "
             "**The trap**: Normal_0 is CWRU's only healthy recording and comes from another acquisition chain "
             "(48 kHz, decimated here); it is never labelled in these folds, so it can only be answered "
             f"`{NO_EVIDENCE}` / `unknown` or wrongly.", "",
             "| | fault recordings right by majority | of those that could be (class labelled, evidence at the "
             "floor) | named another fault | abstained (unknown / no evidence) |",
             "|---|---|---|---|---|",
             line("drive end, now", figures["de"]), line("drive end, before (revision 2, no gate)", figures["de_before"]),
             line("fan end, now", figures["fe"]), line("fan end, before (revision 2, no gate)", figures["fe_before"]),
             line("fan end, all 12 drive-end fault recordings labelled", figures["fe_all"]),
             "", f"Normal_0 by majority, per fold: {', '.join(figures['normal'])} (before: "
             f"{', '.join(r['majority'] for r in before if r['rec'].fault == 'normal')}).",
             "", "Labelled bearing-class recordings not learned (no evidence at the floor): "
             + (", ".join(unlearned) if unlearned else "none") + ".", "",
             "Reading the table. *Before* looks perfect on the drive end only because absence was a class: the "
             "0.007 in ball recordings (not diagnosable by any method in Smith & Randall's study of this data) and "
             "the healthy Normal_0 carry no ball lines, and \"no race lines\" was what the ball class had "
             "learned — Normal_0 was called ball in every fold, and on the fan end 8 scores named a wrong fault. "
             f"*Now* no score names a wrong fault; the 0.007 in ball recordings and Normal_0 are `{NO_EVIDENCE}`. "
             "A window beyond its class's radius (but within its reach) keeps the class when its recording's own "
             "evidence names that class's family by the verdict's rule (floor and ratio) — there the kNN repeats "
             "the verdict rather than checks it: a class labelled on one recording has that "
             "recording's spread only, and without this the same fault one size up was `unknown` (revision 3 "
             "before it: 21/36 drive end, 10/44 fan end). What is still missed cannot be right in its fold: the "
             "ball recordings of the folds whose own ball recording carries no evidence (nothing ball was learned: "
             "`unknown`, as a class nobody labelled must be), the 0.007 in ball and fan-end ball recordings and "
             "the fan-end OR007@12 (no family at the floor: `no_fault_evidence`), and the fan-end OR007@3, whose "
             "evidence is ambiguous between outer race and ball (`unknown`). The second column counts the scores "
             "that could be right. The issue's target (≥ 27 of 30 unseen recordings) is on a private hold-out "
             "labelled from every shared recording; the nearest figure here is the last row: the whole drive-end "
             "library scoring the other bearing.", "",
             "Disclosure — not strictly held out. Four revision-3 designs were measured on these recordings, in "
             "this order: (1) the window evidence dimensions replaced by the recording evidence, capped at 3× noise "
             "as before: 8/36 drive end, 2/44 fan end (4 wrong fault on the fan end) — recording evidence is 10–28× "
             "noise on race faults and leaks 3–5× into the other families, so the cap saturated every family; "
             "(2) replaced by the family profile (log10 of each family over the strongest, clipped at 1/3): 18/36, "
             "12/44, 0 wrong — but a recording's windows share one profile, so a class labelled on one recording "
             "has no spread there and the synthetic plant's outer race was abstained on in 3 windows of 4; (3) "
             "the window evidence kept and the profile added: 21/36, 10/44, 0 wrong; (4) the product: (3) with the "
             "recording's named family vouching for a class beyond its radius (the figures above), designed after "
             "reading the misses of (3) — each was `unknown` with its own family's class nearest. The constants (the "
             "floor, the ratio, the cap) are the verdict's; nothing was swept.", "",
             "### Per class, drive end (windows of the scored recordings, pooled over the four folds)", "",
             *per_class(de_now), "", "### Per class, fan end", "", *per_class(fe_now), "",
             "### Per class before (revision 2, no gate), drive end", "",
             *per_class([r for r in before if r["set"] == "de"]), "",
             "### Per recording, drive end (bad rows marked ✗)", "", *recording_rows(de_now), "",
             "### Per recording, fan end (bad rows marked ✗)", "", *recording_rows(fe_now), "",
             "### Per recording, fan end scored by the whole drive-end library", "", *recording_rows(fe_all), ""]
    return lines, figures


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    de, fe = load("cwru_12k_de", B6205), load("cwru_12k_fe", B6203)
    lines, figures = section(de, fe)
    write_between(args.out, START_MARK, END_MARK, lines)
    print("\n".join(lines))
    return figures


if __name__ == "__main__":
    main()
