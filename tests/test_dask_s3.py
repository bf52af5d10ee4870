"""Dask without a shared filesystem: ingest workers given only the lake URI and their source file.

A moto S3 server stands in for the object store and a real Prefect server for the API the workers
report to; the Dask workers are processes (spawned) with private workspaces in temporary folders.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest

from vibra.settings import load_settings
from vibra.ingest.sources import display, scan
from vibra.storage import catalog, lake, remote, tables
from vibra.workspace import init_workspace
from vibra_pipelines import ingest, synth

from conftest import free_port, start_prefect_server

pytest.importorskip("moto.server")
pytest.importorskip("prefect_dask")

START = datetime(2026, 3, 1, tzinfo=timezone.utc)
BUCKET = "vibra-lake"
# one file at a time: which of two copies owns their content is then file order, as in the flow's commit
ONE_AT_A_TIME = {"VIBRA_INGEST_MAX_CONCURRENT_FILES": "1"}
PREFECT_ENV = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server with one bucket; yields its endpoint URL."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    endpoint = f"http://127.0.0.1:{server._server.server_port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture
def aws(s3, monkeypatch):
    """The standard AWS environment pointing at the moto server (inherited by spawned workers)."""
    for k, v in {"AWS_ENDPOINT_URL": s3, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    return s3


def _objects(endpoint: str, prefix: str) -> list[str]:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    # (not pyarrow's empty folder markers: deleting a folder's last object leaves its parent's "<key>/")
    return [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
            if not o["Key"].endswith("/")]


def _export(root: Path, seed: int, n_equipment: int = 2, days: float = 1, copy: bool = True) -> Path:
    export = root / "export"
    synth.run(export, n_equipment=n_equipment, days=days, seed=seed, start=START, sensor_faults=False)
    if not copy:
        return export
    machine = sorted(p for p in export.iterdir() if p.is_dir())[0]
    first = sorted(machine.glob("*.csv*"))[0]
    shutil.copy2(first, machine / ("copy-of-first" + "".join(first.suffixes)))  # a copy within the run
    return export


def _workspace(root: Path, export: Path):
    ws, _ = init_workspace(root)
    ws.config_path.write_text((export / "equipment.toml").read_text())
    return ws


def _ledger(ws) -> pl.DataFrame:
    rows = catalog.query(ws.catalog_path, "SELECT source_path, recording_id, status, n_windows, duplicate_of, error "
                                          f"FROM {catalog.CURRENT} c ORDER BY source_path")
    return pl.DataFrame(rows, schema=["source_path", "recording_id", "status", "n_windows", "duplicate_of", "error"],
                        orient="row")


def _table(ws, name: str) -> pl.DataFrame:
    """Every row of a table as its log lists it (fetched from the store for a lake on object storage)."""
    files = lake.partition_files(ws.table(name))
    df = pl.concat([pl.read_parquet(f, hive_partitioning=False) for f in files], how="diagonal_relaxed")
    df = df.select(sorted(df.columns))
    return df.sort([c for c in df.columns if not isinstance(df[c].dtype, (pl.List, pl.Array))])


def _drain_prefect() -> None:
    """Send this process's pending Prefect logs and events now: an events worker left holding this server's
    URL after it stops would retry for ever, and a later test's Prefect harness waits for every worker to
    drain at its exit (as the harness itself drains before it stops its server)."""
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        try:
            result = APILogWorker.instance().drain()
            if inspect.isawaitable(result):
                await result
        except RuntimeError:  # never started
            pass
        result = EventsWorker.drain_all()
        if inspect.isawaitable(result):
            await result

    run_coro_as_sync(drain())


@pytest.fixture
def prefect_server(tmp_path, monkeypatch):
    """A running Prefect server (its own PREFECT_HOME); PREFECT_API_URL set here and for spawned workers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_ENV, PREFECT_HOME=str(tmp_path / "prefect-server"))
    server = start_prefect_server(port, env)
    try:
        for k, v in {**PREFECT_ENV, "PREFECT_API_URL": url, "PREFECT_HOME": str(tmp_path / "prefect-client")}.items():
            monkeypatch.setenv(k, v)
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: url}):
            yield url
            _drain_prefect()  # while the server still answers
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


