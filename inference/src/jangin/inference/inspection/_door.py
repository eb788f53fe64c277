"""Admission at the door: an ASGI middleware that refuses inspection requests beyond capacity with
503 + ``Retry-After`` *before* their body is read or decoded, so an overloaded server spends almost
nothing on the requests it sheds and keeps its throughput.

Capacity: at most ``max_inflight`` inspection requests admitted at once (the queue and the batch
running included) and, with ``max_per_client``, at most that many per client. A client is its API key
(``X-API-Key``, ``Authorization`` or the session cookie, hashed; never stored), else its address.
The counters live on the event loop: no lock is needed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["Door"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]


def _client(scope: Scope) -> str:
    for name, value in scope.get("headers") or ():
        if name in (b"x-api-key", b"authorization", b"cookie"):
            return hashlib.blake2b(value, digest_size=8).hexdigest()
    client = scope.get("client")
    return f"addr:{client[0]}" if client else "addr:?"


class Door:
    """The admission middleware (see the module docstring).

    Args:
        app: The ASGI app.
        paths: Paths (POST) it guards.
        max_inflight: Most admitted requests at once.
        max_per_client: Most admitted requests of one client at once (0: no per-client limit).
        on_shed: Called once per refused request (metrics).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        paths: frozenset[str],
        max_inflight: int,
        max_per_client: int = 0,
        on_shed: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.paths = paths
        self.max_inflight = max_inflight
        self.max_per_client = max_per_client
        self.on_shed = on_shed or (lambda: None)
        self.inflight = 0
        self.per_client: dict[str, int] = {}
        self.shed = 0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        who = _client(scope)
        mine = self.per_client.get(who, 0)
        if self.inflight >= self.max_inflight:
            await self._refuse(
                send, f"{self.inflight} inspections are waiting or running (limit {self.max_inflight})"
            )
            return
        if self.max_per_client and mine >= self.max_per_client:
            await self._refuse(
                send, f"this client has {mine} inspections waiting or running (limit {self.max_per_client})"
            )
            return
        self.inflight += 1
        self.per_client[who] = mine + 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1
            left = self.per_client.get(who, 1) - 1
            if left > 0:
                self.per_client[who] = left
            else:
                self.per_client.pop(who, None)

    async def _refuse(self, send: Any, detail: str) -> None:
        self.shed += 1
        self.on_shed()
        body = json.dumps(
            {"detail": detail, "error": "Overloaded", "hint": "retry in 1 s"}, separators=(",", ":")
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", b"1"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
