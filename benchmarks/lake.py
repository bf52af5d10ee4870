"""Lake benchmark: what the Delta Lake table format costs, and how it grows.

Three parts, each runnable alone (``--parts``) in under ~15 minutes on a shared 2-core machine;
each writes its own ``###`` block of the lake section of BENCHMARKS.md and leaves the others
(and the hand-written advice block) as they are.

``compare``
    Ingest and ``query recent`` of the same synthetic export, once with the lake's Delta commits and
    once with them switched off (the files are the same; without the log the folders are globbed,
    which is how vibra read the lake before Delta). Each run in a fresh process, the two
    configurations interleaved, best of ``--repeat``.
``growth``
    ``--appends`` appends to one table, one machine-day file per commit, sampled at 100, 1,000,
    2,500, 5,000 and 10,000 commits: the product's append (``lake.write_partitioned``), its parts
    measured through ``deltalake`` (commit, bringing a second reader up to date, opening, listing,
    a checkpoint), the ``_delta_log`` size and file counts, and whole-table reads (DuckDB, Polars
    ``scan_delta``, a pyarrow dataset). Then the log is cut with ``create_checkpoint`` +
    ``cleanup_metadata`` and the append measured again. The first ``--real-commits`` commits are
    the product's own appends; beyond them, to keep the run short (an append's cost grows with the
    table: 10,000 real ones would take over half an hour here), each commit file is the product's
    last commit file with the new file's path, size and partition (the same JSON delta-rs writes) and a checkpoint is
    written with ``create_checkpoint`` every ``delta.checkpointInterval`` commits, as delta-rs's
    post-commit hook does. A table built that way to 1,000 commits is measured beside the real one.
``fleet``
    One simulated day of ``--fleet`` machines × 24 hourly recordings (generated features rows, 2
    channels × 3 windows per recording as ``vibra synth``'s 1 s at 12.8 kHz gives; one file per
    recording as ingest writes them), committed one batch per hour of the fleet; at 1, 6, 12 and
    24 hours: a per-file commit as ingest does it (measured at that table size), a ``query
    recent``-style read of one machine (DuckDB over the log's files, Polars ``scan_delta``, a pyarrow
    dataset) and full scans (at 1 and 6 hours). Then compaction: the product's per-partition optimize
    on a sample of partitions, one ``optimize.compact`` over 50 machines' partitions (a table-wide one
    takes hours at 240,000 files), reads of the compacted machines, and ``vacuum``.

Run with ``just bench`` or ``.venv/bin/python benchmarks/lake.py [--parts growth,fleet] [--out BENCHMARKS.md]``.
Only ``vibra.storage.lake``'s public functions and ``deltalake`` itself are used.
"""

from __future__ import annotations

import argparse
import contextlib
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
PARTS = ("compare", "growth", "fleet")
MARKS = (100, 1_000, 2_500, 5_000, 10_000)
INDICATORS = ("rms", "peak", "crest_factor", "kurtosis", "skewness", "velocity_rms_mm_s")

# One child process per measurement: ingest a synth export into a fresh workspace, then time
# `query recent` for every machine. With "plain", the Delta commits are switched off (files only).
CHILD = """
import json, sys, time
from pathlib import Path
mode, export, home, repeat = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
import os, shutil
from vibra.storage import lake, remote
if mode == "plain":
    import vibra.storage.hourly
    lake.commit = lambda *a, **k: None
    vibra.storage.hourly.commit = lake.commit
from vibra.settings import load_settings
from vibra.workspace import init_workspace
from vibra_pipelines import ingest, query
ws, _ = init_workspace(home)
ws.config_path.write_text((export.parent / "synth-ws" / "vibra.toml").read_text())  # the export's machines
settings = load_settings(ws.config_path, {k: v for k, v in os.environ.items() if k == "VIBRA_LAKE_URI"})
remote.configure(ws, settings)
t0 = time.perf_counter()
res = ingest.run(ws, settings, export)
assert res.failed == 0 and res.new > 0, res
ingest_s = time.perf_counter() - t0
machines = sorted(p.name for p in export.iterdir() if p.is_dir())
cold = None
if mode == "s3":  # the first queries from an empty cache (another machine): each file is downloaded once
    n_files = len(lake.partition_files(ws.table("features")))
    shutil.rmtree(ws.lake)
    lake.forget(ws.lake)
    t0 = time.perf_counter()
    for m in machines:
        query.recent(ws, settings, m, limit=48)
    cold = (time.perf_counter() - t0) / len(machines)
best = float("inf")
for _ in range(repeat):
    t0 = time.perf_counter()
    for m in machines:
        query.recent(ws, settings, m, limit=48)
    best = min(best, time.perf_counter() - t0)
print(json.dumps({"ingest_s": ingest_s, "recordings": res.new, "query_s": best / len(machines), "cold_query_s": cold,
                  "files": len(lake.partition_files(ws.table("features")))}))
"""


