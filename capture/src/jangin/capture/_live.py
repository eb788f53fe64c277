"""Live sources: a camera / RTSP URL / file stream (OpenCV, with reconnect) and an MQTT topic of
sensor samples (paho-mqtt) written to the dataset in batches.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jangin.core import CaptureError, Dataset

__all__ = ["CameraRecorder", "MqttSensorSource", "RecordStats"]

log = logging.getLogger(__name__)


@dataclass
class RecordStats:
    """What a live recording did."""

    frames: int = 0
    reconnects: int = 0
    failed_opens: int = 0
    seconds: float = 0.0
    timestamps: list[float] = field(default_factory=list)  # wall-clock time of each written frame


class CameraRecorder:
    """Record a camera, RTSP URL or video file (read as a stream) to an MP4, reconnecting when the
    source drops. Each written frame's wall-clock time goes to ``<out>.ts.csv`` (frame times are not
    ``k / fps`` once a reconnect leaves a gap).

    Args:
        source: Device index (``"0"``), URL (``rtsp://…``) or file path.
        out: MP4 to write.
        fps: Frame rate written to the file (default: the source's, else 25).
        reconnect_delay_s: Wait before reopening a dropped source (doubles up to 5 s).
        max_reconnects: Give up after this many consecutive failed opens.
        opener: Builds the capture object (default ``cv2.VideoCapture``); for tests and custom backends.
    """

    def __init__(
        self,
        source: str,
        out: Path,
        *,
        fps: float | None = None,
        reconnect_delay_s: float = 0.2,
        max_reconnects: int = 10,
        opener: Callable[[str], Any] | None = None,
    ) -> None:
        self.source = source
        self.out = Path(out)
        self.fps = fps
        self.reconnect_delay_s = reconnect_delay_s
        self.max_reconnects = max_reconnects
        self._opener = opener
        self._stop = threading.Event()

    def _open(self) -> Any:
        import cv2

        src: Any = int(self.source) if self.source.isdigit() else self.source
        cap = self._opener(self.source) if self._opener else cv2.VideoCapture(src)
        return cap if cap is not None and cap.isOpened() else None

    def stop(self) -> None:
        """Ask a running :meth:`record` to return after the current frame."""
        self._stop.set()

    def record(self, *, max_frames: int | None = None, max_seconds: float | None = None) -> RecordStats:
        """Record until ``max_frames``, ``max_seconds``, :meth:`stop` or too many failed reconnects.

        Raises:
            CaptureError: The source never opened, or the output cannot be written.
        """
        import cv2

        if max_frames is None and max_seconds is None:
            raise ValueError("give max_frames or max_seconds (or call stop() from another thread)")
        stats = RecordStats()
        t0 = time.monotonic()
        writer = None
        cap = None
        delay = self.reconnect_delay_s
        failures = 0
        try:
            while not self._stop.is_set():
                if max_frames is not None and stats.frames >= max_frames:
                    break
                if max_seconds is not None and time.monotonic() - t0 >= max_seconds:
                    break
                if cap is None:
                    cap = self._open()
                    if cap is None:
                        failures += 1
                        stats.failed_opens += 1
                        if failures > self.max_reconnects:
                            log.error("camera %s: gave up after %d failed opens", self.source, failures)
                            break
                        time.sleep(delay)
                        delay = min(delay * 2, 5.0)
                        continue
                    if stats.frames or stats.failed_opens:
                        stats.reconnects += 1
                        log.warning("camera %s: reconnected", self.source)
                    failures, delay = 0, self.reconnect_delay_s
                ok, frame = cap.read()
                if not ok:
                    cap.release()
                    cap = None  # dropped (or the end of a file played as a stream): reopen
                    continue
                if writer is None:
                    fps = self.fps or float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or 25.0
                    h, w = frame.shape[:2]
                    self.out.parent.mkdir(parents=True, exist_ok=True)
                    writer = cv2.VideoWriter(str(self.out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                    if not writer.isOpened():
                        raise CaptureError(f"{self.out}: cannot write video")
                writer.write(frame)
                stats.frames += 1
                stats.timestamps.append(time.time())
        finally:
            if cap is not None:
                cap.release()
            if writer is not None:
                writer.release()
        stats.seconds = time.monotonic() - t0
        if stats.frames == 0:
            raise CaptureError(f"camera {self.source}: no frame recorded ({stats.failed_opens} failed opens)")
        self.out.with_suffix(".ts.csv").write_text(
            "frame,unix_s\n" + "".join(f"{i},{t:.6f}\n" for i, t in enumerate(stats.timestamps))
        )
        return stats


class MqttSensorSource:
    """Subscribe to an MQTT topic of sensor samples and append them to ``sensor_samples`` in batches.

    A message is JSON, either one device batch ``{"device", "t": [...], "channels": {name: [...]},
    "units": {name: unit}}`` or one sample ``{"device", "channel", "ts", "value", "unit"}``; ``t`` /
    ``ts`` are unix seconds on the device's clock (``offsets`` moves them to the reference clock).

    Messages are acknowledged to the broker (QoS 1, manual acks) only after the batch holding them is
    committed, so a crash makes the broker redeliver them; each batch is one idempotent append.

    Args:
        ds: Dataset to write to.
        session_id: Session the samples belong to.
        host, port, topic: Broker and topic (wildcards allowed).
        offsets: ``{device: clock offset in s}``.
        batch_s: Flush at least this often; ``batch_size``: or when this many samples are waiting.
    """

    def __init__(
        self,
        ds: Dataset,
        session_id: str,
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        topic: str = "jangin/sensors/#",
        offsets: dict[str, float] | None = None,
        batch_s: float = 1.0,
        batch_size: int = 50_000,
        client_id: str | None = None,
    ) -> None:
        self.ds, self.session_id = ds, session_id
        self.host, self.port, self.topic = host, port, topic
        self.offsets = offsets or {}
        self.batch_s, self.batch_size = batch_s, batch_size
        self.client_id = client_id or f"jangin-{session_id}"
        self._lock = threading.Lock()
        self._pending: list[tuple[str, str, np.ndarray, np.ndarray, str | None]] = []
        self._mids: list[tuple[int, int]] = []
        self._n = 0
        self.samples = 0
        self.batches = 0
        self.bad_messages = 0
        self._seq = ds.committed("sensor_samples", self._app_id) or 0
        self._client: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def _app_id(self) -> str:
        return f"mqtt/{self.session_id}/{self.topic}"

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            m = json.loads(msg.payload)
            dev = str(m["device"])
            off = float(self.offsets.get(dev, 0.0))
            if "channels" in m:
                t = np.asarray(m["t"], np.float64) + off
                parts = [
                    (dev, str(ch), t, np.asarray(v, np.float64), (m.get("units") or {}).get(ch))
                    for ch, v in m["channels"].items()
                ]
                if any(len(p[3]) != len(t) for p in parts):
                    raise ValueError("channel length differs from t")
            else:
                parts = [
                    (
                        dev,
                        str(m["channel"]),
                        np.asarray([float(m["ts"]) + off]),
                        np.asarray([float(m["value"])]),
                        m.get("unit"),
                    )
                ]
        except (ValueError, KeyError, TypeError) as exc:
            self.bad_messages += 1
            log.warning("mqtt %s: dropped a malformed message: %s", msg.topic, exc)
            client.ack(msg.mid, msg.qos)
            return
        with self._lock:
            self._pending += parts
            self._mids.append((msg.mid, msg.qos))
            self._n += sum(len(p[2]) for p in parts)

    def flush(self) -> int:
        """Append what is waiting as one batch, then acknowledge its messages; returns samples written."""
        import pyarrow as pa

        from jangin.core.schema import TS

        with self._lock:
            pending, mids, self._pending, self._mids, self._n = self._pending, self._mids, [], [], 0
        if not pending:
            return 0
        from jangin.capture._process import _const

        cols: list[pa.Table] = []
        for dev, ch, t, v, unit in pending:
            ok = np.isfinite(v) & np.isfinite(t)
            n = int(ok.sum())
            cols.append(
                pa.table(
                    {
                        "session_id": _const(self.session_id, n),
                        "device": _const(dev, n),
                        "channel": _const(ch, n),
                        "ts": pa.array(np.rint(t[ok] * 1e6).astype(np.int64)).cast(TS),
                        "value": pa.array(v[ok], pa.float64()),
                        "unit": _const(unit, n),
                    }
                )
            )
        table = pa.concat_tables(cols)
        self._seq += 1
        self.ds.append("sensor_samples", table, source=f"mqtt {self.topic}", txn=(self._app_id, self._seq))
        if self._client is not None:
            for mid, qos in mids:
                self._client.ack(mid, qos)
        self.samples += table.num_rows
        self.batches += 1
        return int(table.num_rows)

    def start(self, *, connect_timeout_s: float = 10.0) -> None:
        """Connect, subscribe (QoS 1) and start flushing in a background thread.

        Raises:
            CaptureError: The broker cannot be reached.
        """
        import paho.mqtt.client as mqtt

        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False, manual_ack=True
        )
        connected = threading.Event()  # set on SUBACK: only then is nothing published to the topic missed
        client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(self.topic, qos=1)
        client.on_subscribe = lambda c, u, mid, rcs, p=None: connected.set()
        client.on_message = self._on_message
        try:
            client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise CaptureError(f"MQTT broker {self.host}:{self.port} unreachable: {exc}") from exc
        client.loop_start()
        if not connected.wait(connect_timeout_s):
            client.loop_stop()
            raise CaptureError(
                f"MQTT broker {self.host}:{self.port}: not subscribed to {self.topic} after {connect_timeout_s} s"
            )
        self._client = client
        self._thread = threading.Thread(target=self._run, name="jangin-mqtt-flush", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(0.05):
            if self._n >= self.batch_size or time.monotonic() - last >= self.batch_s:
                try:
                    self.flush()
                except Exception:
                    log.exception("mqtt: writing a batch failed")
                last = time.monotonic()

    def stop(self) -> None:
        """Flush what is waiting, then disconnect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.flush()
        if self._client is not None:
            self._client.loop_stop()
            self._client.disconnect()
            self._client = None
