"""The station recorder's health: one console line every few seconds and Prometheus metrics.

Metrics (``--metrics-port``; text exposition at ``/metrics``), per source where labelled:
``jangin_recorder_samples_total``, ``jangin_recorder_samples_per_second``, ``jangin_recorder_lag_seconds``,
``jangin_recorder_reconnects_total``, ``jangin_recorder_dropped_total``, ``jangin_recorder_gaps_total``,
``jangin_recorder_connected``; and ``jangin_recorder_staged_bytes_total``,
``jangin_recorder_buffered_bytes`` (staged, not yet processed or forwarded),
``jangin_recorder_stalled`` (1 while staging or the dataset/server is failing).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from jangin.capture.sources.base import SourceHealth

__all__ = ["Health"]


@dataclass
class _Src:
    samples: int = 0
    last_samples: int = 0
    rate: float = 0.0
    lag_s: float | None = None
    reconnects: int = 0
    dropped: int = 0
    gaps: int = 0
    connected: bool = False
    error: str | None = None


class Health:
    """Counters the recorder updates, a console line, and (optionally) a metrics endpoint."""

    def __init__(
        self, sources: list[str], *, metrics_port: int | None = None, metrics_host: str = "127.0.0.1"
    ) -> None:
        self._lock = threading.Lock()
        self.src = {n: _Src() for n in sources}
        self.staged_bytes = 0
        self.buffered = 0
        self.state = "ok"
        self.stall: str | None = None
        self._t = time.monotonic()
        self._metrics: dict[str, Any] | None = None
        self.metrics_port = None
        if metrics_port is not None:
            self._serve(metrics_port, metrics_host)

    def _serve(self, port: int, host: str) -> None:
        from prometheus_client import CollectorRegistry, Gauge, start_http_server

        reg = CollectorRegistry()
        lab = ["source"]
        self._metrics = {
            "samples": Gauge("jangin_recorder_samples_total", "Samples read", lab, registry=reg),
            "rate": Gauge("jangin_recorder_samples_per_second", "Samples per second", lab, registry=reg),
            "lag": Gauge(
                "jangin_recorder_lag_seconds", "Recorder clock minus newest sample time", lab, registry=reg
            ),
            "reconnects": Gauge("jangin_recorder_reconnects_total", "Reconnects", lab, registry=reg),
            "dropped": Gauge("jangin_recorder_dropped_total", "Samples dropped", lab, registry=reg),
            "gaps": Gauge("jangin_recorder_gaps_total", "Outages recorded as gaps", lab, registry=reg),
            "connected": Gauge("jangin_recorder_connected", "1 when connected", lab, registry=reg),
            "staged": Gauge("jangin_recorder_staged_bytes_total", "Bytes staged", registry=reg),
            "buffered": Gauge(
                "jangin_recorder_buffered_bytes", "Staged, not processed or forwarded", registry=reg
            ),
            "stalled": Gauge(
                "jangin_recorder_stalled", "1 while staging or the target is failing", registry=reg
            ),
        }
        server, _ = start_http_server(port, addr=host, registry=reg)
        self.metrics_port = server.server_port

    # -- updates -----------------------------------------------------------------------------------

    def seen(self, source: str, n: int, lag_s: float) -> None:
        with self._lock:
            self.src[source].samples += n
            self.src[source].lag_s = lag_s

    def gap(self, source: str) -> None:
        with self._lock:
            self.src[source].gaps += 1

    def drop(self, source: str, n: int) -> None:
        with self._lock:
            self.src[source].dropped += n

    def error(self, source: str, msg: str) -> None:
        with self._lock:
            self.src[source].error = msg

    def staged(self, nbytes: int) -> None:
        with self._lock:
            self.staged_bytes += nbytes

    def stalled(self, msg: str | None) -> None:
        self.stall = msg

    def source(self, name: str, h: SourceHealth) -> None:
        with self._lock:
            s = self.src[name]
            s.reconnects = h.reconnects
            s.connected = h.connected
            s.error = h.last_error or s.error
            s.dropped = max(s.dropped, h.dropped)

    def set_buffered(self, nbytes: int, state: str) -> None:
        self.buffered, self.state = nbytes, state

    # -- output ------------------------------------------------------------------------------------

    def line(self, session: str | None) -> str:
        """One console line; also refreshes the rates and the metrics."""
        now = time.monotonic()
        dt = max(now - self._t, 1e-6)
        self._t = now
        parts = []
        with self._lock:
            for n, s in self.src.items():
                s.rate = (s.samples - s.last_samples) / dt
                s.last_samples = s.samples
                lag = f"{round(s.lag_s * 1000):d} ms" if s.lag_s is not None else "-"  # never "-0 ms"
                parts.append(
                    f"{n}: {s.rate:,.0f}/s lag {lag} reconnects {s.reconnects} dropped {s.dropped} gaps {s.gaps}"
                    + ("" if s.connected else " DISCONNECTED")
                )
                if self._metrics is not None:
                    m = self._metrics
                    m["samples"].labels(n).set(s.samples)
                    m["rate"].labels(n).set(s.rate)
                    m["lag"].labels(n).set(s.lag_s or 0.0)
                    m["reconnects"].labels(n).set(s.reconnects)
                    m["dropped"].labels(n).set(s.dropped)
                    m["gaps"].labels(n).set(s.gaps)
                    m["connected"].labels(n).set(1 if s.connected else 0)
        stalled = self.stall or (self.state if self.state != "ok" else None)
        if self._metrics is not None:
            self._metrics["staged"].set(self.staged_bytes)
            self._metrics["buffered"].set(self.buffered)
            self._metrics["stalled"].set(1 if stalled else 0)
        tail = f"staged {self.staged_bytes / 1e6:.1f} MB, buffered {self.buffered / 1e6:.1f} MB"
        return (
            f"[{session or 'no session'}] "
            + " | ".join(parts)
            + f" | {tail}"
            + (f" | STALLED: {stalled}" if stalled else "")
        )
