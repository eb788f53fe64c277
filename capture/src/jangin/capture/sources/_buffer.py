"""The hand-over between a source's reader thread and the recorder's ``read()``: samples and gaps in order."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from jangin.capture.sources.base import Gap, SampleBatch

__all__ = ["SampleBuffer"]


class _OpenGap:
    """A gap whose end waits for the first samples after a reconnect (see :meth:`SampleBuffer.open_gap`)."""

    def __init__(self, start: float, back: float, reason: str, settle_until: float) -> None:
        self.start, self.back, self.reason, self.settle_until = start, back, reason, settle_until


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
        self._woken = False

    def _run(self) -> list[list[Any]]:
        if not self._items or not isinstance(self._items[-1], list):
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

    def open_gap(self, start: float, back: float, reason: str, settle_s: float) -> None:
        """Mark an outage from ``start`` (the last sample's time) to a reconnect at ``back``; samples added
        after this follow the gap. Its end is settled ``settle_s`` after the call: the earliest of ``back``
        and the first following samples' times (a server's first notifications after a reconnect carry
        values it stamped before the client was back); until then :meth:`take` holds the gap and what
        follows it."""
        with self._cond:
            self._items.append(_OpenGap(start, back, reason, time.time() + settle_s))
            self._cond.notify()

    def drop_open_gap(self) -> None:
        """Forget the last :meth:`open_gap` marker (the resubscription it was set for failed)."""
        with self._cond:
            for i in range(len(self._items) - 1, -1, -1):
                if isinstance(self._items[i], _OpenGap):
                    del self._items[i]
                    return

    def _drop_oldest(self) -> None:
        for item in self._items:
            if isinstance(item, list) and item[1]:
                k = max(1, min(len(item[1]), self._n - self.max_samples))
                for col in item:
                    del col[:k]
                self._n -= k
                self.dropped += k
                return

    def take(self, timeout_s: float) -> list[SampleBatch | Gap]:
        """Wait at most ``timeout_s`` for something, then return everything waiting, oldest first."""
        deadline = time.time() + max(0.0, timeout_s)
        with self._cond:
            while True:
                now = time.time()
                cut = next(
                    (
                        i
                        for i, it in enumerate(self._items)
                        if isinstance(it, _OpenGap) and it.settle_until > now
                    ),
                    len(self._items),
                )
                if cut > 0 or now >= deadline or self._woken:
                    break
                head = self._items[0] if self._items else None
                until = min(deadline, head.settle_until) if isinstance(head, _OpenGap) else deadline
                self._cond.wait(max(0.0, until - now))
            items, self._items = self._items[:cut], self._items[cut:]
            self._n = sum(len(it[1]) for it in self._items if isinstance(it, list))
        received = time.time()
        out: list[SampleBatch | Gap] = []
        for k, item in enumerate(items):
            if isinstance(item, Gap):
                out.append(item)
            elif isinstance(item, _OpenGap):
                end = item.back
                for nxt in items[k + 1 :]:
                    if not isinstance(nxt, list):
                        break
                    if nxt[1]:
                        end = min(end, min(nxt[1]))
                out.append(Gap(self.source, self.device, item.start, max(item.start, end), item.reason))
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
            self._woken = True
            self._cond.notify_all()
