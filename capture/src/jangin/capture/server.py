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
POST     ``/{id}/retry``                         process a ``failed`` session again (role ``admin``)
=======  ======================================  ================================================

Every request is validated in full before anything is staged: a 4xx changes nothing, so the corrected
retry of a refused request succeeds. Limits (settings): body size per request (``max_body_mb``, video
chunks ``max_video_chunk_mb``; counted while streaming, see ``jangin.core._limits``), a camera's whole
upload (``max_video_mb``), rows and decompressed bytes of one sensor batch (``max_batch_rows``,
``max_batch_mb``), sensor and event times in ``[min_time, max_time)``, sequence numbers below 2**63,
free text up to 200 characters.
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

from jangin.capture._staging import MAX_SEQ, ConflictError, TooLargeError, check_name
from jangin.core import JanginError

if TYPE_CHECKING:
    from jangin.capture._staging import Staging
    from jangin.core import Dataset
    from jangin.core.settings import Settings

__all__ = ["IngestService", "SessionIn", "register"]

log = logging.getLogger(__name__)

ARROW_STREAM = "application/vnd.apache.arrow.stream"

#: Longest free-text field (station, line, technician, names…), characters.
TEXT = 200
#: Largest clock offset accepted (seconds; about 100 years): beyond it no device clock is meant.
MAX_OFFSET_S = 3.2e9

Text = Field(default=None, max_length=TEXT)
Offset = Field(default=None, ge=-MAX_OFFSET_S, le=MAX_OFFSET_S, allow_inf_nan=False)


class ChannelIn(BaseModel):
    """A channel a device sends."""

    model_config = ConfigDict(extra="forbid")
    name: str
    unit: str | None = Field(default=None, max_length=64)
    rate_hz: float | None = Field(default=None, gt=0, le=1e9, allow_inf_nan=False)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name("channel", v)


class DeviceIn(BaseModel):
    """A sensor device of the session; ``clock_offset_s`` left out is estimated from the sync event."""

    model_config = ConfigDict(extra="forbid")
    name: str
    kind: str = Field(default="sensor", max_length=TEXT)
    clock_offset_s: float | None = Offset
    offset_method: str | None = Field(default=None, max_length=64)
    sync_channel: str | None = Field(default=None, max_length=128)
    channels: list[ChannelIn] = Field(min_length=1, max_length=1024)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name("device", v)


class CameraIn(BaseModel):
    """A camera of the session; frame 0 is at ``started_at`` + ``clock_offset_s``."""

    model_config = ConfigDict(extra="forbid")
    name: str = "camera"
    clock_offset_s: float | None = Offset

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name("camera", v)


class SessionIn(BaseModel):
    """Create a session. ``technician`` is pseudonymised before anything is stored."""

    model_config = ConfigDict(extra="forbid")
    session_key: str
    technician: str | None = Text
    skill_level: Literal["expert", "intermediate", "novice", "unknown"] = "unknown"
    site: str = "site"
    line: str | None = Text
    station: str | None = Text
    process: str | None = Text
    task: str | None = Text
    started_at: datetime
    devices: list[DeviceIn] = Field(default_factory=list, max_length=64)
    cameras: list[CameraIn] = Field(default_factory=list, max_length=16)
    #: Set by ``jangin capture record``: station, NTP status, how each clock offset was measured.
    recorder: dict[str, str | float | None] | None = Field(default=None, max_length=64)

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
    frame_interval_s: float = Field(default=1.0, gt=0, le=3600, allow_inf_nan=False)
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

    @field_validator("ended_at")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("ended_at needs a timezone")
        return None if v is None else v.astimezone(UTC)


class CompleteIn(BaseModel):
    """Close a video upload: the whole file's size and sha256."""

    model_config = ConfigDict(extra="forbid")
    size: int = Field(ge=1, le=2**62)
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")