# -- helpers ---------------------------------------------------------------------------------------

def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


def _timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def _best(fn, n: int = 3) -> float:
    return min(_timed(fn)[0] for _ in range(n))


def _features_rows(machine: int, hours: int = 24, hour0: int = 0, channels=("x", "y", "z"), windows: int = 1,
                   equipment_id: str | None = None):
    """Generated features rows (not computed): ``hours`` recordings of one machine from ``hour0``, each
    ``windows`` windows × ``channels``, with the main indicators. Seeded by machine and hour."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng([machine, hour0])
    per = windows * len(channels)
    n = hours * per
    start = [START + timedelta(hours=hour0 + h, seconds=0.32 * w) for h in range(hours) for w in range(windows)
             for _ in channels]
    return pl.DataFrame({
        "equipment_id": [equipment_id or f"m{machine:05d}"] * n,
        "recording_id": [f"{machine:016x}{hour0 + h:048x}" for h in range(hours) for _ in range(per)],
        "channel": list(channels) * (hours * windows),
        "window_index": [w for _ in range(hours) for w in range(windows) for _ in channels],
        "window_start": start, **{k: rng.normal(1.0, 0.1, n) for k in INDICATORS}})


def _log_stats(table: Path) -> dict:
    from vibra.storage import lake

    files = list((table / lake.LOG_DIR).iterdir())
    checkpoints = [f for f in files if f.name.endswith(".checkpoint.parquet")]
    newest = max(checkpoints, key=lambda f: f.name, default=None)
    return {"log_bytes": sum(f.stat().st_size for f in files), "log_files": len(files),
            "log_commits": sum(1 for f in files if f.name.endswith(".json")), "checkpoints": len(checkpoints),
            "last_checkpoint_bytes": newest.stat().st_size if newest else 0}


def _add_action(table: Path, f: Path, rows: int):
    """The AddAction delta-rs writes for a file of ``rows`` rows in its ``date=/equipment=`` folder."""
    from deltalake.transaction import AddAction

    st = f.stat()
    return AddAction(f.relative_to(table).as_posix(), st.st_size,
                     {"date": f.parent.parent.name.split("=", 1)[1], "equipment": f.parent.name.split("=", 1)[1]},
                     int(st.st_mtime * 1000), True, json.dumps({"numRecords": rows}))


def _scans(table: Path, files: list[Path]) -> dict:
    """Whole-table reads: DuckDB over the log's files, Polars ``scan_delta``, a pyarrow dataset (one run each)."""
    import duckdb
    import polars as pl
    from deltalake import DeltaTable

    from vibra.storage import lake

    def duck():
        with duckdb.connect() as con:
            return con.execute(f"SELECT count(*), avg(rms) FROM {lake.READ_FILES}",
                               [[str(f) for f in files]]).fetchone()[0]

    duck_s, rows = _timed(duck)
    polars_s, _ = _timed(lambda: pl.scan_delta(str(table)).select(pl.len(), pl.col("rms").mean()).collect())
    arrow_s, _ = _timed(lambda: DeltaTable(str(table)).to_pyarrow_dataset().to_table(columns=["rms"]))
    return {"rows": rows, "scan_duckdb_s": duck_s, "scan_polars_s": polars_s, "scan_arrow_s": arrow_s}


def _one_machine(table: Path, equipment_ids: list[str]) -> dict:
    """A ``query recent``-style read of one machine: its newest 48 rows. DuckDB over the files the log lists
    (partition pruning on the log's values, as the product reads), Polars ``scan_delta`` and a pyarrow dataset
    filtered on the partition column (each opening the table afresh). Best over the machines given."""
    import duckdb
    import polars as pl
    import pyarrow.dataset as pds
    from deltalake import DeltaTable

    from vibra.storage import lake

    con = duckdb.connect()

    def duck(eid):
        files = lake.partition_files(table, eid)
        return con.execute(f"SELECT * FROM {lake.READ_FILES} ORDER BY window_start DESC LIMIT 48",
                           [[str(f) for f in files]]).fetchall()

    def polars(eid):
        return (pl.scan_delta(str(table)).filter(pl.col("equipment") == eid)
                .sort("window_start", descending=True).head(48).collect())

    def arrow(eid):
        return DeltaTable(str(table)).to_pyarrow_dataset().to_table(filter=pds.field("equipment") == eid)

    out = {k: min(_timed(fn, e)[0] for e in equipment_ids)
           for k, fn in (("one_duckdb_s", duck), ("one_polars_s", polars), ("one_arrow_s", arrow))}
    con.close()
    return out


# -- compare: ingest and query recent, Delta against plain Parquet ---------------------------------

