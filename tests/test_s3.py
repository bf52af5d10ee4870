"""The lake on object storage: a real S3-protocol server (moto's, on 127.0.0.1, started here) holds the
Delta tables, the artifact stores and the raw waveforms; the workspace folders are only a cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from datetime import datetime, timezone

import duckdb
import polars as pl
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from vibra.settings import load_settings
from vibra.storage import lake, remote
from vibra.workspace import init_workspace
from vibra_pipelines import doctor, ingest, status, synth

from conftest import run_vibra, vibra_exe

START = datetime(2026, 3, 1, tzinfo=timezone.utc)
KEYS = ["equipment_id", "recording_id", "channel", "window_index"]
BUCKET = "vibra-lake"


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on a free port with one bucket; yields the AWS environment that reaches it."""
    import boto3
    from moto.server import ThreadedMotoServer

    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{server._server.server_port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(Bucket=BUCKET)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # this process reads the same store as the vibra processes it starts
    try:
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


def _uri() -> str:
    return f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}"


def _keys(prefix: str) -> list[str]:
    import boto3

    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix.removeprefix(f"s3://{BUCKET}/"))
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _features_on_store(uri: str) -> pl.DataFrame:
    """The features table read straight from the store by Polars (no vibra, no cache)."""
    return pl.read_delta(f"{uri}/features", storage_options=remote.delta_options()).drop(["date", "equipment"])


