"""OPC UA source: subscriptions on a server's variables (asyncua client in a background thread with its
own event loop), with the server's source timestamps, reconnect with backoff and resubscription."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jangin.capture.sources._buffer import SampleBuffer
from jangin.capture.sources._cfg import Cfg, Outage, require
from jangin.capture.sources.base import ChannelSpec, Frame, Gap, SampleBatch, SourceHealth
from jangin.core import CaptureError

__all__ = ["OpcUaSource"]

log = logging.getLogger(__name__)

_KEYS = (
    "type",
    "url",
    "device",
    "publishing_interval_ms",
    "sampling_interval_ms",
    "trigger",
    "timeout_s",
    "watchdog_s",
    "reconnect_max_s",
    "username",
    "username_env",
    "password_env",
    "password_file",
    "security",
    "channels",
)
_CHANNEL_KEYS = ("name", "node", "path", "sampling_interval_ms", "unit", "map")
_SECURITY_KEYS = ("policy", "mode", "certificate", "private_key", "server_certificate")
_UTC = dt.UTC


@dataclass(frozen=True)
class _Tag:
    index: int
    name: str
    node: str | None  # node id text (ns=2;s=Machine.Temp)
    path: str | None  # browse path (Objects/2:Machine/2:Temp)
    sampling_ms: float
    mapping: dict[str, float] | None  # text value -> number

    @property
    def ref(self) -> str:
        return self.node or f"path {self.path}"


def _unix(d: dt.datetime) -> float:
    return (d if d.tzinfo is not None else d.replace(tzinfo=_UTC)).timestamp()


class _Handler:
    """asyncua data-change handler of one connection (``gen``); notifications of an older connection are
    ignored (a late task of a dropped client must not land after the gap)."""

    def __init__(self, src: OpcUaSource, gen: int, index: dict[Any, int]) -> None:
        self.src, self.gen, self.index = src, gen, index

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        src = self.src
        if self.gen != src._gen:
            return
        ch = self.index.get(node.nodeid)
        if ch is None:
            return
        src._on_value(ch, val, data.monitored_item.Value)

    def status_change_notification(self, status: Any) -> None:
        log.info("source %s: subscription status %s", self.src.name, status)


QUEUE_S = 1.0  # seconds of values the server keeps per monitored item while the recorder is late


class OpcUaSource:
    """Subscribe to OPC UA variables; samples carry the server's timestamps.

    Station-YAML keys (``type: opcua``)::

        url: opc.tcp://10.0.0.7:4840/        # required
        device: machine1                     # sensor_samples.device (default: the source name)
        publishing_interval_ms: 100          # how often the server sends notifications (default 100)
        sampling_interval_ms: 100            # default per channel (default 100)
        trigger: status_value_timestamp      # or status_value: notify also when only the source
                                             # timestamp moves (a steady set point keeps its samples)
        timeout_s: 4                         # per request
        watchdog_s: 5                        # a silent link is declared lost after this (a closed one at once)
        reconnect_max_s: 10                  # reconnect backoff cap (starts at 0.2 s, doubles)
        username: operator                   # or username_env: NAME_OF_ENV_VAR
        password_env: OPCUA_PASSWORD         # the NAME of an env var holding it, or:
        password_file: /run/secrets/opcua    # a file holding it (never the password itself)
        security:                            # optional; default: no security
          policy: Basic256Sha256
          mode: SignAndEncrypt               # or Sign
          certificate: /etc/jangin/client.der
          private_key: /etc/jangin/client.pem
          server_certificate: /etc/jangin/server.der   # optional
        channels:
          - name: temp                       # channel name in sensor_samples
            node: "ns=2;s=Machine.Temp"      # a node id, or:
            # path: Objects/2:Machine/2:Temp # a browse path (namespace index optional: Objects/Machine/Temp)
            sampling_interval_ms: 10         # this channel's own rate
            unit: degC
            map: {idle: 0, run: 1}           # text values -> numbers (unmapped text is counted, dropped)

    Timestamps: each value's SourceTimestamp; when the server sends none, its ServerTimestamp; when
    neither, the receive time. ``health().extra["timestamps"]`` counts each kind, so a fallback is never
    silent. Booleans read 0/1. Values with a bad status are dropped and counted (``bad_status``); a value
    whose source time is not newer than the channel's last one (the repeat a server sends on
    resubscribing) is dropped and counted (``repeats``).

    Outages: the client's watchdog notices a lost server; the source reconnects with backoff,
    resubscribes and reports one :class:`Gap` from the last sample before the outage to the first one
    after it (or the reconnect time, if earlier); nothing is interpolated. The gap and what follows it
    come out of :meth:`read` about two publishing intervals after the reconnect.
    """

    def __init__(self, name: str, cfg: Mapping[str, Any]) -> None:
        c = Cfg(name, cfg, "", _KEYS)
        require(name, "asyncua", "opcua")
        from asyncua import ua

        self.name = name
        self.url = c.text("url", required=True) or ""
        if not self.url.startswith("opc.tcp://"):
            raise c.error("url", f"{self.url!r} is not an opc.tcp:// URL")
        self.device = c.text("device", name) or name
        self.publishing_ms = c.number("publishing_interval_ms", 100.0, positive=True) or 100.0
        default_ms = c.number("sampling_interval_ms", 100.0, positive=True) or 100.0
        # OPC UA's default trigger (status + value) sends a constant value once: a steady set point would
        # leave no samples to bin; with the timestamp in the trigger each new source time is a sample.
        self.trigger = c.choice(
            "trigger", ("status_value_timestamp", "status_value"), "status_value_timestamp"
        )
        self.timeout_s = c.number("timeout_s", 4.0, positive=True) or 4.0
        # asyncua probes the server every watchdog_s and waits as long for the answer: 1 s (its default)
        # declared a busy server lost in the bench on an overloaded 2-core box, so 5 s
        self.watchdog_s = c.number("watchdog_s", 5.0, positive=True) or 5.0
        self.reconnect_max_s = c.number("reconnect_max_s", 10.0, positive=True) or 10.0
        self._user = c.text("username") or c.secret("username_env")
        self._password = c.secret("password_env", "password_file")
        self._security: str | None = None
        if c.has("security"):
            s = Cfg(name, c.cfg["security"], "security", _SECURITY_KEYS)
            parts = [
                s.choice(
                    "policy",
                    ("Basic256Sha256", "Aes128Sha256RsaOaep", "Aes256Sha256RsaPss"),
                    "Basic256Sha256",
                ),
                s.choice("mode", ("SignAndEncrypt", "Sign"), "SignAndEncrypt"),
                s.text("certificate", required=True) or "",
                s.text("private_key", required=True) or "",
            ]
            server_cert = s.text("server_certificate")
            self._security = ",".join([*parts, server_cert] if server_cert else parts)
        self._tags: list[_Tag] = []
        specs: list[ChannelSpec] = []
        for i, e in enumerate(c.entries("channels", _CHANNEL_KEYS)):
            ch = e.text("name", required=True) or ""
            node, path = e.text("node"), e.text("path")
            if (node is None) == (path is None):
                raise e.error("node", "give exactly one of node (a node id) or path (a browse path)")
            if node is not None:
                try:
                    ua.NodeId.from_string(node)
                except (ua.UaError, ValueError) as exc:
                    raise e.error(
                        "node", f"{node!r} is not a node id (like ns=2;s=Machine.Temp or i=2258)"
                    ) from exc
            mapping = None
            if e.has("map"):
                m = e.cfg["map"]
                if not isinstance(m, Mapping) or not all(
                    isinstance(v, int | float) and not isinstance(v, bool) for v in m.values()
                ):
                    raise e.error("map", "must map text values to numbers")
                mapping = {str(k): float(v) for k, v in m.items()}
            ms = e.number("sampling_interval_ms", default_ms, positive=True) or default_ms
            tag = _Tag(i, ch, node, path, ms, mapping)
            self._tags.append(tag)
            specs.append(ChannelSpec(ch, e.text("unit"), tag.ref, 1000.0 / ms))
        names = [t.name for t in self._tags]
        refs = [t.ref for t in self._tags]
        for what, vals in (("channel", names), ("node", refs)):
            dup = next((v for v in vals if vals.count(v) > 1), None)
            if dup:
                raise c.error("channels", f"{what} {dup!r} appears twice")
        self.channels = specs
        self._buf = SampleBuffer(name, self.device, names)
        self._outage = Outage()
        self._health = SourceHealth(
            extra={"timestamps": {"source": 0, "server": 0, "receive": 0}, "bad_status": 0, "repeats": 0}
        )
        self._ts_counts: dict[str, int] = self._health.extra["timestamps"]
        self._last_t = [-math.inf] * len(self._tags)
        self._max_t: float | None = None
        self._unmapped = 0
        self._gen = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._lost: asyncio.Event | None = None
        self._task: Any = None
        self._closing = False

    @classmethod
    def from_config(cls, name: str, cfg: Mapping[str, Any]) -> OpcUaSource:
        """Build from the station-YAML mapping (keys in the class docstring); CaptureError names bad fields."""
        return cls(name, cfg)

    # -- the values ------------------------------------------------------------------------------------

    def _on_value(self, ch: int, val: Any, dv: Any) -> None:
        if dv is not None and dv.StatusCode is not None and not dv.StatusCode.is_good():
            self._health.extra["bad_status"] += 1
            return
        stamp = dv.SourceTimestamp if dv is not None else None
        if stamp is not None:
            self._ts_counts["source"] += 1
            t = _unix(stamp)
        elif dv is not None and dv.ServerTimestamp is not None:
            self._ts_counts["server"] += 1
            t = _unix(dv.ServerTimestamp)
        else:
            self._ts_counts["receive"] += 1
            t = time.time()
        if t <= self._last_t[ch]:
            self._health.extra["repeats"] += 1
            return
        if isinstance(val, str):
            mapping = self._tags[ch].mapping
            if mapping is None or val not in mapping:
                self._unmapped += 1
                self._health.extra["unmapped_text"] = self._unmapped
                return
            v = mapping[val]
        else:
            try:
                v = float(val)
            except (TypeError, ValueError):
                self._unmapped += 1
                self._health.extra["unmapped_text"] = self._unmapped
                return
        self._last_t[ch] = t
        if self._max_t is None or t > self._max_t:
            self._max_t = t
        self._buf.add(ch, t, v)
        self._health.lag_s = time.time() - t

    # -- connection (in the source's event loop) -------------------------------------------------------

    async def _resolve(self, client: Any, tag: _Tag) -> Any:
        from asyncua import ua

        if tag.node is not None:
            try:
                return client.get_node(tag.node)
            except (ValueError, ua.UaError) as exc:
                raise CaptureError(
                    f"source {self.name}: channel {tag.name}: bad node id {tag.node!r}"
                ) from exc
        assert tag.path is not None
        parts = [p for p in tag.path.strip("/").split("/") if p]
        node = client.nodes.root
        if parts and parts[0].split(":")[-1] == "Objects":
            node, parts = client.nodes.objects, parts[1:]
        for part in parts:
            ns, _, bname = part.rpartition(":")
            for child in await node.get_children():
                qn = await child.read_browse_name()
                if qn.Name == bname and (not ns or qn.NamespaceIndex == int(ns)):
                    node = child
                    break
            else:
                raise CaptureError(
                    f"source {self.name}: channel {tag.name}: browse path {tag.path!r} has no {part!r}",
                    hint="browse the server (e.g. with opcua-client) and copy the path or node id",
                )
        return node

    async def _connect(self) -> None:
        """Connect a fresh client, resolve every channel and subscribe (grouped by sampling interval)."""
        from asyncua import Client, ua  # type: ignore[attr-defined]

        client = Client(self.url, timeout=self.timeout_s, watchdog_intervall=self.watchdog_s)
        if self._user is not None:
            client.set_user(self._user)
        if self._password is not None:
            client.set_password(self._password)
        if self._security is not None:
            await client.set_security_string(self._security)
        lost = asyncio.Event()

        async def on_lost(exc: Exception) -> None:
            self._health.last_error = f"connection lost: {exc!r}"
            lost.set()

        client.connection_lost_callback = on_lost
        await client.connect()
        try:
            nodes = [await self._resolve(client, t) for t in self._tags]
            self._gen += 1
            index = {n.nodeid: t.index for n, t in zip(nodes, self._tags, strict=True)}
            sub = await client.create_subscription(self.publishing_ms, _Handler(self, self._gen, index))
            groups: dict[float, list[int]] = {}
            for t in self._tags:
                groups.setdefault(t.sampling_ms, []).append(t.index)
            for ms, idx in groups.items():
                # the server queues each item's values between publishes: two intervals' worth and at
                # least QUEUE_S of them, so a recorder busy staging (or a late publish) loses nothing
                queue = max(math.ceil(self.publishing_ms / ms) * 2 + 1, math.ceil(QUEUE_S * 1000 / ms))
                trigger = (
                    ua.DataChangeTrigger.StatusValueTimestamp
                    if self.trigger == "status_value_timestamp"
                    else ua.DataChangeTrigger.StatusValue
                )
                handles = await sub._subscribe(  # subscribe_data_change() takes no filter
                    [nodes[i] for i in idx],
                    mfilter=ua.DataChangeFilter(Trigger=trigger),
                    sampling_interval=ms,
                    queuesize=queue,
                )
                for i, h in zip(idx, handles, strict=True):
                    if isinstance(h, ua.StatusCode):
                        tag = self._tags[i]
                        raise CaptureError(
                            f"source {self.name}: channel {tag.name}: {tag.ref} refused by the server ({h.name})",
                            hint="check the node id / browse path against the server's address space",
                        )
        except BaseException:
            await _quiet_disconnect(client)
            raise
        self._client, self._lost = client, lost

    async def _supervise(self) -> None:
        delay = 0.2
        while not self._closing:
            assert self._lost is not None
            await self._lost.wait()
            t_lost = time.time()
            self._health.connected = False
            self._outage.lost(self._max_t if self._max_t is not None else t_lost, "server connection lost")
            log.warning("source %s: %s lost (%s)", self.name, self.url, self._health.last_error)
            await _quiet_disconnect(self._client)
            while not self._closing:
                await asyncio.sleep(delay)
                start = self._outage.start if self._outage.start is not None else t_lost
                self._buf.open_gap(
                    start, time.time(), self._outage.reason, 2 * self.publishing_ms / 1000 + 0.5
                )
                try:
                    await self._connect()
                except Exception as exc:  # any failure: back off and try again
                    self._buf.drop_open_gap()
                    self._health.last_error = f"reconnect: {type(exc).__name__}: {exc}"
                    delay = min(delay * 2, self.reconnect_max_s)
                    continue
                self._outage.back(time.time())
                self._health.reconnects += 1
                self._health.connected = True
                log.warning("source %s: reconnected to %s", self.name, self.url)
                delay = 0.2
                break

    # -- life cycle ------------------------------------------------------------------------------------

    def open(self) -> None:
        """Connect and subscribe (in a background thread's event loop).

        Raises:
            CaptureError: The server is unreachable, refuses the login, or a channel's node is unknown.
        """
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"jangin-opcua-{self.name}", daemon=True
        )
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._connect(), self._loop)
        try:
            fut.result(self.timeout_s * 3 + 5)
        except CaptureError:
            self._stop_loop()
            raise
        except Exception as exc:
            self._stop_loop()
            raise CaptureError(
                f"source {self.name}: cannot connect to {self.url}: {type(exc).__name__}: {exc}",
                hint="check the url, the server, the credentials and the security settings",
            ) from exc
        self._health.connected = True
        self._task = asyncio.run_coroutine_threadsafe(self._supervise(), self._loop)

    def read(self, timeout_s: float) -> list[SampleBatch | Gap | Frame]:
        """Samples notified since the last call (one batch per run between gaps), waiting at most ``timeout_s``."""
        return list(self._buf.take(timeout_s))

    def ack(self, token: Any) -> None:
        """Nothing to acknowledge: an OPC UA subscription does not redeliver."""

    def health(self) -> SourceHealth:
        self._health.samples = self._buf.samples
        self._health.dropped = self._buf.dropped
        self._health.extra["gen"] = self._gen
        return self._health

    def _stop_loop(self) -> None:
        if self._loop is not None and self._loop.is_running():
            # cancel what asyncua left running (publish loop, notifications in flight) so that the loop
            # stops with no pending task
            fut = asyncio.run_coroutine_threadsafe(_cancel_all(), self._loop)
            try:
                fut.result(5)
            except Exception as exc:  # stopping anyway
                log.debug("source %s: cancelling tasks: %r", self.name, exc)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        if self._loop is not None and not self._loop.is_running():
            self._loop.close()
        self._loop, self._thread = None, None

    def close(self) -> None:
        self._closing = True
        if self._loop is not None:
            if self._task is not None:
                self._loop.call_soon_threadsafe(self._task.cancel)
            if self._client is not None:
                fut = asyncio.run_coroutine_threadsafe(_quiet_disconnect(self._client), self._loop)
                try:
                    fut.result(self.timeout_s + 2)
                except Exception as exc:  # closing anyway: say why the goodbye failed
                    log.info("source %s: disconnect: %r", self.name, exc)
            self._stop_loop()
        self._health.connected = False
        self._buf.wake()


async def _cancel_all() -> None:
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _quiet_disconnect(client: Any) -> None:
    """Disconnect, ignoring the errors of a connection that is already gone."""
    if client is None:
        return
    try:
        await asyncio.wait_for(client.disconnect(), 2.0)
    except Exception as exc:
        log.debug("opcua disconnect: %r", exc)
