"""Ingest on worker processes of this machine (``[ingest] workers``): every core busy.

The per-file work (hash, parse, indicators, Parquet write) holds the GIL, so threads of one process
use about one core; worker processes use them all. A worker runs the same unit as a thread or a Dask
worker (:func:`vibra_pipelines.ingest.work._work`: read, compute and write one file's ``features`` files,
uncommitted) on the workspace itself, which it shares with this process; this process keeps the one
writer role: it gathers the workers' results and settles them in batches (one lake commit, one ledger
transaction), as it does for its own threads. No worker opens the DuckDB ledger.

A content hash is claimed once across the workers (a copy found in the same run becomes a duplicate,
never written twice): the hashes completed before the run go to every worker once, the claims made
during it live in a manager process all workers ask. Each worker ingests one file at a time, so a
worker's memory is one file's, as a thread's is; the parent keeps at most two files per worker queued.

A worker that dies (killed by a signal, the kernel's out-of-memory killer) breaks the pool: the run
stops with one line, blames no file, settles what completed and puts the files in flight back to
pending, so a plain rerun does them.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from vibra.ingest.sources import SourceFile
from vibra.settings import Settings
from vibra.workspace import Workspace

AUTO_FILES_PER_WORKER = 100  # workers = 0: one process per this many files to do (see auto_workers)
CRASHED = ("ingest stopped: an ingest worker process ended unexpectedly (killed by a signal, or by the system for "
           "lack of memory: lower [ingest] workers); no file was marked failed; what completed is kept — run "
           "`vibra ingest` again to resume")


def cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def auto_workers(setting: int, n_files: int) -> int:
    """The worker processes for ``n_files`` files to do: ``setting`` (``[ingest] workers``), at most one per file;
    0 = the cores available, but one per :data:`AUTO_FILES_PER_WORKER` files, since a worker pays ~1.5 s (idle
    machine) of imports before its first file while this process's threads start at once. 1 = in this process."""
    if setting == 0:
        return max(1, min(cores(), n_files // AUTO_FILES_PER_WORKER))
    return max(1, min(setting, n_files))


def check_not_bootstrapping() -> None:
    """Refuse to ingest inside a process that is still starting as a worker: a script without
    ``if __name__ == "__main__":`` is run again by every spawned worker, and would ingest again (and wait
    for ever on the ingest lock its parent holds) instead of serving its parent."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        from vibra.errors import ConfigError

        raise ConfigError("ingest started again inside a worker process that was importing your script: put the "
                          "script's work under `if __name__ == \"__main__\":` (worker processes import the main "
                          "module), or set [ingest] workers = 1")


# -- in a worker process ---------------------------------------------------------------------------------

_STATE: dict = {}


def _start(root: str, settings: Settings, completed: dict[str, str], claims) -> None:
    """A worker's initializer: its workspace (the parent's own, shared), settings and the run's content claims."""
    from .work import _Dedup  # this package's own (relative: the package is vibra_pipelines.ingest)

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it lets the files in flight finish
    ws = Workspace(Path(root))
    if settings.lake.uri:  # the lake on object storage: the shared folders are its cache, as in the parent
        from vibra.storage import remote

        remote.register(ws.lake, settings.lake.uri.strip())
    _STATE.update(ws=ws, settings=settings, dedup=_Dedup(completed, claims))


def _one(item: SourceFile):
    """One file in a worker: :func:`vibra_pipelines.ingest.work._work` (its ``_Stop`` pickles with its message)."""
    from .work import _work

    return _work(_STATE["ws"], _STATE["settings"], item, _STATE["dedup"])


# -- in the parent -----------------------------------------------------------------------------------------

@contextmanager
def pool(ws: Workspace, settings: Settings, completed: dict[str, str],
         workers: int) -> Iterator[Callable[[SourceFile], Future]]:
    """``workers`` processes ingesting files of ``ws``; yields ``submit(item) → Future`` of the file's
    :class:`~vibra_pipelines.ingest.FileResult`. Spawned (not forked: this process holds DuckDB, Polars
    and prefetch threads) and shut down on the way out; a dead worker makes every future in flight raise
    :class:`concurrent.futures.process.BrokenProcessPool`."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        claims = manager.dict()
        executor = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start,
                                       initargs=(str(ws.root), settings, completed, claims))
        try:
            yield lambda item: executor.submit(_one, item)
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
