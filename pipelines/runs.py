"""Every command's and flow's run is recorded in the catalog's ``runs`` table (and logged).

A run row holds run_id, command, arguments, started_at, finished_at, status
(running / ok / partial / not_ready / failed / killed / abandoned), counts, error, the resolved
settings, the vibra version and the pid and host of the process. A successful run
also sets ``vibra_last_success_timestamp_seconds{job}`` in the metrics file.

A process killed outright (SIGKILL, power loss) runs no ``finally`` and leaves its row
``running``. Every run therefore starts by closing such rows (:func:`close_stale`): a
row of this host whose process is gone becomes ``killed``; a row of another host
(whose processes cannot be seen from here) still open after ``ingest.lock_timeout_s``
becomes ``abandoned``. A long run of another host closed so too early rewrites its
row when it finishes.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import os
import socket
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Callable, ClassVar, Iterator

from vibra import __version__
from vibra.settings import Settings
from vibra.storage import ledger
from vibra.workspace import Workspace

# What started the run: the CLI sets its argv, a flow its parameters.
ARGUMENTS: contextvars.ContextVar[str] = contextvars.ContextVar("vibra_arguments", default="")
log = logging.getLogger("vibra")
HOST = socket.gethostname()
CLOSED_BY_OTHERS = ("killed", "abandoned")  # statuses a later run sets on a row its own process never closed


def _alive(pid: int, started_at: datetime) -> bool:
    """Whether process ``pid`` of this host still runs and is the one that started at ``started_at``."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:  # ended, not yet reaped by its parent
            return False
        # a pid reused by a later process: that one started after the run (2 s for clock rounding)
        return proc.create_time() <= started_at.timestamp() + 2.0
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's live process
        return True


def stale_verdict(run: dict, *, host: str, now: datetime, other_host_after_s: float,
                  alive: Callable[[int, datetime], bool] = _alive) -> tuple[str, str] | None:
    """How to close a run row still ``running``: ``(status, reason)``, or None to leave it.

    Of this host: ``killed`` when its process ``pid`` is gone (or the pid now names a later
    process). Of another host, or from a vibra that kept no pid: ``abandoned`` once it is older
    than ``other_host_after_s`` (``ingest.lock_timeout_s``), since its process cannot be checked.
    """
    pid, where = run.get("pid"), run.get("host")
    if pid is not None and where == host:
        if alive(int(pid), run["started_at"]):
            return None
        return "killed", f"process {pid} on {where} ended without closing its run"
    age_s = (now - run["started_at"]).total_seconds()
    if age_s <= other_host_after_s:
        return None
    who = f"process {pid} on {where}" if pid is not None else "a vibra that recorded no process"
    return "abandoned", (f"{who} left its run open for {age_s:.0f} s (over ingest.lock_timeout_s = "
                         f"{other_host_after_s:g} s); it cannot be checked from {host}")


def close_stale(ws: Workspace, other_host_after_s: float) -> list[tuple[str, str, str]]:
    """Close the runs left ``running`` by processes that ended without closing them; (run_id, status, reason)."""
    now = datetime.now(timezone.utc)
    closed = []
    for run in ledger.open_runs(ws):
        verdict = stale_verdict(run, host=HOST, now=now, other_host_after_s=other_host_after_s)
        if verdict is not None:
            closed.append((run["run_id"], *verdict))
    ledger.close_runs(ws, closed, now)
    for run_id, status, reason in closed:
        log.warning("run %s closed as %s: %s", run_id, status, reason)
    return closed


@contextmanager
def run_record(ws: Workspace, command: str, settings: Settings) -> Iterator[dict]:
    """Record start, end, status and counts of one command; the body fills the counts dict.

    A ``status`` key in the counts overrides the final status (e.g. ``partial``).
    """
    ledger.ensure(ws)
    close_stale(ws, settings.ingest.lock_timeout_s)
    run = {"run_id": f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}", "command": command,
           "arguments": ARGUMENTS.get(), "started_at": datetime.now(timezone.utc), "status": "running",
           "settings": settings.as_dict(), "vibra_version": __version__, "pid": os.getpid(), "host": HOST}
    ledger.record_run(ws, run)
    log.info("run started", extra={"run_id": run["run_id"], "command": command, "workspace": str(ws.root)})
    started = time.perf_counter()
    counts: dict = {}
    try:
        yield counts
    except BaseException as exc:
        run.update(status="failed", finished_at=datetime.now(timezone.utc), counts=counts, error=str(exc)[:1000])
        try:
            ledger.record_run(ws, run)
        except Exception as again:  # noqa: BLE001 - a full disk fails this too: the run's own error is the one to say
            log.warning("could not record the failed run (%s)", str(again).splitlines()[0][:200] if str(again) else again)
        # An expected failure (bad input, not ready) is already the command's one-line error: log it
        # below the default level so it is not printed twice; anything else is an error with its cause.
        from vibra.errors import VibraError

        level = logging.INFO if isinstance(exc, VibraError) else logging.ERROR
        log.log(level, "run failed", extra={"run_id": run["run_id"], "command": command, "error": str(exc)[:1000],
                                       "seconds": round(time.perf_counter() - started, 3)})
        raise
    run.update(status=counts.pop("status", "ok"), finished_at=datetime.now(timezone.utc), counts=counts)
    ledger.record_run(ws, run)
    log.info("run finished", extra={"run_id": run["run_id"], "command": command, "status": run["status"],
                                    "counts": counts, "seconds": round(time.perf_counter() - started, 3)})
    if run["status"] in ("ok", "partial"):
        from vibra.storage import metrics

        metrics.update(ws.metrics_path, merge=[metrics.gauge(
            "vibra_last_success_timestamp_seconds", "Unix time of the last successful run of each job.",
            {metrics.labels(job=command): run["finished_at"].timestamp()})])


