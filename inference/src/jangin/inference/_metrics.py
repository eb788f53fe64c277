"""Prometheus metrics of the inspection server, created once per process (the default registry)."""

from __future__ import annotations

import threading

__all__ = ["metrics"]

_LOCK = threading.Lock()


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.latency = Histogram(
            "jangin_inspect_latency_seconds",
            "Inspection latency, request received to verdict",
            ["station"],
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
        )
        self.verdicts = Counter("jangin_inspections", "Verdicts per station", ["station", "verdict"])
        self.queue = Gauge("jangin_inspect_queue_depth", "Inspections waiting for the model")
        self.shed = Counter("jangin_inspect_shed", "Inspections refused with 503 because the queue was full")
        self.batch = Histogram(
            "jangin_inspect_batch_size", "Images per model call", buckets=(1, 2, 4, 8, 16, 32, 64)
        )
        self.frames = Counter("jangin_camera_frames", "Camera frames grabbed", ["camera"])
        self.dropped = Counter(
            "jangin_camera_frames_dropped", "Camera frames dropped to stay current", ["camera"]
        )
        self.reconnects = Counter("jangin_camera_reconnects", "Camera reconnects", ["camera"])


_METRICS: _Metrics | None = None


def metrics() -> _Metrics:
    """The process's inspection metrics (created on first use)."""
    global _METRICS
    with _LOCK:
        if _METRICS is None:
            _METRICS = _Metrics()
        return _METRICS
