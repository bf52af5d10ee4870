"""Ingest on workers that share nothing with the flow but the lake's URI (Dask process workers, other machines).

With ``[lake] uri`` on object storage, a worker needs neither the workspace nor the export mounted. The
flow puts each source file on the store (:func:`incoming`: ``<lake uri>/_incoming/<run>/<n>/<name>``,
deleted when the run ends) and sends a worker a :class:`Job` of plain data: the lake URI, the object's
URL and the file as the flow's scan saw it. The worker (:func:`work`) makes a private workspace in a
temporary folder whose lake is a cache of the URI, downloads the file under its own name with its
original modification time (so "changed while it was being read" means what it does locally), and runs
:func:`vibra_pipelines.ingest.work_one` on it: the ``features`` files (and kept raw waveforms) are
uploaded as they are written, uncommitted. It returns the file's result with the flow's names put back
and its files (``features``, raw) relative to the lake; :func:`fan_out` maps them into the flow's workspace, whose
:func:`vibra_pipelines.ingest.run` commits them (``lake.commit`` describes files that exist only on the
store) and writes the DuckDB ledger, which no worker touches.

What a worker still does on the store itself: a changed file's earlier versions are removed from
``features`` (one commit, as locally) and their raw waveforms deleted; the hourly partitions that
removal makes stale come back in the result's ``partitions`` and are marked in the flow's workspace.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import socket
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from vibra.storage import hourly
from vibra.settings import Settings
from vibra.ingest.sources import SourceFile, display
from vibra.storage import lake, remote
from vibra.workspace import Workspace

INCOMING = "_incoming"  # source files in transit, under the lake URI (a "_" folder is never a table)


@dataclass(frozen=True)
class Job:
    """One file for a worker: everything it gets besides the settings.

    ``seen_mtime`` is the modification time the file had before and after its upload (None: it changed
    meanwhile, still being written; the worker then defers it as a local ingest would). ``completed``
    is the ledger's entry for the content uploaded ({recording_id: file that owns it}, or empty): all
    a worker's duplicate check needs of the ledger's content hashes, which could be millions."""

    uri: str
    url: str
    item: SourceFile
    seen_mtime: float | None
    completed: dict[str, str]


@dataclass
class Shipped:
    """A worker's answer: the file's result (``files`` relative to the lake root) and who did it."""

    result: object  # vibra_pipelines.ingest.FileResult
    worker: str  # "<host> pid <pid>"
    root: str  # the worker's private workspace (gone when the task ends)


@contextmanager
def incoming(ws: Workspace, todo: list[SourceFile], completed: dict[str, str]) -> Iterator[list[Job]]:
    """Upload ``todo``'s files under a prefix of their own (hashed on the way: the recording id) and yield
    one :class:`Job` each; the prefix is deleted on the way out, whatever happened."""
    store = remote.of(ws.lake)
    if store is None:
        from vibra.errors import ConfigError

        raise ConfigError(f"{ws.lake}: not a lake on object storage; workers without a shared filesystem need "
                          "[lake] uri = \"s3://bucket/prefix\"")
    run = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    prefix = f"{store.key(ws.lake)}/{INCOMING}/{run}"
    fs = store.fs

    def put(n_item: tuple[int, SourceFile]) -> Job:
        n, item = n_item
        key = f"{prefix}/{n:06d}/{display(item.path.name)}"
        before = _stat(item.path)
        try:
            src = open(item.path, "rb")
        except OSError:  # unreadable here: the flow records it as a local ingest does (see fan_out)
            return Job(store.uri, "", item, None, {})
        digest = hashlib.sha256()
        with src, fs.open_output_stream(key) as dst:
            while chunk := src.read(8 << 20):
                digest.update(chunk)
                dst.write(chunk)
        after = _stat(item.path)
        same = before is not None and before == after == (item.size_bytes, item.mtime)
        rid = digest.hexdigest()
        return Job(store.uri, f"s3://{key}", item, item.mtime if same else None,
                   {rid: completed[rid]} if rid in completed else {})

    try:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=8) as pool:
            jobs = list(pool.map(put, enumerate(todo)))
        yield jobs
    finally:
        try:
            fs.delete_dir(prefix)
        except FileNotFoundError:
            pass


def _stat(path: Path) -> tuple[int, float] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime


def work(settings: Settings, job: Job) -> Shipped:
    """Ingest one shipped file in a private workspace (runs on the worker; touches nothing of the flow's)."""
    from vibra_pipelines import ingest

    with tempfile.TemporaryDirectory(prefix="vibra-worker-") as tmp:
        ws = Workspace(Path(tmp) / "ws").ensure()
        remote.register(ws.lake, job.uri)
        try:
            local = _download(job, Path(tmp) / "in" / job.item.equipment_id)
            shown, real = display(local), display(job.item.path)

            def restore(text):
                return text.replace(shown, real) if isinstance(text, str) else text

            # this file's own earlier content is its own, under the name the worker reads it by
            mine = {rid: shown if path == real else path for rid, path in job.completed.items()}
            try:
                fr = ingest.work_one(ws, settings, mine, dataclasses.replace(job.item, path=local))
            except ingest.IngestStopped as exc:
                raise ingest.IngestStopped(restore(str(exc))) from exc.__cause__
            row = fr.row
            row["source_path"] = real
            row["error"] = restore(row.get("error"))
            row["duplicate_of"] = restore(row.get("duplicate_of"))
            row["warnings"] = [restore(w) for w in row.get("warnings") or []]
            # hourly partitions made stale by removing earlier versions: marked by the flow, which rebuilds
            fr.partitions = sorted(set(fr.partitions) | hourly.marked(ws.lake))
            fr.files = [f.relative_to(ws.lake) for f in fr.files]
            fr.raw = fr.raw.relative_to(ws.lake) if fr.raw is not None else None
            return Shipped(fr, f"{socket.gethostname()} pid {os.getpid()}", str(ws.root))
        finally:
            remote.unregister(ws.lake)
            lake.forget(ws.lake)


def _download(job: Job, folder: Path) -> Path:
    """The job's file under its own name in ``folder``, with the modification time the flow saw."""
    folder.mkdir(parents=True, exist_ok=True)
    local = folder / Path(job.url).name
    remote.download(job.url.removeprefix("s3://"), local)
    when = job.seen_mtime if job.seen_mtime is not None else 0.0  # 0: not the scan's time, so deferred
    os.utime(local, (when, when))
    return local


Dispatch = Callable[[list[Job]], list[Shipped]]


def fan_out(ws: Workspace, settings: Settings, todo: list[SourceFile], completed: dict[str, str],
            dispatch: Dispatch) -> tuple[list, dict[str, int]]:
    """:func:`vibra_pipelines.ingest.run`'s ``fan_out`` for workers that share only the lake URI.

    Uploads the files, hands the jobs to ``dispatch`` (e.g. a Prefect subflow mapping a task over them on
    Dask; it returns :func:`work`'s answers in order) and returns the results for ``todo``, in order,
    with their files under this workspace's lake, and the files each worker ingested. A file this
    process cannot read is not shipped: its failed row is made here, as a local ingest makes it."""
    from vibra_pipelines import ingest

    with incoming(ws, todo, completed) as jobs:
        answers = iter(dispatch([j for j in jobs if j.url]))
        results, workers = [], {}
        for item, job in zip(todo, jobs):
            if not job.url:
                results.append(ingest.work_one(ws, settings, completed, item))
                continue
            shipped = next(answers)
            fr = shipped.result
            fr.files = [ws.lake / f for f in fr.files]  # on the store; this lake is a cache
            fr.raw = ws.lake / fr.raw if fr.raw is not None else None
            for f in [*fr.files, *([fr.raw] if fr.raw is not None else [])]:
                # a cached copy under the same name is an earlier version (a file ingested again with the same
                # content and day): the commit must describe, and readers fetch, the worker's new object
                f.unlink(missing_ok=True)
            results.append(fr)
            workers[shipped.worker] = workers.get(shipped.worker, 0) + 1
    return results, workers
