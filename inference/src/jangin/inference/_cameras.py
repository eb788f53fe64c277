"""Camera workers: one thread per camera that inspects the latest frame and never builds a backlog.

The thread reads frames continuously (a live source delivers them at its own rate; a video file is
paced to its frame rate, as if it were a camera). At most one frame per camera is with the model at a
time and at most one every ``interval_s``: frames read meanwhile are dropped and counted. When the
source fails or ends, the worker reconnects with a growing back-off (0.2 s doubling to 5 s).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from jangin.core import JanginError
from jangin.core._redact import redact_url

__all__ = ["CameraWorker", "parse_source"]

log = logging.getLogger(__name__)


def parse_source(source: str) -> int | str:
    """``"0"`` / ``"/dev/video0"`` → device index; anything else (RTSP URL, file) as is."""
    if source.isdigit():
        return int(source)
    if source.startswith("/dev/video") and source[10:].isdigit():
        return int(source[10:])
    return source


class CameraWorker:
    """Inspect the latest frame of one camera into the service's log.

    Args:
        name: Camera name (recorded as ``camera``).
        source: RTSP/HTTP URL, device (``/dev/video0``, ``0``) or video file.
        service: The :class:`InspectionService`.
        station: Station id recorded with each inspection (default the camera name).
        interval_s: Least time between two inspections.
        metrics: Prometheus metrics or None.
    """

    def __init__(
        self,
        name: str,
        source: str,
        service: Any,
        *,
        station: str | None = None,
        interval_s: float = 0.5,
        metrics: Any = None,
    ) -> None:
        self.name = name
        self.source = source
        #: The source as shown in stats, errors and logs: ``rtsp://user:pass@cam`` → ``rtsp://***@cam``.
        self.display_source = redact_url(source)
        self.service = service
        self.station = station or name
        self.interval_s = interval_s
        self.metrics = metrics
        self.grabbed = self.inspected = self.dropped = self.reconnects = self.errors = 0
        self.last_verdict: str | None = None
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker thread."""
        self._thread = threading.Thread(target=self._loop, name=f"jangin-camera-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def stats(self) -> dict[str, Any]:
        """Counters and the last verdict / error."""
        return {
            "camera": self.name,
            "source": self.display_source,
            "station": self.station,
            "grabbed": self.grabbed,
            "inspected": self.inspected,
            "dropped": self.dropped,
            "reconnects": self.reconnects,
            "errors": self.errors,
            "last_verdict": self.last_verdict,
            "last_error": self.last_error,
            "alive": bool(self._thread and self._thread.is_alive()),
        }

    def _count(self, what: str) -> None:
        if self.metrics is not None:
            getattr(self.metrics, what).labels(camera=self.name).inc()

    def _loop(self) -> None:
        import cv2

        src = parse_source(self.source)
        is_file = isinstance(src, str) and Path(src).is_file()
        cap: Any = None
        backoff = 0.2
        pending: tuple[Any, Future[Any], float] | None = None
        next_due = 0.0
        frame_period = 0.0
        while not self._stop.is_set():
            if cap is None:
                cap = cv2.VideoCapture(src)
                if not cap.isOpened():
                    cap.release()
                    cap = None
                    self.last_error = f"cannot open {self.display_source}"
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                    self.reconnects += 1
                    self._count("reconnects")
                    continue
                fps = cap.get(cv2.CAP_PROP_FPS) if is_file else 0
                frame_period = 1.0 / fps if fps and fps > 0 else 0.0
            t_read = time.monotonic()
            ok, frame = cap.read()
            if not ok or frame is None:
                cap.release()
                cap = None
                self.reconnects += 1
                self._count("reconnects")
                self.last_error = f"lost {self.display_source}; reconnecting"
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.2
            self.grabbed += 1
            self._count("frames")
            if pending is not None and pending[1].done():
                self._finish(pending)
                pending = None
            now = time.monotonic()
            if pending is not None or now < next_due:
                self.dropped += 1
                self._count("dropped")
            else:
                try:
                    item, fut = self.service.submit(frame)
                    pending = (item, fut, time.perf_counter())
                    next_due = now + self.interval_s
                except JanginError as exc:  # overloaded or no model: drop, keep the camera current
                    self.dropped += 1
                    self._count("dropped")
                    self.last_error = exc.message
            if frame_period:
                self._stop.wait(max(0.0, frame_period - (time.monotonic() - t_read)))
        if pending is not None:
            try:
                pending[1].result(10)
                self._finish(pending)
            except Exception:
                pass
        if cap is not None:
            cap.release()

    def _finish(self, pending: tuple[Any, Future[Any], float]) -> None:
        item, fut, t0 = pending
        try:
            out = fut.result()
            res = self.service.record(
                item,
                out,
                t0=t0,
                data=None,
                station=self.station,
                camera=self.name,
                source=f"camera:{self.name}",
            )
        except Exception as exc:
            self.errors += 1
            self.last_error = redact_url(str(exc))
            log.warning(
                "camera %s: %s",
                self.name,
                self.last_error,
                extra={"camera": self.name, "station": self.station},
            )
            return
        self.inspected += 1
        self.last_verdict = res["verdict"]
