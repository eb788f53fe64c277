"""An in-process publish/subscribe hub for live session data (``app.state.sample_bus``).

The capture ingest router publishes every accepted sensor batch and event batch of a session; other
routers (live coaching in ``jangin.inference``) subscribe to a session without importing capture.
Subscribers get an :class:`asyncio.Queue`; publishing never blocks: a subscriber that falls more than
``maxsize`` messages behind loses the oldest and is told so by a ``{"type": "dropped"}`` message.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

__all__ = ["SampleBus"]


class SampleBus:
    """Per-session fan-out of live messages; use from the server's event loop."""

    def __init__(self, maxsize: int = 2000) -> None:
        self.maxsize = maxsize
        self._subs: dict[str, list[asyncio.Queue[dict[str, Any]]]] = {}

    def subscribe(self, session_id: str) -> asyncio.Queue[dict[str, Any]]:
        """A queue that receives the session's messages from now on."""
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self.maxsize)
        self._subs.setdefault(session_id, []).append(q)
        return q

    def unsubscribe(self, session_id: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        subs = self._subs.get(session_id, [])
        if queue in subs:
            subs.remove(queue)
        if not subs:
            self._subs.pop(session_id, None)

    def has_subscribers(self, session_id: str) -> bool:
        return bool(self._subs.get(session_id))

    def publish(self, session_id: str, message: dict[str, Any]) -> int:
        """Hand ``message`` to every subscriber of the session; returns how many got it.

        ``message`` gets ``published_at`` (``time.perf_counter()``) unless it has one.
        """
        subs = self._subs.get(session_id)
        if not subs:
            return 0
        message.setdefault("published_at", time.perf_counter())
        for q in subs:
            if q.full():
                q.get_nowait()
                q.put_nowait({"type": "dropped"})
            else:
                q.put_nowait(message)
        return len(subs)
