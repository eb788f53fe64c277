"""The one HTTP application, ``jangin serve``: core's part (auth, errors, health, metrics) plus the
routers of every installed stage, found through the ``jangin.routers`` entry-point group.

A stage's entry point names a callable ``register(app: FastAPI, settings: Settings) -> None`` that
includes its routers and may append coroutines or functions to ``app.state.startup`` /
``app.state.shutdown`` (run by the app's lifespan, in order / in reverse order).

Auth: every route but ``/healthz`` and ``/login`` needs an API key (header ``X-API-Key`` or
``Authorization: Bearer``; declared as OpenAPI security schemes) whose role (settings ``api_keys``)
allows it; use ``Depends(require(Role.ENGINEER))`` in a stage's router. A browser signs in once through
``POST /login`` (a form posting the key): it gets an opaque, random session token in an HttpOnly,
SameSite=Strict cookie (Secure over https) that maps, on the server only, to the key's digest; the key
itself never travels in a URL and never reaches the page's JavaScript. Writes authenticated by that
cookie also need an ``X-Requested-With`` header (a cross-site form cannot send one).

``/openapi.json`` needs an engineer key; the HTML docs (``/docs``, ``/redoc``) are off: they would load
Swagger UI's scripts and inline code into a page on the line network, and the JSON is what clients use.
HTML responses carry a strict Content-Security-Policy, ``X-Frame-Options: DENY`` and
``Cache-Control: no-store``; every log line (uvicorn's access log included) has keys, bearer tokens,
session cookies and URL credentials replaced by ``***`` (:mod:`jangin.core._redact`).

Library code raises :class:`~jangin.core.JanginError` subclasses; one handler here maps them to
HTTP statuses, so no library code raises ``HTTPException``.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from importlib.metadata import entry_points
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import MutableHeaders

from jangin.core._errors import (
    CaptureError,
    ConfigError,
    DatasetError,
    InferenceError,
    JanginError,
    LabelStudioError,
    ModelLoadError,
    NotFoundError,
    SchemaError,
    TrainingError,
)
from jangin.core._redact import RedactingFilter, install_log_redaction
from jangin.core.settings import Role, Settings, get_settings, hash_api_key

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "ROUTER_GROUP",
    "SESSION_COOKIE",
    "create_app",
    "current_key_id",
    "current_role",
    "require",
    "status_of",
]

log = logging.getLogger(__name__)

ROUTER_GROUP = "jangin.routers"

#: What each role may do: a role grants itself and the roles listed for it.
_GRANTS: dict[Role, frozenset[Role]] = {
    Role.RECORDER: frozenset({Role.RECORDER}),
    Role.LABELLER: frozenset({Role.LABELLER}),
    Role.ENGINEER: frozenset({Role.ENGINEER, Role.LABELLER}),
    Role.ADMIN: frozenset(Role),
}

_STATUS: list[tuple[type[JanginError], int]] = [
    (NotFoundError, 404),
    (SchemaError, 422),
    (CaptureError, 422),
    (InferenceError, 422),
    (ConfigError, 400),
    (ModelLoadError, 503),
    (LabelStudioError, 502),
    (TrainingError, 500),
    (DatasetError, 500),
]


def status_of(exc: JanginError) -> int:
    """The HTTP status for a Jangin error."""
    for cls, code in _STATUS:
        if isinstance(exc, cls):
            return code
    return 500


#: The browser session cookie (an opaque token; the key stays on the server side of it).
SESSION_COOKIE = "jangin_session"
_SESSION_TTL_S = 12 * 3600
_MAX_SESSIONS = 10_000
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_NEXT = re.compile(r"^/[A-Za-z0-9_./-]{0,200}$")

# Declared through fastapi.security so /openapi.json lists the schemes; auto_error=False because the
# dependency below answers 401/403 itself (a request may use any one of the three).
_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKey", description="API key")
_BEARER = HTTPBearer(auto_error=False, scheme_name="Bearer", description="API key as a bearer token")
_COOKIE = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, scheme_name="Session", description="browser session (POST /login)"
)

#: The review page and any other HTML page: scripts and styles only from this origin (no inline code),
#: images from here or blob: URLs the page made, no framing, forms post only here.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class _Sessions:
    """Browser sessions: random token → (key digest, expiry), in memory (a restart signs everyone out)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_token: dict[str, tuple[str, float]] = {}

    def open(self, digest: str) -> str:
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            if len(self._by_token) >= _MAX_SESSIONS:
                for t in [t for t, (_, exp) in self._by_token.items() if exp <= now]:
                    del self._by_token[t]
                while len(self._by_token) >= _MAX_SESSIONS:  # still full: drop the oldest
                    del self._by_token[next(iter(self._by_token))]
            self._by_token[token] = (digest, now + _SESSION_TTL_S)
        return token

    def digest(self, token: str) -> str | None:
        with self._lock:
            entry = self._by_token.get(token)
            if entry is None:
                return None
            if entry[1] <= time.monotonic():
                del self._by_token[token]
                return None
            return entry[0]

    def close(self, token: str) -> None:
        with self._lock:
            self._by_token.pop(token, None)


