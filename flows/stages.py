"""Prefect flows for vibra's scheduled jobs. Each task calls one ``vibra_pipelines`` function;
the business logic lives there, so a flow and the matching ``vibra`` command give the same lake.

Flows: ``ingest``, ``train``, ``detect``, ``forecast``, ``cluster_refresh``, ``readiness``,
``snapshot``, ``report``, ``maintenance``, ``rul`` and ``nightly`` (ingest → detect → forecast → RUL →
cluster refresh → readiness → snapshot when readiness is not red → report → maintenance). Per-file
(ingest) and per-machine (train, detect) tasks fan out on threads or, with
``task_runner="dask"``, on Dask workers (``dask_address`` or a local cluster). With ``[lake] uri`` on
object storage, ingest workers share nothing with the flow but the URI (:func:`ships_files`); the
per-machine tasks then stay on the flow's threads (:func:`machine_runner`). One machine
failing does not fail the night: failures are collected, reported in the summary, and the
flow ends in a ``Partial`` state (type COMPLETED) whose message names them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed
from prefect.task_runners import ThreadPoolTaskRunner

from vibra.settings import Settings, load_settings
from vibra.workspace import Workspace, find_workspace

BACKOFF_S = [10, 60, 300]


def context(home: str | None) -> tuple[Workspace, Settings]:
    """The workspace and its settings, as the CLI builds them (vibra.toml < VIBRA_* environment)."""
    from vibra_pipelines.runs import ARGUMENTS

    ws = find_workspace(home, os.environ.get("VIBRA_HOME"))
    ARGUMENTS.set(f"flow home={ws.root}")
    settings = load_settings(ws.config_path, os.environ)
    if settings.lake.uri:
        from vibra.storage import remote

        remote.configure(ws, settings)
    for warning in settings.warnings:  # e.g. a mistyped VIBRA_* name in the deployment's environment
        logging.getLogger("vibra.flows").warning(warning)
    return ws, settings


def task_runner(settings: Settings, kind: str | None = None, dask_address: str | None = None,
                dask_workers: int | None = None):
    """Threads (up to ``[ingest] max_concurrent_files``) or prefect-dask's DaskTaskRunner."""
    kind = kind or settings.flows.task_runner
    if kind == "thread":
        return ThreadPoolTaskRunner(max_workers=settings.ingest.max_concurrent_files)
    if kind != "dask":
        raise ValueError(f"task_runner {kind!r}: use thread or dask")
    from prefect_dask import DaskTaskRunner

    address = dask_address if dask_address is not None else settings.flows.dask_address
    if address:
        return DaskTaskRunner(address=address)
    n_workers = dask_workers or settings.flows.dask_workers
    if settings.lake.uri:
        # the lake on object storage: process workers, each given only the URI and its source file (what a
        # cluster of other machines gets; see ships_files). They report to PREFECT_API_URL's server.
        from prefect.settings import PREFECT_API_URL

        if not PREFECT_API_URL.value():
            logging.getLogger("vibra.flows").warning(
                "task runner dask with [lake] uri: PREFECT_API_URL is not set, so each Dask worker process starts "
                "a temporary Prefect server of its own (about a minute each) and its task runs are not seen by "
                "this flow's server; start one (`prefect server start`) and set PREFECT_API_URL")
        return DaskTaskRunner(cluster_kwargs={"n_workers": n_workers, "processes": True, "threads_per_worker": 1,
                                              "dashboard_address": None})
    # a local lake: thread workers, which share this process's Prefect API (no server needed) and its files
    # anyway (process workers on the same machine would add only their start-up)
    return DaskTaskRunner(cluster_kwargs={"n_workers": n_workers, "processes": False, "threads_per_worker": 1,
                                          "dashboard_address": None})


def ships_files(settings: Settings, runner) -> bool:
    """Whether per-file ingest tasks go to workers that share only the lake URI with this flow: Dask with
    ``[lake] uri`` (:mod:`vibra_pipelines.ingest.remote`). Without a URI, Dask workers need the workspace and
    the export at the same paths; threads share this process."""
    return bool(settings.lake.uri) and not isinstance(runner, ThreadPoolTaskRunner)


def machine_runner(settings: Settings, runner):
    """The runner for per-machine (train, detect) tasks: ``runner``, except that tasks which record their
    runs in this workspace's DuckDB ledger stay on this process's threads when the workers share only the
    lake URI (they have no workspace, and one ledger file has one writer)."""
    if ships_files(settings, runner):
        return ThreadPoolTaskRunner(max_workers=settings.ingest.max_concurrent_files)
    return runner


def _retrying(fn):
    # no input hashing: the inputs are the workspace, its settings and plain records, never worth a cache key
    return task(retries=2, retry_delay_seconds=BACKOFF_S[:2], log_prints=True, cache_policy=NO_CACHE)(fn)


