"""Prefect flows: each flow gives the lake the CLI gives; Dask scale-out; partial success; a real server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

from vibra.storage import catalog
from vibra.workspace import init_workspace
from vibra_pipelines import synth

from conftest import free_port, run_vibra, start_prefect_server

ROOT = Path(__file__).resolve().parents[1]
PREFECT_ENV = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180", "PREFECT_LOGGING_LEVEL": "WARNING"}


@pytest.fixture(scope="session")
def harness(tmp_path_factory):
    """One Prefect test harness (a temporary local API) for the whole session (≈ 15–20 s to start)."""
    old = {k: os.environ.get(k) for k in [*PREFECT_ENV, "PREFECT_HOME"]}
    os.environ.update(PREFECT_ENV)
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _plant(root: Path, *, seed: int = 6, equipment: int = 3, days: float = 2.0) -> Path:
    """A seeded export (with its equipment sections in root/equipment.toml)."""
    start = (datetime.now(timezone.utc) - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    synth.run(root / "export", n_equipment=equipment, days=days, seed=seed, start=start, sensor_faults=False)
    return root / "export"


def _workspace(root: Path, export: Path):
    ws, _ = init_workspace(root)
    ws.config_path.write_text((export / "equipment.toml").read_text() + "\n[cluster]\numap_components = 0\n")
    return ws


def _ledger(ws) -> pl.DataFrame:
    rows = catalog.query(ws.catalog_path, f"SELECT source_path, recording_id, status, n_windows, duplicate_of "
                                          f"FROM {catalog.CURRENT} c ORDER BY source_path")
    return pl.DataFrame(rows, schema=["source_path", "recording_id", "status", "n_windows", "duplicate_of"], orient="row")


def _table(ws, name: str, drop=()) -> pl.DataFrame:
    files = sorted(ws.lake.glob(f"{name}/date=*/equipment=*/*.parquet"))
    if not files:
        return pl.DataFrame()
    df = pl.concat([pl.read_parquet(f, hive_partitioning=False) for f in files], how="diagonal_relaxed")
    df = df.drop([c for c in drop if c in df.columns])
    return df.select(sorted(df.columns)).sort(sorted(c for c in df.columns if df[c].dtype != pl.List(pl.Float32)))


def test_every_flow_gives_the_lake_the_cli_gives(tmp_path, harness):
    from vibra_flows import stages

    export = _plant(tmp_path)
    cli, flo = _workspace(tmp_path / "cli", export), _workspace(tmp_path / "flow", export)
    home = ["--home", str(cli.root)]
    for args in (["ingest", str(export)], ["train"], ["detect"], ["forecast"], ["cluster"],
                 ["readiness"], ["snapshot", "--seed", "0"], ["report"]):
        assert run_vibra(*args, *home).returncode in (0, 3), args
    states = {}
    h = str(flo.root)
    states["ingest"] = stages.ingest_flow(home=h, source=str(export), return_state=True)
    states["train"] = stages.train_flow(home=h, return_state=True)
    states["detect"] = stages.detect_flow(home=h, return_state=True)
    states["forecast"] = stages.forecast_flow(home=h, return_state=True)
    states["cluster"] = stages.cluster_refresh_flow(home=h, return_state=True)
    states["readiness"] = stages.readiness_flow(home=h, return_state=True)
    states["snapshot"] = stages.snapshot_flow(home=h, even_if_red=True, return_state=True)
    states["report"] = stages.report_flow(home=h, return_state=True)
    for name, st in states.items():
        assert st.is_completed() and st.name == "Completed", (name, st.name, st.message)
    assert _ledger(cli).drop("recording_id").equals(_ledger(flo).drop("recording_id"))
    assert _ledger(cli).equals(_ledger(flo)) and _ledger(cli).height == 3 * 48
    # two empty tables compare equal: every table must hold rows before the comparison means anything
    versions = ("model_version", "scope")
    fc = ("model_version", "version", "generated_at", "run_version")
    for name, drop in (("features", ()), ("hourly", ()), ("scores", versions), ("forecasts", fc),
                       ("clusters", ("clustering_version",))):
        a, b = _table(cli, name, drop), _table(flo, name, drop)
        assert a.height > 0 and b.height > 0, (name, a.height, b.height)
        assert a.equals(b), name
    snaps = [json.loads((ws.artifacts / "snapshots" / "latest.json").read_text())["version"] for ws in (cli, flo)]
    sha = [json.loads((ws.artifacts / "snapshots" / v / "metadata.json").read_text())["data_sha256"]
           for ws, v in zip((cli, flo), snaps)]
    assert sha[0] == sha[1]  # the training snapshot is byte-identical
    assert (flo.reports / "index.html").exists() and (flo.reports / "clusters.html").exists()
    # the flows are recorded in the run history like commands
    runs = {r["command"] for r in json.loads(run_vibra("runs", "--json", "--limit", "50", "--home", h).stdout)["runs"]}
    assert {"ingest", "train", "detect", "forecast", "cluster", "readiness", "snapshot", "report"} <= runs
    summary = states["ingest"].result()
    assert summary["new"] == 3 * 48 and summary["failures"] == {}
    st = stages.maintenance_flow(home=h, keep=2, return_state=True)
    assert st.is_completed() and st.result()["doctor_ok"]
    compacted = _table(flo, "features")
    assert compacted.height > 0 and compacted.equals(_table(cli, "features"))  # compaction changed files, not rows


def test_flow_tasks_default_to_what_the_cli_runs(tmp_path):
    """The flows pass None where `vibra` passes nothing, so the pipelines' default is the one default:
    the train task trains the families `vibra train` trains, the forecast task (as the nightly calls it)
    forecasts the indicators `vibra forecast` forecasts. Task bodies run without a Prefect server."""
    from vibra.settings import load_settings
    from vibra_flows import stages
    from vibra_pipelines import forecast
    from vibra_pipelines.anomaly import equipment_ids

    export = _plant(tmp_path, equipment=1, days=1.0)
    ws = _workspace(tmp_path / "ws", export)
    home = ["--home", str(ws.root)]
    assert run_vibra("ingest", str(export), *home).returncode == 0
    settings = load_settings(ws.config_path, {})
    eid = equipment_ids(ws)[0]

    cli = json.loads(run_vibra("train", "--json", *home, check=True).stdout)
    flow = stages.train_machine.fn(ws, settings, eid, None)
    assert sorted(m["model_type"] for m in flow["models"]) == sorted(m["model_type"] for m in cli["models"])
    assert len(cli["models"]) >= 3  # every family, not only [anomaly] model

    def indicators() -> set[str]:
        return {s["indicator"] for s in forecast.forecast_store(ws).latest_manifest()["series"]}

    stages.forecast_fleet.fn(ws, settings, None)  # first: a second run without --force skips unchanged series
    by_flow = indicators()
    run_vibra("forecast", "--force", *home, check=True)
    assert by_flow and indicators() == by_flow


def test_ingest_on_a_two_worker_dask_cluster_equals_sequential(tmp_path, harness):
    from vibra_flows import stages

    export = _plant(tmp_path, seed=9)
    first = sorted((export / "pump-02").glob("*.csv*"))[0]
    shutil.copy(first, export / "pump-02" / ("copy-of-first" + "".join(first.suffixes)))  # a copy within the run
    seq, dask = _workspace(tmp_path / "seq", export), _workspace(tmp_path / "dask", export)
    assert run_vibra("ingest", str(export), "--max-concurrent-files", "1", "--home", str(seq.root)).returncode == 0
    st = stages.ingest_flow(home=str(dask.root), source=str(export), task_runner_kind="dask", return_state=True)
    assert st.is_completed(), st.message
    assert st.result()["duplicates"] == 1
    assert _ledger(seq).equals(_ledger(dask)) and _ledger(seq).height == 3 * 48 + 1
    for name in ("features", "hourly"):
        a, b = _table(seq, name), _table(dask, name)
        assert a.height > 0 and b.height > 0, (name, a.height, b.height)
        assert a.equals(b), name


def test_nightly_with_one_broken_machine_is_partial(tmp_path, harness):
    from vibra_flows import stages

    export = _plant(tmp_path, seed=13)
    for f in sorted((export / "fan-03").glob("*"))[:5]:
        f.write_bytes(b"\x00\x01 not a recording \xff" * 10)  # fan-03's exporter wrote garbage
    ws = _workspace(tmp_path / "ws", export)
    stages.train_flow(home=str(ws.root))  # nothing ingested yet: nothing to train, not an error
    st = stages.nightly(home=str(ws.root), source=str(export), return_state=True)
    assert st.is_completed() and st.name == "Partial"
    assert "ingest:fan-03" in st.message
    summary = st.result()
    assert summary["failures"] == {"ingest:fan-03": "5 file(s) failed"}
    assert summary["ingest"]["failed_by_machine"] == {"fan-03": 5} and summary["ingest"]["new"] == 3 * 48 - 5
    assert summary["detect"]["machines"] == 3  # every machine went on
    assert summary["report"]["machines"] == 3 and summary["maintenance"]["doctor_ok"]
    assert summary["snapshot"]["skipped"].startswith("readiness red")  # 2 days < 14: no training snapshot
    # no machine had a model (the weekly retrain ran before any data): the nightly trained them, then scored
    assert summary["train"]["reason"] == "no model yet" and summary["train"]["machines"] == ["fan-03", "motor-01", "pump-02"]
    assert summary["detect"]["scored"] > 0
    stages_ = summary["stages"]
    assert stages_["ingest"] == {"status": "partial", "ok": 3 * 48 - 5, "failed": 1, "files_failed": 5, "duplicates": 0,
                                 "reasons": {"fan-03": "5 file(s) failed"}}
    assert stages_["train"]["status"] == stages_["detect"]["status"] == stages_["report"]["status"] == "ok"
    assert stages_["snapshot"]["status"] == "skipped" and stages_["snapshot"]["reason"].startswith("readiness red")


def _run_logs(flow_run_id) -> list[str]:
    """The log lines the Prefect API holds for a flow run (after this process's log worker has sent them)."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # send what this process queued, and wait

    async def read():
        async with get_client() as client:
            return await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))

    return [log.message for log in asyncio.run(read())]