def _api_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return None


def _identity(request: Request) -> tuple[Role, str, str] | None:
    """``(role, key digest, "key" | "cookie")`` of the request's credential, or None."""
    settings: Settings = request.app.state.settings
    key = _api_key(request)
    if key:
        role = settings.role_of(key)
        return (role, hash_api_key(key), "key") if role is not None else None
    token = request.cookies.get(SESSION_COOKIE)
    sessions: _Sessions | None = getattr(request.app.state, "sessions", None)
    if token and sessions is not None:
        digest = sessions.digest(token)
        if digest is not None:
            # Looked up in the settings on every request: a key removed from the settings ends its sessions.
            role = next((r for d, r in settings.api_keys.items() if hash_api_key(d) == digest), None)
            if role is not None:
                return role, digest, "cookie"
    return None


def current_role(request: Request) -> Role | None:
    """The role of the request's API key (header or browser session cookie), or None."""
    ident = _identity(request)
    return ident[0] if ident else None


def current_key_id(request: Request) -> str | None:
    """A stable, non-secret id of the request's key (the hex SHA-256 of the key), or None."""
    ident = _identity(request)
    return ident[1].removeprefix("sha256:") if ident else None


def require(*roles: Role) -> Callable[..., Any]:
    """A FastAPI dependency that admits keys whose role grants one of ``roles``; returns the role.

    ``async`` although it never awaits: it only hashes and compares keys, and FastAPI would run a plain
    function in its thread pool (a thread hand-off per request for microseconds of work).
    """

    async def dependency(
        request: Request,
        _key: Annotated[str | None, Security(_KEY_HEADER)] = None,
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)] = None,
        _session: Annotated[str | None, Security(_COOKIE)] = None,
    ) -> Role:
        ident = _identity(request)
        if ident is None:
            raise HTTPException(401, "missing or unknown API key", headers={"WWW-Authenticate": "Bearer"})
        role, _, via = ident
        if (
            via == "cookie"
            and request.method not in _SAFE_METHODS
            and not request.headers.get("x-requested-with")
        ):
            raise HTTPException(403, "a write signed in by cookie needs the X-Requested-With header")
        if not any(r in _GRANTS[role] for r in roles):
            raise HTTPException(
                403, f"role {role.value!r} may not do this (needs {' or '.join(r.value for r in roles)})"
            )
        return role

    return dependency


def _add_auth_routes(app: FastAPI) -> None:
    """``POST /login`` / ``POST /logout`` (browser sessions) and ``/openapi.json`` behind an engineer key."""
    app.state.sessions = _Sessions()

    @app.post("/login", tags=["core"], include_in_schema=False)
    async def login(request: Request) -> Response:
        """Sign a browser in: form fields ``api_key`` and ``next`` (a local path) → session cookie, 303."""
        from urllib.parse import parse_qs

        body = await request.body()
        if len(body) > 8192:
            return JSONResponse({"detail": "sign-in form over 8 KiB"}, status_code=413)
        form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=4)
        key = (form.get("api_key") or [""])[0].strip()
        nxt = (form.get("next") or ["/review"])[0]
        if not _NEXT.match(nxt) or nxt.startswith("//"):
            nxt = "/review"
        settings: Settings = request.app.state.settings
        role = settings.role_of(key)
        if role is None:
            log.warning("sign-in refused from %s", request.client.host if request.client else "?")
            return RedirectResponse(f"{nxt}?signin=failed", status_code=303)
        token = request.app.state.sessions.open(hash_api_key(key))
        resp = RedirectResponse(nxt, status_code=303)
        resp.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=_SESSION_TTL_S,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return resp

    @app.post("/logout", tags=["core"], include_in_schema=False)
    def logout(request: Request) -> Response:
        """End the browser session (its token is forgotten on the server) and clear the cookie."""
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            request.app.state.sessions.close(token)
        resp = Response(status_code=204)
        resp.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return resp

    @app.get(
        "/openapi.json",
        tags=["core"],
        include_in_schema=False,
        dependencies=[Depends(require(Role.ENGINEER))],
    )
    def openapi() -> JSONResponse:
        """The OpenAPI description (engineer key)."""
        return JSONResponse(app.openapi())


