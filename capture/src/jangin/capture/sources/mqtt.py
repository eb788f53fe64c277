"""MQTT source: sensor samples published to a broker (paho-mqtt, QoS 1, persistent session, manual acks:
a message is acknowledged to the broker only once the recorder has staged it, so a crash redelivers it)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from jangin.capture.sources._cfg import Cfg, Outage
from jangin.capture.sources.base import ChannelSpec, Frame, Gap, SampleBatch, SourceHealth
from jangin.core import CaptureError

__all__ = ["MqttSource"]

log = logging.getLogger(__name__)

_KEYS = (
    "type",
    "host",
    "port",
    "topic",
    "client_id",
    "device",
    "keepalive_s",
    "reconnect_max_s",
    "username",
    "username_env",
    "password_env",
    "password_file",
    "offsets",
    "channels",
)
_CHANNEL_KEYS = ("topic", "channel", "unit", "device")


@dataclass(frozen=True)
class _Mapped:
    channel: str
    unit: str | None
    device: str


def _tmax(t: Any) -> float:
    """Latest time of a part (a float for one sample, an array for a batch; -inf when empty)."""
    if isinstance(t, float):
        return t
    return float(t.max()) if len(t) else -np.inf


@dataclass
class _Msg:
    device: str
    parts: list[tuple[str, Any, Any]]  # (channel, t, value): floats (one sample) or arrays (a batch)
    mid: int
    qos: int


class MqttSource:
    """Subscribe to MQTT topics of sensor samples.

    Station-YAML keys (``type: mqtt``)::

        host: 127.0.0.1               # broker (required)
        port: 1883
        topic: plant/st-01/#          # subscription (wildcards allowed; default: the channels' topics)
        client_id: jangin-st-01       # keep it stable: the broker keeps the session (and what was not
                                      # acknowledged) under it (default: jangin-<source name>)
        device: st-01                 # device of mapped topics (default: the source name)
        keepalive_s: 30
        reconnect_max_s: 10           # reconnect backoff cap (starts at 0.2 s)
        username: recorder            # or username_env: NAME_OF_ENV_VAR
        password_env: MQTT_PASSWORD   # the NAME of an env var holding it, or password_file: PATH
        offsets: {thermo: -1.5}       # device clock offsets (s), added to the messages' times
        channels:                     # topic -> channel, for topics that carry one bare value
          - topic: plant/st-01/temp
            channel: plate_temp
            unit: degC
            device: thermo            # default: the source's device

    Message forms (JSON): one device batch ``{"device", "t": [...], "channels": {name: [...]},
    "units": {name: unit}}``; one sample ``{"device", "channel", "ts", "value", "unit"}``; and, on a
    mapped topic, ``{"ts", "value"}`` or a bare number (no time in the message: the receive time is
    used and counted in ``health().extra["receive_time"]``). ``t``/``ts`` are unix seconds on the
    device's clock. A malformed message is acknowledged (so it is not redelivered forever), dropped and
    counted (``bad_messages``).

    Each :class:`SampleBatch` holds one device's samples and carries the broker message ids as its
    token; :meth:`ack` acknowledges them. A redelivered message (DUP flag) whose samples are not newer
    than what was already read is dropped and counted (``duplicates``). The broker must let enough
    QoS 1 messages be in flight un-acknowledged (mosquitto: ``max_inflight_messages 0`` or a few
    thousand; its default of 20 throttles a source that acknowledges after staging).

    A lost broker is reported as one :class:`Gap` per device seen, on the recorder's clock, from the
    last message received before the loss to the reconnection (paho reconnects by itself, backing off
    from 1 s to ``reconnect_max_s``).
    """

    def __init__(self, name: str, cfg: Mapping[str, Any]) -> None:
        c = Cfg(name, cfg, "", _KEYS)
        self.name = name
        self.host = c.text("host", required=True) or ""
        self.port = c.integer("port", 1883, lo=1, hi=65535) or 1883
        self.device = c.text("device", name) or name
        self.client_id: str = c.text("client_id", f"jangin-{name}") or name
        self.keepalive_s = int(c.number("keepalive_s", 30.0, positive=True) or 30)
        self.reconnect_max_s = c.number("reconnect_max_s", 10.0, positive=True) or 10.0
        self._user = c.text("username") or c.secret("username_env")
        self._password = c.secret("password_env", "password_file")
        self.offsets: dict[str, float] = {}
        if c.has("offsets"):
            offs = c.cfg["offsets"]
            if not isinstance(offs, Mapping) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in offs.values()
            ):
                raise c.error("offsets", "must map device names to seconds")
            self.offsets = {str(k): float(v) for k, v in offs.items()}
        self._mapped: dict[str, _Mapped] = {}
        specs: list[ChannelSpec] = []
        for e in c.entries("channels", _CHANNEL_KEYS, required=False):
            topic = e.text("topic", required=True) or ""
            if "+" in topic or "#" in topic:
                raise e.error("topic", f"{topic!r}: a mapped topic names one topic (no wildcards)")
            m = _Mapped(
                e.text("channel", required=True) or "", e.text("unit"), e.text("device", self.device) or ""
            )
            self._mapped[topic] = m
            specs.append(ChannelSpec(m.channel, m.unit, topic, device=m.device))
        sub = c.text("topic")
        self.topics = [sub] if sub else list(self._mapped)
        if not self.topics:
            raise c.error("topic", "missing (give topic, or channels with topics)")
        self.channels = specs
        self.units: dict[tuple[str, str], str | None] = {
            (m.device, m.channel): m.unit for m in self._mapped.values()
        }
        self._cond = threading.Condition()
        self._items: list[_Msg | Gap] = []
        self._last_t: dict[tuple[str, str], float] = {}
        self._outage = Outage()
        self._last_rx: float | None = None
        self._devices: set[str] = set()
        self._health = SourceHealth(
            extra={"bad_messages": 0, "duplicates": 0, "receive_time": 0, "unacked": 0}
        )
        self._client: Any = None
        self._subscribed = threading.Event()
        self._closing = False
        self._connected_once = False

    @classmethod
    def from_config(cls, name: str, cfg: Mapping[str, Any]) -> MqttSource:
        """Build from the station-YAML mapping (keys in the class docstring); CaptureError names bad fields."""
        return cls(name, cfg)

    # -- messages (paho's network thread) --------------------------------------------------------------

    def _parse(self, topic: str, payload: bytes, received: float) -> tuple[str, list[tuple[str, Any, Any]]]:
        mapped = self._mapped.get(topic)
        if mapped is not None:
            try:
                m: Any = json.loads(payload)
            except ValueError:
                m = None
            if isinstance(m, int | float) and not isinstance(m, bool):
                m = {"value": m}
            if not isinstance(m, dict) or "value" not in m:
                raise ValueError("expected a number or {ts, value}")
            if "ts" in m:
                ts = float(m["ts"]) + self.offsets.get(mapped.device, 0.0)
            else:
                ts = received
                self._health.extra["receive_time"] += 1
            return mapped.device, [(mapped.channel, ts, float(m["value"]))]
        m = json.loads(payload)
        dev = str(m["device"])
        off = self.offsets.get(dev, 0.0)
        if "channels" in m:
            t = np.asarray(m["t"], np.float64) + off
            parts = []
            for ch, v in m["channels"].items():
                vals = np.asarray(v, np.float64)
                if vals.shape != t.shape:
                    raise ValueError(f"channel {ch}: {len(vals)} values for {len(t)} times")
                parts.append((str(ch), t, vals))
                self.units.setdefault((dev, str(ch)), (m.get("units") or {}).get(ch))
            return dev, parts
        ch = str(m["channel"])
        self.units.setdefault((dev, ch), m.get("unit"))
        return dev, [(ch, float(m["ts"]) + off, float(m["value"]))]

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        received = time.time()
        try:
            dev, parts = self._parse(msg.topic, msg.payload, received)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self._health.extra["bad_messages"] += 1
            self._health.last_error = f"{msg.topic}: malformed message: {exc}"
            log.warning("source %s: %s: dropped a malformed message: %s", self.name, msg.topic, exc)
            client.ack(msg.mid, msg.qos)
            return
        with self._cond:
            tmax = {ch: _tmax(t) for ch, t, _ in parts}
            if msg.dup and all(tm <= self._last_t.get((dev, ch), -np.inf) for ch, tm in tmax.items()):
                self._health.extra["duplicates"] += 1
                client.ack(msg.mid, msg.qos)
                return
            for ch, tm in tmax.items():
                key = (dev, ch)
                if tm > self._last_t.get(key, -np.inf):
                    self._last_t[key] = tm
            self._items.append(_Msg(dev, parts, msg.mid, msg.qos))
            self._devices.add(dev)
            self._last_rx = received
            if tmax:
                self._health.lag_s = received - max(tmax.values())
            self._cond.notify()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        if getattr(rc, "is_failure", False):
            self._health.last_error = f"broker refused the connection: {rc}"
            return
        # The gap ends now, before SUBSCRIBE goes out: whatever the new subscription delivers was
        # published after the broker took it, so after this time (a broker that kept the session may
        # also deliver what it queued during the outage: real samples, inside the gap).
        span = self._outage.back(time.time())
        if span is not None:
            self._health.reconnects += 1
            log.warning("source %s: reconnected after %.1f s", self.name, span[1] - span[0])
            with self._cond:
                for dev in sorted(self._devices) or [self.device]:
                    self._items.append(Gap(self.name, dev, *span))
                self._cond.notify()
        client.subscribe([(t, 1) for t in self.topics])

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, rcs: Any, props: Any = None) -> None:
        failed = [rc for rc in rcs if getattr(rc, "is_failure", False)]
        if failed:
            self._health.last_error = f"broker refused the subscription: {failed[0]}"
            return
        self._health.connected = True
        self._subscribed.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        self._health.connected = False
        if self._closing:
            return
        self._health.last_error = f"disconnected: {rc}"
        if self._outage.lost(
            self._last_rx if self._last_rx is not None else time.time(), f"broker lost: {rc}"
        ):
            log.warning("source %s: broker %s:%d lost (%s)", self.name, self.host, self.port, rc)

    # -- life cycle ------------------------------------------------------------------------------------

    def open(self) -> None:
        """Connect (persistent session), subscribe at QoS 1 and wait for the broker's SUBACK.

        Raises:
            CaptureError: The broker is unreachable or does not confirm the subscription.
        """
        import paho.mqtt.client as mqtt

        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False, manual_ack=True
        )
        if self._user is not None:
            client.username_pw_set(self._user, self._password)
        client.reconnect_delay_set(min_delay=1, max_delay=max(1, int(self.reconnect_max_s)))
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        try:
            client.connect(self.host, self.port, keepalive=self.keepalive_s)
        except OSError as exc:
            raise CaptureError(
                f"source {self.name}: MQTT broker {self.host}:{self.port} unreachable: {exc}",
                hint="check host/port and that the broker runs",
            ) from exc
        client.loop_start()
        if not self._subscribed.wait(10.0):
            client.loop_stop()
            client.disconnect()
            raise CaptureError(
                f"source {self.name}: MQTT broker {self.host}:{self.port}: no SUBACK for {', '.join(self.topics)}"
                f" after 10 s ({self._health.last_error or 'no answer'})"
            )
        self._client = client

    def read(self, timeout_s: float) -> list[SampleBatch | Gap | Frame]:
        """Messages received since the last call, as one batch per device (per run between gaps)."""
        with self._cond:
            if not self._items:
                self._cond.wait(max(0.0, timeout_s))
            items, self._items = self._items, []
        received = time.time()
        out: list[SampleBatch | Gap | Frame] = []
        run: dict[str, list[_Msg]] = {}

        def flush() -> None:
            for dev, msgs in run.items():
                chs: list[str] = []
                ts: list[float] = []
                vs: list[float] = []
                arrays = []
                for m in msgs:
                    for ch, t, v in m.parts:
                        if isinstance(t, float):  # one sample: no array per message
                            chs.append(ch)
                            ts.append(t)
                            vs.append(v)
                        else:
                            arrays.append((np.full(len(t), ch, dtype=object), t, v))
                batch = SampleBatch(
                    source=self.name,
                    device=dev,
                    channel=np.concatenate([np.asarray(chs, dtype=object), *(a[0] for a in arrays)]),
                    t=np.concatenate([np.asarray(ts, dtype=np.float64), *(a[1] for a in arrays)]),
                    value=np.concatenate([np.asarray(vs, dtype=np.float64), *(a[2] for a in arrays)]),
                    received=received,
                    token=[(m.mid, m.qos) for m in msgs],
                )
                out.append(batch)
                self._health.samples += len(batch)
            run.clear()

        for it in items:
            if isinstance(it, Gap):
                flush()
                out.append(it)
            else:
                run.setdefault(it.device, []).append(it)
        flush()
        return out

    def ack(self, token: Any) -> None:
        """Acknowledge the broker messages of a staged batch (``token``: its message ids)."""
        if self._client is None or not token:
            return
        for mid, qos in token:
            self._client.ack(mid, qos)

    def unit(self, device: str, channel: str) -> str | None:
        """The unit a message or the cfg gave for ``channel`` of ``device``, if any."""
        return self.units.get((device, channel))

    def health(self) -> SourceHealth:
        return self._health

    def close(self) -> None:
        """Disconnect; the broker keeps the session, so messages read but not acknowledged come again."""
        self._closing = True
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None
        self._health.connected = False
        with self._cond:
            self._cond.notify_all()
