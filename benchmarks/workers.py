"""Ingest on 1, 2, … worker processes, and the compilers' share of a fresh process (issue 29).

Writes the section "## Every core busy" of BENCHMARKS.md (replacing an earlier one):

* ``workers``: the same small-file export (synth, ~217 kB CSV files) ingested into fresh workspaces with
  ``[ingest] workers`` = 1 (this process, ``max_concurrent_files`` threads: the path before workers) and
  2, … interleaved, best of ``--repeat``; ``polars.read_csv`` over the same files; the scaling ratio; and a
  model of throughput per core: a worker's start, its CPU per file, the parent's CPU per file (the one
  writer: ledger and commits), from which a reader sizes a server.
* ``compile``: ``vibra cluster`` in a fresh process twice over one workspace with an empty numba cache
  (``NUMBA_CACHE_DIR``), then ``vibra demo`` from an empty cache and again with it warm.

Every figure carries the load average (1 min) at its start and end: the machine is shared.
Run with ``just bench`` or ``.venv/bin/python benchmarks/workers.py [--parts workers,compile] [--days 4]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Every core busy: ingest workers and compile caches"
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
VIBRA = str(Path(sys.executable).with_name("vibra"))


def load() -> float:
    return os.getloadavg()[0]


def _workspace(root: Path, export: Path):
    from vibra.workspace import init_workspace

    ws, _ = init_workspace(root)
    ws.config_path.write_text(ws.config_path.read_text() + "\n" + (export / "equipment.toml").read_text())
    return ws


def _ingest(export: Path, root: Path, workers: int) -> dict:
    """One ingest of ``export`` into a fresh workspace, in this process; wall, this process's CPU, its children's."""
    from vibra.settings import load_settings
    from vibra_pipelines import ingest

    ws = _workspace(root, export)
    settings = load_settings(ws.config_path, {}, {"ingest.workers": workers})
    before = os.times()
    lo = load()
    t = time.perf_counter()
    result = ingest.run(ws, settings, export)
    wall = time.perf_counter() - t
    after = os.times()
    assert result.failed == 0 and result.workers == workers, result.as_dict()
    shutil.rmtree(root)
    return {"workers": workers, "wall": wall, "files": result.new, "bytes": result.bytes_read,
            "parent_cpu": (after.user - before.user) + (after.system - before.system),
            "children_cpu": (after.children_user - before.children_user)
            + (after.children_system - before.children_system), "load": (lo, load())}


def _worker_start() -> tuple[float, float]:
    """Wall seconds from asking for one worker process to its first (empty) answer, and its CPU seconds: the
    spawn and its imports."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    before = os.times()
    t = time.perf_counter()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(_imports).result()
    wall = time.perf_counter() - t
    after = os.times()
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def _imports() -> None:
    import vibra.ingest.features  # noqa: F401 - what a worker imports before its first file
    import vibra_pipelines.ingest  # noqa: F401