class _ResponseHeaders:
    """A pure ASGI middleware that adds ``X-Response-Time-ms`` and the security headers to every HTTP
    response: nosniff and no referrer on all, CSP, no framing and no-store on HTML pages.

    Written against ASGI rather than as ``@app.middleware("http")``: each such ``BaseHTTPMiddleware``
    costs every request a task group, memory streams and a streaming-response wrapper (about a third of
    the event loop's time per inspection on 2 cores, measured with py-spy).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t = time.perf_counter()

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                h = MutableHeaders(scope=message)
                h["X-Response-Time-ms"] = f"{(time.perf_counter() - t) * 1e3:.2f}"
                if "x-content-type-options" not in h:
                    h["X-Content-Type-Options"] = "nosniff"
                if "referrer-policy" not in h:
                    h["Referrer-Policy"] = "no-referrer"
                if h.get("content-type", "").startswith("text/html"):
                    h["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
                    h["X-Frame-Options"] = "DENY"
                    h["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("station", "camera", "path", "status", "ms"):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_text or record.exc_info:  # exc_text: already redacted by the RedactingFilter
            out["exc"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(out)


def json_logging(level: int = logging.INFO) -> None:
    """Log JSON lines to stderr (the server's format)."""
    handler = logging.StreamHandler()
    handler.setFormatter(_JsonFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _body_limits(app: FastAPI, settings: Settings) -> None:
    """Body size (every route, while streaming) and JSON depth limits; stages add per-route limits to
    ``app.state.body_limits`` (a list of :class:`~jangin.core._limits.RouteLimit`)."""
    from jangin.core._limits import BodyLimits

    app.state.body_limits = []
    app.add_middleware(
        BodyLimits,
        max_bytes=settings.max_body_mb * 1024 * 1024,
        routes=app.state.body_limits,
        max_json_depth=settings.max_json_depth,
    )


def create_app(
    settings: Settings | None = None,
    *,
    routers: Sequence[str] | None = None,
    extra: Sequence[Callable[..., None]] = (),
) -> FastAPI:
    """Build the Jangin HTTP application.

    Args:
        settings: Site settings (API keys, dataset, limits); default from the environment.
        routers: Names of the ``jangin.routers`` entry points to mount; default all installed.
        extra: More ``register(app, settings)`` callables (tests, embedding applications).
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for hook in app.state.startup:
            res = hook()
            if inspect.isawaitable(res):
                await res
        try:
            yield
        finally:
            for hook in reversed(app.state.shutdown):
                try:
                    res = hook()
                    if inspect.isawaitable(res):
                        await res
                except Exception:
                    log.exception("shutdown hook failed")

    app = FastAPI(
        title="Jangin",
        version="0.1.0",
        lifespan=lifespan,
        description="Capture, labelling, inspection and review beside the line. Every route but /healthz needs an API key.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    install_log_redaction()
    app.state.settings = settings
    from jangin.core.events import SampleBus

    app.state.sample_bus = SampleBus()  # live session data: capture publishes, coaching subscribes
    app.state.startup = []
    app.state.shutdown = []
    _body_limits(app, settings)

    app.add_middleware(_ResponseHeaders)  # response time and security headers

    @app.exception_handler(JanginError)
    async def jangin_error(request: Request, exc: JanginError) -> JSONResponse:
        code = status_of(exc)
        if code >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        body: dict[str, Any] = {"detail": exc.message, "error": type(exc).__name__}
        if exc.hint:
            body["hint"] = exc.hint
        return JSONResponse(body, status_code=code)

    @app.exception_handler(ValueError)
    async def value_error(request: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "error": "ValueError"}, status_code=422)

    @app.get("/healthz", tags=["core"])
    def healthz() -> dict[str, Any]:
        """Liveness: answers without an API key."""
        return {"status": "ok", "routers": app.state.mounted}

    @app.get(
        "/metrics", tags=["core"], response_class=PlainTextResponse, dependencies=[Depends(require(*Role))]
    )
    def metrics() -> Response:
        """Prometheus metrics (any valid API key)."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    _add_auth_routes(app)

    app.state.mounted = []
    for ep in sorted(entry_points(group=ROUTER_GROUP), key=lambda e: e.name):
        if routers is not None and ep.name not in routers:
            continue
        try:
            register = ep.load()
        except Exception as exc:
            log.warning("cannot load router %r (%s): %s", ep.name, ep.value, exc)
            continue
        register(app, settings)
        app.state.mounted.append(ep.name)
    for reg in extra:
        reg(app, settings)
    if routers is not None:
        missing = sorted(set(routers) - set(app.state.mounted))
        if missing:
            raise ConfigError(f"router(s) not installed: {', '.join(missing)}")
    return app