def test_a_night_where_a_stage_failed_for_every_machine_ends_failed(tmp_path, harness, monkeypatch):
    """Every file of every machine is garbage: ingest did nothing, so the run is Failed (a "Failed" alert
    fires), not a Completed "Partial"; the summary says which stage, with counts and reasons, and vibra's
    own log lines reached the run's log in the Prefect API."""
    from vibra_flows import stages

    export = _plant(tmp_path, seed=21, equipment=2, days=0.25)
    for f in export.glob("*/*.csv*"):
        f.write_bytes(b"\x00\x01 not a recording \xff" * 10)
    ws = _workspace(tmp_path / "ws", export)
    monkeypatch.setenv("VIBRA_INGEST_MAX_CONCURENT_FILES", "2")  # a typo: vibra warns (logger vibra.flows)
    st = stages.nightly(home=str(ws.root), source=str(export), return_state=True)
    assert st.is_failed() and st.type.value == "FAILED", (st.name, st.message)
    assert "ingest" in st.message
    summary = st.result(raise_on_failure=False)
    ingest_stage = summary["stages"]["ingest"]
    assert ingest_stage["status"] == "failed" and ingest_stage["ok"] == 0 and ingest_stage["files_failed"] == 12
    assert set(ingest_stage["reasons"]) == {"motor-01", "pump-02"}
    # the harness logs at WARNING (PREFECT_LOGGING_LEVEL): vibra's warning is the line that must come through
    logs = _run_logs(st.state_details.flow_run_id)
    assert any(line.startswith("vibra.flows: environment variable VIBRA_INGEST_MAX_CONCURENT_FILES is not a vibra "
                               "setting") for line in logs), logs[:20]