def bench_workers(work: Path, days: float, counts: list[int], repeat: int) -> tuple[list[dict], str]:
    import polars as pl

    from vibra_pipelines import synth

    warm = work / "warm"  # imports and numba's cache loaded before any timed run
    synth.run(warm, n_equipment=1, days=0.1, seed=0, start=START, sensor_faults=False)
    _ingest(warm, work / "ws-warm", 1)
    export = work / "small"
    synth.run(export, n_equipment=4, days=days, seed=1, start=START, sensor_faults=False, gzip_share=0.0)
    files = sorted(export.rglob("*.csv"))
    size = sum(f.stat().st_size for f in files)
    runs: dict[int, list[dict]] = {w: [] for w in counts}
    polars_s = []
    lo = load()
    for k in range(repeat):  # interleaved: the load drifts alike for every configuration
        for w in counts:
            runs[w].append(_ingest(export, work / f"ws-{w}-{k}", w))
        t = time.perf_counter()
        for f in files:
            pl.read_csv(f)
        polars_s.append(time.perf_counter() - t)
    hi = load()
    start_s, start_cpu = min(_worker_start() for _ in range(2))
    best = {w: min(rs, key=lambda r: r["wall"]) for w, rs in runs.items()}
    t_polars = min(polars_s)
    n = len(files)
    one = best[counts[0]]
    rows = []
    for w in counts:
        b = best[w]
        every = ", ".join(f"{r['wall']:.2f}" for r in runs[w])
        rows.append(f"| {w} | {b['wall']:.2f} s ({every}) | "
                    f"{n / b['wall']:.0f} | {size / 1e6 / b['wall']:.1f} | {one['wall'] / b['wall']:.2f}× | "
                    f"{t_polars / b['wall']:.2f} | {b['parent_cpu']:.2f} | {b['children_cpu']:.2f} | "
                    f"{b['load'][0]:.1f} → {b['load'][1]:.1f} |")
    top = best[counts[-1]]
    # CPU per file in the workers, their starts taken out
    per_file_worker = max(top["children_cpu"] - counts[-1] * start_cpu, 0.0) / n
    per_file_parent = top["parent_cpu"] / n  # the one writer's: ledger, commits, scheduling
    one_cpu = one["parent_cpu"] / n  # one process doing it all
    text = "\n".join([
        f"### Ingest on worker processes ({n} small files)", "",
        f"*Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; load average (1 min) {lo:.1f} at the start, "
        f"{hi:.1f} at the end; {os.cpu_count()} cores.* {n} synth CSV files of ~{size / n / 1e3:.0f} kB (4 machines "
        f"× {days:g} days, 3 channels, 1 s at 12.8 kHz, physics and diagnosis evidence on), ingested into a fresh "
        f"workspace per run with `[ingest] workers` = 1 (this process, {2} threads: the path before workers) and "
        f"{', '.join(str(w) for w in counts[1:])}, interleaved, best of {repeat} (every run in parentheses); "
        f"`polars.read_csv` over the same files, one after another in one process, best of {repeat} "
        f"({t_polars:.2f} s). Scaling = 1-worker wall / this wall; ratio = polars / this wall. CPU: the ingest "
        "process's own (the one writer) and its worker processes' (their start included).", "",
        "| workers | wall (every run) | files/s | MB/s | scaling | vs polars | CPU-s parent | CPU-s workers | load |",
        "|---|---|---|---|---|---|---|---|---|", *rows, "",
        f"**Sizing a server.** A worker's start (spawn + imports, measured alone, best of 2) is {start_s:.1f} s "
        f"({start_cpu:.1f} CPU-s); with {counts[-1]} workers each file cost {1e3 * per_file_worker:.1f} ms of worker CPU and "
        f"{1e3 * per_file_parent:.1f} ms of the parent's (ledger rows, group commits, hourly, the scan). So k cores "
        f"ingest about k / {1e3 * per_file_worker:.1f} ms ≈ {1000 / (1e3 * per_file_worker):.0f} × k small files "
        f"per second after a {start_s:.1f} s start, until the one writer saturates at ≈ "
        f"{1 / per_file_parent:.0f} files/s (one core of parent work per file; beyond "
        f"≈ {per_file_worker / per_file_parent:.0f} workers more cores do not help this file size). "
        f"Files of other sizes scale the worker term with their bytes (≈ {1e3 * per_file_worker / (size / n / 1e6):.0f} "
        f"ms of worker CPU per MB of CSV here), not the parent's, which is per file. One process doing it all spent "
        f"{1e3 * one_cpu:.1f} ms of CPU per file.",
    ])
    return [{"n": n, **best[w]} for w in counts], text + "\n"


