"""Request body limits enforced while the body streams in: size (every route, chunked bodies included)
and JSON nesting depth.

:class:`BodyLimits` is an ASGI middleware: it wraps ``receive`` and counts the bytes as the route reads
them, so a body with no ``Content-Length`` (chunked) is refused with 413 as soon as it passes the limit
and nothing past the limit is ever buffered. A ``Content-Length`` over the limit is refused before the
route runs. Routes that need a larger body (video chunks) register a per-route limit in
``app.state.body_limits``. JSON bodies (and bodies without a content type) are scanned for their
nesting depth as they arrive: deeper than ``max_json_depth`` answers 422 before any parser recurses.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

__all__ = ["BodyLimits", "JsonDepth", "RouteLimit", "json_depth_ok"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Content types whose bodies are never JSON (not scanned for depth).
_BINARY = ("application/octet-stream", "application/vnd.apache.arrow", "image/", "video/", "multipart/")
_KEEP = bytes(range(256)).translate(None, b'[]{}"')  # everything but these is deleted before the scan


class RouteLimit:
    """A body limit for the routes whose method is ``method`` and path matches ``pattern``; ``binary``
    routes (raw bytes whatever the content type says) are not scanned as JSON."""

    def __init__(self, method: str, pattern: str, max_bytes: int, *, binary: bool = False) -> None:
        self.method = method.upper()
        self.pattern = re.compile(pattern)
        self.max_bytes = int(max_bytes)
        self.binary = binary

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and self.pattern.fullmatch(path) is not None


class JsonDepth:
    """Incremental nesting-depth check of a JSON text fed in chunks (strings and escapes understood)."""

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.depth = 0
        self.in_string = False
        self._carry = b""

    def feed(self, chunk: bytes) -> bool:
        """Feed the next bytes; False as soon as the nesting is deeper than ``max_depth``."""
        data = self._carry + chunk
        # an odd run of backslashes at the end escapes the first byte of the next chunk: keep it
        tail = len(data) - len(data.rstrip(b"\\"))
        self._carry = b"\\" if tail % 2 else b""
        if tail % 2:
            data = data[:-1]
        if b"\\" in data:
            data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
        reduced = data.translate(None, _KEEP)
        depth, in_string, limit = self.depth, self.in_string, self.max_depth
        for c in reduced:
            if c == 34:  # "
                in_string = not in_string
            elif in_string:
                continue
            elif c in (91, 123):  # [ {
                depth += 1
                if depth > limit:
                    self.depth, self.in_string = depth, in_string
                    return False
            else:
                depth -= 1
        self.depth, self.in_string = depth, in_string
        return True


def json_depth_ok(data: bytes, max_depth: int) -> bool:
    """Whether the JSON text ``data`` nests at most ``max_depth`` levels."""
    return JsonDepth(max_depth).feed(data)


class BodyLimits:
    """ASGI middleware: 413 past the body limit (streamed bodies counted), 422 past the JSON depth.

    Args:
        app: The wrapped application.
        max_bytes: The default limit for every route.
        routes: Per-route limits (a list the stages may append to after the app is built; first match).
        max_json_depth: The deepest JSON nesting accepted.
    """

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, routes: list[RouteLimit], max_json_depth: int = 64
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.routes = routes
        self.max_json_depth = max_json_depth

    def limit_for(self, method: str, path: str) -> tuple[int, bool]:
        """The body limit of a route and whether its body is binary."""
        route = next((r for r in self.routes if r.matches(method, path)), None)
        return (self.max_bytes, False) if route is None else (route.max_bytes, route.binary)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, binary = self.limit_for(scope["method"], scope["path"])
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        length = headers.get(b"content-length", b"").decode("latin-1")
        if length.isdigit() and int(length) > limit:
            await _reject(send, 413, f"request body over {_mib(limit)} (Content-Length {length})")
            return
        ctype = headers.get(b"content-type", b"").decode("latin-1").lower()
        depth = None if binary or ctype.startswith(_BINARY) else JsonDepth(self.max_json_depth)
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                seen += len(chunk)
                if seen > limit:
                    raise HTTPException(413, f"request body over {_mib(limit)}")
                if depth is not None and chunk and not depth.feed(chunk):
                    raise HTTPException(422, f"JSON body nested deeper than {self.max_json_depth} levels")
            return message

        await self.app(scope, limited, send)


def _mib(n: int) -> str:
    return f"{n / 1048576:g} MiB"


async def _reject(send: Send, status: int, detail: str) -> None:
    import json

    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
