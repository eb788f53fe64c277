"""The skill router of ``jangin serve``: ``POST /v1/skill/score`` and the live coaching stream
``GET /v1/skill/live/{session_id}`` (Server-Sent Events).

Entry point ``skill = "jangin.inference._skill_server:register"`` (group ``jangin.routers``). Same auth
as the rest of the API: scoring needs an ``engineer`` key; the live stream admits ``recorder`` (the
recording app) and ``engineer`` keys. The live stream subscribes to ``app.state.sample_bus``, which
the capture ingest router feeds with every accepted batch; it never imports capture.

SSE events: ``ready`` (subscribed; start sending), ``deviation`` and ``missed_adjustment`` (JSON with
step, channel, value, band, message, and ``latency_ms`` from the batch's arrival to the alert).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from jangin.core import Dataset, ModelRegistry, NotFoundError
from jangin.core.server import require
from jangin.core.settings import Role, Settings
from jangin.core.skill import SessionSignals
from jangin.inference._skill import find_profile

__all__ = ["ScoreIn", "find_profile", "register"]

log = logging.getLogger(__name__)


class ChannelData(BaseModel):
    """One channel of an uploaded session: times (unix seconds, reference clock) and values."""

    t: list[float]
    values: list[float | None]
    unit: str | None = None


class SessionUpload(BaseModel):
    """A session sent inline for scoring."""

    model_config = ConfigDict(extra="forbid")
    session_id: str = "upload"
    process: str | None = None
    channels: dict[str, ChannelData]
    events: list[dict[str, Any]] = Field(default_factory=list)


class ScoreIn(BaseModel):
    """``POST /v1/skill/score``: a stored session's id, or a session inline."""

    model_config = ConfigDict(extra="forbid")
    session_id: str | None = None
    session: SessionUpload | None = None
    profile: str | None = Field(
        None, description="NAME[:VERSION]; default the active profile of the session's process"
    )


#: Largest absolute unix time (seconds) accepted inline: well inside int64 microseconds.
_MAX_TIME_S = 1e11


def _upload_signals(up: SessionUpload) -> SessionSignals:
    import numpy as np

    chans = {}
    for name, c in up.channels.items():
        if len(c.t) != len(c.values):
            raise ValueError(f"channel {name}: t and values differ in length")
        ts = np.asarray(c.t, float)
        bad = ~np.isfinite(ts) | (np.abs(ts) > _MAX_TIME_S)
        if bad.any():
            raise ValueError(f"session.channels.{name}.t[{int(np.flatnonzero(bad)[0])}]: not a unix time")
        t = np.rint(ts * 1e6).astype(np.int64)
        v = np.asarray([np.nan if x is None else x for x in c.values], float)
        order = np.argsort(t, kind="stable")
        chans[name] = (t[order], v[order])
    from jangin.inference._skill_live import _ts_us

    events = []
    for i, e in enumerate(up.events):
        try:
            ts = _ts_us(e["ts"])
            if abs(ts) > _MAX_TIME_S * 1e6:
                raise ValueError("out of range")
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"session.events[{i}].ts: missing or not a time ({exc})") from None
        events.append({**e, "ts": ts})
    return SessionSignals(
        up.session_id, chans, events, up.process, None, {n: c.unit or "" for n, c in up.channels.items()}
    )


def _process_of(ds: Dataset, session_id: str) -> tuple[str | None, dict[str, str]]:
    """The session's process and its parameters (the recipe its profile is chosen by)."""
    t = ds.read("sessions", filters=[("session_id", "=", session_id)])
    cols = [c for c in ("process", "updated_at", "parameters") if c in t.column_names]
    rows = t.select(cols).to_pylist()
    if not rows:
        raise NotFoundError(f"no session {session_id!r}")
    row = max(rows, key=lambda r: r["updated_at"])
    raw = row.get("parameters") or []
    items = raw.items() if isinstance(raw, dict) else raw
    return row["process"], {str(k): "" if v is None else str(v) for k, v in items}


def register(app: FastAPI, settings: Settings) -> None:
    """Mount the skill router (the ``jangin.routers`` entry point ``skill``)."""
    from jangin.core.events import SampleBus

    if not hasattr(app.state, "sample_bus"):
        app.state.sample_bus = SampleBus()
    router = APIRouter(prefix="/v1/skill", tags=["skill"])

    def dataset() -> Dataset:
        return Dataset.open_or_create(settings.dataset)

    def score(body: ScoreIn) -> dict[str, Any]:
        from jangin.core.skill import read_session
        from jangin.inference._skill import score_session

        ds = dataset()
        if (body.session_id is None) == (body.session is None):
            raise ValueError("give exactly one of session_id or session")
        if body.session is not None:
            sig = _upload_signals(body.session)
        else:
            assert body.session_id is not None
            sig = read_session(ds, body.session_id)
        name, prof = find_profile(ModelRegistry(ds.models_dir), sig.process, body.profile, sig.parameters)
        return score_session(prof, sig, profile_name=name).to_dict()

    @router.post("/score", dependencies=[Depends(require(Role.ENGINEER))])
    async def score_endpoint(body: ScoreIn) -> Any:
        """Score a stored session (``session_id``) or an inline one against a skill profile."""
        return await run_in_threadpool(score, body)

    @router.get("/live/{session_id}", dependencies=[Depends(require(Role.RECORDER, Role.ENGINEER))])
    async def live(session_id: str, request: Request, profile: str | None = Query(None)) -> StreamingResponse:
        """Live coaching alerts for a session being recorded (Server-Sent Events)."""
        from jangin.inference._skill_live import LiveCoach

        ds = await run_in_threadpool(dataset)
        process, params = await run_in_threadpool(_process_of, ds, session_id)
        name, prof = await run_in_threadpool(
            find_profile, ModelRegistry(ds.models_dir), process, profile, params
        )
        bus: SampleBus = app.state.sample_bus
        queue = bus.subscribe(session_id)
        coach = LiveCoach(prof, session_id=session_id)

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield _sse("ready", {"session_id": session_id, "profile": name, "condition": prof.condition})
                while True:
                    try:
                        msg = await asyncio.wait_for(queue.get(), timeout=10.0)
                    except TimeoutError:
                        if await request.is_disconnected():
                            return
                        yield b": keep-alive\n\n"
                        continue
                    if msg["type"] == "samples":
                        alerts = coach.feed_samples(
                            msg["t_us"], msg["channels"], received_at=msg.get("received_at")
                        )
                    elif msg["type"] == "events":
                        alerts = coach.feed_events(msg["events"])
                    else:
                        alerts = [{"type": "dropped"}] if msg["type"] == "dropped" else []
                    for a in alerts:
                        yield _sse(a["type"], a)
            finally:
                bus.unsubscribe(session_id, queue)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    app.include_router(router)


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()
