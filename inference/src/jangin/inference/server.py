"""The inspection routers of ``jangin serve``: ``/v1/inspect``, ``/v1/process/score``, ``/v1/models…``,
``/v1/inspections…``, ``/v1/quality…``, ``/v1/cameras`` and the review page ``/review``.

Both inspection routes are guarded at the door (:mod:`jangin.inference.inspection._door`): beyond
capacity a request gets 503 + ``Retry-After`` before its body is read. A 2xx verdict is durable (the
write-ahead log, see :mod:`jangin.inference.inspection._wal`): ``"durable": true`` in the response.

Roles (API keys, see ``jangin.core.server``): ``engineer`` (and ``admin``) inspect, read the log and
review; ``admin`` alone switches models. ``recorder`` and ``labeller`` keys get 403 here. A line PC or
camera gateway that posts images therefore gets an ``engineer`` key.

Registered through the ``jangin.routers`` entry point ``inference = "jangin.inference.server:register"``;
settings of this router come from ``JANGIN_INFERENCE_*`` (:class:`InferenceConfig`). Tests and embedding
applications use :func:`make_register` to pass a config directly.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from jangin.core import Dataset
from jangin.core.server import current_key_id, current_role, require
from jangin.core.settings import Role, Settings
from jangin.inference._batcher import Overloaded
from jangin.inference._images import ImageTooLarge, UnsupportedMedia
from jangin.inference.inspection import InferenceConfig, InspectionService
from jangin.inference.inspection._wal import WalError

__all__ = ["make_register", "register"]

log = logging.getLogger(__name__)

_ID = r"^insp-[0-9a-f]{20}$"
_TAG = r"^[A-Za-z0-9_.:-]{1,64}$"
_IMAGE_TYPES = {"image/jpeg", "image/jpg", "image/png", "application/octet-stream"}
_ARROW_TYPES = {"application/vnd.apache.arrow.stream", "application/vnd.apache.arrow.file"}
_REF = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}(:(v\d+|latest|active))?$"
#: The routes the door guards.
GUARDED = frozenset({"/v1/inspect", "/v1/process/score"})
InspectionId = Annotated[str, Path(pattern=_ID, description="inspection id, e.g. insp-0123456789abcdef0123")]
Tag = Annotated[str | None, Query(pattern=_TAG)]


class ReviewIn(BaseModel):
    """A quality engineer's verdict on an inspection."""

    verdict: str = Field(pattern="^(OK|NG)$", description="OK or NG")
    comment: str | None = Field(None, max_length=2000)
    reviewer: str | None = Field(None, max_length=200, description="name; stored as a keyed pseudonym")


def _service(request: Request) -> InspectionService:
    return request.app.state.inspection  # type: ignore[no-any-return]


def _reviewer(request: Request, settings: Settings, name: str | None) -> str:
    if name and name.strip():
        return settings.pseudonym(name)
    return "key-" + (current_key_id(request) or "")[:10]  # the key's digest (header or session cookie)


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    out = [v.strip().upper() for item in values for v in item.split(",") if v.strip()]
    bad = [v for v in out if v not in ("OK", "NG", "DOUBTFUL")]
    if bad:
        raise ValueError(f"unknown verdict(s) {bad}; use OK, NG, DOUBTFUL")
    return out


