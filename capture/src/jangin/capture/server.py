"""The ingest API for recording apps: ``/v1/sessions…``, mounted by ``jangin serve`` (role ``recorder``).

A recording app creates a session, appends sensor batches and events (each with a sequence number,
so a retry never duplicates rows), uploads video in chunks (resumable: ask for the offset, continue
there), and finishes; processing (offsets, frames, de-identification, tables) runs in the background
and ``GET /v1/sessions/{id}`` reports it. Every request is staged durably on disk before it is
acknowledged (see ``jangin.capture._staging``); a startup hook resumes processing a crash cut short.

Endpoints (all under ``/v1/sessions``):

=======  ======================================  ================================================
POST     ``/v1/sessions``                        create (idempotent per site + session_key)
GET      ``/{id}``                               status: recording / processing / processed / failed
POST     ``/{id}/sensors/{device}?seq=N``        sensor batch: JSON ``{"t": [...], "channels": {...}}``
                                                 or Arrow IPC stream (``t`` + channel columns)
POST     ``/{id}/events?seq=N``                  events: JSON ``{"events": [{ts, kind, name, ...}]}``
HEAD/GET ``/{id}/video/{camera}``                upload offset (header ``Upload-Offset``)
PATCH    ``/{id}/video/{camera}``                chunk at ``Upload-Offset`` (+ ``X-Chunk-Sha256``)
POST     ``/{id}/video/{camera}/complete``       ``{"size", "sha256"}`` of the whole file
POST     ``/{id}/finish``                        ``{"ended_at", "frame_interval_s"}``
=======  ======================================  ================================================
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from jangin.capture._staging import ConflictError, check_name
from jangin.core import JanginError

if TYPE_CHECKING:
    from jangin.capture._staging import Staging
    from jangin.core import Dataset
    from jangin.core.settings import Settings

__all__ = ["IngestService", "SessionIn", "register"]

log = logging.getLogger(__name__)

ARROW_STREAM = "application/vnd.apache.arrow.stream"


class ChannelIn(BaseModel):
    """A channel a device sends."""

    model_config = ConfigDict(extra="forbid")
    name: str
    unit: str | None = None
    rate_hz: float | None = Field(default=None, gt=0)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name("channel", v)


class DeviceIn(BaseModel):
    """A sensor device of the session; ``clock_offset_s`` left out is estimated from the sync event."""

    model_config = ConfigDict(extra="forbid")
    name: str
    kind: str = "sensor"
    clock_offset_s: float | None = None
    sync_channel: str | None = None
    channels: list[ChannelIn] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name("device", v)


class CameraIn(BaseModel):
    """A camera of the session; frame 0 is at ``started_at`` + ``clock_offset_s``."""

    model_config = ConfigDict(extra="forbid")
    name: str = "camera"
    clock_offset_s: float | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name("camera", v)


class SessionIn(BaseModel):
    """Create a session. ``technician`` is pseudonymised before anything is stored."""

    model_config = ConfigDict(extra="forbid")
    session_key: str
    technician: str | None = None
    skill_level: Literal["expert", "intermediate", "novice", "unknown"] = "unknown"
    site: str = "site"
    line: str | None = None
    station: str | None = None
    process: str | None = None
    task: str | None = None
    started_at: datetime
    devices: list[DeviceIn] = Field(default_factory=list, max_length=64)
    cameras: list[CameraIn] = Field(default_factory=list, max_length=16)

    @field_validator("session_key", "site")
    @classmethod
    def _key(cls, v: str) -> str:
        return check_name("name", v)

    @field_validator("started_at")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("started_at needs a timezone")
        return v.astimezone(UTC)


class FinishIn(BaseModel):
    """Finish a session and start processing."""

    model_config = ConfigDict(extra="forbid")
    ended_at: datetime | None = None
    frame_interval_s: float = Field(default=1.0, gt=0)
    # Accepted for old clients, ``true`` only: de-identification is the site's policy (settings).
    deidentify: bool | None = None

    @field_validator("deidentify")
    @classmethod
    def _policy(cls, v: bool | None) -> bool | None:
        if v is False:
            raise ValueError(
                "de-identification is a site policy (JANGIN_DEIDENTIFY, set by an admin); "
                "a request cannot turn it off"
            )
        return v


class IngestService:
    """What the router does, without HTTP: staging plus a one-worker background processor."""

    def __init__(self, ds: Dataset, settings: Settings) -> None:
        from jangin.capture._staging import Staging

        self.ds = ds
        self.settings = settings
        self.staging: Staging = Staging(ds.root / "staging")
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        """Remove interrupted writes and resume processing of finished sessions."""
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jangin-ingest")
        n = self.staging.clean_tmp()
        pending = self.staging.pending()
        if n or pending:
            log.info("ingest: removed %d interrupted write(s); resuming %d session(s)", n, len(pending))
        for sid in pending:
            self._pool.submit(self._process, sid)

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def create(self, body: SessionIn) -> dict[str, Any]:
        from jangin.capture._import import session_id_for
        from jangin.capture._process import SEQ_CREATED, session_row

        sid = session_id_for(body.site, body.session_key)
        meta = body.model_dump(mode="json")
        meta["session_id"] = sid
        meta["technician"] = self.settings.pseudonym(body.technician) if body.technician else None
        created = self.staging.create(sid, meta)
        self.ds.append(
            "sessions",
            [session_row(self.staging.meta(sid), {}, status="recording")],
            txn=(f"ingest/{sid}", SEQ_CREATED),
        )
        return {"session_id": sid, "created": created}

    def finish(self, sid: str, body: FinishIn) -> dict[str, Any]:
        from jangin.capture._process import SEQ_FINISHED, session_row

        opts = body.model_dump(mode="json", exclude={"deidentify"})  # the site's policy decides (settings)
        if body.ended_at is not None:
            opts["ended_at"] = body.ended_at.timestamp()
        first = self.staging.finish(sid, opts)
        if first:
            self.ds.append(
                "sessions",
                [session_row(self.staging.meta(sid), {}, status="finished", ended_at=body.ended_at)],
                txn=(f"ingest/{sid}", SEQ_FINISHED),
            )
            if self._pool is not None:
                self._pool.submit(self._process, sid)
        return self.staging.status(sid)

    def _process(self, sid: str) -> None:
        from jangin.capture._process import process_staged

        self.staging.set_status(sid, {"state": "processing", "since": datetime.now(UTC).isoformat()})
        try:
            out = process_staged(self.ds, self.staging, sid, self.settings)
        except JanginError as exc:
            log.error("ingest: processing %s failed: %s", sid, exc)
            self.staging.set_status(sid, {"state": "failed", "error": str(exc)})
            return
        except Exception as exc:
            log.exception("ingest: processing %s crashed", sid)
            self.staging.set_status(sid, {"state": "failed", "error": f"{type(exc).__name__}: {exc}"})
            return
        out["offsets"] = {k: {"offset_s": v[0], "method": v[1]} for k, v in out["offsets"].items()}
        self.staging.set_status(sid, {"state": "processed", **out})
        self.staging.release(sid)


def _table_from_json(payload: Any) -> Any:
    import pyarrow as pa

    from jangin.core import CaptureError

    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("t"), list)
        or not isinstance(payload.get("channels", {}), dict)
    ):
        raise CaptureError('sensor batch: expected {"t": [times], "channels": {name: [values]}}')
    cols: dict[str, Any] = {"t": payload["t"]}
    for name, values in payload.get("channels", {}).items():
        if not isinstance(values, list) or len(values) != len(payload["t"]):
            raise CaptureError(
                f"sensor batch: channel {name!r} must be a list as long as 't' ({len(payload['t'])})"
            )
        cols[str(name)] = [float("nan") if v is None else v for v in values]
    try:
        return pa.table({k: pa.array(v, pa.float64()) for k, v in cols.items()})
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
        raise CaptureError(f"sensor batch: values must be numbers: {exc}") from exc


def _table_from_ipc(data: bytes) -> Any:
    import pyarrow as pa

    from jangin.core import CaptureError

    try:
        return pa.ipc.open_stream(pa.py_buffer(data)).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise CaptureError(f"sensor batch: not an Arrow IPC stream: {exc}") from exc


def register(app: FastAPI, settings: Settings) -> None:
    """Mount the ingest router on ``app`` (the ``jangin.routers`` entry point ``capture``)."""
    from starlette.concurrency import run_in_threadpool

    from jangin.core import Dataset
    from jangin.core.server import require
    from jangin.core.settings import Role

    state: dict[str, IngestService] = {}
    limit = settings.max_body_mb * 1024 * 1024

    def svc() -> IngestService:
        if "svc" not in state:
            state["svc"] = IngestService(Dataset.open_or_create(settings.dataset), settings)
        return state["svc"]

    def startup() -> None:
        svc().start()

    def shutdown() -> None:
        if "svc" in state:
            state["svc"].stop()

    app.state.startup.append(startup)
    app.state.shutdown.append(shutdown)
    app.state.ingest = svc

    async def body(request: Request) -> bytes:
        # The core middleware checks Content-Length; a chunked body has none, so count here too.
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _TooLarge()
            chunks.append(chunk)
        return b"".join(chunks)

    async def call(fn: Any, *args: Any, offset_of: tuple[str, str] | None = None) -> Any:
        try:
            return await run_in_threadpool(fn, *args)
        except ConflictError as exc:
            content: dict[str, Any] = {"detail": exc.message, "error": "ConflictError"}
            headers = {}
            if offset_of is not None:
                off, _ = await run_in_threadpool(svc().staging.video_offset, *offset_of)
                content["offset"] = off
                headers["Upload-Offset"] = str(off)
            return JSONResponse(content, status_code=409, headers=headers)

    router = APIRouter(
        prefix="/v1/sessions", tags=["capture"], dependencies=[Depends(require(Role.RECORDER))]
    )

    @router.post("", status_code=201)
    async def create_session(payload: SessionIn) -> Any:
        """Create a recording session (a retry with the same metadata returns the same id)."""
        return await call(svc().create, payload)

    @router.get("/{session_id}")
    async def session_status(session_id: str) -> Any:
        """Where the session stands: recording (with staged counts), processing, processed, failed."""
        check_name("session id", session_id)
        return await call(svc().staging.status, session_id)

    @router.post("/{session_id}/sensors/{device}")
    async def append_sensors(session_id: str, device: str, request: Request, seq: int = Query(ge=0)) -> Any:
        """Append one sensor batch (device clock); acknowledged once staged on disk."""
        check_name("session id", session_id)
        received = time.perf_counter()
        data = await body(request)
        ctype = request.headers.get("content-type", "").split(";")[0].strip()
        if ctype == ARROW_STREAM:
            table = await run_in_threadpool(_table_from_ipc, data)
        else:
            import json

            try:
                payload = json.loads(data)
            except ValueError as exc:
                raise ValueError(
                    f"sensor batch: body is not JSON ({exc}); send JSON or {ARROW_STREAM}"
                ) from exc
            table = await run_in_threadpool(_table_from_json, payload)
        res = await call(svc().staging.append_sensors, session_id, device, seq, table)
        if not isinstance(res, Response) and not res.duplicate:
            _publish_samples(app, svc(), session_id, device, table, received)
        return res if isinstance(res, Response) else res.__dict__

    @router.post("/{session_id}/events")
    async def append_events(session_id: str, request: Request, seq: int = Query(ge=0)) -> Any:
        """Append a batch of events (reference clock). Authors that look like names are pseudonymised."""
        import json

        from jangin.capture._import import _deidentify_author

        check_name("session id", session_id)
        try:
            payload = json.loads(await body(request))
        except ValueError as exc:
            raise ValueError(f"events: body is not JSON ({exc})") from exc
        items = payload.get("events") if isinstance(payload, dict) else payload
        if not isinstance(items, list):
            raise ValueError('events: expected {"events": [...]}')
        for e in items:
            if isinstance(e, dict) and e.get("author"):
                e["author"] = _deidentify_author(str(e["author"]), None, settings)
        res = await call(svc().staging.append_events, session_id, seq, items)
        bus = getattr(app.state, "sample_bus", None)
        if bus is not None and not isinstance(res, Response) and not res.duplicate:
            bus.publish(session_id, {"type": "events", "events": items})
        return res if isinstance(res, Response) else res.__dict__

    @router.api_route("/{session_id}/video/{camera}", methods=["GET", "HEAD"])
    async def video_offset(session_id: str, camera: str) -> Any:
        """The acknowledged length of the camera's upload: resume there."""
        check_name("session id", session_id)
        off, complete = await run_in_threadpool(svc().staging.video_offset, session_id, camera)
        return JSONResponse({"offset": off, "complete": complete}, headers={"Upload-Offset": str(off)})

    @router.patch("/{session_id}/video/{camera}")
    async def video_chunk(session_id: str, camera: str, request: Request) -> Any:
        """Write one chunk at ``Upload-Offset``; a wrong offset answers 409 with the right one."""
        check_name("session id", session_id)
        try:
            offset = int(request.headers.get("upload-offset", ""))
        except ValueError:
            raise ValueError(
                "video chunk: header Upload-Offset (bytes already uploaded) is required"
            ) from None
        data = await body(request)
        res = await call(
            svc().staging.write_chunk,
            session_id,
            camera,
            offset,
            data,
            request.headers.get("x-chunk-sha256"),
            offset_of=(session_id, camera),
        )
        if isinstance(res, Response):
            return res
        return JSONResponse({"offset": res}, headers={"Upload-Offset": str(res)})

    @router.post("/{session_id}/video/{camera}/complete")
    async def video_complete(session_id: str, camera: str, payload: dict[str, Any]) -> Any:
        """Close the upload after checking ``size`` and ``sha256`` of the whole file."""
        check_name("session id", session_id)
        size, sha = payload.get("size"), payload.get("sha256")
        if not isinstance(size, int) or not isinstance(sha, str) or len(sha) != 64:
            raise ValueError('complete: expected {"size": bytes, "sha256": 64 hex digits}')
        res = await call(
            svc().staging.complete_video, session_id, camera, size, sha, offset_of=(session_id, camera)
        )
        return res if isinstance(res, Response) else {"complete": True, "size": size}

    @router.post("/{session_id}/finish", status_code=202)
    async def finish(session_id: str, payload: FinishIn | None = None) -> Any:
        """Finish recording; processing starts in the background (poll ``GET /v1/sessions/{id}``)."""
        check_name("session id", session_id)
        return await call(svc().finish, session_id, payload or FinishIn())

    app.include_router(router)

    @app.exception_handler(_TooLarge)
    async def too_large(request: Request, exc: _TooLarge) -> JSONResponse:
        return JSONResponse({"detail": f"request body over {settings.max_body_mb} MiB"}, status_code=413)


def _publish_samples(
    app: FastAPI, svc: IngestService, session_id: str, device: str, table: Any, received: float
) -> None:
    """Hand an accepted batch to live subscribers (``app.state.sample_bus``), on the reference clock
    when the device's offset was given (else on the device clock, ``offset_known`` False)."""
    import numpy as np

    bus = getattr(app.state, "sample_bus", None)
    if bus is None or not bus.has_subscribers(session_id):
        return
    offset = next(
        (
            d.get("clock_offset_s")
            for d in svc.staging.meta(session_id).get("devices", [])
            if d.get("name") == device
        ),
        None,
    )
    t = table.column("t").to_numpy(zero_copy_only=False).astype(np.float64)
    t_us = np.rint((t + (offset or 0.0)) * 1e6).astype(np.int64)
    channels = {
        c: table.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
        for c in table.column_names
        if c != "t"
    }
    bus.publish(
        session_id,
        {
            "type": "samples",
            "device": device,
            "t_us": t_us,
            "channels": channels,
            "offset_known": offset is not None,
            "received_at": received,
        },
    )


class _TooLarge(Exception):
    """A streamed request body exceeded the limit (answered 413)."""