def _finish(summary: dict[str, Any], failures: dict[str, str]):
    """The flow's return: Completed, or Partial (still type COMPLETED) naming what failed."""
    summary["failures"] = failures
    if failures:
        names = ", ".join(sorted(failures)[:10])
        return Completed(name="Partial", message=f"{len(failures)} failed: {names}", data=summary)
    return Completed(message="all done", data=summary)


# -- tasks: one pipelines call each --------------------------------------------------------------

@_retrying
def ingest_file(ws: Workspace, settings: Settings, completed: dict, item):
    from vibra_pipelines import ingest

    return ingest.work_one(ws, settings, completed, item)


@_retrying
def ingest_shipped(settings: Settings, job):
    from vibra_pipelines.ingest import remote as ingest_remote

    return ingest_remote.work(settings, job)


@_retrying
def train_machine(ws: Workspace, settings: Settings, equipment_id: str, models: list[str] | None):
    from vibra_pipelines import anomaly

    return anomaly.train(ws, settings, models=models, equipment=[equipment_id]).as_dict()


@_retrying
def detect_machine(ws: Workspace, settings: Settings, equipment_id: str):
    from vibra.errors import NotReadyError
    from vibra_pipelines import anomaly

    try:
        return anomaly.detect(ws, settings, equipment=[equipment_id]).as_dict()
    except NotReadyError as exc:  # no model yet (a new machine): not a failure of the night
        return {"scored": 0, "skipped": str(exc)}


@_retrying
def forecast_fleet(ws: Workspace, settings: Settings, indicators: list[str] | None):
    from vibra_pipelines import forecast

    return forecast.run(ws, settings, indicators=indicators).as_dict()


@_retrying
def rul_task(ws: Workspace, settings: Settings):
    from vibra_pipelines import rul

    return rul.run(ws, settings).as_dict()


@_retrying
def cluster_task(ws: Workspace, settings: Settings):
    from vibra_pipelines import cluster, defects

    result = cluster.run(ws, settings)
    defects.after_cluster(ws, settings, result)  # the kNN retrain rule, after every clustering
    return result.as_dict()


@_retrying
def readiness_task(ws: Workspace, settings: Settings):
    from vibra_pipelines import readiness

    report = readiness.run(ws, settings)
    return {"status": report["status"], "counts": report["counts"], "equipment": report["equipment"],
            "red": sorted({m["name"] for m in report["metrics"] if m["status"] == "red"})}


@_retrying
def snapshot_task(ws: Workspace, settings: Settings):
    from vibra_pipelines import readiness, snapshot

    meta = snapshot.run(ws, settings, readiness=readiness.assess(ws, settings))
    return {"version": meta["version"], "rows": meta["rows"], "data_sha256": meta["data_sha256"]}


@_retrying
def report_task(ws: Workspace, settings: Settings):
    from vibra_pipelines import report

    return report.run(ws, settings).as_dict()


@_retrying
def maintenance_task(ws: Workspace, settings: Settings, keep: int):
    from vibra_pipelines import doctor, maintain

    # repair first: a damaged lake file or pointer stops compaction and gc, so repairing last would
    # leave the night's damage in place
    checked = doctor.check(ws, settings, repair=True)
    compacted = maintain.compact(ws, settings)
    removed = maintain.gc(ws, settings, keep)
    return {"compacted": compacted.tables, "gc_removed": {k: len(v) for k, v in removed.items()},
            "doctor_ok": checked["ok"], "doctor_findings": [f["check"] for f in checked["findings"]]}


def _per_machine(futures: dict) -> tuple[dict, dict]:
    """Results and failures of per-machine futures (a failure is that machine's, not the flow's)."""
    done, failed = {}, {}
    for eid, fut in futures.items():
        try:
            done[eid] = fut.result()
        except Exception as exc:  # noqa: BLE001 - collected and reported, the others go on
            failed[eid] = f"{type(exc).__name__}: {str(exc)[:300]}"
    return done, failed


# -- fan-out subflows (their task runner is chosen by the calling flow) -----------------------------

@flow(name="ingest-files", task_runner=ThreadPoolTaskRunner(max_workers=2))
def _ingest_files(ws: Workspace, settings: Settings, todo: list, completed: dict) -> list:
    one = ingest_file.with_options(retries=settings.flows.retries)
    futures = [one.submit(ws, settings, completed, item) for item in todo]
    return [f.result() for f in futures]


@flow(name="ingest-shipped-files", task_runner=ThreadPoolTaskRunner(max_workers=2))
def _ingest_shipped(settings: Settings, jobs: list) -> list:
    one = ingest_shipped.with_options(retries=settings.flows.retries)
    futures = [one.submit(settings, job) for job in jobs]
    return [f.result() for f in futures]


