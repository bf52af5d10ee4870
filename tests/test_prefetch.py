"""The bounded read-ahead ingest uses to overlap parsing and compute (issue 21)."""

from __future__ import annotations

import threading

import pytest

from vibra.ingest.prefetch import prefetch


class Source:
    """An iterator that records how far ahead of the consumer it was asked to go."""

    def __init__(self, n: int, fail_at: int | None = None):
        self.n, self.fail_at = n, fail_at
        self.produced = 0
        self.closed = False
        self.threads = set()

    def __iter__(self):
        try:
            for i in range(self.n):
                self.threads.add(threading.get_ident())
                if i == self.fail_at:
                    raise ValueError(f"bad block {i}")
                self.produced += 1
                yield i
        finally:
            self.closed = True


@pytest.mark.parametrize("depth", [1, 2])
def test_items_come_in_order_at_most_depth_ahead(depth):
    src = Source(20)
    got = []
    for item in prefetch(iter(src), depth):
        got.append(item)
        assert src.produced - len(got) <= depth  # never more than depth parsed beyond the one in use
    assert got == list(range(20)) and src.closed
    assert threading.get_ident() not in src.threads  # produced on the worker


def test_an_error_arrives_after_the_items_before_it():
    got = []
    with pytest.raises(ValueError, match="bad block 3"):
        for item in prefetch(iter(Source(10, fail_at=3))):
            got.append(item)
    assert got == [0, 1, 2]


def test_stopping_early_closes_the_source_and_the_worker():
    src = Source(100)
    stream = prefetch(iter(src))
    assert next(stream) == 0
    stream.close()
    assert src.closed and src.produced <= 2
    assert not any(t.name == "vibra-prefetch" for t in threading.enumerate())
