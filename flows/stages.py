"""Prefect flows for vibra's scheduled jobs. Each task calls one ``vibra_pipelines`` function;
the business logic lives there, so a flow and the matching ``vibra`` command give the same lake.

Flows: ``ingest``, ``train``, ``detect``, ``forecast``, ``cluster_refresh``, ``readiness``,
``snapshot``, ``report``, ``maintenance``, ``rul`` and ``nightly`` (ingest → detect → forecast → RUL →
cluster refresh → readiness → snapshot when readiness is not red → report → maintenance). Per-file
(ingest) and per-machine (train, detect) tasks fan out on threads or, with
``task_runner="dask"``, on Dask workers (``dask_address`` or a local cluster). With ``[lake] uri`` on
object storage, ingest workers share nothing with the flow but the URI (:func:`ships_files`); the
per-machine tasks then stay on the flow's threads (:func:`machine_runner`).

A run's state tells the truth (:class:`Outcome`): one machine failing does not fail the night
(failures are collected, the flow ends ``Partial``, type COMPLETED, its message naming them), but
a stage that failed as a whole — a fleet-wide stage raising, or a per-machine stage failing for
every machine — ends the run ``Failed``. The summary holds each stage's status, counts and reasons
(``stages``), also posted as a Markdown artifact; vibra's own log records go to the run's log.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed
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


class Outcome:
    """Each stage's status, counts and reasons in one flow run, and the final state they add up to.

    A stage is ``ok``, ``partial`` (some machines or files failed), ``failed`` (it raised as a whole,
    or failed for every machine it ran on) or ``skipped`` (with the reason). Any ``failed`` stage fails
    the run; ``partial`` ones make it ``Partial`` (type COMPLETED), so a "Failed" alert never misses a
    night where ingest, clustering or maintenance did nothing."""

    def __init__(self) -> None:
        self.stages: dict[str, dict] = {}
        self.failures: dict[str, str] = {}

    def add(self, stage: str, *, ok: int = 0, failed: dict[str, str] | None = None, whole: bool = False,
            skipped: str | None = None, **counts) -> None:
        """Record a stage: ``ok`` machines (or files) done, ``failed`` {machine or stage: reason}; ``whole``:
        the stage itself failed."""
        failed = failed or {}
        status = ("skipped" if skipped else "failed" if whole or (failed and not ok) else
                  "partial" if failed else "ok")
        self.stages[stage] = {"status": status, "ok": ok, "failed": len(failed), **counts,
                              **({"reasons": failed} if failed else {}), **({"reason": skipped} if skipped else {})}
        self.failures.update({(k if k == stage else f"{stage}:{k}"): v for k, v in failed.items()})

    def single(self, stage: str, out: dict, failed: dict[str, str]) -> None:
        """A fleet-wide stage (one task): its failure is the whole stage's."""
        self.add(stage, ok=0 if failed else 1, failed=failed, whole=bool(failed))

    def finish(self, summary: dict[str, Any]):
        summary["stages"], summary["failures"] = self.stages, self.failures
        _post_summary(summary)
        whole = [name for name, st in self.stages.items() if st["status"] == "failed"]
        names = ", ".join(sorted(self.failures)[:10])
        if whole:
            return Failed(message=f"stage(s) failed: {', '.join(whole)}; {len(self.failures)} failed: {names}",
                          data=summary)
        if self.failures:
            return Completed(name="Partial", message=f"{len(self.failures)} failed: {names}", data=summary)
        return Completed(message="all done", data=summary)


def _post_summary(summary: dict[str, Any]) -> None:
    """The stages' table as a Markdown artifact of the run (in the Prefect UI and API)."""
    rows = ["| stage | status | ok | failed | reasons |", "|---|---|---|---|---|"]
    for name, st in summary["stages"].items():
        reasons = "; ".join(f"{k}: {v}" for k, v in (st.get("reasons") or {}).items()) or st.get("reason", "")
        rows.append(f"| {name} | {st['status']} | {st['ok']} | {st['failed']} | {reasons.replace('|', '/')[:500]} |")
    try:
        from prefect.artifacts import create_markdown_artifact

        create_markdown_artifact("\n".join(rows), description="vibra: stages of this run")
    except Exception as exc:  # noqa: BLE001 - the summary is also the run's result and log line
        logging.getLogger("vibra.flows").warning("could not post the run summary artifact: %s", exc)


def _finish(summary: dict[str, Any], failures: dict[str, str], *, stage: str, ok: int = 0, whole: bool = False):
    """The state of a one-stage flow (see :class:`Outcome`)."""
    outcome = Outcome()
    outcome.add(stage, ok=ok, failed={k.split(":", 1)[-1] if ":" in k else k: v for k, v in failures.items()},
                whole=whole)
    return outcome.finish(summary)


