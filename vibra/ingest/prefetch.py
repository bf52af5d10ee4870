"""A bounded read-ahead of an iterator on a thread: the next item is produced while this one is used.

Ingest reads a file block by block (the parse releases the GIL in Polars) and computes each
block's indicators (numpy and scipy.fft release it too): :func:`prefetch` overlaps the two on
the machine's cores while holding at most ``depth`` items ahead of the one in use, so memory
stays flat — one block more than reading in turn, whatever the file size.
"""

from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
_END = object()


def prefetch(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """Yield ``items`` in order, producing up to ``depth`` of them ahead on a worker thread.

    An exception raised by ``items`` is raised here, at the item where it happened (after the
    items before it). Closing the returned generator early stops the worker and closes
    ``items`` on the worker's own thread before returning.
    """
    it = iter(items)
    ready: queue.SimpleQueue = queue.SimpleQueue()
    slots = threading.Semaphore(depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            while True:
                while not slots.acquire(timeout=0.05):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                try:
                    item = next(it)
                except StopIteration:
                    ready.put((_END, None))
                    return
                ready.put((item, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            ready.put((_END, exc))
        finally:
            if stop.is_set() and hasattr(it, "close"):
                it.close()  # the reader's own clean-up (its open file), on the thread that ran it

    worker = threading.Thread(target=produce, name="vibra-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, exc = ready.get()
            if exc is not None:
                raise exc
            if item is _END:
                return
            slots.release()  # the worker may produce the next one while this one is used
            yield item
            del item
    finally:
        stop.set()
        worker.join()
