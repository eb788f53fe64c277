"""The station recorder behind ``jangin capture record STATION.yaml``.

One process, one reader thread per source. The main thread routes what the sources deliver into
sessions, stages it durably (fsync'ed, through :class:`~jangin.capture._staging.Staging`) and only
then acknowledges it to the source, so a ``kill -9`` loses at most what the source does not redeliver
(a sample staged and redelivered is kept once when the session is processed).

Sessions run from :meth:`Recorder.run` to its stop (CLI: ``--duration``, Ctrl-C, or the end of every
replayed file), or, with a ``session.trigger``, once per machine cycle: while the trigger condition
holds on the trigger tag's samples. Times are routed on the reference clock (source time + the source's
estimated offset); a short pre-roll keeps samples of other sources that arrive before the trigger's
edge. The ``session.step_tag``'s value changes become ``step_start`` / ``step_end`` events (numbered
into occurrences when processed). A source's outage (:class:`~jangin.capture.sources.Gap`) becomes a
``note`` event named ``gap`` with the source, start, end and reason; nothing is interpolated. A camera's
frames inside a session become the session's video (see ``_recorder_video``).

Clock: each source's offset (what to add to its timestamps to get the recorder's clock) is estimated
from ``received - newest sample time`` over its last batches: the median of the lowest quarter of them
(delivery latency only ever adds, so the low tail is the offset; a busy recorder that reads late
does not shift the estimate). The value when a session starts is declared for the session
(``offset_method: received_median``) with the recorder's NTP status.

Fault injection for tests: ``JANGIN_TEST_CRASH_AT=recorder:before_ack:N`` exits at once (as ``kill -9``)
after the N-th staged flush, before its acknowledgements.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import statistics
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from jangin.capture._recorder_health import Health
from jangin.capture._staging import ConflictError
from jangin.capture._station import StationConfig
from jangin.capture.sources import Frame, Gap, SampleBatch, SensorSource, make_source
from jangin.core import CaptureError, JanginError

__all__ = ["RecordResult", "Recorder", "ntp_status"]

log = logging.getLogger(__name__)

#: Batches per source in the clock-offset window.
OFFSET_WINDOW = 200


def ntp_status() -> str:
    """``synchronized`` / ``unsynchronized`` from timedatectl or chronyc, else ``unknown``."""
    for argv, ok in (
        (["timedatectl", "show", "-p", "NTPSynchronized", "--value"], lambda o: o.strip() == "yes"),
        (["chronyc", "-n", "tracking"], lambda o: "Normal" in o),
    ):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=2, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        return "synchronized" if ok(out) else "unsynchronized"
    return "unknown"


class _Acks:
    """A source's acknowledgements, released in arrival order once every part of a batch is settled
    (staged, or outside every session), so a source that acknowledges cumulatively never skips one."""

    def __init__(self, source: SensorSource) -> None:
        self.source = source
        self.q: deque[list[Any]] = deque()  # [token, parts outstanding]

    def add(self, token: Any, parts: int) -> list[Any]:
        entry = [token, parts]
        self.q.append(entry)
        return entry

    def release(self) -> None:
        while self.q and self.q[0][1] <= 0:
            token = self.q.popleft()[0]
            if token is not None:
                self.source.ack(token)


@dataclass(eq=False)  # compared by identity (list.remove): fields are arrays
class _Part:
    source: str
    device: str
    channel: np.ndarray
    t: np.ndarray
    value: np.ndarray
    ref: np.ndarray
    entry: list[Any]

    def take(self, mask: np.ndarray) -> _Part:
        self.entry[1] += 1
        return _Part(
            self.source,
            self.device,
            self.channel[mask],
            self.t[mask],
            self.value[mask],
            self.ref[mask],
            self.entry,
        )

    def nbytes(self) -> int:
        return int(self.t.nbytes * 3)


@dataclass
class _Session:
    sid: str
    start: float
    end: float | None = None
    closing_since: float | None = None
    offsets: dict[str, float] = field(default_factory=dict)
    declared: dict[str, set[str]] = field(default_factory=dict)
    seq: dict[str, int] = field(default_factory=dict)
    event_seq: int = 0
    step: str | None = None
    step_value: float | None = None
    step_t: float = -np.inf
    last_ref: float | None = None
    pending: list[_Part] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    video: dict[str, Any] = field(default_factory=dict)


@dataclass
class RecordResult:
    """What a recording did."""

    sessions: list[str] = field(default_factory=list)
    samples: int = 0
    events: int = 0
    gaps: int = 0
    dropped: int = 0
    seconds: float = 0.0


class Recorder:
    """Record a station (see the module docstring).

    Args:
        station: The station config.
        sink: Where sessions go (a :class:`~jangin.capture._recorder_sink.DatasetSink` or ``ServerSink``).
        sources: Already built sources (default: built from ``station.sources``).
        session_key: Key of the one session of a run without trigger (default: station + start time).
        say: Where the console lines go.
        metrics_port: Serve Prometheus metrics on this port (loopback-only unless ``metrics_host``).
    """

    def __init__(
        self,
        station: StationConfig,
        sink: Any,
        *,
        sources: dict[str, SensorSource] | None = None,
        session_key: str | None = None,
        say: Callable[[str], None] = print,
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
        control_port: int | None = None,
    ) -> None:
        self.st = station
        self.sink = sink
        self.sources = (
            sources if sources is not None else {n: make_source(n, c) for n, c in station.sources.items()}
        )
        self.session_key = session_key
        self.say = say
        self.stop_event = threading.Event()
        self._q: queue.Queue[tuple[str, list[Any]]] = queue.Queue(maxsize=1000)
        self._acks = {n: _Acks(s) for n, s in self.sources.items()}
        self._offset_obs: dict[str, deque[float]] = {n: deque(maxlen=OFFSET_WINDOW) for n in self.sources}
        self._latest_ref: dict[str, float] = {}
        self._preroll: list[_Part] = []
        self._current: _Session | None = None
        self._active: bool | None = None
        self._flushes = 0
        self._crash_at = _crash_after()
        self._ntp = ntp_status()
        self.result = RecordResult()
        self.health = Health(list(self.sources), metrics_port=metrics_port, metrics_host=metrics_host)
        self._undeclared: set[tuple[str, tuple[str, ...]]] = set()
        self._commands: queue.Queue[tuple[str, str | None, float]] = queue.Queue()
        self.control_port: int | None = None
        if station.session.control == "http":
            self.control_port = _serve_control(self, control_port or 0)

    # -- offsets and channels ----------------------------------------------------------------------

    def offset(self, source: str) -> float | None:
        """The source's clock offset now: the given one, else the median estimate, else None."""
        if source in self.st.clocks:
            return float(self.st.clocks[source])
        obs = self._offset_obs[source]
        if not obs:
            return None
        low = sorted(obs)[: max(1, len(obs) // 4)]
        return float(statistics.median(low))

    def _channel_map(self, name: str) -> tuple[str, str | None]:
        m = self.st.channels.get(name)
        return ((m.name or name) if m else name), (m.unit if m else None)

    def _devices(self) -> list[dict[str, Any]]:
        devices: dict[str, dict[str, Any]] = {}
        step = self.st.session.step_tag
        for n, src in self.sources.items():
            kind = str(self.st.sources.get(n, {}).get("type", type(src).__name__))
            off = self.offset(n)
            method = "given" if n in self.st.clocks else "received_median" if off is not None else None
            for c in src.channels:
                dev = c.device or src.device  # an MQTT topic can belong to a device of its own
                d = devices.setdefault(dev, {"name": dev, "kind": kind, "channels": []})
                if off is not None and "clock_offset_s" not in d:
                    d["clock_offset_s"], d["offset_method"] = round(off, 6), method
                name, unit = self._channel_map(c.name)
                if name != step and name not in {x["name"] for x in d["channels"]}:
                    d["channels"].append({"name": name, "unit": unit or c.unit, "rate_hz": c.rate_hz})
        return [d for d in devices.values() if d["channels"]]

    # -- sessions ----------------------------------------------------------------------------------

    def _start(self, ref: float, key: str | None = None) -> None:
        if self._current is not None:
            self._finish()
        started = datetime.fromtimestamp(ref, UTC)
        key = key or f"{self.st.station}-{started:%Y%m%dT%H%M%S}{started.microsecond // 1000:03d}"
        devices = self._devices()
        body = {
            "session_key": key,
            "technician": self.st.technician,
            "skill_level": self.st.skill_level,
            "site": self.st.site,
            "line": self.st.line,
            "station": self.st.station,
            "process": self.st.process,
            "task": self.st.task,
            "started_at": started.isoformat(),
            "devices": devices,
            "cameras": [
                {"name": str(src.camera), "clock_offset_s": 0.0}
                for src in self.sources.values()
                if hasattr(src, "camera")
            ],
            "recorder": {"station": self.st.station, "ntp": self._ntp, "host": os.uname().nodename},
        }
        sid = self.sink.create(body)
        s = _Session(sid, ref if self._bounded else -np.inf)
        s.offsets = {n: float(d.get("clock_offset_s") or 0.0) for n, d in ((x["name"], x) for x in devices)}
        s.declared = {d["name"]: {c["name"] for c in d["channels"]} for d in devices}
        self._resume_counters(s)
        self._current = s
        self.result.sessions.append(sid)
        self.say(f"session {sid} started ({key})")
        keep, self._preroll = self._preroll, []
        for p in keep:
            self._route(p)

    def _resume_counters(self, s: _Session) -> None:
        """Sequence numbers and the open step of a staged session (a restart goes on where it was)."""
        staging = self.sink.staging
        for device, files in staging.sensor_batches(s.sid).items():
            s.seq[device] = int(files[-1].stem) + 1 if files else 0
        evs = staging.events(s.sid)
        s.event_seq = max((seq for seq, _, _ in evs), default=-1) + 1
        open_step = None
        for _, _, e in sorted(evs, key=lambda x: x[2]["ts"]):
            if e["kind"] == "step_start":
                open_step, s.step_t = e.get("name"), float(e["ts"])
            elif e["kind"] == "step_end":
                open_step, s.step_t = None, float(e["ts"])
        s.step = open_step

    def _adopt(self) -> None:
        """Continue this station's session that a crash left open (not finished)."""
        from jangin.capture._recorder_sink import _ours

        staging = self.sink.staging
        for sid in reversed(_ours(staging, self.st.station)):
            if not staging.finished(sid):
                meta = staging.meta(sid)
                ref = datetime.fromisoformat(meta["started_at"]).timestamp()
                s = _Session(sid, ref if self._bounded else -np.inf)
                s.offsets = {
                    d["name"]: float(d.get("clock_offset_s") or 0.0) for d in meta.get("devices", [])
                }
                s.declared = {d["name"]: {c["name"] for c in d["channels"]} for d in meta.get("devices", [])}
                self._resume_counters(s)
                self._current = s
                self._active = True
                self.result.sessions.append(sid)
                self.say(f"session {sid} continued after a restart")
                return

    def _end(self, ref: float) -> None:
        s = self._current
        if s is None or s.end is not None:
            return
        s.end = ref
        s.closing_since = time.monotonic()
        for p in list(s.pending):  # read before the stop was known, taken after it: not this session's
            after = p.ref >= ref
            if after.any():
                self._preroll.append(p.take(after))
                keep = ~after
                p.channel, p.t, p.value, p.ref = p.channel[keep], p.t[keep], p.value[keep], p.ref[keep]
                if not len(p.t):
                    s.pending.remove(p)
                    p.entry[1] -= 1

    def _finish(self) -> None:
        s = self._current
        if s is None:
            return
        self._current = None
        self._flush_session(s, force=True)
        for track in s.video.values():
            try:
                track.stage()
            except (OSError, JanginError) as exc:  # the sensor data and events still go on
                log.error("session %s camera %s: video not staged: %s", s.sid, track.camera, exc)
        if s.step is not None:  # the last step ends at its last sample, as a file import ends it
            s.events.append(self._event(s.step_t, "step_end", s.step))
        self._flush_session(s, force=True)
        ended = s.end if s.end is not None and np.isfinite(s.end) else s.last_ref
        self.sink.finish(s.sid, ended)
        self.say(f"session {s.sid} finished")
        self._release()

    # -- routing -----------------------------------------------------------------------------------

    def _handle_batch(self, b: SampleBatch) -> None:
        n = len(b)
        if n == 0:
            self._acks[b.source].add(b.token, 0)
            return
        cur = self._current
        if cur is not None and b.device in cur.offsets:  # as its samples will be stored
            off = cur.offsets[b.device]
        else:
            off = self.offset(b.source) or 0.0
        names = (
            np.asarray([self._channel_map(str(c))[0] for c in b.channel], dtype=object)
            if self.st.channels
            else np.asarray(b.channel, dtype=object)
        )
        ref = np.asarray(b.t, np.float64) + off
        self._latest_ref[b.source] = float(ref.max())
        self.health.seen(b.source, n, b.received - float(ref.max()))
        entry = self._acks[b.source].add(b.token, 1)
        part = _Part(
            b.source,
            b.device,
            names,
            np.asarray(b.t, np.float64),
            np.asarray(b.value, np.float64),
            ref,
            entry,
        )
        trig = self.st.session.trigger
        if trig is None:
            self._route(part.take(np.ones(n, bool)))
        else:
            self._route_triggered(part, trig)
        entry[1] -= 1

    def _route_triggered(self, part: _Part, trig: Any) -> None:
        mask = part.channel == trig.tag
        edges: list[tuple[float, bool]] = []
        if mask.any():
            order = np.argsort(part.ref[mask], kind="stable")
            for r, v in zip(part.ref[mask][order], part.value[mask][order], strict=True):
                now = trig.holds(float(v))
                if now != self._active:
                    if self._active is None and not now:
                        self._active = False
                        continue
                    edges.append((float(r), now))
                    self._active = now
        done = np.zeros(len(part.t), bool)
        for r, rising in edges:
            m = ~done & (part.ref < r)
            if m.any():
                self._route(part.take(m))
            done |= m
            if rising:
                self._start(r)
            else:
                self._end(r)
        if (~done).any():
            self._route(part.take(~done))

    def _route(self, p: _Part) -> None:
        """Into the current session (rows inside it), the pre-roll (rows after it), or away (before it)."""
        s = self._current
        if s is None:
            self._preroll.append(p)
            return
        end = s.end if s.end is not None else np.inf
        inside = (p.ref >= s.start) & (p.ref < end)
        after = p.ref >= end
        if after.any():
            self._preroll.append(p.take(after))
        if inside.any():
            q = p.take(inside)
            self._steps(s, q)
            self._declared_only(s, q)
            if len(q.t):
                s.pending.append(q)
                s.last_ref = max(s.last_ref or -np.inf, float(q.ref.max()))
            else:
                q.entry[1] -= 1
        p.entry[1] -= 1

    def _steps(self, s: _Session, q: _Part) -> None:
        """The step tag's value changes → step events; its samples are not stored as channels."""
        tag = self.st.session.step_tag
        if tag is None:
            return
        m = q.channel == tag
        if not m.any():
            return
        off = s.offsets.get(q.device, 0.0)
        order = np.argsort(q.t[m], kind="stable")
        names = self.st.session.step_names or {}
        value_names = getattr(self.sources[q.source], "value_names", {}).get(tag, {})
        for t, v in zip(q.t[m][order] + off, q.value[m][order], strict=True):
            if t <= s.step_t:
                continue  # redelivered after a restart: already seen
            name = names.get(float(v)) or value_names.get(float(v)) or _num(v)
            if name != s.step:
                if s.step is not None:
                    s.events.append(self._event(float(t), "step_end", s.step))
                s.events.append(self._event(float(t), "step_start", name))
                s.step = name
            s.step_t = float(t)
        keep = ~m
        q.channel, q.t, q.value, q.ref = q.channel[keep], q.t[keep], q.value[keep], q.ref[keep]

    def _declared_only(self, s: _Session, q: _Part) -> None:
        """Samples of a device or channel the session did not declare (an MQTT message naming a device
        of its own) are dropped and counted: a staged session's devices are fixed when it starts."""
        known = s.declared.get(q.device, set())
        ok = np.fromiter((c in known for c in q.channel), bool, len(q.channel))
        if ok.all():
            return
        bad = sorted({str(c) for c in q.channel[~ok]})
        if (q.device, tuple(bad)) not in self._undeclared:
            self._undeclared.add((q.device, tuple(bad)))
            log.warning(
                "source %s: device %s channel(s) %s not declared by the source: dropped",
                q.source,
                q.device,
                ", ".join(bad),
            )
        self.result.dropped += int((~ok).sum())
        self.health.drop(q.source, int((~ok).sum()))
        q.channel, q.t, q.value, q.ref = q.channel[ok], q.t[ok], q.value[ok], q.ref[ok]

    def _event(
        self, ts: float, kind: str, name: str | None, value: str | None = None, **kw: Any
    ) -> dict[str, Any]:
        return {"ts": ts, "kind": kind, "name": name, "value": value, "author": "recorder", **kw}

    def _gap(self, g: Gap) -> None:
        self.result.gaps += 1
        self.health.gap(g.source)
        self.say(
            f"gap {g.source}: {g.reason} ({g.start:.3f} – {g.end if g.end is None else round(g.end, 3)})"
        )
        s = self._current
        if s is None:
            return
        off = s.offsets.get(g.device, self.offset(g.source) or 0.0)  # gap times are on the source's clock
        start, end = g.start + off, (None if g.end is None else g.end + off)
        value = json.dumps(
            {"source": g.source, "device": g.device, "start": start, "end": end, "reason": g.reason}
        )
        s.events.append(self._event(start, "note", "gap", value[:2000], segment_start=start, segment_end=end))

    # -- staging -----------------------------------------------------------------------------------

    def _flush_session(self, s: _Session, *, force: bool = False) -> None:
        staging = self.sink.staging
        if not s.pending and not s.events:
            return
        by_device: dict[str, list[_Part]] = {}
        for p in s.pending:
            by_device.setdefault(p.device, []).append(p)
        try:
            for device, parts in by_device.items():
                seq = s.seq.get(device, 0)
                try:
                    staging.append_sensors_long(
                        s.sid,
                        device,
                        seq,
                        np.concatenate([p.channel for p in parts]),
                        np.concatenate([p.t for p in parts]),
                        np.concatenate([p.value for p in parts]),
                    )
                except CaptureError as exc:  # e.g. a source clock far off: refused, counted, not fatal
                    if isinstance(exc, ConflictError):
                        raise
                    log.error("session %s: a batch of %s was refused and dropped: %s", s.sid, device, exc)
                    for p in parts:
                        self.result.dropped += len(p.t)
                        self.health.drop(p.source, len(p.t))
                        s.pending.remove(p)
                        p.entry[1] -= 1
                    continue
                s.seq[device] = seq + 1
                n = sum(len(p.t) for p in parts)
                self.result.samples += n
                self.health.staged(sum(p.nbytes() for p in parts))
                for p in parts:
                    s.pending.remove(p)
                    p.entry[1] -= 1
            if s.events:
                staging.append_events(s.sid, s.event_seq, s.events)
                self.result.events += len(s.events)
                s.event_seq += 1
                s.events = []
            self.health.stalled(None)
        except OSError as exc:  # disk full, dataset disk away: keep it in memory, try again
            self.health.stalled(f"staging failed: {exc}")
            self._bound_memory(s)
            return
        self._flushes += 1
        if self._crash_at is not None and self._flushes >= self._crash_at:
            os._exit(137)
        self._release()

    def _bound_memory(self, s: _Session) -> None:
        while s.pending and sum(p.nbytes() for p in s.pending) > self.st.buffer.max_bytes:
            p = s.pending.pop(0)
            self.result.dropped += len(p.t)
            self.health.drop(p.source, len(p.t))
            p.entry[1] -= 1

    def _release(self) -> None:
        for a in self._acks.values():
            a.release()

    def _frame(self, f: Frame) -> None:
        """A camera frame inside the current session goes into the camera's video of the session."""
        from jangin.capture._recorder_video import VideoTrack

        self._offset_obs[f.source].append(f.received - f.t)
        self.health.seen(f.source, 1, f.received - f.t)
        s = self._current
        ref = f.t + (self.offset(f.source) or 0.0)
        if s is None or ref < s.start or (s.end is not None and ref >= s.end):
            return
        if f.camera not in s.video:
            s.video[f.camera] = VideoTrack(self.sink.staging, s.sid, f.camera)
        s.video[f.camera].write(f.image, ref)

    @property
    def _bounded(self) -> bool:
        """Sessions start at a time (trigger edge, HTTP start), not with whatever is read first."""
        return self.st.session.trigger is not None or self.st.session.control == "http"

    def _control(self) -> None:
        """Start / stop requests from the control endpoint."""
        while not self._commands.empty():
            cmd, key, at = self._commands.get()  # at: when the request came (the session's bound)
            if cmd == "start" and (self._current is None or self._current.end is not None):
                self._start(at, key)
            elif cmd == "stop" and self._current is not None:
                self._end(at)

    def _warm(self, t0: float) -> bool:
        """A session without trigger starts once every source's clock offset is estimated (or after 2 s)."""
        return all(self.offset(n) is not None for n in self.sources) or time.monotonic() - t0 > 2.0

    def _trim_preroll(self) -> None:
        waiting = self.st.session.trigger is None and self.st.session.control == "auto"
        if not self._preroll or (waiting and self._current is None):
            return
        latest = max(self._latest_ref.values(), default=0.0)
        horizon = latest - self.st.session.pre_roll_s
        keep = []
        for p in self._preroll:
            if float(p.ref.max()) < horizon:
                p.entry[1] -= 1  # outside every session: settled
            else:
                keep.append(p)
        self._preroll = keep

    # -- the loop ----------------------------------------------------------------------------------

    def _reader(self, name: str, src: SensorSource) -> None:
        while not self.stop_event.is_set():
            try:
                items = src.read(0.2)
            except Exception as exc:  # a source bug must not stop the others; it is shown and retried
                log.exception("source %s: read failed", name)
                self.health.error(name, f"{type(exc).__name__}: {exc}")
                time.sleep(1.0)
                continue
            if items:
                self._q.put((name, items))
            elif getattr(src, "exhausted", False):
                self._q.put((name, [_EXHAUSTED]))
                return

    def run(self, duration_s: float | None = None) -> RecordResult:
        """Record until ``duration_s``, :attr:`stop_event`, or the end of every finite source.

        Raises:
            CaptureError: A source cannot be opened (named).
        """
        t0 = time.monotonic()
        for src in self.sources.values():
            src.open()
        self._adopt()
        threads = [
            threading.Thread(target=self._reader, args=(n, s), name=f"jangin-src-{n}", daemon=True)
            for n, s in self.sources.items()
        ]
        for th in threads:
            th.start()
        exhausted: set[str] = set()
        next_flush = next_health = time.monotonic()
        manual = self.st.session.trigger is None and self.st.session.control == "auto"
        try:
            while not self.stop_event.is_set():
                if duration_s is not None and time.monotonic() - t0 >= duration_s:
                    break
                try:
                    name, items = self._q.get(timeout=0.05)
                except queue.Empty:
                    items = []
                    name = ""
                for it in items:
                    if it is _EXHAUSTED:
                        exhausted.add(name)
                    elif isinstance(it, SampleBatch):
                        if len(it):
                            self._offset_obs[it.source].append(it.received - float(np.max(it.t)))
                        if manual and self._current is None and self._warm(t0):
                            self._start(time.time(), self.session_key)
                        self._handle_batch(it)
                    elif isinstance(it, Gap):
                        self._gap(it)
                    elif isinstance(it, Frame):
                        self._frame(it)
                self._control()
                now = time.monotonic()
                if now >= next_flush:
                    next_flush = now + self.st.buffer.batch_s
                    self._tick()
                if now >= next_health:
                    next_health = now + self.st.health_interval_s
                    self._health_line()
                if exhausted == set(self.sources) and self._q.empty():
                    break
        finally:
            self.stop_event.set()
            while not self._q.empty():  # what was read before the stop is still recorded
                name, items = self._q.get()
                for it in items:
                    if isinstance(it, SampleBatch):
                        self._handle_batch(it)
                    elif isinstance(it, Gap):
                        self._gap(it)
            if self._current is None and manual and self._preroll:
                self._start(time.time(), self.session_key)
            if self._current is not None:
                self._end(
                    self._current.last_ref + 1e-6 if self._current.last_ref is not None else time.time()
                )
                self._finish()
            self._release()
            for th in threads:
                th.join(2)
            for src in self.sources.values():
                try:
                    src.close()
                except Exception:  # closing a dead connection must not hide the recording's outcome
                    log.exception("closing a source failed")
            self.result.seconds = round(time.monotonic() - t0, 3)
            self._health_line()
        return self.result

    def _tick(self) -> None:
        s = self._current
        if s is not None:
            self._flush_session(s)
            if s.end is not None and s.closing_since is not None:
                late = [r for n, r in self._latest_ref.items() if r < s.end]
                if not late or time.monotonic() - s.closing_since >= self.st.session.close_wait_s:
                    self._finish()
        self._trim_preroll()
        self._release()
        self.sink.poll()

    def _health_line(self) -> None:
        for n, src in self.sources.items():
            self.health.source(n, src.health())
        buffered = self.sink.buffered_bytes()
        self.health.set_buffered(buffered, getattr(self.sink, "state", "ok"))
        self.say(self.health.line(self._current.sid if self._current else None))


_EXHAUSTED = object()


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _crash_after() -> int | None:
    point = os.environ.get("JANGIN_TEST_CRASH_AT", "")
    if point.startswith("recorder:before_ack:"):
        return int(point.rsplit(":", 1)[1])
    return None


def _serve_control(rec: Recorder, port: int) -> int:
    """The control endpoint on 127.0.0.1 (loopback only, no key: for the station's own panel or PLC
    gateway): ``POST /session/start?key=K``, ``POST /session/stop``, ``GET /session``."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlparse

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if urlparse(self.path).path != "/session":
                return self._answer(
                    404, {"detail": "GET /session, POST /session/start?key=K, POST /session/stop"}
                )
            cur = rec._current
            self._answer(
                200, {"session_id": cur.sid if cur else None, "closing": bool(cur and cur.end is not None)}
            )

        def do_POST(self) -> None:
            url = urlparse(self.path)
            cmd = url.path.removeprefix("/session/")
            if cmd not in ("start", "stop"):
                return self._answer(404, {"detail": "POST /session/start?key=K or /session/stop"})
            key = parse_qs(url.query).get("key", [None])[0]
            if key is not None:
                from jangin.capture._staging import check_name

                try:
                    check_name("session key", key)
                except ValueError as exc:
                    return self._answer(422, {"detail": str(exc)})
            at = time.time()
            rec._commands.put((cmd, key, at))
            self._answer(202, {"accepted": cmd, "key": key, "at": at})

        def log_message(self, format: str, *args: Any) -> None:
            log.info("control: " + format, *args)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, name="jangin-recorder-control", daemon=True).start()
    return int(server.server_address[1])