@pytest.mark.slow
def test_nightly_on_dask_process_workers_sharing_only_the_lake_uri_equals_sequential(tmp_path, aws, prefect_server, monkeypatch):
    from vibra_flows import stages

    export = _export(tmp_path, seed=31)
    seq = _workspace(tmp_path / "seq", export)
    ingest.run(seq, load_settings(seq.config_path, ONE_AT_A_TIME), export)  # a local lake, one process
    flow_ws = _workspace(tmp_path / "flow", export)
    monkeypatch.setenv("VIBRA_LAKE_URI", f"s3://{BUCKET}/flow")
    monkeypatch.setenv("VIBRA_FLOWS_DASK_WORKERS", "2")

    started = time.perf_counter()
    st = stages.nightly(home=str(flow_ws.root), source=str(export), task_runner_kind="dask", return_state=True)
    seconds = time.perf_counter() - started
    assert st.is_completed() and st.name == "Completed", st.message  # not Partial: every stage ran
    summary = st.result()
    out = summary["ingest"]
    n_files = 2 * 24 + 1
    assert (out["new"], out["duplicates"], out["failed"]) == (n_files - 1, 1, 0), out
    # the work was done by other processes (Dask's spawned workers), every file by one of them
    pids = {int(w.rsplit(" ", 1)[1]) for w in out["workers"]}
    assert os.getpid() not in pids and sum(out["workers"].values()) == n_files, out["workers"]
    assert _objects(aws, "flow/_incoming") == []  # the shipped source files are gone

    assert summary["report"] and summary["maintenance"]["doctor_ok"], summary  # the later stages read the store
    print(f"nightly, ingest on 2 Dask process workers {out['workers']}: {n_files} files in {seconds:.1f} s")
    # read back through a fresh, empty cache of the URI: the content is on the store, not in the flow's folder
    reader, _ = init_workspace(tmp_path / "reader")
    remote.configure(reader, load_settings(flow_ws.config_path, {"VIBRA_LAKE_URI": f"s3://{BUCKET}/flow"}))
    try:
        _same(seq, flow_ws, reader, n_files)
        # a changed file: a worker removes the old version's windows on the store; the flow commits the new ones
        changed = sorted(export.glob("*/*.csv"))[-1]
        lines = changed.read_text().splitlines()
        changed.write_text("\n".join([*lines[:-1], "0.5,0.5"]) + "\n")
        ingest.run(seq, load_settings(seq.config_path, ONE_AT_A_TIME), export)
        st = stages.ingest_flow(home=str(flow_ws.root), source=str(export), task_runner_kind="dask",
                                return_state=True)
        assert st.is_completed() and st.result()["new"] == 1, st.result()
        _same(seq, flow_ws, reader, n_files)
    finally:
        remote.unregister(reader.lake)
        remote.unregister(reader.artifacts)


def _same(seq, flow_ws, reader, n_files: int) -> None:
    assert _ledger(seq).equals(_ledger(flow_ws)) and _ledger(seq).height == n_files
    for name in ("features", "hourly"):
        a, b = _table(seq, name), _table(reader, name)
        assert a.height > 0 and a.columns == b.columns, name
        assert a.equals(b), name


def _work_in(conn, settings, job):  # a spawned process: nothing of the test's but its arguments
    from vibra_pipelines.ingest import remote as ingest_remote

    conn.send(ingest_remote.work(settings, job))
    conn.close()


def test_a_worker_needs_neither_the_export_nor_the_workspace(tmp_path, aws):
    from vibra_pipelines.ingest import remote as ingest_remote

    export = _export(tmp_path, seed=32)
    ws = _workspace(tmp_path / "ws", export)
    settings = load_settings(ws.config_path, {"VIBRA_LAKE_URI": f"s3://{BUCKET}/iso"})
    remote.configure(ws, settings)
    try:
        item = next(f for f in scan(export.resolve()).files if not f.path.name.startswith("copy-of"))
        with ingest_remote.incoming(ws, [item], {}) as [job]:
            hidden = export.rename(tmp_path / ".gone")  # the export is out of reach once the file is shipped
            ctx = multiprocessing.get_context("spawn")
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_work_in, args=(theirs, settings, job))
            proc.start()
            shipped = mine.recv()
            proc.join(60)
            assert _objects(aws, "iso/_incoming")  # in transit while the run lasts
        assert _objects(aws, "iso/_incoming") == []
        assert proc.exitcode == 0 and shipped.worker.rsplit(" ", 1)[1] != str(os.getpid())
        root = Path(shipped.root)
        assert not root.exists() and tmp_path not in root.parents  # a private workspace, deleted after the task
        fr = shipped.result
        assert fr.row["status"] == "completed" and fr.row["source_path"] == display(item.path)
        assert fr.files and all(not f.is_absolute() for f in fr.files)
        assert all(_objects(aws, f"iso/{f.as_posix()}") for f in fr.files)  # uploaded, not yet committed
        assert not any((ws.lake / f).exists() for f in fr.files)  # nothing written into the flow's folder
        hidden.rename(export)
        # the flow's side: the files commit from the store; the table then equals a local ingest of that file
        tables.commit_features(ws, [ws.lake / f for f in fr.files])
        local = _workspace(tmp_path / "local", export)
        alone = tmp_path / "alone" / item.equipment_id
        alone.mkdir(parents=True)
        shutil.copy2(item.path, alone / item.path.name)
        ingest.run(local, load_settings(local.config_path, {}), alone.parent)
        assert _table(ws, "features").equals(_table(local, "features"))
    finally:
        remote.unregister(ws.lake)
        remote.unregister(ws.artifacts)