@flow(name="per-machine", task_runner=ThreadPoolTaskRunner(max_workers=2))
def _per_machine_flow(ws: Workspace, settings: Settings, stage: str, ids: list[str], models: list[str] | None = None):
    retries = settings.flows.retries
    if stage == "train":
        futures = {eid: train_machine.with_options(retries=retries).submit(ws, settings, eid, models) for eid in ids}
    else:
        futures = {eid: detect_machine.with_options(retries=retries).submit(ws, settings, eid) for eid in ids}
    for fut in futures.values():
        fut.wait()
    return _per_machine(futures)


# -- the flows ---------------------------------------------------------------------------------------

def _ingest(ws, settings, source: str, runner) -> dict:
    from vibra_pipelines import ingest
    from vibra_pipelines.ingest import remote as ingest_remote

    workers: dict[str, int] = {}

    def fan_out(todo, completed):
        if not todo:
            return []
        if not ships_files(settings, runner):
            return _ingest_files.with_options(task_runner=runner)(ws, settings, todo, completed)
        shipped = _ingest_shipped.with_options(task_runner=runner)
        results, by_worker = ingest_remote.fan_out(ws, settings, todo, completed,
                                                   lambda jobs: shipped(settings, jobs))
        workers.update(by_worker)
        return results

    result = ingest.run(ws, settings, Path(source), fan_out=fan_out)
    by_machine: dict[str, int] = {}
    root = Path(source).expanduser().resolve()
    for path in result.failures:
        try:
            machine = Path(path).relative_to(root).parts[0]
        except ValueError:
            machine = Path(path).parent.name
        by_machine[machine] = by_machine.get(machine, 0) + 1
    return {**result.as_dict(), "failed_by_machine": by_machine,
            "failures": {p: r for p, r in list(result.failures.items())[:20]},
            **({"workers": workers} if workers else {})}


@flow(name="ingest", log_prints=True)
def ingest_flow(home: str | None = None, source: str = "", task_runner_kind: str | None = None,
                dask_address: str | None = None):
    """Ingest new files of ``source`` (one subfolder per machine); per-file tasks fan out."""
    ws, settings = context(home)
    out = _ingest(ws, settings, source, task_runner(settings, task_runner_kind, dask_address))
    get_run_logger().info("ingest: %s", {k: v for k, v in out.items() if k != "failures"})
    return _finish(out, {f"ingest:{m}": f"{n} file(s) failed" for m, n in out["failed_by_machine"].items()})


def _machines(ws: Workspace, stage: str, settings: Settings, runner, models=None) -> tuple[dict, dict]:
    from vibra_pipelines import anomaly

    ids = anomaly.equipment_ids(ws)
    if not ids:
        return {}, {}
    return _per_machine_flow.with_options(task_runner=machine_runner(settings, runner))(ws, settings, stage, ids, models)


@flow(name="train", log_prints=True)
def train_flow(home: str | None = None, models: list[str] | None = None, task_runner_kind: str | None = None,
               dask_address: str | None = None):
    """Retrain every machine's anomaly models (per-machine tasks)."""
    ws, settings = context(home)
    done, failed = _machines(ws, "train", settings, task_runner(settings, task_runner_kind, dask_address),
                             models)  # None: every family, as `vibra train`
    get_run_logger().info("train: %d machines, %d failed", len(done), len(failed))
    return _finish({"models": sum(len(d["models"]) for d in done.values())}, {f"train:{k}": v for k, v in failed.items()})


@flow(name="detect", log_prints=True)
def detect_flow(home: str | None = None, task_runner_kind: str | None = None, dask_address: str | None = None):
    """Score new windows of every machine (per-machine tasks)."""
    ws, settings = context(home)
    done, failed = _machines(ws, "detect", settings, task_runner(settings, task_runner_kind, dask_address))
    get_run_logger().info("detect: %d machines, %d failed", len(done), len(failed))
    return _finish({"scored": sum(d["scored"] for d in done.values())}, {f"detect:{k}": v for k, v in failed.items()})


def _single(name: str, fn, ws: Workspace, settings: Settings, *args) -> tuple[dict, dict]:
    try:
        return fn.with_options(retries=settings.flows.retries).submit(ws, settings, *args).result(), {}
    except Exception as exc:  # noqa: BLE001 - reported by the calling flow
        return {}, {name: f"{type(exc).__name__}: {str(exc)[:300]}"}


def _stage(name: str, fn, home: str | None, *args):
    """A flow body that runs one task: the workspace, the task, its log line, the final state."""
    ws, settings = context(home)
    out, failed = _single(name, fn, ws, settings, *args)
    get_run_logger().info("%s: %s", name, out)
    return _finish(out, failed)


