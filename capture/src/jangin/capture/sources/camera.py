"""Camera source: frames from a device index, an RTSP/HTTP URL or a video file (OpenCV VideoCapture in a
background thread), with reconnect and backoff; a file can stand in for a live stream (``realtime``)."""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from jangin.capture.sources._cfg import Cfg, Outage
from jangin.capture.sources.base import ChannelSpec, Frame, Gap, SampleBatch, SourceHealth
from jangin.core import CaptureError

__all__ = ["CameraSource"]

log = logging.getLogger(__name__)

_KEYS = (
    "type",
    "url",
    "camera",
    "realtime",
    "reconnect_min_s",
    "reconnect_max_s",
    "max_queue",
    "open_timeout_s",
)


class CameraSource:
    """Read frames from a camera, stream or file.

    Station-YAML keys (``type: camera``)::

        url: rtsp://10.0.0.9/stream1   # or a device index ("0") or a video file path (required)
        camera: torch_cam              # camera name on each Frame (default: the source name)
        realtime: true                 # pace a file at its fps (a stand-in stream); default: true for
                                       # files, ignored for devices and URLs
        reconnect_min_s: 0.2           # first reconnect wait, doubling up to reconnect_max_s
        reconnect_max_s: 5
        max_queue: 64                  # frames waiting for read(); the oldest are dropped (counted)
        open_timeout_s: 10             # open() waits this long for the first frame

    Timestamps: a file or stream that reports a position (``CAP_PROP_POS_MSEC``) gives ``t = the
    wall-clock time of its first frame + position``, so frame times keep the stream's own spacing;
    otherwise (most device cameras) ``t`` is the receive time. ``health().extra["timestamps"]`` says
    which (``"stream"`` / ``"receive"``). When the stream ends or drops (a file at its end, an RTSP
    camera rebooting) the source reopens it with backoff and reports one :class:`Gap` from the last
    frame before to the first frame after. No ffmpeg server is needed for the tests: a file played in
    real time is the stream.
    """

    def __init__(self, name: str, cfg: Mapping[str, Any]) -> None:
        c = Cfg(name, cfg, "", _KEYS)
        self.name = name
        raw = c.cfg.get("url")
        if isinstance(raw, int) and not isinstance(raw, bool):
            raw = str(raw)
        if not isinstance(raw, str) or not raw:
            raise c.error("url", "missing (a device index, an rtsp:// URL or a video file)")
        self.url = raw
        self.is_device = raw.isdigit()
        self.is_file = not self.is_device and "://" not in raw
        self.camera = c.text("camera", name) or name
        self.device = self.camera
        self.realtime = c.flag("realtime", True) and self.is_file
        self.reconnect_min_s = c.number("reconnect_min_s", 0.2, positive=True) or 0.2
        self.reconnect_max_s = c.number("reconnect_max_s", 5.0, positive=True) or 5.0
        self.max_queue = c.integer("max_queue", 64, lo=1, hi=10_000) or 64
        self.open_timeout_s = c.number("open_timeout_s", 10.0, positive=True) or 10.0
        self.channels: list[ChannelSpec] = []
        self._q: collections.deque[Frame | Gap] = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._outage = Outage()
        self._health = SourceHealth(extra={"timestamps": None, "frames": 0, "failed_opens": 0})
        self._last_t: float | None = None

    @classmethod
    def from_config(cls, name: str, cfg: Mapping[str, Any]) -> CameraSource:
        """Build from the station-YAML mapping (keys in the class docstring); CaptureError names bad fields."""
        return cls(name, cfg)

    def _open_capture(self) -> Any:
        import cv2

        cap = cv2.VideoCapture(int(self.url) if self.is_device else self.url)
        if cap is None or not cap.isOpened():
            return None
        return cap

    def _put(self, item: Frame | Gap) -> None:
        with self._cond:
            self._q.append(item)
            frames = sum(1 for x in self._q if isinstance(x, Frame))
            if frames > self.max_queue:
                for i, x in enumerate(self._q):
                    if isinstance(x, Frame):
                        del self._q[i]
                        self._health.dropped += 1
                        break
            self._cond.notify()

    def _loop(self, cap: Any) -> None:
        import cv2

        delay = self.reconnect_min_s
        base: float | None = None  # wall time of position 0 of the current stream
        while not self._stop.is_set():
            if cap is None:
                if self._stop.wait(delay):
                    break
                cap = self._open_capture()
                if cap is None:
                    self._health.extra["failed_opens"] += 1
                    delay = min(delay * 2, self.reconnect_max_s)
                    continue
                delay = self.reconnect_min_s
                self._health.reconnects += 1
                self._health.connected = True
                base = None
            ok, image = cap.read()
            received = time.time()
            if not ok:
                cap.release()
                cap = None
                self._health.connected = False
                self._outage.lost(
                    self._last_t if self._last_t is not None else received, "stream ended or dropped"
                )
                continue
            pos_ms = float(cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0)
            if pos_ms > 0 or (base is None and self.is_file):
                if base is None:
                    base = received - pos_ms / 1000.0
                t = base + pos_ms / 1000.0
                self._health.extra["timestamps"] = "stream"
                if self.realtime:
                    wait = t - time.time()
                    if wait > 0 and self._stop.wait(wait):
                        break
            else:
                t = received
                self._health.extra["timestamps"] = "receive"
            span = self._outage.back(t)
            if span is not None:
                self._put(Gap(self.name, self.camera, *span))
            self._last_t = t
            self._health.extra["frames"] += 1
            self._health.lag_s = time.time() - t
            self._put(Frame(self.name, self.camera, t, image, received))
        if cap is not None:
            cap.release()

    def open(self) -> None:
        """Open the camera (retrying until ``open_timeout_s``) and start reading frames.

        Raises:
            CaptureError: It did not open in time.
        """
        deadline = time.monotonic() + self.open_timeout_s
        delay = self.reconnect_min_s
        cap = self._open_capture()
        while cap is None and time.monotonic() + delay < deadline:
            self._health.extra["failed_opens"] += 1
            time.sleep(delay)
            delay = min(delay * 2, self.reconnect_max_s)
            cap = self._open_capture()
        if cap is None:
            raise CaptureError(
                f"source {self.name}: camera {self.url} did not open in {self.open_timeout_s:g} s",
                hint="check the device index / URL / path and that nothing else holds the camera",
            )
        self._health.connected = True
        self._thread = threading.Thread(
            target=self._loop, args=(cap,), name=f"jangin-camera-{self.name}", daemon=True
        )
        self._thread.start()

    def read(self, timeout_s: float) -> list[SampleBatch | Gap | Frame]:
        """Frames (and gaps) since the last call, oldest first, waiting at most ``timeout_s``."""
        with self._cond:
            if not self._q:
                self._cond.wait(max(0.0, timeout_s))
            items = list(self._q)
            self._q.clear()
        self._health.samples += sum(1 for x in items if isinstance(x, Frame))
        return list(items)

    def ack(self, token: Any) -> None:
        """Nothing to acknowledge: a camera cannot resend frames."""

    def health(self) -> SourceHealth:
        return self._health

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self._health.connected = False
        with self._cond:
            self._cond.notify_all()
