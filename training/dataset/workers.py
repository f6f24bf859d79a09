"""The dataset builder's worker processes: an ordered map over chunks, with a bounded window.

One pool serves both passes, so the workers start (and import) once per build. They are spawned,
not forked: the parent runs a progress-bar thread and Arrow's thread pools, and forking a process
with threads can deadlock the child. The chunk functions are module-level and their arguments plain
values; a chunk's result comes back in submission order. At most ``window`` chunks are in flight,
so the records are never all in memory (``Executor.map`` would submit the whole input at once).

``concurrent.futures.ProcessPoolExecutor``, not ``multiprocessing.Pool``: the Pool's worker-handler
thread also wakes up on every result waiting in the pipe and spins until the result thread has read
it, which cost the parent ~2.5 CPU-seconds per build with multi-megabyte results.

With ``workers <= 1`` the same functions run in this process, chunk by chunk, in the same order.
"""

from __future__ import annotations

import multiprocessing as mp
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor


class ChunkRunner:
    """``workers`` spawned processes (none for ``workers <= 1``) running chunk functions in order.

    ``window_per_worker`` chunks per worker are in flight: enough that a worker never waits for
    the parent between two chunks, few enough to bound the records held in memory.
    """

    def __init__(self, workers: int, window_per_worker: int = 4):
        self.workers = workers
        self.window = max(1, window_per_worker * workers)
        self._pool = None
        if workers > 1:
            self._pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))

    @property
    def parallel(self) -> bool:
        return self._pool is not None

    def map(self, fn: Callable, chunks: Iterable, *args) -> Iterator:
        """``fn(chunk, *args)`` for every chunk, in order."""
        if self._pool is None:
            for chunk in chunks:
                yield fn(chunk, *args)
            return
        in_flight: deque = deque()
        for chunk in chunks:
            in_flight.append(self._pool.submit(fn, chunk, *args))
            if len(in_flight) >= self.window:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()

    def close(self, ok: bool = True) -> None:
        if self._pool is None:
            return
        # A failed build does not wait for the chunks nobody will read.
        self._pool.shutdown(wait=True, cancel_futures=not ok)
        self._pool = None

    def __enter__(self) -> ChunkRunner:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(ok=exc_type is None)