def test_the_local_cluster_is_processes_with_a_lake_uri_and_says_when_no_prefect_server(tmp_path, caplog):
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.task_runners import ThreadPoolTaskRunner

    from vibra_flows import stages

    ws, _ = init_workspace(tmp_path / "ws")
    local = load_settings(ws.config_path, {})
    on_store = load_settings(ws.config_path, {"VIBRA_LAKE_URI": f"s3://{BUCKET}/x"})
    log = logging.getLogger("vibra.flows")
    log.addHandler(caplog.handler)  # (Prefect's logging setup may stop it propagating to the root)
    try:
        with temporary_settings(restore_defaults={PREFECT_API_URL}):
            threads = stages.task_runner(local, "dask")
            assert not caplog.records
            procs = stages.task_runner(on_store, "dask")
    finally:
        log.removeHandler(caplog.handler)
    assert threads.cluster_kwargs["processes"] is False and procs.cluster_kwargs["processes"] is True
    assert "PREFECT_API_URL is not set" in caplog.text
    assert not stages.ships_files(local, threads) and stages.ships_files(on_store, procs)
    assert stages.ships_files(on_store, stages.task_runner(on_store, "dask", "tcp://scheduler:8786"))
    # per-machine tasks record runs in the flow's ledger: they stay on its threads when workers share only the URI
    assert isinstance(stages.machine_runner(on_store, procs), ThreadPoolTaskRunner)
    assert stages.machine_runner(local, threads) is threads
    assert not stages.ships_files(on_store, stages.task_runner(on_store, "thread"))


def test_shipped_changed_files_with_raw_kept_equal_a_local_ingest(tmp_path, aws):
    """The round trip in one process (a worker's threads): a changed file's old windows and raw waveform
    go from the store, the new ones come, and lake and ledger equal a local ingest's."""
    from vibra_pipelines.ingest import remote as ingest_remote

    export = _export(tmp_path, seed=33, n_equipment=1, days=0.25)  # a copy within the run: raw written twice
    ws = _workspace(tmp_path / "ws", export)
    keep = {**ONE_AT_A_TIME, "VIBRA_INGEST_KEEP_RAW": "1"}
    settings = load_settings(ws.config_path, {**keep, "VIBRA_LAKE_URI": f"s3://{BUCKET}/raw"})
    remote.configure(ws, settings)
    local = _workspace(tmp_path / "local", export)
    workers: dict[str, int] = {}

    def dispatch(jobs):  # a worker with several threads: private workspaces come and go side by side
        with ThreadPoolExecutor(max_workers=3) as pool:
            return list(pool.map(lambda j: ingest_remote.work(settings, j), jobs))

    def fan_out(todo, completed):
        results, by_worker = ingest_remote.fan_out(ws, settings, todo, completed, dispatch)
        workers.update(by_worker)
        return results

    def both() -> None:
        ingest.run(local, load_settings(local.config_path, keep), export)
        ingest.run(ws, settings, export, fan_out=fan_out)
        _same(local, ws, ws, len(scan(export.resolve()).files))

    try:
        both()
        touched = sorted(export.glob("*/*.csv"))[0]
        os.utime(touched, (time.time(), time.time()))  # same content, new time: its own, not a duplicate
        changed = sorted(export.glob("*/*.csv"))[-1]
        before = set(_objects(aws, "raw/raw/"))
        lines = changed.read_text().splitlines()
        changed.write_text("\n".join([*lines[:-1], "0.5,0.5"]) + "\n")
        both()
        after = set(_objects(aws, "raw/raw/"))
        assert len(before - after) == 1 and len(after - before) == 1  # the old waveform replaced, not kept
        assert sorted(p.name for p in local.table("raw").rglob("*.parquet")) == sorted(k.rsplit("/", 1)[1] for k in after)

        # a changed file that is now a copy of a new file of the same run, found so at the commit: the hourly
        # partition of its earlier version (another day: a name without a time takes the file's mtime) is
        # rebuilt all the same, from the partitions the worker returned
        base = changed.read_text().splitlines()

        def put(name: str, last: str, day: int) -> None:
            (changed.parent / name).write_text("\n".join([*base[:-1], last]) + "\n")
            when = datetime(2026, 3, day, 12, tzinfo=timezone.utc).timestamp()
            os.utime(changed.parent / name, (when, when))

        put("zz-extra.csv", "0.25,0.25", 5)
        both()
        assert "2026-03-05" in _dates(local)
        put("y-new.csv", "0.125,0.125", 6)
        put("zz-extra.csv", "0.125,0.125", 7)
        both()
        assert "2026-03-05" not in _dates(local) and _dates(local) == _dates(ws)
        assert list(workers) == [f"{socket.gethostname()} pid {os.getpid()}"]
        assert _objects(aws, "raw/_incoming") == []
    finally:
        remote.unregister(ws.lake)
        remote.unregister(ws.artifacts)


def _dates(ws) -> set[str]:
    return {d.isoformat() for d in _table(ws, "hourly")["hour"].dt.date()}
