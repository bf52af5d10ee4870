"""Lake benchmark: what the Delta Lake table format costs against plain hive-partitioned Parquet.

1. Ingest and ``query recent`` of the same synthetic export, once with the lake's Delta commits and
   once with them switched off (the files are the same; without the log the folders are globbed, which
   is how vibra read the lake before Delta). Each in a fresh process, best of ``--repeat``.
2. Growth: ``--machines`` machines × 1 day of hourly windows (generated features rows, not files),
   appended one machine per commit to one table: commit time, log size (checkpoints every 100
   commits, delta-rs's default) and read times as the table grows.
3. Compaction throughput: Delta optimize over partitions of many small files.

The section is written into BENCHMARKS.md (replacing an earlier one). Run with ``just bench`` or
``.venv/bin/python benchmarks/lake.py [--machines 10000] [--out BENCHMARKS.md]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Lake table format: Delta Lake against plain Parquet"
START = datetime(2026, 3, 1, tzinfo=timezone.utc)

# One child process per measurement: ingest a synth export into a fresh workspace, then time
# `query recent` for every machine. With "plain", the Delta commits are switched off (files only).
CHILD = """
import json, sys, time
from pathlib import Path
mode, export, home, repeat = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
from vibra.storage import lake
if mode == "plain":
    import vibra.hourly
    lake.commit = lambda *a, **k: None
    vibra.hourly.commit = lake.commit
from vibra.settings import load_settings
from vibra.workspace import init_workspace
from vibra_pipelines import ingest, query
ws, _ = init_workspace(home)
ws.config_path.write_text((export.parent / "synth-ws" / "vibra.toml").read_text())  # the export's machines
settings = load_settings(ws.config_path, {})
t0 = time.perf_counter()
res = ingest.run(ws, settings, export)
assert res.failed == 0 and res.new > 0, res
ingest_s = time.perf_counter() - t0
machines = sorted(p.name for p in export.iterdir() if p.is_dir())
best = float("inf")
for _ in range(repeat):
    t0 = time.perf_counter()
    for m in machines:
        query.recent(ws, settings, m, limit=48)
    best = min(best, time.perf_counter() - t0)
print(json.dumps({"ingest_s": ingest_s, "recordings": res.new, "query_s": best / len(machines),
                  "files": len(list(ws.lake.glob("features/date=*/equipment=*/*.parquet")))}))
"""


def _child(mode: str, export: Path, home: Path, repeat: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(export), str(home), str(repeat)],
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise SystemExit(f"{mode} run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_ingest_query(work: Path, machines: int, days: float, repeat: int) -> dict:
    from vibra.workspace import init_workspace
    from vibra_pipelines import synth

    ws, _ = init_workspace(work / "synth-ws")
    export = work / "export"
    synth.run(export, n_equipment=machines, days=days, seed=3, start=START, sensor_faults=False, workspace=ws)
    runs = {"delta": [], "plain": []}
    for k in range(repeat):
        for mode in ("plain", "delta"):  # interleaved: both see the same machine load
            home = work / f"{mode}-{k}"
            runs[mode].append(_child(mode, export, home, 5))
            shutil.rmtree(home, ignore_errors=True)
    best = {m: {"ingest_s": min(r["ingest_s"] for r in rs), "query_s": min(r["query_s"] for r in rs),
                "recordings": rs[0]["recordings"], "files": rs[0]["files"]} for m, rs in runs.items()}
    return {"machines": machines, "days": days, "repeat": repeat, **best}


def _features_rows(machine: int, hours: int = 24):
    """One machine's day of hourly windows, 3 channels, the main indicators (generated, not computed)."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(machine)
    n = hours * 3
    start = [START + timedelta(hours=h) for h in range(hours) for _ in range(3)]
    return pl.DataFrame({
        "equipment_id": [f"m{machine:05d}"] * n, "recording_id": [f"{machine:016x}{h:048x}" for h in range(hours) for _ in range(3)],
        "channel": ["x", "y", "z"] * hours, "window_index": [0] * n, "window_start": start,
        **{k: rng.normal(1.0, 0.1, n) for k in ("rms", "peak", "crest_factor", "kurtosis", "skewness",
                                                "velocity_rms_mm_s")}})


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def bench_growth(work: Path, machines: int, marks: list[int]) -> list[dict]:
    """Append one machine per commit; at each mark: commit time (median of the last 50), log size, reads."""
    import duckdb

    from vibra.storage import lake

    table = work / "growth" / "features"
    rows, commit_times = [], []
    for m in range(machines):
        df = _features_rows(m)
        t0 = time.perf_counter()
        lake.write_partitioned(df, table, f"{m:016x}")
        commit_times.append(time.perf_counter() - t0)
        if m + 1 in marks:
            t0 = time.perf_counter()
            one = lake.partition_files(table, f"m{m:05d}")
            lake.read_frame(one)
            one_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            files = lake.partition_files(table)
            list_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            with duckdb.connect() as con:
                n = con.execute(f"SELECT count(*), avg(rms) FROM {lake.READ_FILES}", [[str(f) for f in files]]).fetchone()[0]
            scan_s = time.perf_counter() - t0
            log = table / lake.LOG_DIR
            rows.append({"commits": m + 1, "write_commit_ms": 1000 * statistics.median(commit_times[-50:]),
                         "log_mb": _dir_size(log) / 2 ** 20, "log_files": sum(1 for _ in log.iterdir()),
                         "checkpoints": sum(1 for f in log.iterdir() if ".checkpoint." in f.name),
                         "one_machine_ms": 1000 * one_s, "list_all_ms": 1000 * list_s, "scan_all_s": scan_s,
                         "rows": n, "files": len(files)})
            print(f"growth: {rows[-1]}", file=sys.stderr)
    return rows


