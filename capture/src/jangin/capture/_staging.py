"""Durable staging of what recording apps upload, before it becomes dataset rows.

Everything a request carries is written to disk and fsync'ed (file and directory) before the request
is acknowledged, so a crash (even ``kill -9``) loses nothing acknowledged. Layout, under
``<dataset>/staging/<session_id>/``::

    session.json                      the session as created (technician already pseudonymised)
    sensors/<device>/<seq>.arrow      one sensor batch (Arrow IPC file): t_us (device clock) + channels,
                                      or long form (channel, t_us, value) from a live source
    events/<seq>.json                 one batch of events (reference clock)
    video/<camera>.part               the upload so far; video/<camera>.offset the acknowledged length
    video/<camera>.done               size, sha256 and file name of the finished upload
    video/<camera>.<ext>              the finished upload (``.part`` renamed; ext from its magic bytes)
    finish.json                       finish requested (processing pending or running)
    status.json                       processing outcome (``failed`` keeps every staged file: retryable)

A batch is identified by its sequence number: re-sending the same batch is acknowledged without
writing anything twice; sending different data under a used number is a conflict. Everything is
validated before anything is written: a refused request leaves the staging area as it was.

Limits (:class:`Limits`): sensor and event times inside ``[min_time, max_time)``, sequence numbers
below 2**63, event ``name``/``author`` up to 200 characters and ``value`` up to 2000, a camera's upload
up to ``max_video_bytes``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from jangin.core import CaptureError, NotFoundError

__all__ = ["ConflictError", "Limits", "Staging", "TooLargeError", "check_name"]

#: Ids, device, camera and channel names: letters, digits, ``._-``, not starting with ``.``.
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


#: Sequence numbers are below this (they are stored as int64 and in 19-digit file names).
MAX_SEQ = 2**63 - 1
#: Longest event ``name`` / ``author`` and ``value`` (characters).
MAX_EVENT_NAME, MAX_EVENT_VALUE = 200, 2000


class ConflictError(CaptureError):
    """The request contradicts what was already acknowledged (HTTP 409)."""


class TooLargeError(CaptureError):
    """The request is over a size limit (HTTP 413)."""


@dataclass(frozen=True)
class Limits:
    """What the staging area accepts (from :class:`~jangin.core.settings.Settings`)."""

    min_time_s: float = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
    max_time_s: float = datetime(2100, 1, 1, tzinfo=UTC).timestamp()
    max_video_bytes: int = 16 << 30

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        return cls(settings.min_time.timestamp(), settings.max_time.timestamp(), settings.max_video_mb << 20)

    def time_range(self) -> str:
        lo = datetime.fromtimestamp(self.min_time_s, UTC).isoformat()
        hi = datetime.fromtimestamp(self.max_time_s, UTC).isoformat()
        return f"[{lo}, {hi})"


def check_seq(seq: int) -> int:
    """Return ``seq`` if it is a valid sequence number (0 <= seq < 2**63), else raise ValueError."""
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= MAX_SEQ:
        raise ValueError(f"seq must be an integer in [0, 2**63), got {seq}")
    return seq


def check_name(kind: str, value: str) -> str:
    """Return ``value`` if it is a safe name (no path separators, no ``..``), else raise ValueError."""
    if not isinstance(value, str) or not NAME_RE.fullmatch(value) or ".." in value:
        raise ValueError(f"invalid {kind} {value!r}: use letters, digits, '.', '_' and '-' (max 128)")
    return value


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, exclusive: bool = False) -> bool:
    """Write ``data`` to ``path`` so that it is either wholly there or not at all, and durable.

    Args:
        exclusive: Do not replace an existing file (two racing writers of one batch: the first
            wins, the second sees the file); returns False when it existed.
    """
    import uuid

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    if exclusive:
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            tmp.unlink()
    else:
        os.replace(tmp, path)
    _fsync_dir(path.parent)
    return True


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class BatchResult:
    """What an append did."""

    seq: int
    rows: int
    duplicate: bool = False
    dropped_nonfinite: int = 0


class Staging:
    """The staging area of a dataset (``<dataset>/staging``)."""

    def __init__(self, root: Path, limits: Limits | None = None) -> None:
        self.root = Path(root)
        self.limits = limits or Limits()
        self.root.mkdir(parents=True, exist_ok=True)
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def _lock(self, *key: str) -> threading.Lock:
        """One lock per session: its writes and its finish run one at a time, so nothing is
        acknowledged after the finish marker that processing would not see."""
        with self._guard:
            return self._locks.setdefault("/".join(key), threading.Lock())

    # -- sessions ----------------------------------------------------------------------------------

    def dir(self, session_id: str) -> Path:
        return self.root / check_name("session id", session_id)

    def create(self, session_id: str, meta: dict[str, Any]) -> bool:
        """Stage a new session; returns False when it already exists with the same metadata.

        Raises:
            ConflictError: It exists with different metadata.
        """
        d = self.dir(session_id)
        data = json.dumps(meta, sort_keys=True, default=str).encode()
        with self._lock(session_id):
            return self._create(d, session_id, data)

    def _create(self, d: Path, session_id: str, data: bytes) -> bool:
        if (d / "session.json").exists():
            if (d / "session.json").read_bytes() != data:
                raise ConflictError(f"session {session_id} already exists with other metadata")
            return False
        for sub in ("sensors", "events", "video"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        write_atomic(d / "session.json", data)
        return True

    def meta(self, session_id: str) -> dict[str, Any]:
        """The staged session's metadata.

        Raises:
            NotFoundError: No such staged session.
        """
        p = self.dir(session_id) / "session.json"
        if not p.is_file():
            raise NotFoundError(
                f"session {session_id} is not staged here", hint="create it first: POST /v1/sessions"
            )
        return dict(json.loads(p.read_text()))

    def finished(self, session_id: str) -> bool:
        return (self.dir(session_id) / "finish.json").exists()

    def _open_for_writes(self, session_id: str) -> dict[str, Any]:
        meta = self.meta(session_id)
        if self.finished(session_id):
            raise ConflictError(f"session {session_id} is finished; it takes no more data")
        return meta

    def check_device(self, session_id: str, device: str) -> dict[str, Any]:
        """The device's declaration if the session is open and declares it (checked before a body is read).

        Raises:
            NotFoundError: No such session. ConflictError: It is finished. CaptureError: Unknown device.
        """
        meta = self._open_for_writes(session_id)
        check_name("device", device)
        devices = {d["name"]: d for d in meta.get("devices", [])}
        if device not in devices:
            raise CaptureError(
                f"session {session_id}: unknown device {device!r} (declared: {', '.join(devices) or 'none'})"
            )
        return dict(devices[device])

    # -- sensor batches ----------------------------------------------------------------------------

    def append_sensors(self, session_id: str, device: str, seq: int, table: pa.Table) -> BatchResult:
        """Stage one sensor batch (see :meth:`_append_sensors`); never concurrently with finish."""
        with self._lock(check_name("session id", session_id)):
            return self._append_sensors(session_id, device, seq, table)

    def _append_sensors(self, session_id: str, device: str, seq: int, table: pa.Table) -> BatchResult:
        """Stage one sensor batch of ``device``: ``t`` (device clock, seconds, float) + channels.

        Validation: channels must be declared for the device; ``t`` strictly increasing and finite;
        values numeric; NaN / inf values are dropped and counted.

        Raises:
            CaptureError: Invalid batch (nothing staged). ConflictError: ``seq`` used for other data.
        """
        spec = self.check_device(session_id, device)
        check_seq(seq)
        declared = {c["name"] for c in spec.get("channels", [])}
        where = f"session {session_id} device {device} batch {seq}"
        if "t" not in table.column_names:
            raise CaptureError(f"{where}: no 't' column (device time, unix seconds)")
        unknown = [c for c in table.column_names if c != "t" and c not in declared]
        if unknown:
            raise CaptureError(
                f"{where}: unknown channel(s) {', '.join(unknown)} (declared: {', '.join(sorted(declared))})"
            )
        if table.num_rows == 0:
            raise CaptureError(f"{where}: empty batch")
        t = _numbers(table.column("t"), where, "t")
        if not np.all(np.isfinite(t)):
            raise CaptureError(
                f"{where}: column t row {int(np.flatnonzero(~np.isfinite(t))[0])}: time is not a number"
            )
        # checked in float before any cast to int64 microseconds (no overflow), on both clocks
        offset = spec.get("clock_offset_s") or 0.0
        lo, hi = self.limits.min_time_s, self.limits.max_time_s
        out = (t < lo) | (t >= hi) | (t + offset < lo) | (t + offset >= hi)
        if out.any():
            i = int(np.flatnonzero(out)[0])
            raise CaptureError(
                f"{where}: column t row {i}: time {float(t[i])!r} s is outside the accepted range {self.limits.time_range()}",
                hint="send unix seconds (UTC); the range is the server's min_time / max_time settings",
            )
        steps = np.diff(t)
        if len(steps) and steps.min() <= 0:
            i = int(np.flatnonzero(steps <= 0)[0]) + 1
            raise CaptureError(
                f"{where}: row {i}: time {'duplicated' if steps[i - 1] == 0 else 'goes backwards'}"
            )
        cols: dict[str, Any] = {"t_us": pa.array(np.rint(t * 1e6).astype(np.int64))}
        dropped = 0
        for name in table.column_names:
            if name == "t":
                continue
            v = _numbers(table.column(name), where, name)
            dropped += int((~np.isfinite(v)).sum())
            cols[name] = pa.array(v, pa.float64())
        staged = pa.table(cols)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, staged.schema) as w:
            w.write_table(staged)
        data = sink.getvalue().to_pybytes()
        path = self.dir(session_id) / "sensors" / device / f"{seq:012d}.arrow"
        if path.exists() or not write_atomic(path, data, exclusive=True):
            if _sha(path.read_bytes()) != _sha(data):
                raise ConflictError(f"{where}: sequence number already used for different data")
            return BatchResult(seq, staged.num_rows, duplicate=True, dropped_nonfinite=dropped)
        return BatchResult(seq, staged.num_rows, dropped_nonfinite=dropped)

    def append_sensors_long(
        self,
        session_id: str,
        device: str,
        seq: int,
        channel: np.ndarray,
        t: np.ndarray,
        value: np.ndarray,
    ) -> BatchResult:
        """Stage one long-form batch of ``device`` (one channel name, device time and value per sample),
        as live sources deliver them (each tag on its own timestamps); never concurrently with finish.

        Validation: channels declared for the device, times finite and in range (on both clocks).
        Times need not increase (tags interleave; a redelivered sample is removed at processing).

        Raises:
            CaptureError: Invalid batch (nothing staged). ConflictError: ``seq`` used for other data.
        """
        with self._lock(check_name("session id", session_id)):
            spec = self.check_device(session_id, device)
            check_seq(seq)
            where = f"session {session_id} device {device} batch {seq}"
            t = np.asarray(t, np.float64)
            value = np.asarray(value, np.float64)
            if not len(t) or len(t) != len(value) or len(t) != len(channel):
                raise CaptureError(f"{where}: empty batch or channel / t / value of different lengths")
            names, codes = np.unique(np.asarray(channel, dtype=object).astype(str), return_inverse=True)
            declared = {c["name"] for c in spec.get("channels", [])}
            unknown = [str(c) for c in names if c not in declared]
            if unknown:
                raise CaptureError(
                    f"{where}: unknown channel(s) {', '.join(unknown)} (declared: {', '.join(sorted(declared))})"
                )
            offset = spec.get("clock_offset_s") or 0.0
            lo, hi = self.limits.min_time_s, self.limits.max_time_s
            out = ~np.isfinite(t) | (t < lo) | (t >= hi) | (t + offset < lo) | (t + offset >= hi)
            if out.any():
                i = int(np.flatnonzero(out)[0])
                raise CaptureError(
                    f"{where}: sample {i}: time {float(t[i])!r} s is not a time in {self.limits.time_range()}"
                )
            staged = pa.table(
                {
                    "channel": pa.DictionaryArray.from_arrays(
                        pa.array(codes.astype(np.int32)), pa.array([str(c) for c in names], pa.string())
                    ),
                    "t_us": pa.array(np.rint(t * 1e6).astype(np.int64)),
                    "value": pa.array(value, pa.float64()),
                }
            )
            sink = pa.BufferOutputStream()
            with pa.ipc.new_file(sink, staged.schema) as w:
                w.write_table(staged)
            data = sink.getvalue().to_pybytes()
            path = self.dir(session_id) / "sensors" / device / f"{seq:012d}.arrow"
            dropped = int((~np.isfinite(value)).sum())
            if path.exists() or not write_atomic(path, data, exclusive=True):
                if _sha(path.read_bytes()) != _sha(data):
                    raise ConflictError(f"{where}: sequence number already used for different data")
                return BatchResult(seq, staged.num_rows, duplicate=True, dropped_nonfinite=dropped)
            return BatchResult(seq, staged.num_rows, dropped_nonfinite=dropped)

    def sensor_batches(self, session_id: str) -> dict[str, list[Path]]:
        """Staged batch files per device, in sequence order."""
        d = self.dir(session_id) / "sensors"
        return (
            {p.name: sorted(p.glob("*.arrow")) for p in sorted(d.iterdir()) if p.is_dir()}
            if d.is_dir()
            else {}
        )

    # -- events ------------------------------------------------------------------------------------

    def append_events(self, session_id: str, seq: int, events: list[dict[str, Any]]) -> BatchResult:
        """Stage a batch of events (see :meth:`_append_events`); never concurrently with finish."""
        with self._lock(check_name("session id", session_id)):
            return self._append_events(session_id, seq, events)

    def _append_events(self, session_id: str, seq: int, events: list[dict[str, Any]]) -> BatchResult:
        """Stage a batch of events (``ts`` unix seconds or ISO 8601 on the reference clock, ``kind``,
        ``name``, ``value``, ``author``, optional ``segment_start`` / ``segment_end``).

        Raises:
            CaptureError: Invalid event (named by index). ConflictError: ``seq`` used for other data.
        """
        self._open_for_writes(session_id)
        check_seq(seq)
        clean = self.check_events(events)
        data = json.dumps(clean, sort_keys=True).encode()
        path = self.dir(session_id) / "events" / f"{seq:012d}.json"
        if path.exists() or not write_atomic(path, data, exclusive=True):
            if path.read_bytes() != data:
                raise ConflictError(
                    f"session {session_id} events batch {seq}: sequence number already used for different data"
                )
            return BatchResult(seq, len(clean), duplicate=True)
        return BatchResult(seq, len(clean))

    def check_events(self, events: Any) -> list[dict[str, Any]]:
        """Validate a batch of events; returns them cleaned (times as unix seconds).

        Raises:
            CaptureError: The first invalid field, named ``events[i].field``.
        """
        from jangin.capture._import import EVENT_KINDS

        if not isinstance(events, list):
            raise CaptureError('events: expected {"events": [...]}')
        clean = []
        for i, e in enumerate(events):
            where = f"events[{i}]"
            if not isinstance(e, dict):
                raise CaptureError(f"{where}: expected an object")
            if e.get("kind") not in EVENT_KINDS:
                raise CaptureError(
                    f"{where}.kind: unknown kind {e.get('kind')!r} (expected one of {', '.join(sorted(EVENT_KINDS))})"
                )
            row = {"ts": self._time(e.get("ts"), f"{where}.ts"), "kind": e["kind"]}
            for k, most in (("name", MAX_EVENT_NAME), ("value", MAX_EVENT_VALUE), ("author", MAX_EVENT_NAME)):
                v = e.get(k)
                if v is not None and not isinstance(v, str | int | float):
                    raise CaptureError(f"{where}.{k}: expected text, got {type(v).__name__}")
                text = None if v in (None, "") else str(v)
                if text is not None and len(text) > most:
                    raise CaptureError(f"{where}.{k}: {len(text)} characters, at most {most}")
                row[k] = text
            for k in ("segment_start", "segment_end"):
                row[k] = self._time(e[k], f"{where}.{k}") if e.get(k) not in (None, "") else None
            clean.append(row)
        return clean

    def _time(self, value: Any, where: str) -> float:
        t = _time(value, where)
        if not self.limits.min_time_s <= t < self.limits.max_time_s:
            raise CaptureError(
                f"{where}: time {value!r} is outside the accepted range {self.limits.time_range()}",
                hint="send unix seconds (UTC) or ISO 8601 with a timezone",
            )
        return t

    def events(self, session_id: str) -> list[tuple[int, int, dict[str, Any]]]:
        """Every staged event as ``(seq, index, event)``."""
        out = []
        for p in sorted((self.dir(session_id) / "events").glob("*.json")):
            for i, e in enumerate(json.loads(p.read_text())):
                out.append((int(p.stem), i, e))
        return out

    # -- resumable video upload ---------------------------------------------------------------------

    def _video(self, session_id: str, camera: str) -> Path:
        meta = self.meta(session_id)
        check_name("camera", camera)
        cams = [c["name"] for c in meta.get("cameras", [])]
        if camera not in cams:
            raise CaptureError(
                f"session {session_id}: unknown camera {camera!r} (declared: {', '.join(cams) or 'none'})"
            )
        return self.dir(session_id) / "video" / camera

    def video_offset(self, session_id: str, camera: str) -> tuple[int, bool]:
        """``(acknowledged bytes, complete)`` of a camera's upload."""
        base = self._video(session_id, camera)
        done = base.with_suffix(".done")
        if done.exists():
            return int(json.loads(done.read_text())["size"]), True
        off = base.with_suffix(".offset")
        return (int(off.read_text()) if off.exists() else 0), False

    def write_chunk(self, session_id: str, camera: str, offset: int, data: bytes, sha256: str | None) -> int:
        """Write ``data`` at ``offset`` of the camera's upload (see :meth:`_write_chunk`)."""
        with self._lock(check_name("session id", session_id)):
            return self._write_chunk(session_id, camera, offset, data, sha256)

    def _write_chunk(self, session_id: str, camera: str, offset: int, data: bytes, sha256: str | None) -> int:
        """Write ``data`` at ``offset`` of the camera's upload; returns the new acknowledged offset.

        A chunk that starts before the acknowledged offset (a retry whose answer was lost) is accepted
        if its overlapping bytes match what was stored, and refused as a conflict if they differ; one
        that starts after it is a conflict (the client must ask for the offset and resume there).

        Raises:
            CaptureError: Checksum mismatch (nothing written). ConflictError: wrong offset, overlapping
            bytes that differ, or finished. TooLargeError: the upload would pass ``max_video_bytes``.
        """
        self._open_for_writes(session_id)
        base = self._video(session_id, camera)
        if sha256 is not None and _sha(data) != sha256.lower():
            raise CaptureError(
                f"session {session_id} camera {camera}: chunk at {offset} fails its sha256 (corrupted in transit)"
            )
        acked, complete = self.video_offset(session_id, camera)
        if complete:
            raise ConflictError(f"session {session_id} camera {camera}: upload already complete")
        if offset > acked or offset < 0:
            raise ConflictError(
                f"session {session_id} camera {camera}: offset {offset}, expected {acked}",
                hint=f"resume at {acked}",
            )
        part = base.with_suffix(".part")
        skip = acked - offset
        if skip:
            with open(part, "rb") as f:
                f.seek(offset)
                stored = f.read(min(skip, len(data)))
            if stored != data[: len(stored)]:
                raise ConflictError(
                    f"session {session_id} camera {camera}: chunk at {offset} overlaps acknowledged bytes "
                    "with different data",
                    hint=f"resume at {acked} with the file's bytes from there",
                )
        if skip >= len(data):
            return acked
        if acked + len(data) - skip > self.limits.max_video_bytes:
            raise TooLargeError(
                f"session {session_id} camera {camera}: the upload would pass {self.limits.max_video_bytes} bytes",
                hint="the server's max_video_mb setting caps one camera's upload",
            )
        with open(part, "r+b" if part.exists() else "wb") as f:
            f.truncate(acked)  # drop bytes past the acknowledged offset (a write cut short by a crash)
            f.seek(acked)
            f.write(data[skip:])
            f.flush()
            os.fsync(f.fileno())
        new = acked + len(data) - skip
        write_atomic(base.with_suffix(".offset"), str(new).encode())
        return new

    def complete_video(self, session_id: str, camera: str, size: int, sha256: str) -> None:
        """Close a camera's upload after checking its size and sha256 (see :meth:`_complete_video`)."""
        with self._lock(check_name("session id", session_id)):
            self._complete_video(session_id, camera, size, sha256)

    def _complete_video(self, session_id: str, camera: str, size: int, sha256: str) -> None:
        """Close a camera's upload after checking its total size and sha256.

        Raises:
            CaptureError: Size or checksum differ (the client should re-upload from 0 after a reset).
        """
        self._open_for_writes(session_id)
        base = self._video(session_id, camera)
        acked, complete = self.video_offset(session_id, camera)
        if complete:
            return
        if acked == 0:
            raise ConflictError(
                f"session {session_id} camera {camera}: nothing uploaded yet",
                hint="PATCH the file's bytes first, then complete",
            )
        if acked != size:
            raise ConflictError(
                f"session {session_id} camera {camera}: {acked} bytes uploaded, {size} declared",
                hint=f"resume at {acked}",
            )
        part = base.with_suffix(".part")
        h = hashlib.sha256()
        with open(part, "rb") as f:
            while b := f.read(1 << 20):
                h.update(b)
        if h.hexdigest() != sha256.lower():
            raise CaptureError(
                f"session {session_id} camera {camera}: sha256 of the upload differs from the declared one"
            )
        with open(part, "rb") as f:
            name = camera + _video_suffix(f.read(64))
        done = {"size": size, "sha256": sha256.lower(), "file": name}
        write_atomic(base.with_suffix(".done"), json.dumps(done).encode())
        self._finish_rename(base)

    def _finish_rename(self, base: Path) -> Path:
        """The finished upload's file: ``.part`` renamed after ``.done`` was written (a crash between
        the two is completed here)."""
        done = json.loads(base.with_suffix(".done").read_text())
        final = base.parent / str(done.get("file", base.name + ".part"))
        part = base.with_suffix(".part")
        if not final.exists() and part.exists():
            os.replace(part, final)
            _fsync_dir(base.parent)
        return final

    def videos(self, session_id: str) -> dict[str, Path]:
        """Completed uploads: camera -> file."""
        d = self.dir(session_id) / "video"
        return (
            {p.stem: self._finish_rename(p.with_suffix("")) for p in sorted(d.glob("*.done"))}
            if d.is_dir()
            else {}
        )

    # -- finish and status --------------------------------------------------------------------------

    def finish(self, session_id: str, options: dict[str, Any]) -> bool:
        """Mark the session finished (idempotent); returns False if it already was."""
        self.meta(session_id)
        with self._lock(session_id):
            if self.finished(session_id):
                return False
            write_atomic(
                self.dir(session_id) / "finish.json",
                json.dumps({**options, "at": datetime.now(UTC).isoformat()}).encode(),
            )
        return True

    def retry(self, session_id: str) -> dict[str, Any]:
        """Queue a ``failed`` session for processing again (its staged data was kept).

        Raises:
            NotFoundError: No such session. ConflictError: It is not ``failed``.
        """
        with self._lock(check_name("session id", session_id)):
            st = self.status(session_id)
            if st["state"] != "failed":
                raise ConflictError(
                    f"session {session_id} is {st['state']}; only a failed session is retried",
                    hint="GET /v1/sessions/{id} shows its state",
                )
            queued = {
                "state": "queued",
                "retry_of": st.get("error"),
                "retries": int(st.get("retries", 0)) + 1,
            }
            self.set_status(session_id, queued)
        return queued

    def set_status(self, session_id: str, status: dict[str, Any]) -> None:
        write_atomic(self.dir(session_id) / "status.json", json.dumps(status, default=str).encode())

    def status(self, session_id: str) -> dict[str, Any]:
        d = self.dir(session_id)
        self.meta(session_id)
        if (d / "status.json").exists():
            st = dict(json.loads((d / "status.json").read_text()))
        else:
            st = {"state": "processing" if self.finished(session_id) else "recording"}
        st["session_id"] = session_id
        if st["state"] == "recording":
            st["sensor_batches"] = {k: len(v) for k, v in self.sensor_batches(session_id).items()}
            st["video"] = {
                c["name"]: dict(
                    zip(("offset", "complete"), self.video_offset(session_id, c["name"]), strict=True)
                )
                for c in self.meta(session_id).get("cameras", [])
            }
        return st

    def pending(self) -> list[str]:
        """Finished sessions whose processing has not ended (to resume after a restart)."""
        out = []
        for d in sorted(self.root.iterdir()):
            if d.is_dir() and (d / "finish.json").exists():
                st = json.loads((d / "status.json").read_text()) if (d / "status.json").exists() else {}
                if st.get("state") not in ("processed", "failed"):
                    out.append(d.name)
        return out

    def release(self, session_id: str) -> None:
        """Delete the staged bulk data of a processed session (its metadata and status stay)."""
        for sub in ("sensors", "events", "video"):
            shutil.rmtree(self.dir(session_id) / sub, ignore_errors=True)

    def clean_tmp(self) -> int:
        """Remove temporary files of writes a crash interrupted; returns how many."""
        n = 0
        for p in self.root.rglob(".*.tmp"):
            p.unlink(missing_ok=True)
            n += 1
        return n


def _video_suffix(head: bytes) -> str:
    """A file suffix from a video's first bytes (FFmpeg probes the content; this is for people)."""
    if head[4:8] == b"ftyp":
        return ".mov" if head[8:10] == b"qt" else ".mp4"
    if head[:4] == b"\x1aE\xdf\xa3":
        return ".webm" if b"webm" in head else ".mkv"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return ".avi"
    if head[:1] == b"\x47":
        return ".ts"
    return ".video"


def _numbers(col: pa.ChunkedArray | pa.Array, where: str, name: str) -> np.ndarray:
    if pa.types.is_null(col.type):
        return np.full(len(col), np.nan)
    if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)):
        raise CaptureError(f"{where}: column {name!r} is {col.type}, expected numbers")
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)


def _time(value: Any, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise CaptureError(f"{where}: cannot read time {value!r}") from None
        if dt.tzinfo is None:
            raise CaptureError(f"{where}: time {value!r} has no timezone")
        return dt.timestamp()
    raise CaptureError(f"{where}: missing or invalid time {value!r}")