class IngestService:
    """What the router does, without HTTP: staging plus a one-worker background processor."""

    def __init__(self, ds: Dataset, settings: Settings) -> None:
        from jangin.capture._staging import Limits, Staging

        self.ds = ds
        self.settings = settings
        self.staging: Staging = Staging(ds.root / "staging", Limits.from_settings(settings))
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

        self._check_time("started_at", body.started_at)
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
            self._check_time("ended_at", body.ended_at)
            opts["ended_at"] = body.ended_at.timestamp()
        first = self.staging.finish(sid, opts)  # everything is validated: from here the state changes
        if first:
            try:
                self.ds.append(
                    "sessions",
                    [session_row(self.staging.meta(sid), {}, status="finished", ended_at=body.ended_at)],
                    txn=(f"ingest/{sid}", SEQ_FINISHED),
                )
            finally:
                if self._pool is not None:
                    self._pool.submit(self._process, sid)
        return self.staging.status(sid)

    def retry(self, sid: str, *, wait: bool = False) -> dict[str, Any]:
        """Process a ``failed`` session again from its staged data (in the background unless ``wait``).

        Raises:
            NotFoundError: No such staged session. ConflictError: It is not ``failed``.
        """
        self.staging.retry(sid)
        if wait or self._pool is None:
            self._process(sid)
        else:
            self._pool.submit(self._process, sid)
        return self.staging.status(sid)

    def _check_time(self, field: str, value: datetime) -> None:
        from jangin.core import CaptureError

        lo, hi = self.settings.min_time, self.settings.max_time
        if not lo <= value < hi:
            raise CaptureError(
                f"{field}: {value.isoformat()} is outside the accepted range [{lo.isoformat()}, {hi.isoformat()})"
            )

    def _process(self, sid: str) -> None:
        from jangin.capture._process import process_staged

        retries = {"retries": n} if (n := int(self.staging.status(sid).get("retries", 0))) else {}
        self.staging.set_status(
            sid, {"state": "processing", "since": datetime.now(UTC).isoformat(), **retries}
        )
        try:
            out = process_staged(self.ds, self.staging, sid, self.settings)
        except JanginError as exc:
            log.error("ingest: processing %s failed: %s", sid, exc)
            self.staging.set_status(sid, {"state": "failed", "error": str(exc), **retries})
            return
        except Exception as exc:
            log.exception("ingest: processing %s crashed", sid)
            error = f"{type(exc).__name__}: {exc}"
            self.staging.set_status(sid, {"state": "failed", "error": error, **retries})
            return
        out["offsets"] = {k: {"offset_s": v[0], "method": v[1]} for k, v in out["offsets"].items()}
        self.staging.set_status(sid, {"state": "processed", **out, **retries})
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


def _table_from_ipc(data: bytes, max_rows: int, max_bytes: int) -> Any:
    """Read an Arrow IPC stream batch by batch, refusing (413) before decompressing a batch that
    would pass ``max_rows`` rows or ``max_bytes`` decoded bytes in all; only numeric columns."""
    import pyarrow as pa

    from jangin.core import CaptureError

    try:
        reader = pa.ipc.MessageReader.open_stream(pa.py_buffer(data))
        schema = pa.ipc.read_schema(reader.read_next_message())
    except (pa.ArrowInvalid, OSError, StopIteration, TypeError) as exc:
        raise CaptureError(f"sensor batch: not an Arrow IPC stream: {exc}") from exc
    for f in schema:
        if not (pa.types.is_floating(f.type) or pa.types.is_integer(f.type) or pa.types.is_null(f.type)):
            raise CaptureError(f"sensor batch: column {f.name!r} is {f.type}, expected numbers")
    batches, rows, decoded = [], 0, 0
    while True:
        try:
            msg = reader.read_next_message()
        except StopIteration:
            break
        except (pa.ArrowInvalid, OSError) as exc:
            raise CaptureError(f"sensor batch: not an Arrow IPC stream: {exc}") from exc
        if msg is None:
            break
        if msg.type != "record batch":
            raise CaptureError(f"sensor batch: unexpected Arrow IPC message {msg.type!r}")
        n, size = _batch_sizes(msg.metadata.to_pybytes(), msg.body)
        rows += n
        decoded += size
        if n < 0 or size < 0 or rows > max_rows or decoded > max_bytes:
            raise TooLargeError(
                f"sensor batch: over {max_rows} rows or {max_bytes >> 20} MiB decoded",
                hint="send smaller batches (settings max_batch_rows / max_batch_mb)",
            )
        try:
            batches.append(pa.ipc.read_record_batch(msg, schema))
        except (pa.ArrowInvalid, OSError) as exc:
            raise CaptureError(f"sensor batch: not an Arrow IPC stream: {exc}") from exc
        if batches[-1].num_rows != n:
            raise CaptureError("sensor batch: Arrow IPC batch length does not match its data")
    return pa.Table.from_batches(batches, schema)