def _cluster_workspace(work: Path, windows: int) -> Path:
    """A workspace whose ``features`` hold ``windows`` windows (a synth plant, replicated with new ids)."""
    import numpy as np
    import polars as pl

    from vibra.settings import load_settings
    from vibra.storage.lake import write_partitioned
    from vibra_pipelines import ingest, synth

    root = work / "ws-cluster"
    export = work / "plant"
    synth.run(export, n_equipment=4, days=2, seed=11, start=START)
    ws = _workspace(root, export)
    ingest.run(ws, load_settings(ws.config_path, {}, {"ingest.workers": 1}), export)
    base = pl.read_parquet(ws.lake / "features" / "**" / "*.parquet", hive_partitioning=False)
    rng = np.random.default_rng(9)
    for k in range(1, -(-windows // base.height)):
        emb = np.asarray(base["embedding"].to_list(), dtype=np.float32)
        emb += rng.normal(0, 0.05, size=emb.shape).astype(np.float32)
        part = base.with_columns(recording_id=pl.col("recording_id") + f"-{k}",
                                 window_start=pl.col("window_start") + timedelta(days=9 * k),
                                 embedding=pl.Series(emb).cast(pl.List(pl.Float32)))
        write_partitioned(part, ws.table("features"), f"copy{k}")
    return root


def _timed(args: list[str], cwd: Path, cache: Path) -> tuple[float, tuple[float, float], str, float]:
    """``vibra args`` in a fresh process: wall seconds, load at start and end, stdout, CPU seconds (its tree's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIBRA_")}
    env["NUMBA_CACHE_DIR"] = str(cache)
    lo = load()
    before = os.times()
    t = time.perf_counter()
    proc = subprocess.run([VIBRA, *args], cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = os.times()
    if proc.returncode != 0:
        raise RuntimeError(f"vibra {' '.join(args)}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, (lo, load()), proc.stdout, cpu


def bench_compile(work: Path, windows: int, demo: bool = True) -> str:
    ws = _cluster_workspace(work, windows)
    cache = work / "numba-cache"
    lines = ["### Compilers: `vibra cluster` and `vibra demo` from an empty numba cache, then warm", "",
             f"*Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} cores.* Each command in a fresh "
             f"process with `NUMBA_CACHE_DIR` = an empty folder for the first run (as after install), the same folder "
             "for the next. The CLI points numba's cache at `~/.cache/vibra/numba` by default; vibra's kernels are "
             "`cache=True`, and UMAP's and pynndescent's numba functions have caching turned on before their first "
             "call (`vibra.discovery.clustering._umap`) — all but pynndescent's NN-descent (used from 4,096 windows on), "
             "which numba cannot cache: `vibra demo` compiles it in a background thread while its worker processes "
             "ingest (`vibra.discovery.clustering.warm_up`); `vibra cluster` alone still compiles it each time.", "",
             "| command | first (empty cache): wall, CPU | second (warm): wall, CPU | first / second: wall, CPU "
             "| load (1 min) first; second |",
             "|---|---|---|---|---|"]
    a = _timed(["cluster", "--json"], ws, cache)
    b = _timed(["cluster", "--json"], ws, cache)
    fitted = json.loads(b[2]).get("fitted_on")
    lines.append(f"| `vibra cluster` ({windows:,} windows, UMAP + HDBSCAN on {fitted:,}) | {_cell(a)} | {_cell(b)} "
                 f"| {a[0] / b[0]:.1f}×, {a[3] / b[3]:.1f}× | {a[1][0]:.1f} → {a[1][1]:.1f}; {b[1][0]:.1f} → {b[1][1]:.1f} |")
    if not demo:
        return "\n".join(lines) + "\n"
    demo_cache = work / "numba-demo"
    runs = []
    for k in range(2):
        home = work / f"demo-{k}"
        runs.append(_timed(["demo", "--home", str(home), "--json"], work, demo_cache))
        shutil.rmtree(home, ignore_errors=True)
    lines.append(f"| `vibra demo` (4 machines × 5 days) | {_cell(runs[0])} | {_cell(runs[1])} | "
                 f"{runs[0][0] / runs[1][0]:.1f}×, {runs[0][3] / runs[1][3]:.1f}× | {runs[0][1][0]:.1f} → "
                 f"{runs[0][1][1]:.1f}; {runs[1][1][0]:.1f} → {runs[1][1][1]:.1f} |")
    return "\n".join(lines) + "\n"


def _cell(timed) -> str:
    return f"{timed[0]:.1f} s, {timed[3]:.1f} CPU-s"


def write_section(out: Path, blocks: list[str]) -> None:
    """Replace this module's ``###`` blocks given (keeping the others) in its section of BENCHMARKS.md."""
    old = out.read_text() if out.exists() else "# Benchmarks\n"
    head, rest = (old.split(SECTION, 1) + [""])[:2] if SECTION in old else (old, None)
    body, tail = "", ""
    if rest is not None:
        nxt = rest.find("\n## ")
        body, tail = (rest[:nxt], rest[nxt + 1:]) if nxt >= 0 else (rest, "")
    kept = {("### " + c).splitlines()[0]: "### " + c.rstrip("\n") + "\n" for c in body.split("\n### ")[1:]}
    for text in blocks:
        kept[text.splitlines()[0]] = text
    section = SECTION + "\n\n" + "\n".join(t.rstrip("\n") + "\n" for t in kept.values())
    out.write_text(head.rstrip("\n") + "\n\n" + section + ("\n" + tail if tail else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="workers,compile",
                        help="comma-separated, of workers, compile (cluster alone: cluster)")
    parser.add_argument("--days", type=float, default=4.0, help="days of the small-file export (4 machines)")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare, the first the reference")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--windows", type=int, default=40_000, help="windows `vibra cluster` runs over")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    parts = args.parts.split(",")
    work = Path(tempfile.mkdtemp(prefix="vibra-bench-workers-"))
    blocks = []
    try:
        if "workers" in parts:
            rows, text = bench_workers(work, args.days, [int(w) for w in args.workers.split(",")], args.repeat)
            print(json.dumps(rows, indent=1, default=str))
            blocks.append(text)
        if "compile" in parts or "cluster" in parts:  # cluster: the `vibra cluster` row alone
            blocks.append(bench_compile(work, args.windows, demo="compile" in parts))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for b in blocks:
        print(b)
    write_section(args.out, blocks)


if __name__ == "__main__":
    main()
