"""The hand-over between a source's reader thread and the recorder's ``read()``: samples and gaps in order."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from jangin.capture.sources.base import Gap, SampleBatch

__all__ = ["SampleBuffer"]


class SampleBuffer:
    """Samples of one device (channel index, source time, value) and gaps, in arrival order.

    The reader thread calls :meth:`add` / :meth:`add_many` / :meth:`add_gap`; the recorder's thread calls
    :meth:`take`, which returns one :class:`SampleBatch` per run of samples between gaps. When more than
    ``max_samples`` wait (the recorder is not reading), the oldest samples are dropped and counted in
    :attr:`dropped` (never silently).

    Args:
        source: Source name.
        device: Device name put on every batch.
        names: Channel names; samples refer to them by index.
        max_samples: Bound on waiting samples.
    """

    def __init__(self, source: str, device: str, names: list[str], max_samples: int = 2_000_000) -> None:
        self.source, self.device = source, device
        self.names = np.asarray(names, dtype=object)
        self.max_samples = max_samples
        self.dropped = 0
        self.samples = 0
        self._cond = threading.Condition()
        self._items: list[Any] = []  # [ch list, t list, v list] runs and Gap objects
        self._n = 0

    def _run(self) -> list[list[Any]]:
        if not self._items or isinstance(self._items[-1], Gap):
            self._items.append([[], [], []])
        run: list[list[Any]] = self._items[-1]
        return run

    def add(self, ch: int, t: float, v: float) -> None:
        """One sample (called per OPC UA notification: keep it cheap)."""
        with self._cond:
            run = self._run()
            run[0].append(ch)
            run[1].append(t)
            run[2].append(v)
            self._n += 1
            if self._n > self.max_samples:
                self._drop_oldest()
            self._cond.notify()

    def add_many(self, ch: list[int], t: list[float], v: list[float]) -> None:
        """Samples read together (one Modbus poll)."""
        with self._cond:
            run = self._run()
            run[0].extend(ch)
            run[1].extend(t)
            run[2].extend(v)
            self._n += len(t)
            while self._n > self.max_samples:
                self._drop_oldest()
            self._cond.notify()

    def add_gap(self, start: float, end: float | None, reason: str) -> None:
        with self._cond:
            self._items.append(Gap(self.source, self.device, start, end, reason))
            self._cond.notify()

    def _drop_oldest(self) -> None:
        for item in self._items:
            if not isinstance(item, Gap) and item[1]:
                k = max(1, min(len(item[1]), self._n - self.max_samples))
                for col in item:
                    del col[:k]
                self._n -= k
                self.dropped += k
                return

    def take(self, timeout_s: float) -> list[SampleBatch | Gap]:
        """Wait at most ``timeout_s`` for something, then return everything waiting, oldest first."""
        with self._cond:
            if not self._items:
                self._cond.wait(max(0.0, timeout_s))
            items, self._items, self._n = self._items, [], 0
        received = time.time()
        out: list[SampleBatch | Gap] = []
        for item in items:
            if isinstance(item, Gap):
                out.append(item)
            elif item[1]:
                idx = np.asarray(item[0], dtype=np.int64)
                out.append(
                    SampleBatch(
                        source=self.source,
                        device=self.device,
                        channel=self.names[idx],
                        t=np.asarray(item[1], dtype=np.float64),
                        value=np.asarray(item[2], dtype=np.float64),
                        received=received,
                    )
                )
                self.samples += len(item[1])
        return out

    def wake(self) -> None:
        """Let a waiting :meth:`take` return now (on close)."""
        with self._cond:
            self._cond.notify_all()
