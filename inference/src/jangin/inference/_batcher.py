"""Micro-batching: requests that arrive together run as one model call, with a bounded queue.

One worker thread owns the model calls. It takes every request waiting (up to ``max_batch``), and
optionally waits ``max_wait_ms`` for more, then runs them as one batch. Nothing waits when the line is
quiet (a lone request runs at once); under load, requests pile up while a batch runs and the next batch
takes them all. The queue is bounded: past ``max_queue`` waiting requests, :meth:`submit` raises
:class:`Overloaded` (HTTP 503 with ``Retry-After``) instead of letting latency grow without bound.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from jangin.core import InferenceError

__all__ = ["MicroBatcher", "Overloaded"]

log = logging.getLogger(__name__)


class Overloaded(InferenceError):
    """Too many requests are waiting; retry after ``retry_after`` seconds (HTTP 503)."""

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message, hint=f"retry in {retry_after:g} s")
        self.retry_after = retry_after


class MicroBatcher:
    """Run ``run(items) -> results`` on batches of submitted items in one worker thread.

    Args:
        run: Called with a list of items; returns one result per item (or raises for the batch).
        max_batch: Largest batch (1 disables batching).
        max_wait_ms: How long to wait for more items once one is there (0: take what is waiting).
        max_queue: Most items waiting; more are refused with :class:`Overloaded`.
        on_depth: Called with the queue depth after each change (metrics).
    """

    def __init__(
        self,
        run: Callable[[list[Any]], Sequence[Any]],
        *,
        max_batch: int = 8,
        max_wait_ms: float = 0.0,
        max_queue: int = 64,
        on_depth: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch < 1 or max_queue < 1:
            raise ValueError("max_batch and max_queue must be at least 1")
        self.run = run
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self._on_depth = on_depth or (lambda _: None)
        self._q: deque[tuple[Any, Future[Any]]] = deque()
        self._cv = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.items = 0

    @property
    def depth(self) -> int:
        """Items waiting."""
        return len(self._q)

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop = False
            self._thread = threading.Thread(target=self._loop, name="jangin-batcher", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Finish what is queued, then stop the worker."""
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def submit(self, item: Any) -> Future[Any]:
        """Queue ``item``; the future gets its result (or the batch's exception).

        Raises:
            Overloaded: ``max_queue`` items are already waiting, or the batcher is stopped.
        """
        fut: Future[Any] = Future()
        with self._cv:
            if self._stop or self._thread is None:
                raise Overloaded("the inspection worker is not running", retry_after=5.0)
            if len(self._q) >= self.max_queue:
                raise Overloaded(f"{len(self._q)} inspections are waiting (limit {self.max_queue})")
            self._q.append((item, fut))
            depth = len(self._q)
            self._cv.notify()
        self._on_depth(depth)
        return fut

    def _take(self) -> list[tuple[Any, Future[Any]]] | None:
        with self._cv:
            while not self._q:
                if self._stop:
                    return None
                self._cv.wait()
            if self.max_wait > 0 and len(self._q) < self.max_batch:
                deadline = time.monotonic() + self.max_wait
                while len(self._q) < self.max_batch and not self._stop:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cv.wait(left)
            batch = [self._q.popleft() for _ in range(min(self.max_batch, len(self._q)))]
            depth = len(self._q)
        self._on_depth(depth)
        return batch

    def _loop(self) -> None:
        while (batch := self._take()) is not None:
            futures = [f for _, f in batch]
            try:
                results = self.run([item for item, _ in batch])
                if len(results) != len(batch):
                    raise InferenceError(f"model returned {len(results)} results for {len(batch)} inputs")
            except Exception as exc:
                for f in futures:
                    f.set_exception(exc)
                continue
            self.batches += 1
            self.items += len(batch)
            for f, r in zip(futures, results, strict=True):
                f.set_result(r)