def bench_compaction(work: Path, partitions: int, files_per_partition: int) -> dict:
    from vibra.storage import lake

    table = work / "compact" / "features"
    for p in range(partitions):
        for f in range(files_per_partition):
            df = _features_rows(p * files_per_partition + f, hours=24).with_columns(
                __import__("polars").lit(f"m{p:05d}").alias("equipment_id"))
            lake.write_partitioned(df, table, f"{p:08x}{f:08x}")
    size = _dir_size(table) - _dir_size(table / lake.LOG_DIR)
    n_rows = sum(__import__("pyarrow.parquet").parquet.read_metadata(f).num_rows for f in lake.partition_files(table))
    t0 = time.perf_counter()
    for date, eid in sorted({(d, e) for d, e, _ in lake.active(table)}):
        lake.compact(table, date, eid)
    seconds = time.perf_counter() - t0
    return {"partitions": partitions, "files_per_partition": files_per_partition, "rows": n_rows,
            "mb": size / 2 ** 20, "seconds": seconds, "files_after": len(lake.partition_files(table))}


def section(iq: dict, growth: list[dict], comp: dict, machine: str) -> str:
    d, p = iq["delta"], iq["plain"]
    lines = [SECTION, "",
             f"Machine: {machine}. `benchmarks/lake.py`; every figure is the best of {iq['repeat']} runs in fresh "
             "processes (interleaved, so both formats see the same load).", "",
             f"**Ingest and `query recent`** — a synthetic export of {iq['machines']} machines × {iq['days']:g} days "
             f"({d['recordings']} recordings, one features file each), ingested into a fresh workspace; then "
             "`query recent --limit 48` for every machine (mean per machine). *Plain Parquet* is the same code with "
             "the Delta commits switched off: the files are identical and readers glob the folders, as vibra did "
             "before Delta.", "",
             "| | ingest | query recent (per machine) |", "|---|---|---|",
             f"| Delta Lake | {d['ingest_s']:.1f} s | {1000 * d['query_s']:.1f} ms |",
             f"| plain hive Parquet | {p['ingest_s']:.1f} s | {1000 * p['query_s']:.1f} ms |",
             f"| ratio Delta / plain | {d['ingest_s'] / p['ingest_s']:.2f} | {d['query_s'] / p['query_s']:.2f} |", "",
             f"**Growth** — {growth[-1]['commits']:,} machines × 1 day of hourly windows (3 channels, 72 generated "
             "rows per machine), appended to one table one machine per commit (each commit a new "
             "`date/equipment` partition, the worst case for the log). Commit time is the median of the 50 "
             "writes before the mark (file write + commit); the log keeps a checkpoint every 100 commits.", "",
             "| commits | write + commit | log size | log files | checkpoints | list all files | read one machine "
             "| scan all (DuckDB) |", "|---|---|---|---|---|---|---|---|"]
    for r in growth:
        lines.append(f"| {r['commits']:,} | {r['write_commit_ms']:.1f} ms | {r['log_mb']:.1f} MB | {r['log_files']:,} | "
                     f"{r['checkpoints']} | {r['list_all_ms']:.0f} ms | {r['one_machine_ms']:.0f} ms | "
                     f"{r['scan_all_s']:.2f} s |")
    lines += ["", f"**Compaction** — Delta optimize, one commit per partition: {comp['partitions']} partitions × "
              f"{comp['files_per_partition']} files ({comp['rows']:,} rows, {comp['mb']:.1f} MB) → "
              f"{comp['files_after']} files in {comp['seconds']:.1f} s: "
              f"{comp['rows'] / comp['seconds']:,.0f} rows/s, {comp['mb'] / comp['seconds']:.1f} MB/s, "
              f"{comp['partitions'] / comp['seconds']:.1f} partitions/s.", ""]
    return "\n".join(lines) + "\n"


def write_section(out: Path, text: str) -> None:
    old = out.read_text() if out.exists() else "# Benchmarks\n"
    if SECTION in old:
        head, rest = old.split(SECTION, 1)
        nxt = rest.find("\n## ")
        old = head + (rest[nxt + 1:] if nxt >= 0 else "")
    out.write_text(old.rstrip("\n") + "\n\n" + text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=10_000, help="machines of the growth run (one commit each)")
    parser.add_argument("--export-machines", type=int, default=4)
    parser.add_argument("--days", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from run import machine

    work = Path(tempfile.mkdtemp(prefix="vibra-bench-lake-"))
    try:
        iq = bench_ingest_query(work, args.export_machines, args.days, args.repeat)
        print(f"ingest/query: {iq}", file=sys.stderr)
        marks = sorted({m for m in (100, 1_000, 2_500, 5_000, 7_500, 10_000, args.machines) if m <= args.machines})
        growth = bench_growth(work, args.machines, marks)
        comp = bench_compaction(work, 20, 50)
        print(f"compaction: {comp}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_section(args.out, section(iq, growth, comp, machine()))
    print(f"wrote the lake section of {args.out}", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("POLARS_MAX_THREADS", "2")
    main()
