"""The live-source protocol: everything a station recorder reads from (OPC UA, Modbus, MQTT, cameras, replay).

A source delivers samples in long form with the *source's* timestamps; the recorder stages them through
the same staging path as the HTTP ingest API and acknowledges them to the source only after the fsync
(:meth:`SensorSource.ack`). A source never interpolates: when it loses its server it reports a
:class:`Gap` and, after reconnecting, goes on with new samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class ChannelSpec:
    """One channel a source delivers.

    Attributes:
        name: Channel name as stored in ``sensor_samples``.
        unit: Unit text, if known.
        ref: Where the value comes from in the source (OPC UA node id or browse path, Modbus register
            address, MQTT topic, replay column).
        rate_hz: Nominal rate (sampling interval or poll rate), if any.
        device: The device it belongs to, when not the source's own (an MQTT topic mapped to a device).
    """

    name: str
    unit: str | None = None
    ref: str | None = None
    rate_hz: float | None = None
    device: str | None = None


@dataclass
class SampleBatch:
    """Samples read from one source, long form, one entry per sample.

    Attributes:
        source: Source name (as in the station YAML).
        device: Device name recorded in ``sensor_samples.device``.
        channel: Channel name per sample (array of str).
        t: Source timestamp per sample, unix seconds (float64), as the source stamped it.
        value: Value per sample (float64).
        received: Recorder clock (``time.time()``) when the batch was read; for clock-offset estimates.
        token: Opaque; the recorder passes it to :meth:`SensorSource.ack` after the batch is staged.
    """

    source: str
    device: str
    channel: np.ndarray
    t: np.ndarray
    value: np.ndarray
    received: float
    token: Any = None

    def __len__(self) -> int:
        return len(self.t)


@dataclass(frozen=True)
class Gap:
    """A span with no data because the source's server or link was away (recorded, never interpolated)."""

    source: str
    device: str
    start: float
    end: float | None
    reason: str


@dataclass(frozen=True)
class Frame:
    """One camera frame: ``image`` BGR uint8 (H, W, 3), ``t`` unix seconds (source time when known)."""

    source: str
    camera: str
    t: float
    image: np.ndarray
    received: float


@dataclass
class SourceHealth:
    """What a source says of itself (shown on the console and as Prometheus metrics)."""

    connected: bool = False
    samples: int = 0
    reconnects: int = 0
    dropped: int = 0
    lag_s: float | None = None
    last_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class SensorSource(Protocol):
    """A live source of sensor samples (and/or camera frames).

    Life cycle: ``open()`` (connect; raise :class:`jangin.core.CaptureError` naming the endpoint when it
    cannot), then ``read()`` repeatedly, ``ack()`` after staging, ``close()``. A source reconnects by
    itself (with backoff) and reports the outage as a :class:`Gap` in a later ``read()``.
    """

    name: str
    device: str
    channels: list[ChannelSpec]

    def open(self) -> None: ...

    def read(self, timeout_s: float) -> list[SampleBatch | Gap | Frame]:
        """Wait at most ``timeout_s`` and return what arrived (maybe nothing)."""
        ...

    def ack(self, token: Any) -> None:
        """Called once a batch carrying ``token`` is durably staged (no-op for sources that cannot redeliver)."""
        ...

    def health(self) -> SourceHealth: ...

    def close(self) -> None: ...


class SourceFactory(Protocol):
    """Each source class builds itself from its station-YAML mapping (secrets come from env/files)."""

    def __call__(self, name: str, cfg: Mapping[str, Any]) -> SensorSource: ...