def test_serve_and_prefect_yaml_share_one_schedule_list_and_never_a_name():
    import yaml

    from vibra_flows import serve
    from vibra_flows.stages import ALL_FLOWS

    declared = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    by_name = {d["name"]: d for d in declared}
    assert set(by_name) == set(serve.SCHEDULES)
    for name, (key, cron) in serve.SCHEDULES.items():
        assert by_name[name]["entrypoint"] == f"flows/stages.py:{ALL_FLOWS[key].fn.__name__}", name
        assert by_name[name]["schedules"][0]["cron"] == cron, name
    served = {d.name for d in serve.deployments("/srv/plant", "/mnt/export")}
    assert served == {serve.SERVED.format(n) for n in serve.SCHEDULES} and not served & set(by_name)


def _prefect(args: list[str], env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    exe = str(Path(sys.executable).with_name("prefect"))
    return subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.mark.slow
def test_real_server_work_pool_deploy_worker_nightly(tmp_path):
    """The README's platform steps: server, work pool, `prefect deploy --all`, worker, a triggered nightly run."""
    export = _plant(tmp_path, seed=17, equipment=2, days=1)
    ws = _workspace(tmp_path / "ws", export)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "VIBRA_"))}
    env.update(PREFECT_ENV, PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
               VIBRA_HOME=str(ws.root), VIBRA_SOURCE=str(export))  # VIBRA_REPO: the worker's only (read at run time)
    server = start_prefect_server(port, env)
    exe = str(Path(sys.executable).with_name("prefect"))
    worker = None
    try:
        made = _prefect(["work-pool", "create", "vibra", "--type", "process"], env)
        assert made.returncode == 0, made.stdout + made.stderr
        unset = _prefect(["--no-prompt", "deploy", "--all"], {k: v for k, v in env.items() if k != "VIBRA_SOURCE"})
        assert unset.returncode != 0 and "VIBRA_SOURCE is not set" in unset.stdout + unset.stderr
        deployed = _prefect(["--no-prompt", "deploy", "--all"], env)
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
        # the docs' recipe: VIBRA_REPO given to the worker only, when it starts
        worker = subprocess.Popen([exe, "worker", "start", "--pool", "vibra"], env={**env, "VIBRA_REPO": str(ROOT)},
                                  stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True, cwd=tmp_path)
        script = ("from prefect.deployments import run_deployment\n"
                  "r = run_deployment('nightly/nightly', timeout=600)\n"
                  "print(r.state.type.value, r.state.name)\n")
        ran = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=700)
        assert ran.returncode == 0, ran.stderr[-3000:]
        assert ran.stdout.split()[-2:] == ["COMPLETED", "Completed"], ran.stdout
        listed = _prefect(["deployment", "ls"], {**env, "COLUMNS": "300"})
        for name in ("nightly", "retrain-weekly", "forecast-6h", "cluster-refresh-daily", "snapshot-daily",
                     "maintenance-daily"):
            assert name in listed.stdout, name
        assert (ws.reports / "index.html").exists()
        status = json.loads(run_vibra("status", "--json", "--home", str(ws.root), check=True).stdout)
        assert status["completed"] == 2 * 24
    finally:
        for proc in (worker, server):
            if proc is not None:
                try:
                    os.killpg(proc.pid, 15)
                    proc.wait(timeout=30)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    os.killpg(proc.pid, 9)