def _batch_sizes(meta: bytes, body: Any) -> tuple[int, int]:
    """Row count and decoded body bytes of an Arrow IPC record batch message, read from its flatbuffer
    metadata (``Message.header`` → ``RecordBatch.length`` / ``buffers`` / ``compression``) and the
    8-byte uncompressed-length prefix of each compressed buffer, without decompressing anything."""
    import struct

    from jangin.core import CaptureError

    def field(table: int, i: int) -> int | None:
        vtable = table - struct.unpack_from("<i", meta, table)[0]
        if 4 + 2 * i >= struct.unpack_from("<H", meta, vtable)[0]:
            return None
        off = struct.unpack_from("<H", meta, vtable + 4 + 2 * i)[0]
        return None if off == 0 else table + off

    try:
        root = struct.unpack_from("<I", meta, 0)[0]
        header = field(root, 2)
        if header is None:
            raise CaptureError("sensor batch: Arrow IPC message without a header")
        batch = header + struct.unpack_from("<I", meta, header)[0]
        length = field(batch, 0)
        rows = 0 if length is None else int(struct.unpack_from("<q", meta, length)[0])
        buffers, compressed, size = field(batch, 2), field(batch, 3) is not None, 0
        if buffers is not None:
            vec = buffers + struct.unpack_from("<I", meta, buffers)[0]
            for k in range(struct.unpack_from("<I", meta, vec)[0]):
                off, n = struct.unpack_from("<qq", meta, vec + 4 + 16 * k)
                if compressed and n >= 8:
                    if off < 0 or off + 8 > body.size:
                        raise CaptureError("sensor batch: Arrow IPC buffer outside the message body")
                    raw = struct.unpack("<q", body.slice(off, 8).to_pybytes())[0]
                    n = n - 8 if raw == -1 else raw
                size += n
        return rows, size
    except struct.error as exc:
        raise CaptureError(f"sensor batch: malformed Arrow IPC metadata: {exc}") from exc