class _RunLog(logging.Handler):
    """Forwards vibra's log records (``vibra`` and below) to the flow run's logger, so they reach the
    Prefect API with the run's own lines (a worker's console is not where anyone looks)."""

    def __init__(self, run_logger) -> None:
        super().__init__(logging.INFO)
        self.run_logger = run_logger

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("prefect"):
            return
        try:
            fields = {k: v for k, v in record.__dict__.items() if k in ("run_id", "command", "status", "counts",
                                                                        "error", "seconds", "path", "equipment_id")}
            self.run_logger.log(record.levelno, f"{record.name}: {record.getMessage()}"
                                + (f" {fields}" if fields else ""))
        except Exception:  # noqa: BLE001 - logging must never fail a task
            self.handleError(record)


def _forwarding_logs(fn):
    """Run a flow body with vibra's log records forwarded to its run logger (see :class:`_RunLog`)."""

    @functools.wraps(fn)
    def body(*args, **kwargs):
        vibra_log = logging.getLogger("vibra")
        handler = _RunLog(get_run_logger())
        level = vibra_log.level
        if vibra_log.getEffectiveLevel() > logging.INFO:
            vibra_log.setLevel(logging.INFO)
        vibra_log.addHandler(handler)
        try:
            return fn(*args, **kwargs)
        finally:
            vibra_log.removeHandler(handler)
            vibra_log.setLevel(level)

    return body


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


def _ingest_stage(outcome: Outcome, out: dict) -> None:
    """Ingest's line in the outcome: per machine with failed files; the whole stage failed when files failed
    and none was ingested (an unreadable export, a store that refuses every write)."""
    failed = {m: f"{n} file(s) failed" for m, n in out["failed_by_machine"].items()}
    whole = out["failed"] > 0 and out["new"] == 0 and out["duplicates"] == 0
    outcome.add("ingest", ok=out["new"], failed=failed, whole=whole, files_failed=out["failed"],
                duplicates=out["duplicates"])


@flow(name="ingest", log_prints=True)
@_forwarding_logs
def ingest_flow(home: str | None = None, source: str = "", task_runner_kind: str | None = None,
                dask_address: str | None = None):
    """Ingest new files of ``source`` (one subfolder per machine); per-file tasks fan out."""
    ws, settings = context(home)
    out = _ingest(ws, settings, source, task_runner(settings, task_runner_kind, dask_address))
    get_run_logger().info("ingest: %s", {k: v for k, v in out.items() if k != "failures"})
    outcome = Outcome()
    _ingest_stage(outcome, out)
    return outcome.finish(out)


def _machines(ws: Workspace, stage: str, settings: Settings, runner, models=None,
              ids: list[str] | None = None) -> tuple[dict, dict]:
    from vibra_pipelines import anomaly

    ids = anomaly.equipment_ids(ws) if ids is None else ids
    if not ids:
        return {}, {}
    return _per_machine_flow.with_options(task_runner=machine_runner(settings, runner))(ws, settings, stage, ids, models)


@flow(name="train", log_prints=True)
@_forwarding_logs
def train_flow(home: str | None = None, models: list[str] | None = None, task_runner_kind: str | None = None,
               dask_address: str | None = None):
    """Retrain every machine's anomaly models (per-machine tasks)."""
    ws, settings = context(home)
    done, failed = _machines(ws, "train", settings, task_runner(settings, task_runner_kind, dask_address),
                             models)  # None: every family, as `vibra train`
    get_run_logger().info("train: %d machines, %d failed", len(done), len(failed))
    return _finish({"models": sum(len(d["models"]) for d in done.values())}, failed, stage="train", ok=len(done))


@flow(name="detect", log_prints=True)
@_forwarding_logs
def detect_flow(home: str | None = None, task_runner_kind: str | None = None, dask_address: str | None = None):
    """Score new windows of every machine (per-machine tasks)."""
    ws, settings = context(home)
    done, failed = _machines(ws, "detect", settings, task_runner(settings, task_runner_kind, dask_address))
    get_run_logger().info("detect: %d machines, %d failed", len(done), len(failed))
    return _finish({"scored": sum(d["scored"] for d in done.values())}, failed, stage="detect", ok=len(done))


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
    outcome = Outcome()
    outcome.single(name, out, failed)
    return outcome.finish(out)


@flow(name="forecast", log_prints=True)
@_forwarding_logs
def forecast_flow(home: str | None = None, indicators: list[str] | None = None):
    """Forecasts with intervals and time-to-threshold (statsforecast fits the series in parallel itself)."""
    return _stage("forecast", forecast_fleet, home, indicators)  # None: the CLI's default


@flow(name="rul", log_prints=True)
@_forwarding_logs
def rul_flow(home: str | None = None):
    """Remaining useful life of every machine from the workspace's run-to-failure library."""
    return _stage("rul", rul_task, home)


@flow(name="cluster-refresh", log_prints=True)
@_forwarding_logs
def cluster_refresh_flow(home: str | None = None):
    """Re-cluster, compare with the previous clustering, re-assign defects."""
    return _stage("cluster", cluster_task, home)


@flow(name="readiness", log_prints=True)
@_forwarding_logs
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


def _snapshot_stage(outcome: Outcome, out: dict, failed: dict) -> None:
    if "skipped" in out and not failed:
        outcome.add("snapshot", skipped=out["skipped"])
    else:
        outcome.single("snapshot", out, failed)


