"""Early warning on real lives: the six FEMTO / PRONOSTIA learning bearings (IEEE PHM 2012), ingested as a
user would, trained and scored with the defaults of every anomaly family; per bearing and family the first
alarm, its lead before the failure as a share of the life, and the alarms raised early in the life.
Writes its own marked section of BENCHMARKS.md.

Run with ``just bench-real`` or ``.venv/bin/python benchmarks/real_warning.py [--out BENCHMARKS.md] [--print]
[--workspace DIR]`` (a workspace kept in DIR is reused: ingest skips the files it already holds).

Protocol:

* the kept raw snapshots of each bearing (every 10th snapshot and the last 50: 97–326 files, 0.1 s of
  25.6 kHz each, two channels) are copied into an export folder and ingested with ``vibra ingest`` and the
  ``vibra.toml`` of docs/howto/femto.md (one window per snapshot, the sequence number as time);
* ``vibra train`` with the workspace defaults (``[anomaly] baseline_days = 2`` is longer than every life:
  the baseline rule of :func:`vibra.anomaly.baseline_period.choose` decides), then ``vibra detect``;
* an alarm is the default rule (``alarm_k`` of the last ``alarm_m`` windows of a channel over threshold);
  the life runs from the first snapshot to the last (the end of life); lead = (end − first alarm) / life;
* the target (issue 27): every bearing warned ≥ 10 % of its life before failure and no alarm in the
  first 40 % of its life.

Nothing here is tuned on these lives by this script; what the defaults were chosen on is stated in
BENCHMARKS.md next to the table.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from real import FEMTO_MACHINE, REAL  # noqa: E402  (benchmarks/real.py: the shared data beside the checkout)

FEMTO = REAL / "femto_learning"
BEARINGS = {"Bearing1_1": 1800, "Bearing1_2": 1800, "Bearing2_1": 1650, "Bearing2_2": 1650, "Bearing3_1": 1500,
            "Bearing3_2": 1500}
ORIGIN = datetime(2011, 1, 1, 9, tzinfo=timezone.utc)
STEP_S = 10.0
FAMILIES = ("iforest", "hst", "baseline")
LEAD_TARGET, QUIET_TARGET = 0.10, 0.40
BEGIN, END = "<!-- real-warning:begin -->", "<!-- real-warning:end -->"



def vibra(*args: str) -> str:
    exe = str(Path(sys.executable).with_name("vibra"))
    proc = subprocess.run([exe, *args], capture_output=True, text=True)
    if proc.returncode not in (0,):
        raise SystemExit(f"vibra {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout + proc.stderr


def build(root: Path) -> Path:
    """A workspace in ``root`` holding the six bearings (ingested once; a rerun skips what is there)."""
    ws = root / "ws"
    if not ws.exists():
        vibra("init", str(ws))
        text = (ws / "vibra.toml").read_text().replace("[features]\n", "[features]\nframe_length = 2560\n"
                                                       "hop_length = 2560\n", 1)
        for i, (name, rpm) in enumerate(BEARINGS.items()):
            origin = (ORIGIN + timedelta(days=30 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")
            text += FEMTO_MACHINE.format(eid=name.lower(), rpm=rpm, origin=origin)
        (ws / "vibra.toml").write_text(text)
    export = root / "export"
    for name in BEARINGS:
        folder = export / name.lower()
        folder.mkdir(parents=True, exist_ok=True)
        for f in sorted((FEMTO / name).glob("acc_*.csv.gz")):
            if not (folder / f.name).exists():
                shutil.copy(f, folder / f.name)
    vibra("ingest", str(export), "--home", str(ws))
    return ws


def n_snapshots(name: str) -> int:
    import csv

    with open(FEMTO / "bearings.csv") as fh:
        return int(next(r for r in csv.DictReader(fh) if r["bearing"] == name)["n_snapshots"])


@dataclass
class Row:
    bearing: str
    family: str
    life_s: float
    baseline_s: float
    first_alarm_s: float | None
    alarms_first_half: int
    alarms_first_40: int
    note: str = ""

    @property
    def lead(self) -> float | None:
        return None if self.first_alarm_s is None else (self.life_s - self.first_alarm_s) / self.life_s

    @property
    def ok(self) -> bool:
        return self.lead is not None and self.lead >= LEAD_TARGET and self.alarms_first_40 == 0


def measure(ws_root: Path, overrides: dict | None = None) -> tuple[list[Row], dict]:
    from vibra.report.summaries import episodes
    from vibra.settings import load_settings
    from vibra.workspace import Workspace

    from vibra_pipelines import anomaly

    # every measurement on a fresh copy of the ingested workspace (no models, no scores yet), under a new name:
    # the lake's listings are cached per path within a process
    run = ws_root.parent / f"run-{time.time_ns()}"
    shutil.copytree(ws_root, run)
    ws = Workspace(run)
    settings = load_settings(ws.config_path, {}, overrides or {})
    started = time.perf_counter()
    trained = anomaly.train(ws, settings)
    anomaly.detect(ws, settings)
    seconds = time.perf_counter() - started
    windows = {m["scope"]: m for m in trained.models}
    rows = []
    for name in BEARINGS:
        eid = name.lower()
        origin = ORIGIN + timedelta(days=30 * list(BEARINGS).index(name))
        first = origin + timedelta(seconds=STEP_S)  # acc_00001
        life = (n_snapshots(name) - 1) * STEP_S
        info = trained.baselines.get(eid, {})
        base_s = info.get("span_s", float("nan"))
        for family in FAMILIES:
            eps = episodes(ws, settings, equipment=[eid], model=family)
            starts = sorted((datetime.fromisoformat(e["start"]) - first).total_seconds() for e in eps)
            rows.append(Row(name, family, life, base_s, starts[0] if starts else None,
                            sum(s < 0.5 * life for s in starts), sum(s < QUIET_TARGET * life for s in starts),
                            trained.skipped.get(eid, "")))
    shutil.rmtree(run, ignore_errors=True)
    return rows, {"seconds": seconds, "baselines": trained.baselines, "warnings": trained.warnings,
                  "models": len(windows)}


def summary(rows: list[Row]) -> str:
    out = []
    for family in FAMILIES:
        mine = [r for r in rows if r.family == family]
        leads = sorted(r.lead for r in mine if r.lead is not None)
        median = f"{100 * leads[len(leads) // 2]:.0f} %" if leads else "—"
        out.append(f"{family}: {sum(r.ok for r in mine)} of {len(mine)} meet the target "
                   f"(median lead {median}, {sum(r.alarms_first_40 > 0 for r in mine)} alarmed before 40 %, "
                   f"{sum(r.first_alarm_s is None for r in mine)} never alarmed)")
    return "; ".join(out) + "."


def table(rows: list[Row], info: dict) -> str:
    head = ("| bearing | life | baseline | family | first alarm (% of life) | lead (% of life) | alarms < 50 % | "
            "alarms < 40 % | target met |\n|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        first = "never" if r.first_alarm_s is None else f"{r.first_alarm_s / 3600:.2f} h ({100 * r.first_alarm_s / r.life_s:.0f} %)"
        lead = "—" if r.lead is None else f"{100 * r.lead:.0f} %"
        lines.append(f"| {r.bearing} | {r.life_s / 3600:.2f} h | {r.baseline_s / 60:.0f} min | {r.family} | {first} | "
                     f"{lead} | {r.alarms_first_half} | {r.alarms_first_40} | {'yes' if r.ok else 'no'} |")
    return "\n".join(lines) + "\n\n" + summary(rows)


# Measured once (2026-12-07) with the same steps outside the pipeline, iforest, baseline_max_share 0.2, on these
# six bearings — how the threshold rule of AnomalyModel.fit was chosen; kept here because it is not re-run.
RULES_COMPARED = (
    "env_ftf on these files: FEMTO's 0.1 s snapshots give 10 Hz envelope bins, so the cage line (≈ 0.4 orders, "
    "10–12 Hz) cannot be resolved; for a while env_ftf was the level of its 3rd harmonic alone, a noisy indicator "
    "that delayed iforest's alarms on Bearing1_2 and Bearing3_1 to the last 3–5 % of life (iforest 3 of 6, hst 2, "
    "baseline 2). A family whose first line the window cannot resolve now has no level "
    "(vibra.physics.indicators.fault_band_levels: a rule of resolution, found on these bearings — disclosed); the "
    "table above is with it.\n\n"
    "Threshold rules compared on the same six bearings (iforest, first 20 %; bearings meeting the target; "
    "measured when env_ftf was not computed on these files, as now): the "
    "0.98 quantile of all out-of-sample training scores 5 of 6; the same with isolated spikes left out (the "
    "default) 5 of 6, the same alarms; the 0.98 quantile of the k-of-m level (3rd largest of each 5 windows) "
    "3 of 6; spikes capped at that level 3 of 6; median + 4 robust σ of the scores 1 of 6 (never alarmed on 3). "
    "The k-of-m rules lower the threshold and alarm before 40 % of life. The spike rule gives the same alarms "
    "for iforest and hst; for the baseline family it leaves excursions of Bearing1_1's baseline out, which then "
    "alarms at 38 % of life instead of 76 %, and Bearing3_1 at 60 % instead of 96 % (3 of 6 either way). It is "
    "kept for the case it was made for, a baseline with a few knocks (tests/test_warning.py).\n\n"
    "The trap: Bearing2_2's vertical channel triples its rms between 22 % and 28 % of its life and stays "
    "there (snapshot_features.csv: rms_v median 0.33 g before snapshot 180, 0.88 g over 220–300); every family "
    "alarms there and the episode lasts to the failure. That is a real change, not a false alarm, but the "
    "target (no alarm before 40 %) counts it against the detector.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    ap.add_argument("--print", action="store_true", help="print the section instead of writing it")
    ap.add_argument("--workspace", type=Path, default=None, help="keep (and reuse) the workspace here")
    ap.add_argument("--shares", default="0.3,0.5", help="other baseline_max_share values to summarise beside the "
                                                        "default (comma-separated; empty: none)")
    args = ap.parse_args()
    keep = args.workspace
    root = keep or Path(tempfile.mkdtemp(prefix="vibra-warning-"))
    try:
        t0 = time.perf_counter()
        ws = build(root)
        ingest_s = time.perf_counter() - t0
        rows, info = measure(ws)
        others = {float(v): measure(ws, {"anomaly.baseline_max_share": float(v)})[0]
                  for v in args.shares.split(",") if v}
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
    body = table(rows, info)
    if others:
        body += ("\n\nThe same with another `[anomaly] baseline_max_share` (the default 0.2 was chosen among these "
                 "on these six bearings: the table above is in-sample for that choice; the unseen bearings of the "
                 "challenge are the out-of-sample check):\n\n"
                 + "\n".join(f"- {share:g}: {summary(r)}" for share, r in others.items()))
    body += "\n\n" + RULES_COMPARED
    section = (f"{BEGIN}\n## Early warning on real lives (FEMTO learning bearings)\n\n"
               f"`python benchmarks/real_warning.py` ({datetime.now(timezone.utc):%Y-%m-%d}; ingest {ingest_s:.0f} s, "
               f"train + detect {info['seconds']:.0f} s). Protocol in the script's docstring.\n\n{body}\n\n"
               + "\n".join(f"- `vibra train`: {w}" for w in info["warnings"]) + f"\n{END}")
    if args.print:
        print(section)
        return
    text = args.out.read_text() if args.out.exists() else ""
    if BEGIN in text:
        text = text[:text.index(BEGIN)] + section + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    args.out.write_text(text)
    print(section)


if __name__ == "__main__":
    main()
