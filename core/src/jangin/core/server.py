"""The one HTTP application, ``jangin serve``: core's part (auth, errors, health, metrics) plus the
routers of every installed stage, found through the ``jangin.routers`` entry-point group.

A stage's entry point names a callable ``register(app: FastAPI, settings: Settings) -> None`` that
includes its routers and may append coroutines or functions to ``app.state.startup`` /
``app.state.shutdown`` (run by the app's lifespan, in order / in reverse order).

Auth: every route but ``/healthz`` needs an API key (header ``X-API-Key`` or ``Authorization: Bearer``)
whose role (settings ``api_keys``) allows it; use ``Depends(require(Role.ENGINEER))`` in a stage's
router. Library code raises :class:`~jangin.core.JanginError` subclasses; one handler here maps them to
HTTP statuses, so no library code raises ``HTTPException``.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from importlib.metadata import entry_points
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

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
from jangin.core.settings import Role, Settings, get_settings

__all__ = ["ROUTER_GROUP", "create_app", "current_role", "require", "status_of"]

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


def _api_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.query_params.get("api_key") if request.url.path.startswith("/review") else None


def current_role(request: Request) -> Role | None:
    """The role of the request's API key, or None."""
    settings: Settings = request.app.state.settings
    return settings.role_of(_api_key(request))


def require(*roles: Role) -> Callable[..., Any]:
    """A FastAPI dependency that admits keys whose role grants one of ``roles``; returns the role."""

    def dependency(request: Request) -> Role:
        role = current_role(request)
        if role is None:
            raise HTTPException(401, "missing or unknown API key", headers={"WWW-Authenticate": "Bearer"})
        if not any(r in _GRANTS[role] for r in roles):
            raise HTTPException(
                403, f"role {role.value!r} may not do this (needs {' or '.join(r.value for r in roles)})"
            )
        return role

    return dependency


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
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def json_logging(level: int = logging.INFO) -> None:
    """Log JSON lines to stderr (the server's format)."""
    handler = logging.StreamHandler()
    handler.setFormatter(_JsonFormatter())
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
    )
    app.state.settings = settings
    from jangin.core.events import SampleBus

    app.state.sample_bus = SampleBus()  # live session data: capture publishes, coaching subscribes
    app.state.startup = []
    app.state.shutdown = []
    _body_limits(app, settings)

    @app.middleware("http")
    async def limits_and_timing(request: Request, call_next: Callable[..., Any]) -> Response:
        t = time.perf_counter()
        response: Response = await call_next(request)
        response.headers["X-Response-Time-ms"] = f"{(time.perf_counter() - t) * 1e3:.2f}"
        return response

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