def test_demo_on_s3_then_an_empty_cache_reads_the_same_lake(s3, tmp_path):
    uri = _uri()
    env = {**s3, "VIBRA_LAKE_URI": uri}
    home = tmp_path / "demo"
    proc = run_vibra("demo", "--home", str(home), "--equipment", "2", "--days", "1", "--json", env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    payload = json.loads(proc.stdout)
    assert payload["ingest"]["new"] == payload["status"]["completed"] > 0
    keys = _keys(uri)
    tables = {k.split("/")[1] for k in keys if "/_delta_log/" in k}
    assert {"features", "hourly", "scores", "forecasts", "rul", "clusters", "defects"} <= tables, tables
    assert any(k.split("/")[1] == "_artifacts" and k.endswith("/latest.json") for k in keys)
    assert not [k for k in keys if ".tmp-" in k or "/." in k.removeprefix(uri)]  # nothing half-written or private

    # the store alone holds the lake: Polars reads it without vibra, as many rows as the ledger counts
    feats = _features_on_store(uri)
    assert feats.height == feats.select(KEYS).n_unique() == payload["status"]["features_total"]
    pages = sorted(p.relative_to(home).as_posix() for p in (home / "reports").rglob("*.html"))
    recent = json.loads(run_vibra("query", "recent", "motor-01", "--json", "--home", str(home), env=env,
                                  check=True).stdout)
    # an emptied cache (another machine, a new container): the same answers come back from the store
    for cache in (home / "data" / "lake", home / "artifacts"):
        subprocess.run(["rm", "-rf", str(cache)], check=True)
    again = json.loads(run_vibra("query", "recent", "motor-01", "--json", "--home", str(home), env=env,
                                 check=True).stdout)
    assert again == recent and again
    checked = json.loads(run_vibra("doctor", "--json", "--home", str(home), env=env).stdout)
    assert checked["ok"] and checked["findings"] == [], checked
    rul = json.loads(run_vibra("rul", "--json", "--home", str(home), env=env, check=True).stdout)
    assert {m["equipment_id"] for m in rul["machines"]} == {m["equipment_id"] for m in payload["rul"]["machines"]}
    subprocess.run(["rm", "-rf", str(home / "reports")], check=True)
    run_vibra("report", "--home", str(home), env=env, check=True)
    assert sorted(p.relative_to(home).as_posix() for p in (home / "reports").rglob("*.html")) == pages
    assert all(m["equipment_id"] in (home / "reports" / "index.html").read_text() for m in rul["machines"])


def _spawn(ws, env: dict, *args):
    full = {k: v for k, v in os.environ.items() if not k.startswith("VIBRA_")}
    full.update(env)
    return subprocess.Popen([vibra_exe(), *args, "--home", str(ws.root)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=full)


def test_killed_ingest_on_s3_then_rerun_loses_and_doubles_nothing(s3, tmp_path, monkeypatch):
    uri = _uri()
    env = {**s3, "VIBRA_LAKE_URI": uri}
    ws, _ = init_workspace(tmp_path / "ws")
    export = tmp_path / "export"
    synth.run(export, n_equipment=3, days=1, seed=31, start=START, sensor_faults=False, workspace=ws)
    proc = _spawn(ws, env, "ingest", str(export))
    options = remote.delta_options()

    def committed() -> int | None:  # features files the table's log on the store holds now
        try:
            n = len(DeltaTable(f"{uri}/features", storage_options=options).file_uris())
        except TableNotFoundError:  # no commit yet
            return None
        return n if 1 <= n < 72 else None

    deadline, landed = time.monotonic() + 300, None
    while time.monotonic() < deadline and proc.poll() is None:
        if committed() is not None:
            proc.send_signal(signal.SIGSTOP)
            landed = committed()
            if landed is not None:
                break
            proc.send_signal(signal.SIGCONT)
        time.sleep(0.01)
    assert landed is not None, f"the ingest finished before it could be killed; the test proves nothing {proc.communicate()}"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    mid = _features_on_store(uri)
    assert mid.height == mid.select(KEYS).n_unique() == landed * 6  # committed batches whole, nothing else

    settings = load_settings(ws.config_path, env)
    remote.configure(ws, settings)
    try:
        done_before = status.run(ws)["completed"]  # the ledger: at most what was committed
        assert done_before <= landed
        result = ingest.run(ws, settings, export)
        assert result.failed == 0 and result.new == 72 - done_before
        st = status.run(ws)
        assert st["completed"] == 72
        feats = _features_on_store(uri)
        assert feats.height == feats.select(KEYS).n_unique() == st["features_total"] == 72 * 6
        hourly = pl.read_delta(f"{uri}/hourly", storage_options=options)
        assert hourly["n_windows"].sum() == 72 * 6
        report = doctor.check(ws, settings, repair=True)  # the killed batch's uploaded, uncommitted files
        assert report["ok"], report
        assert doctor.check(ws, settings)["findings"] == []
        # an upload no commit names (a writer elsewhere, or killed): left alone while young, deleted once old
        import boto3

        committed_one = lake.partition_files(ws.table("features"))[0]
        stray = committed_one.with_name("part-" + "e" * 16 + ".parquet")
        key = remote.of(stray).key(stray).split("/", 1)[1]
        client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
        client.put_object(Bucket=BUCKET, Key=key, Body=committed_one.read_bytes())
        assert doctor.check(ws, settings)["findings"] == []  # younger than the grace: maybe about to be committed
        monkeypatch.setattr(lake.commits, "VACUUM_HOURS", 0)
        found = doctor.check(ws, settings, repair=True)
        assert [f["check"] for f in found["findings"]] == ["leftover_temporary_files"], found
        assert key not in _keys(uri) and doctor.check(ws, settings)["findings"] == []
        assert _features_on_store(uri).height == 72 * 6  # the committed rows untouched
        # and DuckDB over the table's current files, as the README shows
        dataset = DeltaTable(f"{uri}/features", storage_options=options).to_pyarrow_dataset()
        with duckdb.connect() as con:
            con.register("features", dataset)
            assert con.execute("SELECT count(*) FROM features").fetchone()[0] == 72 * 6
    finally:
        remote.unregister(ws.lake)
        remote.unregister(ws.artifacts)


def test_an_unreachable_store_is_one_error_line_blaming_no_file(s3, tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    export = tmp_path / "export"
    synth.run(export, n_equipment=1, days=0.2, seed=5, start=START, sensor_faults=False, workspace=ws)
    for env in ({**s3, "VIBRA_LAKE_URI": "s3://no-such-bucket/plant"},                       # refused
                {**s3, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "VIBRA_LAKE_URI": _uri()}):  # unreachable
        got = run_vibra("ingest", str(export), "--home", str(ws.root), env=env, timeout=300)
        assert got.returncode == 1, got.stderr
        line = [x for x in got.stderr.splitlines() if x.startswith("error:")]
        assert len(line) == 1 and "object store" in line[0] and env["VIBRA_LAKE_URI"] in line[0], got.stderr
        assert "Traceback" not in got.stderr or "ingest stopped" in line[0]
    assert status.run(ws)["failed"] == 0  # no file blamed


def test_a_store_outage_during_compaction_is_one_line_and_loses_nothing(s3, tmp_path):
    """Issue 32 B9: the store goes away under ``vibra maintain compact`` (its files are in the local cache, the
    commit and uploads need the store): one error line naming the lake, no traceback, and the lake reads whole
    once the store is back."""
    uri = _uri()
    ws, _ = init_workspace(tmp_path / "ws")
    export = tmp_path / "export"
    synth.run(export, n_equipment=1, days=0.2, seed=6, start=START, sensor_faults=False, workspace=ws)
    home = ["--home", str(ws.root)]
    run_vibra("ingest", str(export), *home, env={**s3, "VIBRA_LAKE_URI": uri}, check=True)
    before = _features_on_store(uri).height
    down = {**s3, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "VIBRA_LAKE_URI": uri}  # nothing listens there
    got = run_vibra("maintain", "compact", *home, env=down, timeout=300)
    assert got.returncode == 1, got.stderr
    assert "Traceback" not in got.stderr, got.stderr
    lines = [x for x in got.stderr.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and uri in lines[0], got.stderr
    assert _features_on_store(uri).height == before  # the store back: nothing lost, nothing doubled
    assert run_vibra("maintain", "compact", *home, env={**s3, "VIBRA_LAKE_URI": uri}).returncode == 0
    assert _features_on_store(uri).height == before


def test_two_workspaces_on_one_store_each_judge_and_repair_only_their_own_windows(s3, tmp_path):
    """Windows belong to the workspace whose commit added them (its writer id in the commit's metadata): one
    workspace's doctor never calls the other's windows orphans, and its --repair leaves them alone."""
    uri = _uri()
    env = {**s3, "VIBRA_LAKE_URI": uri}
    homes = []
    for n, seed in enumerate((7, 8)):  # the same machine names, other recordings: their partitions overlap
        ws, _ = init_workspace(tmp_path / f"ws{n}")
        synth.run(tmp_path / f"export{n}", n_equipment=1, days=0.2, seed=seed, start=START, sensor_faults=False,
                  workspace=ws)
        run_vibra("ingest", str(tmp_path / f"export{n}"), "--home", str(ws.root), env=env, check=True)
        homes.append(["--home", str(ws.root)])
    total = _features_on_store(uri).height
    assert total == 2 * 30, total  # 5 recordings × 6 windows in each workspace, both in the one table
    for h in homes:
        found = json.loads(run_vibra("doctor", "--json", *h, env=env).stdout)
        assert found["findings"] == [], found  # the other's windows are not orphans
    fixed = json.loads(run_vibra("doctor", "--repair", "--json", *homes[0], env=env, check=True).stdout)
    assert fixed["ok"] and fixed["findings"] == []
    assert _features_on_store(uri).height == total  # not one window of the other workspace removed
    writers = {json.loads(line)["commitInfo"].get("vibra.writer")
               for k in _keys(f"{uri}/features/_delta_log") if k.endswith(".json")
               for line in [_get(k).splitlines()[0]]}
    assert len(writers - {None}) == 2, writers


def _get(key: str) -> str:
    import boto3

    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
    return client.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()


def test_uploads_without_a_table_log_are_no_table_and_repair_clears_them(s3, tmp_path, monkeypatch):
    """A first ingest killed after its uploads and before its first commit (a Dask + s3:// run) leaves objects
    and no log: every command reads an empty table, doctor names them, --repair moves them aside."""
    import boto3

    uri = _uri()
    env = {**s3, "VIBRA_LAKE_URI": uri}
    local, _ = init_workspace(tmp_path / "local")
    export = tmp_path / "export"
    synth.run(export, n_equipment=1, days=0.1, seed=9, start=START, sensor_faults=False, workspace=local)
    ingest.run(local, load_settings(local.config_path, {}), export)  # real features files, from a local lake
    files = sorted(local.lake.glob("features/date=*/equipment=*/*.parquet"))
    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
    prefix = uri.removeprefix(f"s3://{BUCKET}/")
    for f in files:
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/{f.relative_to(local.lake).as_posix()}", Body=f.read_bytes())
    ws, _ = init_workspace(tmp_path / "ws")
    ws.config_path.write_text(local.config_path.read_text())  # the machines synth declared
    for command in (["status"], ["doctor"], ["query", "recent", "motor-01"]):
        proc = run_vibra(*command, "--home", str(ws.root), env=env)
        assert "Traceback" not in proc.stderr and "No files found" not in proc.stderr, (command, proc.stderr)
        assert proc.returncode in (0, 1, 3) and len(proc.stderr.strip().splitlines()) <= 1, (command, proc.stderr)
    settings = load_settings(ws.config_path, env)
    remote.configure(ws, settings)
    try:
        assert status.run(ws)["features_total"] == 0
        monkeypatch.setattr(lake.commits, "VACUUM_HOURS", 0)  # the uploads are older than the grace
        found = {f["check"]: f for f in doctor.check(ws, settings)["findings"]}
        assert found["leftover_temporary_files"]["count"] == len(files), found
        assert doctor.check(ws, settings, repair=True)["ok"]
        assert not [k for k in _keys(uri) if "/features/" in k and k.endswith(".parquet")]
        assert len(list((ws.data / doctor.QUARANTINE / "features").rglob("*.parquet"))) == len(files)  # kept
        assert ingest.run(ws, settings, export).new == len(files)
        assert _features_on_store(uri).height == status.run(ws)["features_total"] > 0
    finally:
        remote.unregister(ws.lake)
        remote.unregister(ws.artifacts)


@pytest.mark.parametrize("uri", ["s3:///p", "s3://lake//p", "s3://lake/a/../../other/p", "s3:// lake", "s3://lake/p?x=1",
                                 "s3://Lake_Bad/p", "s3://lake/./p", "s3://"])
def test_a_bad_lake_uri_is_one_config_error_line(uri):
    from vibra.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^\[lake\] uri = .*: .*; use s3://bucket/prefix"):
        remote.validate_uri(uri)


def test_lake_uri_is_normalised():
    assert remote.validate_uri("s3://lake/plant/a/") == "s3://lake/plant/a"
    assert remote.validate_uri("s3://lake") == "s3://lake"


def test_a_missing_bucket_or_an_empty_store_under_an_ingested_ledger_is_an_error(s3, tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    export = tmp_path / "export"
    synth.run(export, n_equipment=1, days=0.1, seed=4, start=START, sensor_faults=False, workspace=ws)
    home = ["--home", str(ws.root)]
    proc = run_vibra("status", *home, env={**s3, "VIBRA_LAKE_URI": "s3://lake/a/../../other/p"})
    assert proc.returncode == 1 and proc.stderr.startswith("error: [lake] uri") and "Traceback" not in proc.stderr
    run_vibra("ingest", str(export), *home, check=True)  # a local lake, then a URI pointing elsewhere
    for uri, words in ((f"s3://no-such-bucket-{uuid.uuid4().hex[:6]}/p", "does not exist"),
                       (_uri(), "holds no features table")):
        for command in (["status"], ["ingest", str(export)], ["report"]):
            proc = run_vibra(*command, *home, env={**s3, "VIBRA_LAKE_URI": uri})
            lines = [x for x in proc.stderr.strip().splitlines() if " ERROR vibra" not in x]
            assert proc.returncode == 1 and len(lines) == 1 and words in lines[0], (command, proc.stderr)