def _router(settings: Settings) -> APIRouter:
    engineer = [Depends(require(Role.ENGINEER))]
    r = APIRouter(tags=["inference"])

    @r.post(
        "/v1/inspect",
        dependencies=engineer,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                    "image/png": {"schema": {"type": "string", "format": "binary"}},
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {"file": {"type": "string", "format": "binary"}},
                        }
                    },
                },
            }
        },
    )
    async def inspect(request: Request, station: Tag = None, camera: Tag = None) -> Response:
        """Inspect one image (JPEG or PNG, raw body or multipart field ``file``) → verdict, detections,
        scores, anomaly-map link, latency and ids. 415 for other types, 413 above the pixel limit, 422 for
        broken images, 503 + Retry-After when the queue is full."""
        t0 = time.perf_counter()
        svc = _service(request)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "multipart/form-data":
            form = await request.form()
            upload = form.get("file") or next((v for v in form.values() if hasattr(v, "read")), None)
            if upload is None or isinstance(upload, str):
                raise UnsupportedMedia(
                    "multipart request without a file field", hint="send the image as field 'file'"
                )
            data = await upload.read()
        elif ctype in _IMAGE_TYPES:
            data = await request.body()
        else:
            raise UnsupportedMedia(
                f"content type {ctype or 'none'!r} is not an image",
                hint="send image/jpeg, image/png, application/octet-stream or multipart/form-data",
            )
        insp = await svc.inspector.inspect_async(data, station, camera, source=f"http:{camera or ''}", t0=t0)
        return Response(json.dumps(insp.response), media_type="application/json")

    @r.post(
        "/v1/process/score",
        dependencies=engineer,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "channels": {
                                    "type": "object",
                                    "additionalProperties": {
                                        "type": "object",
                                        "properties": {
                                            "t_us": {"type": "array", "items": {"type": "number"}},
                                            "values": {"type": "array", "items": {"type": "number"}},
                                        },
                                    },
                                }
                            },
                        }
                    },
                    "application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}},
                },
            }
        },
    )
    async def process_score(
        request: Request,
        station: Tag = None,
        camera: Tag = None,
        model: Annotated[str | None, Query(pattern=_REF)] = None,
        session_id: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Response:
        """Score a window of sensor samples with a process model → P(NG), verdict, logged as an
        inspection. Body: JSON ``{"channels": {name: {"t_us": [...], "values": [...]}}}`` or Arrow IPC
        (long ``channel, t_us, value`` or wide ``t_us, <channel>…``), with every channel the model's
        manifest lists (422 naming the missing ones). ``model``: default the active process model."""
        from jangin.inference._process import window_from_arrow, window_from_json

        svc = _service(request)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        data = await request.body()
        if ctype == "application/json":
            try:
                body = json.loads(data)
            except ValueError as exc:
                raise UnsupportedMedia(f"the body is not JSON: {exc}") from exc
            window = await run_in_threadpool(window_from_json, body)
        elif ctype in _ARROW_TYPES:
            window = await run_in_threadpool(window_from_arrow, data)
        else:
            raise UnsupportedMedia(
                f"content type {ctype or 'none'!r} is not a window of samples",
                hint="send application/json or application/vnd.apache.arrow.stream",
            )
        insp = await run_in_threadpool(
            lambda: svc.inspector.score_process(
                window,
                model=model,
                station=station,
                camera=camera,
                source=f"session:{session_id}" if session_id else f"http:{camera or ''}",
            )
        )
        return Response(json.dumps(insp.response), media_type="application/json")

    @r.get("/v1/models", dependencies=engineer)
    def models(request: Request) -> dict[str, Any]:
        """Every model version in the registry, and the ones serving (``serving``: the image model of
        ``/v1/inspect``; ``serving_process``: the default model of ``/v1/process/score``)."""
        svc = _service(request)
        proc = svc.slots.process
        return {
            "serving": svc.model.info() if svc.model else None,
            "serving_process": proc.info() if proc else None,
            "models": svc.models(),
        }

    @r.post("/v1/models/{name}/activate", dependencies=[Depends(require(Role.ADMIN))])
    def activate(
        request: Request,
        name: Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")],
        version: Annotated[str | None, Query(pattern=r"^(v\d+|latest|active)$")] = None,
        promote: bool = False,
        runtime: Annotated[str | None, Query(pattern=r"^[a-z0-9:,]{1,64}$")] = None,
    ) -> dict[str, Any]:
        """Load, warm and hot-swap to ``name`` (``version``: default ACTIVE, else latest). No request
        fails or is dropped during the swap. ``promote`` also marks it ACTIVE in the registry; ``runtime``
        (``openvino:int8``, ``onnxruntime`` …) picks the runtime artifact, default the server's choice."""
        m = _service(request).activate(name, version, promote=promote, runtime=runtime)
        return {"serving": m.info()}

    @r.get("/v1/inspections", dependencies=engineer)
    def inspections(
        request: Request,
        since: datetime | None = None,
        until: datetime | None = None,
        station: Tag = None,
        verdict: Annotated[
            list[str] | None, Query(description="OK, NG, DOUBTFUL; repeat or comma-separate")
        ] = None,
        min_score: float | None = None,
        max_score: float | None = None,
        reviewed: bool | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    ) -> dict[str, Any]:
        """Inspections, newest first, with their latest review."""
        rows = _service(request).query(
            since=since,
            until=until,
            station=station,
            verdict=_split(verdict),
            min_score=min_score,
            max_score=max_score,
            reviewed=reviewed,
            limit=limit,
            offset=offset,
        )
        return {"inspections": rows, "count": len(rows)}

    @r.get("/v1/inspections/{inspection_id}", dependencies=engineer)
    def inspection(request: Request, inspection_id: InspectionId) -> Response:
        """One inspection."""
        row = _service(request).get(inspection_id)
        return Response(json.dumps(row, default=str), media_type="application/json")

    @r.get("/v1/inspections/{inspection_id}/image", dependencies=engineer, response_class=Response)
    def image(request: Request, inspection_id: InspectionId, overlay: bool = False) -> Response:
        """The inspected image (kept NG / DOUBTFUL, sampled OK, or recent); ``overlay`` draws the boxes."""
        svc = _service(request)
        if overlay:
            return Response(svc.overlay(inspection_id), media_type="image/jpeg")
        data, mtype = svc.image_bytes(inspection_id)
        return Response(data, media_type=mtype)

    @r.get("/v1/inspections/{inspection_id}/anomaly.png", dependencies=engineer, response_class=Response)
    def anomaly_png(request: Request, inspection_id: InspectionId) -> Response:
        """Heat-map overlay of an anomaly inspection (PNG)."""
        return Response(_service(request).anomaly_png(inspection_id), media_type="image/png")

    @r.post("/v1/inspections/{inspection_id}/review", dependencies=engineer)
    def review(request: Request, inspection_id: InspectionId, body: ReviewIn) -> dict[str, Any]:
        """Confirm or override a verdict: appended to ``reviews`` and, as a class label (source
        ``review``) on the image stored as a frame, to ``labels``."""
        return _service(request).review(
            inspection_id,
            body.verdict,
            reviewer=_reviewer(request, settings, body.reviewer),
            comment=body.comment,
        )

    @r.get("/v1/quality/precision", dependencies=engineer)
    def precision(request: Request, last: Annotated[int, Query(ge=1, le=10000)] = 200) -> dict[str, Any]:
        """The model's recent precision as measured by reviews."""
        return _service(request).precision(last)

    @r.get("/v1/quality/charts", dependencies=engineer)
    def charts(
        request: Request,
        every: Annotated[int, Query(ge=1, le=10000)] = 20,
        last: Annotated[int, Query(ge=1, le=100000)] = 2000,
        svg: bool = True,
    ) -> dict[str, Any]:
        """Control charts per station: p-chart of the NG rate, X̄ chart of the mean score, with Western
        Electric rule violations (``drift``); ``svg`` adds each chart as inline SVG."""
        from jangin.inference._spc import render_svg

        out: dict[str, Any] = {}
        for st, ch in _service(request).charts(every=every, last=last).items():
            out[st] = {}
            for kind, chart in ch.items():
                d = chart.to_dict()
                if svg:
                    title = f"{st or '(no station)'}: " + (
                        "NG rate (p-chart)" if kind == "p" else "mean score (X̄ chart)"
                    )
                    d["svg"] = render_svg(chart, title=title)
                out[st][kind] = d
        return {"every": every, "stations": out}

    @r.get("/v1/cameras", dependencies=engineer)
    def cameras(request: Request) -> dict[str, Any]:
        """Camera workers: frames grabbed, inspected, dropped, reconnects."""
        return {"cameras": [w.stats() for w in request.app.state.cameras]}

    @r.get("/review", response_class=HTMLResponse, include_in_schema=True)
    def review_page(request: Request) -> HTMLResponse:
        """The review page (engineer or admin). Without a session: the sign-in form, which POSTs the key
        to ``/login`` for an HttpOnly session cookie (the key never appears in a URL)."""
        from jangin.inference._page import LOGIN_HTML, REVIEW_HTML

        role = current_role(request)
        if role is None:
            failed = request.query_params.get("signin") == "failed"
            msg = "Unknown key: try again." if failed else ""
            return HTMLResponse(LOGIN_HTML.replace("<!--msg-->", msg), status_code=401)
        if role not in (Role.ENGINEER, Role.ADMIN):
            return HTMLResponse(
                LOGIN_HTML.replace(
                    "<!--msg-->", f"Role {role.value} may not review: sign in as an engineer."
                ),
                status_code=403,
            )
        return HTMLResponse(REVIEW_HTML)

    @r.get("/review/app.js", include_in_schema=False)
    def review_js() -> Response:
        """The review page's script (public: it holds no data and no key)."""
        from jangin.inference._page import REVIEW_JS

        return Response(REVIEW_JS, media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    @r.get("/review/app.css", include_in_schema=False)
    def review_css() -> Response:
        """The review page's styles."""
        from jangin.inference._page import REVIEW_CSS

        return Response(REVIEW_CSS, media_type="text/css", headers={"Cache-Control": "no-cache"})

    return r


def _status_handler(code: int) -> Callable[..., Any]:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        headers = {}
        if isinstance(exc, Overloaded):
            headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        elif code == 503:
            headers["Retry-After"] = "5"
        body = {"detail": getattr(exc, "message", str(exc)), "error": type(exc).__name__}
        if getattr(exc, "hint", None):
            body["hint"] = exc.hint  # type: ignore[attr-defined]
        return JSONResponse(body, status_code=code, headers=headers)

    return handler


def make_register(
    config: InferenceConfig | None = None, *, dataset: Dataset | None = None
) -> Callable[[FastAPI, Settings], None]:
    """A ``register(app, settings)`` with this config (default from ``JANGIN_INFERENCE_*``).

    Args:
        config: Server settings.
        dataset: The dataset; default ``settings.dataset`` (opened, or created when missing).
    """

    def _register(app: FastAPI, settings: Settings) -> None:
        from jangin.inference._cameras import CameraWorker
        from jangin.inference._metrics import metrics

        cfg = config or InferenceConfig()
        ds = dataset or Dataset.open_or_create(settings.dataset)
        svc = InspectionService(ds, cfg, metrics=metrics())
        app.state.inspection = svc
        app.state.cameras = [
            CameraWorker(name, src, svc, interval_s=cfg.camera_interval_s, metrics=svc.metrics)
            for name, src in settings.cameras.items()
            if re.match(_TAG, name)
        ]
        app.include_router(_router(settings))
        app.add_exception_handler(Overloaded, _status_handler(503))
        app.add_exception_handler(WalError, _status_handler(503))  # not durable: not acknowledged
        app.add_exception_handler(UnsupportedMedia, _status_handler(415))
        app.add_exception_handler(ImageTooLarge, _status_handler(413))
        from jangin.inference.inspection._door import Door

        app.add_middleware(
            Door,  # type: ignore[arg-type]
            paths=GUARDED,
            max_inflight=cfg.inflight_limit,
            max_per_client=cfg.max_per_client,
            refusal_delay_s=cfg.refusal_delay_s,
            on_shed=svc.metrics.shed.inc if svc.metrics is not None else None,
        )

        def start() -> None:
            svc.start()
            for w in app.state.cameras:
                w.start()

        def stop() -> None:
            for w in app.state.cameras:
                w.stop()
            svc.stop()

        app.state.startup.append(start)
        app.state.shutdown.append(stop)

    return _register


def register(app: FastAPI, settings: Settings) -> None:
    """The ``jangin.routers`` entry point: the inspection routers with settings from the environment."""
    make_register()(app, settings)