def register(app: FastAPI, settings: Settings) -> None:
    """Mount the ingest router on ``app`` (the ``jangin.routers`` entry point ``capture``)."""
    from starlette.concurrency import run_in_threadpool

    from jangin.core import Dataset
    from jangin.core.server import require
    from jangin.core.settings import Role

    state: dict[str, IngestService] = {}
    max_rows, max_bytes = settings.max_batch_rows, settings.max_batch_mb << 20
    if hasattr(app.state, "body_limits"):  # video chunks may be larger than other bodies
        from jangin.core._limits import RouteLimit

        app.state.body_limits.append(
            RouteLimit(
                "PATCH", r"/v1/sessions/[^/]+/video/[^/]+", settings.max_video_chunk_mb << 20, binary=True
            )
        )

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
        # the core middleware (jangin.core._limits) stops a body, chunked or not, past its route's limit
        return await request.body()

    def loads(data: bytes, what: str) -> Any:
        import json

        from jangin.core._limits import json_depth_ok

        if not json_depth_ok(data, settings.max_json_depth):
            raise ValueError(f"{what}: JSON nested deeper than {settings.max_json_depth} levels")
        try:
            return json.loads(data)
        except ValueError as exc:
            raise ValueError(f"{what}: body is not JSON ({exc})") from exc

    async def call(fn: Any, *args: Any, offset_of: tuple[str, str] | None = None) -> Any:
        try:
            return await run_in_threadpool(fn, *args)
        except TooLargeError as exc:
            big: dict[str, Any] = {"detail": exc.message, "error": "TooLargeError"}
            return JSONResponse({**big, "hint": exc.hint} if exc.hint else big, status_code=413)
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
    async def append_sensors(
        session_id: str, device: str, request: Request, seq: int = Query(ge=0, le=MAX_SEQ)
    ) -> Any:
        """Append one sensor batch (device clock); acknowledged once staged on disk."""
        check_name("session id", session_id)
        received = time.perf_counter()
        checked = await call(svc().staging.check_device, session_id, device)  # before reading the body
        if isinstance(checked, Response):
            return checked
        data = await body(request)
        ctype = request.headers.get("content-type", "").split(";")[0].strip()
        if ctype == ARROW_STREAM:
            table = await call(_table_from_ipc, data, max_rows, max_bytes)
            if isinstance(table, Response):
                return table
        else:
            payload = loads(data, f"sensor batch (send JSON or {ARROW_STREAM})")
            if (
                isinstance(payload, dict)
                and isinstance(payload.get("t"), list)
                and len(payload["t"]) > max_rows
            ):
                return JSONResponse(
                    {"detail": f"sensor batch: over {max_rows} rows", "error": "TooLargeError"},
                    status_code=413,
                )
            table = await run_in_threadpool(_table_from_json, payload)
        res = await call(svc().staging.append_sensors, session_id, device, seq, table)
        if not isinstance(res, Response) and not res.duplicate:
            _publish_samples(app, svc(), session_id, device, table, received)
        return res if isinstance(res, Response) else res.__dict__

    @router.post("/{session_id}/events")
    async def append_events(session_id: str, request: Request, seq: int = Query(ge=0, le=MAX_SEQ)) -> Any:
        """Append a batch of events (reference clock). Authors that look like names are pseudonymised.

        Each event: ``ts`` (unix seconds or ISO 8601 with a timezone, inside the accepted time range),
        ``kind`` (one of the known kinds), ``name`` / ``author`` (<= 200 characters), ``value``
        (<= 2000), ``segment_start`` / ``segment_end``; the first bad field answers 422 as ``events[i].field``.
        """
        from jangin.capture._import import _deidentify_author

        check_name("session id", session_id)
        payload = loads(await body(request), "events")
        items = payload.get("events") if isinstance(payload, dict) else payload
        if not isinstance(items, list):
            raise ValueError('events: expected {"events": [...]}')
        svc().staging.check_events(items)  # the raw input, before authors become pseudonyms
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
            if not 0 <= offset < 2**62:
                raise ValueError
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
    async def video_complete(session_id: str, camera: str, payload: CompleteIn) -> Any:
        """Close the upload after checking ``size`` and ``sha256`` of the whole file (409 before any chunk)."""
        check_name("session id", session_id)
        size, sha = payload.size, payload.sha256
        res = await call(
            svc().staging.complete_video, session_id, camera, size, sha, offset_of=(session_id, camera)
        )
        return res if isinstance(res, Response) else {"complete": True, "size": size}

    @router.post("/{session_id}/finish", status_code=202)
    async def finish(session_id: str, payload: FinishIn | None = None) -> Any:
        """Finish recording; processing starts in the background (poll ``GET /v1/sessions/{id}``)."""
        check_name("session id", session_id)
        return await call(svc().finish, session_id, payload or FinishIn())

    @router.post("/{session_id}/retry", status_code=202, dependencies=[Depends(require(Role.ADMIN))])
    async def retry(session_id: str) -> Any:
        """Process a ``failed`` session again from its staged data (admin; 409 unless it failed)."""
        check_name("session id", session_id)
        return await call(svc().retry, session_id)

    app.include_router(router)


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
