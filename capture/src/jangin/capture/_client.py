"""A Python client of the ingest API, for recording apps written in Python (and the demo and tests).

Every call is safe to retry: sensor and event batches carry sequence numbers, video chunks carry
their offset and checksum, and :meth:`IngestClient.upload_video` asks the server where to resume.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from jangin.core import CaptureError

__all__ = ["IngestClient", "upload_session"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class IngestClient:
    """Talks to ``/v1/sessions`` of a Jangin server.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000``.
        api_key: A key with the ``recorder`` role.
        retries: Attempts per request on connection errors and 5xx answers (with back-off).
        timeout_s: Per-request timeout.
    """

    def __init__(self, base_url: str, api_key: str, *, retries: int = 5, timeout_s: float = 30.0) -> None:
        import httpx

        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers={"X-API-Key": api_key}, timeout=timeout_s
        )
        self.retries = retries

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> IngestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _retry(self, fn: Callable[[], T]) -> T:
        import httpx

        delay = 0.2
        for attempt in range(self.retries):
            try:
                r = fn()
            except httpx.TransportError as exc:
                if attempt == self.retries - 1:
                    raise CaptureError(f"ingest server unreachable: {exc}") from exc
            else:
                if getattr(r, "status_code", 200) < 500 or attempt == self.retries - 1:
                    return r
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")

    def _ok(self, r: Any) -> Any:
        if r.status_code >= 400:
            raise CaptureError(
                f"{r.request.method} {r.request.url.path}: HTTP {r.status_code}: {r.text[:300]}"
            )
        return r.json()

    def create_session(self, **meta: Any) -> str:
        """Create (or find again) a session; returns its id. ``started_at`` may be a datetime."""
        body = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in meta.items()}
        return str(self._ok(self._retry(lambda: self._http.post("/v1/sessions", json=body)))["session_id"])

    def send_sensors(
        self,
        session_id: str,
        device: str,
        seq: int,
        t: np.ndarray,
        channels: dict[str, np.ndarray],
        *,
        arrow: bool = True,
    ) -> dict[str, Any]:
        """Send one batch: device times ``t`` (unix seconds) and channel values."""
        if arrow:
            import pyarrow as pa

            table = pa.table(
                {
                    "t": pa.array(np.asarray(t, np.float64)),
                    **{k: pa.array(np.asarray(v, np.float64)) for k, v in channels.items()},
                }
            )
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as w:
                w.write_table(table)
            data = sink.getvalue().to_pybytes()
            headers = {"Content-Type": "application/vnd.apache.arrow.stream"}
            return dict(
                self._ok(
                    self._retry(
                        lambda: self._http.post(
                            f"/v1/sessions/{session_id}/sensors/{device}",
                            params={"seq": seq},
                            content=data,
                            headers=headers,
                        )
                    )
                )
            )
        body = {
            "t": [float(x) for x in t],
            "channels": {
                k: [None if not np.isfinite(x) else float(x) for x in v] for k, v in channels.items()
            },
        }
        return dict(
            self._ok(
                self._retry(
                    lambda: self._http.post(
                        f"/v1/sessions/{session_id}/sensors/{device}", params={"seq": seq}, json=body
                    )
                )
            )
        )

    def send_events(self, session_id: str, seq: int, events: list[dict[str, Any]]) -> dict[str, Any]:
        """Send a batch of events (``ts`` unix seconds on the reference clock, ``kind``, ``name``, …)."""
        return dict(
            self._ok(
                self._retry(
                    lambda: self._http.post(
                        f"/v1/sessions/{session_id}/events", params={"seq": seq}, json={"events": events}
                    )
                )
            )
        )

    def video_offset(self, session_id: str, camera: str) -> int:
        """Bytes of the camera's upload the server has acknowledged."""
        return int(
            self._ok(self._retry(lambda: self._http.get(f"/v1/sessions/{session_id}/video/{camera}")))[
                "offset"
            ]
        )

    def upload_video(
        self,
        session_id: str,
        camera: str,
        path: Path,
        *,
        chunk_size: int = 1 << 20,
        max_chunks: int | None = None,
    ) -> int:
        """Upload ``path`` in chunks, resuming at the server's offset; completes it when all is sent.

        Args:
            max_chunks: Stop after this many chunks (to simulate a dropped connection in tests).

        Returns:
            The server's offset after the last chunk sent.
        """
        size = path.stat().st_size
        offset = self.video_offset(session_id, camera)
        sent = 0
        with open(path, "rb") as f:
            while offset < size:
                if max_chunks is not None and sent >= max_chunks:
                    return offset
                f.seek(offset)
                chunk = f.read(chunk_size)
                headers = {
                    "Upload-Offset": str(offset),
                    "X-Chunk-Sha256": hashlib.sha256(chunk).hexdigest(),
                    "Content-Type": "application/offset+octet-stream",
                }
                r = self._retry(
                    lambda chunk=chunk, headers=headers: self._http.patch(
                        f"/v1/sessions/{session_id}/video/{camera}", content=chunk, headers=headers
                    )
                )
                if r.status_code == 409 and "offset" in r.json():
                    offset = int(r.json()["offset"])  # the server knows better: resume there
                    continue
                offset = int(self._ok(r)["offset"])
                sent += 1
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while b := f.read(1 << 20):
                h.update(b)
        self._ok(
            self._retry(
                lambda: self._http.post(
                    f"/v1/sessions/{session_id}/video/{camera}/complete",
                    json={"size": size, "sha256": h.hexdigest()},
                )
            )
        )
        return offset

    def finish(self, session_id: str, **opts: Any) -> dict[str, Any]:
        """Finish the session; processing starts in the background."""
        return dict(
            self._ok(self._retry(lambda: self._http.post(f"/v1/sessions/{session_id}/finish", json=opts)))
        )

    def status(self, session_id: str) -> dict[str, Any]:
        return dict(self._ok(self._retry(lambda: self._http.get(f"/v1/sessions/{session_id}"))))

    def wait(self, session_id: str, *, timeout_s: float = 300.0, poll_s: float = 0.25) -> dict[str, Any]:
        """Poll until processing ends (processed or failed).

        Raises:
            CaptureError: Still processing after ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            st = self.status(session_id)
            if st.get("state") in ("processed", "failed"):
                return st
            if time.monotonic() > deadline:
                raise CaptureError(f"session {session_id}: still {st.get('state')} after {timeout_s:.0f} s")
            time.sleep(poll_s)


def upload_session(
    client: IngestClient,
    directory: Path,
    *,
    batch_s: float = 1.0,
    chunk_size: int = 1 << 20,
    estimate: tuple[str, ...] = (),
    frame_interval_s: float = 1.0,
) -> tuple[str, dict[str, int]]:
    """Send a recorded session folder (``session.yaml`` + files) as a recording app would: create,
    sensor batches of ``batch_s`` seconds per device, events, chunked video, finish.

    Args:
        estimate: Devices and cameras whose clock offset is NOT sent: the server estimates it from
            the sync event.

    Returns:
        ``(session_id, counts)`` with ``batches``, ``samples``, ``events``, ``video_bytes``.
    """
    import csv

    from jangin.capture._manifest import load_manifest
    from jangin.capture._sensors import _read_table

    m = load_manifest(directory / "session.yaml")
    devices = []
    for d in m.devices:
        devices.append(
            {
                "name": d.name,
                "kind": d.kind,
                "clock_offset_s": None if d.name in estimate else d.clock_offset_s,
                "sync_channel": d.sync_channel,
                "channels": [{"name": c.name, "unit": c.unit, "rate_hz": c.rate_hz} for c in d.channels],
            }
        )
    cameras = [
        {"name": c.name, "clock_offset_s": None if c.name in estimate else c.clock_offset_s}
        for c in m.cameras
    ]
    sid = client.create_session(
        session_key=m.session_key,
        technician=m.technician,
        skill_level=m.skill_level,
        site=m.site,
        line=m.line,
        station=m.station,
        process=m.process,
        task=m.task,
        started_at=m.started_at,
        devices=devices,
        cameras=cameras,
    )
    counts = {"batches": 0, "samples": 0, "events": 0, "video_bytes": 0}
    for d in m.devices:
        table = _read_table(directory / d.file)
        t = table.column(d.time_column).to_numpy().astype(np.float64)
        cols = {
            c.name: table.column(c.column).to_numpy(zero_copy_only=False).astype(np.float64)
            for c in d.channels
        }
        edges = np.searchsorted(t, np.arange(t[0], t[-1] + batch_s, batch_s))
        for seq, (a, b) in enumerate(itertools.pairwise(edges)):
            if b > a:
                client.send_sensors(sid, d.name, seq, t[a:b], {k: v[a:b] for k, v in cols.items()})
                counts["batches"] += 1
                counts["samples"] += int(b - a) * len(cols)
    if m.events and (directory / m.events).is_file():
        with open(directory / m.events, newline="") as f:
            rows = list(csv.DictReader(f))
        events = [
            {
                "ts": float(r["timestamp"]),
                "kind": r["kind"],
                "name": r.get("name") or None,
                "value": r.get("value") or None,
                "author": r.get("author") or None,
                "segment_start": float(r["segment_start"]) if r.get("segment_start") else None,
                "segment_end": float(r["segment_end"]) if r.get("segment_end") else None,
            }
            for r in rows
        ]
        for seq in range(0, len(events), 50):
            client.send_events(sid, seq // 50, events[seq : seq + 50])
        counts["events"] = len(events)
    for c in m.cameras:
        client.upload_video(sid, c.name, directory / c.file, chunk_size=chunk_size)
        counts["video_bytes"] += (directory / c.file).stat().st_size
    client.finish(sid, frame_interval_s=frame_interval_s)
    return sid, counts