@flow(name="snapshot", log_prints=True)
@_forwarding_logs
def snapshot_flow(home: str | None = None, even_if_red: bool = False):
    """A training snapshot, unless readiness is red (``even_if_red`` overrides)."""
    ws, settings = context(home)
    outcome = Outcome()
    ready, failed = _single("readiness", readiness_task, ws, settings)
    outcome.single("readiness", ready, failed)
    if failed:
        return outcome.finish({})
    out, failed = _snapshot_unless_red(ws, settings, ready, even_if_red)
    _snapshot_stage(outcome, out, failed)
    return outcome.finish({"snapshot": out, "readiness": ready})


@flow(name="report", log_prints=True)
@_forwarding_logs
def report_flow(home: str | None = None):
    """The HTML report."""
    return _stage("report", report_task, home)


@flow(name="maintenance", log_prints=True)
@_forwarding_logs
def maintenance_flow(home: str | None = None, keep: int = 5):
    """doctor --repair, then compaction and garbage collection (keep N versions)."""
    return _stage("maintenance", maintenance_task, home, keep)


NO_MODEL = "no trained model"  # what detect says of a machine it has no model for (pipelines/anomaly.py)


def _detect_training_new(ws, settings, runner, summary: dict, outcome: Outcome) -> None:
    """Detect on every machine; a machine with no model yet (new since the weekly retrain) is trained first
    and then scored, so its first night is not a night of nothing. The summary says which and why."""
    done, failed = _machines(ws, "detect", settings, runner)
    new = sorted(eid for eid, d in done.items()
                 if str((d.get("per_equipment") or {}).get(eid, {}).get("skipped", "")).startswith(NO_MODEL))
    if new:
        trained, train_failed = _machines(ws, "train", settings, runner, None, new)
        not_ready = {eid: "; ".join(f"{k}" for k in t.get("skipped", {}).values()) for eid, t in trained.items()
                     if not t.get("models")}
        summary["train"] = {"reason": "no model yet", "machines": sorted(e for e in trained if e not in not_ready),
                            "not_ready": not_ready}
        outcome.add("train", ok=len(trained) - len(not_ready), failed=train_failed, not_ready=not_ready,
                    reason="machines with no model yet")
        again, failed_again = _machines(ws, "detect", settings, runner, None,
                                        [e for e in new if e in trained and e not in not_ready])
        done.update(again)
        failed.update(failed_again)
    skipped = {eid: (d.get("per_equipment") or {}).get(eid, {}).get("skipped") or d.get("skipped")
               for eid, d in done.items()}
    skipped = {eid: why for eid, why in skipped.items() if why}
    summary["detect"] = {"machines": len(done), "scored": sum(d["scored"] for d in done.values()),
                         **({"skipped": skipped} if skipped else {})}
    outcome.add("detect", ok=len(done), failed=failed, scored=summary["detect"]["scored"], skipped_machines=skipped)


@flow(name="nightly", log_prints=True)
@_forwarding_logs
def nightly(home: str | None = None, source: str = "", task_runner_kind: str | None = None,
            dask_address: str | None = None, keep: int = 5):
    """ingest → detect (training first a machine with no model) → forecast → RUL → cluster refresh →
    readiness → snapshot (not when red) → report → maintenance."""
    log = get_run_logger()
    ws, settings = context(home)
    runner = task_runner(settings, task_runner_kind, dask_address)
    summary: dict[str, Any] = {}
    outcome = Outcome()
    if source:
        try:
            summary["ingest"] = _ingest(ws, settings, source, runner)
            _ingest_stage(outcome, summary["ingest"])
        except Exception as exc:  # noqa: BLE001
            outcome.add("ingest", failed={"ingest": f"{type(exc).__name__}: {str(exc)[:300]}"}, whole=True)
    _detect_training_new(ws, settings, runner, summary, outcome)
    # None: the pipeline's default indicators, as `vibra forecast` without --indicator
    for name, fn, args in (("forecast", forecast_fleet, (None,)), ("rul", rul_task, ()), ("cluster", cluster_task, ()),
                           ("readiness", readiness_task, ())):
        summary[name], failed = _single(name, fn, ws, settings, *args)
        outcome.single(name, summary[name], failed)
    summary["snapshot"], failed = _snapshot_unless_red(ws, settings, summary.get("readiness") or {})
    _snapshot_stage(outcome, summary["snapshot"], failed)
    for name, fn, args in (("report", report_task, ()), ("maintenance", maintenance_task, (keep,))):
        summary[name], failed = _single(name, fn, ws, settings, *args)
        outcome.single(name, summary[name], failed)
    log.info("nightly: %s", {k: v for k, v in summary.items() if k != "ingest"})
    return outcome.finish(summary)


ALL_FLOWS = {"nightly": nightly, "ingest": ingest_flow, "train": train_flow, "detect": detect_flow,
             "forecast": forecast_flow, "cluster-refresh": cluster_refresh_flow, "readiness": readiness_flow,
             "snapshot": snapshot_flow, "report": report_flow, "maintenance": maintenance_flow, "rul": rul_flow}