def history(ws: Workspace, limit: int = 20, command: str | None = None,
            other_host_after_s: float | None = None) -> list[dict]:
    """The newest runs first, each with its ``seconds``; with ``other_host_after_s``, stale runs closed first."""
    ledger.ensure(ws)
    if other_host_after_s is not None:
        close_stale(ws, other_host_after_s)
    out = ledger.runs(ws, limit, command)
    for item in out:
        # a killed or abandoned run's finished_at is when a later run found it ended: not its duration
        item["seconds"] = ((item["finished_at"] - item["started_at"]).total_seconds()
                           if item["finished_at"] and item["started_at"] and item["status"] not in CLOSED_BY_OTHERS
                           else None)
    return out


def count_ingest(ws: Workspace, result) -> None:
    """Ingest counters (they accumulate across runs)."""
    from vibra.storage import metrics

    metrics.update(ws.metrics_path, counters=[
        metrics.counter("vibra_ingest_files_total", "Files seen by ingest, by outcome.",
                        {metrics.labels(status="new"): result.new, metrics.labels(status="skipped"): result.skipped,
                         metrics.labels(status="duplicate"): result.duplicates,
                         metrics.labels(status="failed"): result.failed}),
        metrics.counter("vibra_ingest_duplicates_total", "Files skipped as byte-identical copies.", result.duplicates),
        metrics.counter("vibra_ingest_bytes_total", "Bytes of source files read by ingest.", result.bytes_read),
        metrics.counter("vibra_windows_computed_total", "Windows whose indicators were computed.", result.windows),
    ])


def count_training(ws: Workspace, models: list[dict], scopes_root) -> None:
    """Retrain counters per model family and the version each machine's ``latest`` names now."""
    from vibra.storage import metrics
    from vibra.anomaly import registry

    retrains: dict = {}
    for m in models:
        key = metrics.labels(model=m.get("model_type", "?"))
        retrains[key] = retrains.get(key, 0) + 1
    info = {}
    if scopes_root.exists():
        for scope in sorted(p for p in scopes_root.iterdir() if p.is_dir()):
            for family, version in registry.pointers(scope).items():
                info[metrics.labels(equipment=scope.name, model=family, version=version)] = 1
    metrics.update(ws.metrics_path, counters=[metrics.counter("vibra_model_retrain_total", "Models trained, by family.",
                                                              retrains)],
                   gauges=[metrics.gauge("vibra_model_version_info", "The model version each machine uses (value 1).",
                                         info)])


def count_forecast(ws: Workspace, series: list[dict], ok: bool) -> None:
    from vibra.storage import metrics

    per: dict = {}
    for s in series:
        key = metrics.labels(status=s.get("status", "?"))
        per[key] = per.get(key, 0) + 1
    metrics.update(ws.metrics_path, counters=[
        metrics.counter("vibra_forecast_runs_total", "Forecast runs, by outcome.",
                        {metrics.labels(status="ok" if ok else "failed"): 1}),
        metrics.counter("vibra_forecasts_generated_total", "Series forecast, by status.", per)])


class StageResult:
    """What a stage returns, in one shape for everyone who reads it.

    A result is a dataclass deriving from this. :meth:`as_dict` is its JSON form (the CLI's
    ``--json`` and a flow task's return): every field, nested results as their own ``as_dict()``;
    a field declared with ``field(repr=False)`` is working state for a caller in Python and is left
    out. :meth:`counts` is what the run record keeps (``vibra runs``, the log line): by default the
    fields named in ``COUNTS``; a ``status`` key (``partial``) sets the run's status.
    """

    COUNTS: ClassVar[tuple[str, ...]] = ()

    def as_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.repr}

    def counts(self) -> dict:
        return {name: getattr(self, name) for name in self.COUNTS}


def _plain(value):
    if isinstance(value, StageResult):
        return value.as_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def recorded(command: str | Callable[[dict], str], counts_of: Callable[[object], dict] | None = None):
    """Decorator: run ``fn(ws, settings, ...)`` inside :func:`run_record` — the one way a run is recorded.

    The run's counts are the result's :meth:`StageResult.counts`, or ``counts_of(result)`` for a
    stage that returns a plain dict; a stage that stops partway may attach its partial result to the
    exception as ``partial``, whose counts are kept with the failed run. ``command`` may be a function of the call's keyword arguments
    (``doctor`` or ``doctor --repair``).
    """
    import functools

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(ws, settings, *args, **kwargs):
            name = command(kwargs) if callable(command) else command
            with run_record(ws, name, settings) as counts:
                try:
                    result = fn(ws, settings, *args, **kwargs)
                except BaseException as exc:
                    # a stage stopped partway attaches what it completed (``exc.partial``): kept with the failure
                    partial = getattr(exc, "partial", None)
                    if isinstance(partial, StageResult):
                        counts.update({k: v for k, v in partial.counts().items() if k != "status"})
                    raise
                counts.update(counts_of(result) if counts_of is not None else result.counts())
            return result
        return wrapper
    return deco