@flow(name="forecast", log_prints=True)
def forecast_flow(home: str | None = None, indicators: list[str] | None = None):
    """Forecasts with intervals and time-to-threshold (statsforecast fits the series in parallel itself)."""
    return _stage("forecast", forecast_fleet, home, indicators)  # None: the CLI's default


@flow(name="rul", log_prints=True)
def rul_flow(home: str | None = None):
    """Remaining useful life of every machine from the workspace's run-to-failure library."""
    return _stage("rul", rul_task, home)


@flow(name="cluster-refresh", log_prints=True)
def cluster_refresh_flow(home: str | None = None):
    """Re-cluster, compare with the previous clustering, re-assign defects."""
    return _stage("cluster", cluster_task, home)


@flow(name="readiness", log_prints=True)
def readiness_flow(home: str | None = None):
    """The readiness gate (metrics, status, gauges)."""
    return _stage("readiness", readiness_task, home)


def _snapshot_unless_red(ws: Workspace, settings: Settings, ready: dict, even_if_red: bool = False):
    """The snapshot task, unless readiness (``readiness_task``'s summary) forbids it: the one rule of the
    snapshot and nightly flows (:func:`vibra.discovery.readiness.allows_snapshot`)."""
    from vibra.discovery.readiness import allows_snapshot

    if not (allows_snapshot(ready.get("status")) or even_if_red):
        why = f"readiness {ready.get('status', 'unknown')}: {', '.join(ready.get('red', []))}"
        get_run_logger().warning("no snapshot: %s", why)
        return {"skipped": why}, {}
    return _single("snapshot", snapshot_task, ws, settings)


@flow(name="snapshot", log_prints=True)
def snapshot_flow(home: str | None = None, even_if_red: bool = False):
    """A training snapshot, unless readiness is red (``even_if_red`` overrides)."""
    ws, settings = context(home)
    ready, failed = _single("readiness", readiness_task, ws, settings)
    if failed:
        return _finish({}, failed)
    out, failed = _snapshot_unless_red(ws, settings, ready, even_if_red)
    return _finish({"snapshot": out, "readiness": ready}, failed)


@flow(name="report", log_prints=True)
def report_flow(home: str | None = None):
    """The HTML report."""
    return _stage("report", report_task, home)


@flow(name="maintenance", log_prints=True)
def maintenance_flow(home: str | None = None, keep: int = 5):
    """doctor --repair, then compaction and garbage collection (keep N versions)."""
    return _stage("maintenance", maintenance_task, home, keep)


@flow(name="nightly", log_prints=True)
def nightly(home: str | None = None, source: str = "", task_runner_kind: str | None = None,
            dask_address: str | None = None, keep: int = 5):
    """ingest → detect → forecast → RUL → cluster refresh → readiness → snapshot (not when red) → report →
    maintenance."""
    log = get_run_logger()
    ws, settings = context(home)
    runner = task_runner(settings, task_runner_kind, dask_address)
    summary: dict[str, Any] = {}
    failures: dict[str, str] = {}
    if source:
        try:
            summary["ingest"] = _ingest(ws, settings, source, runner)
            failures.update({f"ingest:{m}": f"{n} file(s) failed" for m, n in summary["ingest"]["failed_by_machine"].items()})
        except Exception as exc:  # noqa: BLE001
            failures["ingest"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    done, failed = _machines(ws, "detect", settings, runner)
    summary["detect"] = {"machines": len(done), "scored": sum(d["scored"] for d in done.values())}
    failures.update({f"detect:{k}": v for k, v in failed.items()})
    # None: the pipeline's default indicators, as `vibra forecast` without --indicator
    for name, fn, args in (("forecast", forecast_fleet, (None,)), ("rul", rul_task, ()), ("cluster", cluster_task, ()),
                           ("readiness", readiness_task, ())):
        summary[name], failed = _single(name, fn, ws, settings, *args)
        failures.update(failed)
    summary["snapshot"], failed = _snapshot_unless_red(ws, settings, summary.get("readiness") or {})
    failures.update(failed)
    for name, fn, args in (("report", report_task, ()), ("maintenance", maintenance_task, (keep,))):
        summary[name], failed = _single(name, fn, ws, settings, *args)
        failures.update(failed)
    log.info("nightly: %s", {k: v for k, v in summary.items() if k != "ingest"})
    return _finish(summary, failures)


ALL_FLOWS = {"nightly": nightly, "ingest": ingest_flow, "train": train_flow, "detect": detect_flow,
             "forecast": forecast_flow, "cluster-refresh": cluster_refresh_flow, "readiness": readiness_flow,
             "snapshot": snapshot_flow, "report": report_flow, "maintenance": maintenance_flow, "rul": rul_flow}