def _child(mode: str, export: Path, home: Path, repeat: int, env: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(export), str(home), str(repeat)],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})})
    if out.returncode:
        raise SystemExit(f"{mode} run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_compare(work: Path, machines: int, days: float, repeat: int) -> dict:
    from vibra.workspace import init_workspace
    from vibra_pipelines import synth

    ws, _ = init_workspace(work / "synth-ws")
    export = work / "export"
    synth.run(export, n_equipment=machines, days=days, seed=3, start=START, sensor_faults=False, workspace=ws)
    runs = {"delta": [], "plain": [], "s3": []}
    with _s3_server() as s3_env:
        for k in range(repeat):
            for mode in ("plain", "delta", "s3"):  # interleaved: all see the same machine load
                home = work / f"{mode}-{k}"
                env = {**s3_env, "VIBRA_LAKE_URI": f"s3://{S3_BUCKET}/run-{k}"} if mode == "s3" else None
                runs[mode].append(_child(mode, export, home, 5, env))
                shutil.rmtree(home, ignore_errors=True)
                print(f"compare {mode} {k}: {runs[mode][-1]}", file=sys.stderr)
    best = {m: {"ingest_s": min(r["ingest_s"] for r in rs), "query_s": min(r["query_s"] for r in rs),
                "cold_query_s": min((r["cold_query_s"] for r in rs if r["cold_query_s"] is not None), default=None),
                "ingest_all": [r["ingest_s"] for r in rs], "recordings": rs[0]["recordings"], "files": rs[0]["files"]}
            for m, rs in runs.items()}
    return {"machines": machines, "days": days, "repeat": repeat, **best}


S3_BUCKET = "vibra-bench"


@contextlib.contextmanager
def _s3_server():
    """moto's S3 server on 127.0.0.1 (the tests' stand-in: loopback, no network latency) and its environment."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{server._server.server_port}", "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}
    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1", aws_access_key_id="bench",
                 aws_secret_access_key="bench").create_bucket(Bucket=S3_BUCKET)
    try:
        yield env
    finally:
        server.stop()


# -- growth: 10,000 appends to one table ------------------------------------------------------------

class _Grower:
    """Appends machine-day files to one table: the product's appends, or commit files copied from the
    product's last one (the same JSON delta-rs writes) with a checkpoint every checkpoint interval."""

    def __init__(self, table: Path):
        self.table, self.n = table, 0

    def real(self) -> float:
        from vibra.storage import lake

        seconds, _ = _timed(lake.write_partitioned, _features_rows(self.n), self.table, f"{self.n:016x}")
        self.n += 1
        return seconds

    def synthetic(self, until: int) -> None:
        from deltalake import DeltaTable

        from vibra.storage import lake

        log = self.table / lake.LOG_DIR
        dt = DeltaTable(str(self.table))
        interval = int(dt.metadata().configuration.get("delta.checkpointInterval", 100))
        version = dt.version()
        lines = [json.loads(line) for line in (log / f"{version:020d}.json").read_text().splitlines()]
        if sorted(k for a in lines for k in a) != ["add", "commitInfo"]:
            raise SystemExit(f"growth: commit {version} is not a one-file append to copy; append for real first")
        info, add = (next(a for a in lines if key in a) for key in ("commitInfo", "add"))
        while self.n < until:
            df = _features_rows(self.n)
            eid = f"m{self.n:05d}"
            f = lake.partition_dir(self.table, START.date().isoformat(), eid) / f"part-{self.n:016x}.parquet"
            f.parent.mkdir(parents=True, exist_ok=True)
            df.write_parquet(f, compression="zstd", statistics=True)
            now = int(time.time() * 1000)
            info["commitInfo"]["timestamp"] = now
            add["add"].update(path=f.relative_to(self.table).as_posix(), size=f.stat().st_size, modificationTime=now,
                              partitionValues={"date": START.date().isoformat(), "equipment": eid},
                              stats=json.dumps({"numRecords": df.height}))
            version += 1
            with open(log / f"{version:020d}.json", "x") as fh:  # put-if-absent, as a Delta writer commits
                fh.write(json.dumps(info) + "\n" + json.dumps(add) + "\n")
            if version % interval == interval - 1:  # where delta-rs's post-commit hook puts them (99, 199, …)
                dt.update_incremental()
                dt.create_checkpoint()
            self.n += 1


def _measure_growth(grower: _Grower, k: int) -> dict:
    """At the table's current size: the product's append and its parts through deltalake, open, list,
    checkpoint, one-machine and whole-table reads, log size."""
    from deltalake import DeltaTable

    from vibra.storage import lake

    table = grower.table
    row = {"commits": grower.n, **_log_stats(table)}
    grower.real()  # not timed: brings the lake's kept table up to date after synthetic commits
    row["append_ms"] = 1000 * statistics.median(grower.real() for _ in range(k))
    # the same append's parts, through deltalake: commit on an up-to-date table, and a second reader
    # (another process, or the lake's kept table before its next commit) brought up to date
    dt, lag = DeltaTable(str(table)), DeltaTable(str(table))
    commit_s, update_s, write_s = [], [], []
    for _ in range(k):
        df = _features_rows(grower.n)
        f = lake.partition_dir(table, START.date().isoformat(), f"m{grower.n:05d}") / f"part-{grower.n:016x}.parquet"
        f.parent.mkdir(parents=True, exist_ok=True)
        write_s.append(_timed(df.write_parquet, f, compression="zstd", statistics=True)[0])
        action = _add_action(table, f, df.height)
        commit_s.append(_timed(dt.create_write_transaction, [action], mode="append", schema=dt.schema(),
                               partition_by=lake.PARTITION_BY)[0])
        update_s.append(_timed(lag.update_incremental)[0])
        grower.n += 1
    version = dt.version()
    last_cp = max((int(f.name.split(".")[0]) for f in (table / lake.LOG_DIR).glob("*.checkpoint.parquet")), default=-1)
    row.update(write_file_ms=1000 * statistics.median(write_s), commit_ms=1000 * statistics.median(commit_s),
               update_ms=1000 * statistics.median(update_s), since_checkpoint=version - last_cp,
               open_ms=1000 * _best(lambda: DeltaTable(str(table))),
               list_ms=1000 * _best(lambda: DeltaTable(str(table)).get_add_actions(flatten=True)),
               list_kept_ms=1000 * _best(lambda: dt.get_add_actions(flatten=True)),
               checkpoint_ms=1000 * _timed(dt.create_checkpoint)[0])
    row["list_lake_ms"] = 1000 * _timed(lake.partition_files, table)[0]  # first listing after a commit: uncached
    files = lake.partition_files(table)
    row.update(files=len(files), **_one_machine(table, ["m00000", f"m{grower.n // 2:05d}", f"m{grower.n - 1:05d}"]),
               **_scans(table, files))
    print(f"growth: {row}  load {_load()}", file=sys.stderr)
    return row


def _cleanup(table: Path, k: int, grower: _Grower) -> dict:
    """Cut the log: retention 0 (to show the bound; a user would keep days), checkpoint, cleanup_metadata."""
    from deltalake import DeltaTable

    dt = DeltaTable(str(table))
    dt.alter.set_table_properties({"delta.logRetentionDuration": "interval 0 seconds"})
    time.sleep(1.1)
    checkpoint_s, _ = _timed(dt.create_checkpoint)
    cleanup_s, _ = _timed(dt.cleanup_metadata)
    return {**_measure_growth(grower, k), "cut_checkpoint_ms": 1000 * checkpoint_s, "cleanup_s": cleanup_s}


def bench_growth(work: Path, appends: int, real_commits: int, k: int) -> dict:
    marks = [m for m in MARKS if m < appends] + [appends]
    from vibra.storage import lake

    grower = _Grower(work / "growth" / "features")
    rows, t_real = [], [grower.real()]
    lake.partition_files(grower.table)  # the readers' first imports, outside any measurement
    for mark in marks:
        while grower.n < min(mark, real_commits):
            t_real.append(grower.real())
        if grower.n < mark:
            grower.synthetic(mark)
        rows.append(_measure_growth(grower, k))
    after = _cleanup(grower.table, k, grower)
    # the same measurement on a table whose commits are all copied, at the real run's 1,000: does copying matter?
    check = None
    if real_commits >= 1_000 and appends >= 1_000:
        twin = _Grower(work / "growth-copied" / "features")
        twin.real(), twin.real()
        twin.synthetic(1_000)
        check = _measure_growth(twin, k)
        shutil.rmtree(twin.table.parent, ignore_errors=True)
    shutil.rmtree(grower.table.parent, ignore_errors=True)
    return {"rows": rows, "after_cleanup": after, "copied_1000": check, "real_commits": real_commits, "k": k,
            "real_append_ms_by_100": [1000 * statistics.median(t_real[i:i + 100]) for i in range(0, len(t_real), 100)]}


# -- fleet: 10,000 machines × 1 day of hourly recordings --------------------------------------------

def _write_hour(table: Path, machines: int, hour: int) -> list[Path]:
    """One hourly recording of every machine, one file each (2 channels × 3 windows), as ingest lays them out."""
    import pyarrow.parquet as pq

    from vibra.storage import lake

    one = _features_rows(0, hours=1, hour0=hour, channels=("x", "y"), windows=3).to_arrow()
    rows = one.num_rows
    big = _features_rows(0, hours=1, hour0=hour, channels=("x", "y"), windows=3 * machines).to_arrow()
    import pyarrow as pa

    eids = pa.array([f"m{m:05d}" for m in range(machines) for _ in range(rows)])
    rids = pa.array([f"{m:016x}{hour:048x}" for m in range(machines) for _ in range(rows)])
    big = big.set_column(0, "equipment_id", eids).set_column(1, "recording_id", rids)
    big = big.set_column(4, "window_start", pa.concat_arrays([one.column(4).combine_chunks()] * machines))
    big = big.set_column(3, "window_index", pa.concat_arrays([one.column(3).combine_chunks()] * machines))
    date = (START + timedelta(hours=hour)).date().isoformat()
    files = []
    for m in range(machines):
        f = lake.partition_dir(table, date, f"m{m:05d}") / f"part-{m:016x}{hour:04x}.parquet"
        f.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(big.slice(m * rows, rows), f, compression="zstd")
        files.append(f)
    return files


def _measure_fleet(table: Path, hour: int, machines: int, k: int, full_scan: bool) -> dict:
    from vibra.storage import lake

    row = {"hours": hour, **_log_stats(table)}
    row["list_lake_ms"] = 1000 * _timed(lake.partition_files, table)[0]  # first listing after the commit
    files = lake.partition_files(table)
    row["files"] = len(files)
    row.update(_one_machine(table, ["m00000", f"m{machines // 2:05d}", f"m{machines - 1:05d}"]))
    # a per-file commit as ingest makes it, at this table size (probe machines outside the fleet)
    per_file = [_timed(lake.write_partitioned, _features_rows(10**6 + hour * 100 + i, hours=1, hour0=hour,
                                                              channels=("x", "y"), windows=3),
                       table, f"{10**6 + hour * 100 + i:016x}")[0] for i in range(k + 1)]
    row["per_file_commit_ms"] = 1000 * statistics.median(per_file[1:])  # the first brings the kept table up to date
    if full_scan:
        row.update(_scans(table, lake.partition_files(table)))
    print(f"fleet: {row}  load {_load()}", file=sys.stderr)
    return row


def bench_fleet(work: Path, machines: int, hours: int, batch: int, k: int, sample_partitions: int,
                optimize_machines: int) -> dict:
    from deltalake import DeltaTable

    from vibra.storage import lake

    table = work / "fleet" / "features"
    marks = {1, 6, 12, hours}
    rows, write_s, commit_s = [], [], []
    for h in range(hours):
        seconds, files = _timed(_write_hour, table, machines, h)
        write_s.append(seconds)
        for i in range(0, len(files), batch):
            commit_s.append((_timed(lake.commit, table, add=files[i:i + batch])[0], len(files[i:i + batch])))
        print(f"fleet hour {h + 1}: write {seconds:.1f} s, commit {commit_s[-1][0]:.1f} s  load {_load()}",
              file=sys.stderr)
        if h + 1 in marks:
            rows.append(_measure_fleet(table, h + 1, machines, k, full_scan=h + 1 in (1, 6)))
    out = {"machines": machines, "hours": hours, "batch": batch, "rows": rows,
           "write_hour_s": statistics.median(write_s), "files_per_hour": machines,
           "batch_commit_s": [c for c, _ in commit_s], "batch_files": commit_s[0][1]}
    # compaction, the product's way: one optimize and commit per partition, on a sample of partitions
    active = lake.active(table)
    out["partitions"] = len({(d, e) for d, e, _ in active})
    fleet_parts = sorted({(d, e) for d, e, _ in active if e.startswith("m")})
    sample = fleet_parts[:sample_partitions]
    t0 = time.perf_counter()
    merged = [lake.compact(table, d, e) for d, e in sample]
    out.update(compact_partitions=len(sample), compact_partition_s=(time.perf_counter() - t0) / len(sample),
               compact_partition_rows=sum(m["rows"] for m in merged))
    print(f"fleet compaction per partition: {out['compact_partition_s']:.1f} s", file=sys.stderr)
    # one optimize (one commit) over the next optimize_machines machines' partitions, through deltalake: a
    # table-wide optimize of 10,000 partitions does not fit the run (~0.7 partitions/s here)
    chosen = sorted({e for _, e in fleet_parts[len(sample):len(sample) + optimize_machines]})
    dt = DeltaTable(str(table))
    seconds, metrics = _timed(dt.optimize.compact, partition_filters=[("equipment", "in", chosen)],
                              max_concurrent_tasks=2)
    out.update(optimize_machines=len(chosen), optimize_s=seconds, optimize_removed=metrics["numFilesRemoved"],
               optimize_added=metrics["numFilesAdded"])
    print(f"fleet optimize: {seconds:.1f} s, {metrics}", file=sys.stderr)
    after = {"hours": "after", **_log_stats(table)}
    after["list_lake_ms"] = 1000 * _timed(lake.partition_files, table)[0]
    after["files"] = len(lake.partition_files(table))
    after.update(_one_machine(table, [chosen[0], chosen[len(chosen) // 2], chosen[-1]]))  # compacted machines
    per_file = [_timed(lake.write_partitioned, _features_rows(2 * 10**6 + i, hours=1, channels=("x", "y"), windows=3),
                       table, f"{2 * 10**6 + i:016x}")[0] for i in range(k + 1)]
    after["per_file_commit_ms"] = 1000 * statistics.median(per_file[1:])
    rows.append(after)
    print(f"fleet after compaction: {after}", file=sys.stderr)
    seconds, gone = _timed(DeltaTable(str(table)).vacuum, retention_hours=0, dry_run=False,
                           enforce_retention_duration=False)
    out.update(vacuum_s=seconds, vacuum_files=len(gone))
    print(f"fleet vacuum: {seconds:.1f} s, {len(gone)} files", file=sys.stderr)
    shutil.rmtree(table.parent, ignore_errors=True)
    return out


# -- BENCHMARKS.md ----------------------------------------------------------------------------------

def _ms(x: float) -> str:
    return f"{x:,.0f} ms" if x >= 10 else f"{x:.1f} ms"


def _s(x: float) -> str:
    return f"{x:,.0f} s" if x >= 100 else f"{x:.1f} s" if x >= 1 else f"{1000 * x:.0f} ms"


def text_compare(r: dict, env: str) -> str:
    d, p, o = r["delta"], r["plain"], r["s3"]
    return "\n".join([
        "### Ingest and `query recent`: Delta against plain Parquet", "",
        f"{env} A synthetic export of {r['machines']} machines × {r['days']:g} days ({d['recordings']} recordings, one "
        "features file each) ingested into a fresh workspace, then `query recent --limit 48` for every machine "
        f"(mean per machine). Each run in a fresh process, plain, Delta and Delta on S3 interleaved, best of {r['repeat']}. "
        "*Plain Parquet* is the same code with the Delta commits switched off: the files are identical and "
        "readers glob the folders, as vibra did before Delta.", "",
        "| | ingest (best) | ingest (every run) | query recent (per machine) |", "|---|---|---|---|",
        f"| Delta Lake | {_s(d['ingest_s'])} | {', '.join(f'{x:.1f}' for x in d['ingest_all'])} s | "
        f"{_ms(1000 * d['query_s'])} |",
        f"| plain hive Parquet | {_s(p['ingest_s'])} | {', '.join(f'{x:.1f}' for x in p['ingest_all'])} s | "
        f"{_ms(1000 * p['query_s'])} |",
        f"| ratio Delta / plain | {d['ingest_s'] / p['ingest_s']:.2f} | | {d['query_s'] / p['query_s']:.2f} |",
        f"| Delta on S3 (moto server on loopback) | {_s(o['ingest_s'])} | {', '.join(f'{x:.1f}' for x in o['ingest_all'])} s | "
        f"{_ms(1000 * o['query_s'])} warm cache, {_ms(1000 * o['cold_query_s'])} from an empty cache |",
        f"| ratio S3 / local Delta | {o['ingest_s'] / d['ingest_s']:.2f} | | {o['query_s'] / d['query_s']:.2f} |", "",
        "On S3 every lake file is uploaded once before its commit and a query lists the table's log on the store "
        "(one LIST and the new commit files) before reading its cached copies; from an empty cache the first query "
        "of a machine downloads its files. moto on loopback has no network latency: on a real bucket add about "
        "one round trip per commit, per log listing and per file fetched.", ""])


def text_growth(r: dict, env: str) -> str:
    rows = r["rows"]
    lines = [
        "### Growth: 10,000 appends to one table", "",
        f"{env} One machine-day file (72 generated rows) per commit, each a new `date/equipment` partition. "
        f"The first {r['real_commits']:,} commits are the product's appends; beyond them each commit file is a copy "
        "of the product's last one with the new file's path, size and partition, and a checkpoint is written every "
        "100 commits as delta-rs's post-commit hook does (an append's cost grows with the table, see below, so 10,000 "
        f"real ones would take over half an hour here). At each mark: the median of {r['k']} product appends "
        f"(`lake.write_partitioned`: file write + fsync + commit), then {r['k']} appends through `deltalake` split "
        "into their parts: the file write, "
        "`create_write_transaction` on an up-to-date `DeltaTable` (the commit and the snapshot update after it), and "
        "`update_incremental` of a second `DeltaTable` one commit behind (what the lake's kept table, or any other "
        "reader, pays before its next use). Open = `DeltaTable(path)` (log replay from the newest checkpoint; "
        "best of 3), list = `get_add_actions` on a fresh table (best of 3), checkpoint = one `create_checkpoint()`.", "",
        "| commits | product append | file write | commit | update a reader | open | list (fresh / kept) "
        "| checkpoint | `_delta_log` | log files (commits, checkpoints) |",
        "|---|---|---|---|---|---|---|---|---|---|"]
    a = r["after_cleanup"]
    for x in [*rows, a]:
        lines.append(
            f"| {x['commits']:,}{' after cut' if x is a else ''} | {_ms(x['append_ms'])} | "
            f"{_ms(x['write_file_ms'])} | {_ms(x['commit_ms'])} | "
            f"{_ms(x['update_ms'])} | {_ms(x['open_ms'])} ({x['since_checkpoint']} since checkpoint) | "
            f"{_ms(x['list_ms'])} / {_ms(x['list_kept_ms'])} | {_ms(x['checkpoint_ms'])} | "
            f"{x['log_bytes'] / 2**20:.1f} MB (checkpoint {x['last_checkpoint_bytes'] / 2**10:,.0f} KiB) | "
            f"{x['log_files']:,} ({x['log_commits']:,}, {x['checkpoints']}) |")
    lines += ["", f"*After cut*: the same table after `delta.logRetentionDuration = 'interval 0 seconds'` (to show "
              f"the bound; a user keeps days), `create_checkpoint()` ({_ms(a['cut_checkpoint_ms'])}) and "
              f"`cleanup_metadata()` ({_s(a['cleanup_s'])}): the same files, a log of {a['log_files']} files.", ""]
    if r.get("copied_1000"):
        c = next((x for x in rows if x["commits"] == 1_000), None)
        cc = r["copied_1000"]
        lines += [f"Check of the copied commits: a table of 1,000 copied commits measures append {_ms(cc['append_ms'])}, "
                  f"commit {_ms(cc['commit_ms'])}, open {_ms(cc['open_ms'])}"
                  + (f"; the real one at 1,000: {_ms(c['append_ms'])}, {_ms(c['commit_ms'])}, {_ms(c['open_ms'])}."
                     if c else "."), ""]
    if r["real_append_ms_by_100"]:
        lines += ["Product appends while the real log was built (median per 100 commits): "
                  + ", ".join(f"{x:.0f}" for x in r["real_append_ms_by_100"]) + " ms.", ""]
    lines += ["Reads at each mark (one machine: best of three machines; whole table: one run):", "",
              "| commits | list through lake (uncached) | one machine: DuckDB over the log's files | Polars `scan_delta` "
              "| pyarrow dataset | whole table: DuckDB | Polars `scan_delta` | pyarrow dataset |",
              "|---|---|---|---|---|---|---|---|"]
    for x in [*rows, a]:
        lines.append(f"| {x['commits']:,}{' after cut' if x is a else ''} | {_ms(x['list_lake_ms'])} | {_ms(1000 * x['one_duckdb_s'])} | "
                     f"{_ms(1000 * x['one_polars_s'])} | {_ms(1000 * x['one_arrow_s'])} | {_s(x['scan_duckdb_s'])} | "
                     f"{_s(x['scan_polars_s'])} | {_s(x['scan_arrow_s'])} |")
    return "\n".join(lines) + "\n"


def text_fleet(r: dict, env: str) -> str:
    rows = r["rows"]
    lines = [
        f"### A fleet day: {r['machines']:,} machines × {r['hours']} hourly recordings", "",
        f"{env} Generated features rows, one file per recording as ingest writes them (2 channels × 3 windows, "
        f"the windows `vibra synth`'s 1 s at 12.8 kHz gives): {r['machines']:,} files an hour, "
        f"{r['machines'] * r['hours']:,} in the day. Each hour's files are written (pyarrow, "
        f"{_s(r['write_hour_s'])} per hour of the fleet) and committed in batches of {r['batch_files']:,} "
        "(`lake.commit`). At each mark: a per-file commit as ingest makes it today (`lake.write_partitioned` of one "
        "more recording, median of several), the first listing through the lake after a commit, one machine's "
        "newest 48 rows (best of three machines) and whole-table scans.", "",
        "| hours | files | batch commit | per-file commit | `_delta_log` | list through lake | one machine: DuckDB "
        "| Polars `scan_delta` | pyarrow dataset | whole table: DuckDB | Polars | pyarrow |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for x in rows:
        per_hour = -(-r["machines"] // r["batch_files"])
        batch = _s(r["batch_commit_s"][x["hours"] * per_hour - 1]) if isinstance(x["hours"], int) else "–"
        scans = (f"{_s(x['scan_duckdb_s'])} | {_s(x['scan_polars_s'])} | {_s(x['scan_arrow_s'])}"
                 if "scan_duckdb_s" in x else "– | – | –")
        lines.append(f"| {x['hours']} | {x['files']:,} | {batch} | {_ms(x['per_file_commit_ms'])} | "
                     f"{x['log_bytes'] / 2**20:.1f} MB | {_ms(x['list_lake_ms'])} | {_ms(1000 * x['one_duckdb_s'])} | "
                     f"{_ms(1000 * x['one_polars_s'])} | {_ms(1000 * x['one_arrow_s'])} | {scans} |")
    per_file_day_h = sum(x["per_file_commit_ms"] for x in rows[:-1]) / len(rows[:-1]) * r["machines"] * r["hours"] / 3.6e6
    lines += [
        "", f"Batch commits over the day: {', '.join(f'{c:.1f}' for c in r['batch_commit_s'])} s. "
        f"Per-file commits for the same day, at the per-file commit times measured above (mean of the marks): "
        f"≈ {per_file_day_h:,.1f} h of commits for {r['hours']} h of recordings.", "",
        f"**Compaction** — the product's `vibra maintain compact` (`lake.compact`: one optimize and commit per "
        f"partition), on {r['compact_partitions']} partitions of {r['hours']} files "
        f"({r['compact_partition_rows'] / r['compact_partitions']:.0f} rows each): {_s(r['compact_partition_s'])} per "
        f"partition, so ≈ {r['compact_partition_s'] * r['partitions'] / 3600:,.1f} h for the day's {r['partitions']:,} "
        f"partitions. One `optimize.compact(partition_filters=[(\"equipment\", \"in\", …)], max_concurrent_tasks=2)` "
        f"over {r['optimize_machines']} machines' partitions (one commit): {r['optimize_removed']:,} files → "
        f"{r['optimize_added']:,} in {_s(r['optimize_s'])} ({r['optimize_removed'] / r['optimize_s']:,.0f} files/s, "
        f"{r['optimize_machines'] / r['optimize_s']:.2f} partitions/s, so ≈ "
        f"{r['optimize_s'] / r['optimize_machines'] * r['partitions'] / 3600:,.1f} h for the day's partitions at this "
        f"table size). *after*: the reads are of compacted machines. `vacuum(retention_hours=0)` then deleted "
        f"{r['vacuum_files']:,} files in {_s(r['vacuum_s'])}.", ""]
    return "\n".join(lines) + "\n"


def write_section(out: Path, blocks: dict[str, str], intro: str) -> None:
    """Replace the ``###`` blocks given inside the lake section; keep the other blocks (and the rest of the file)."""
    old = out.read_text() if out.exists() else "# Benchmarks\n"
    head, rest = (old.split(SECTION, 1) + [""])[:2] if SECTION in old else (old, None)
    tail, body = "", ""
    if rest is not None:
        nxt = rest.find("\n## ")
        body, tail = (rest[:nxt], rest[nxt + 1:]) if nxt >= 0 else (rest, "")
    kept: dict[str, str] = {}
    for chunk in body.split("\n### ")[1:]:
        title = "### " + chunk.splitlines()[0].strip()
        kept[title] = "### " + chunk.rstrip("\n") + "\n"
    for text in blocks.values():
        kept[text.splitlines()[0].strip()] = text
    order = ["Ingest and", "Growth", "A fleet day", "What a"]
    ordered = sorted(kept.items(), key=lambda kv: next((i for i, o in enumerate(order) if kv[0][4:].startswith(o)), 9))
    section = SECTION + "\n\n" + intro + "\n\n" + "\n".join(t.rstrip("\n") + "\n" for _, t in ordered)
    text = head.rstrip("\n") + "\n\n" + section + ("\n" + tail if tail else "")
    out.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--export-machines", type=int, default=4)
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--appends", type=int, default=10_000, help="growth: commits to one table")
    parser.add_argument("--real-commits", type=int, default=1_000, help="growth: of them, the product's own appends")
    parser.add_argument("--fleet", type=int, default=10_000, help="fleet: machines")
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--batch", type=int, default=10_000, help="fleet: files per commit")
    parser.add_argument("--k", type=int, default=20, help="appends timed at each mark")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if unknown := set(parts) - set(PARTS):
        raise SystemExit(f"--parts: unknown {sorted(unknown)}; choose from {', '.join(PARTS)}")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from common import machine

    blocks = {}
    for part in parts:
        work = Path(tempfile.mkdtemp(prefix=f"vibra-bench-lake-{part}-"))
        load0, t0 = _load(), time.perf_counter()
        try:
            if part == "compare":
                r = bench_compare(work, args.export_machines, args.days, args.repeat)
            elif part == "growth":
                r = bench_growth(work, args.appends, args.real_commits, args.k)
            else:
                r = bench_fleet(work, args.fleet, args.hours, args.batch, args.k // 2, 10, 50)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        env = (f"*Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {(time.perf_counter() - t0) / 60:.0f} min; "
               f"load average (1/5/15 min) {load0} at the start, {_load()} at the end.*")
        blocks[part] = {"compare": text_compare, "growth": text_growth, "fleet": text_fleet}[part](r, env)
        write_section(args.out, {part: blocks[part]}, _intro(machine()))
        print(f"wrote the {part} block of the lake section of {args.out}", file=sys.stderr)


def _intro(machine: str) -> str:
    import deltalake

    return (f"Machine: {machine}; deltalake {deltalake.__version__}. `benchmarks/lake.py` (`just bench`; "
            "`--parts compare,growth,fleet` runs one part, each under ~15 min); the machine is shared, so each "
            "block states its load.")


if __name__ == "__main__":
    os.environ.setdefault("POLARS_MAX_THREADS", "2")
    main()
