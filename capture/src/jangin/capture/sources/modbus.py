"""Modbus TCP source: registers and coils polled at a fixed rate (pymodbus client in a background thread).

Modbus carries no timestamps: each sample's ``t`` is the recorder's clock (``time.time()``) when the
poll's first request was sent (``health().extra["timestamps"] == "poll"``).
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jangin.capture.sources._buffer import SampleBuffer
from jangin.capture.sources._cfg import Cfg, Outage, require
from jangin.capture.sources.base import ChannelSpec, Frame, Gap, SampleBatch, SourceHealth
from jangin.core import CaptureError

__all__ = ["ModbusSource"]

log = logging.getLogger(__name__)

#: data type -> (registers, struct format)
_TYPES: dict[str, tuple[int, str]] = {
    "int16": (1, ">h"),
    "uint16": (1, ">H"),
    "int32": (2, ">i"),
    "uint32": (2, ">I"),
    "float32": (2, ">f"),
    "float64": (4, ">d"),
    "bool": (1, ""),
}
_TABLES = ("holding", "input", "coil", "discrete")
_BITS = ("coil", "discrete")
_KEYS = (
    "type",
    "host",
    "port",
    "unit_id",
    "device",
    "rate_hz",
    "timeout_s",
    "reconnect_max_s",
    "max_registers_per_read",
    "channels",
)
_CHANNEL_KEYS = (
    "name",
    "table",
    "address",
    "data_type",
    "word_order",
    "byte_order",
    "scale",
    "offset",
    "unit",
)


@dataclass(frozen=True)
class _Reg:
    index: int  # channel index
    table: str
    address: int
    data_type: str
    words: int
    word_order: str
    byte_order: str
    scale: float
    offset: float

    def decode(self, words: list[int]) -> float:
        """Registers (uint16 each, as read) -> scaled value."""
        if self.data_type == "bool":
            return float(bool(words[0])) * self.scale + self.offset
        ws = list(words) if self.word_order == "big" else list(reversed(words))
        raw = b"".join(
            w.to_bytes(2, "big") if self.byte_order == "big" else w.to_bytes(2, "little") for w in ws
        )
        return float(struct.unpack(_TYPES[self.data_type][1], raw)[0]) * self.scale + self.offset


@dataclass(frozen=True)
class _Range:
    table: str
    address: int
    count: int
    regs: tuple[_Reg, ...]


def _ranges(regs: list[_Reg], max_count: int) -> list[_Range]:
    """Contiguous (or overlapping) addresses of one table merged into one read of at most ``max_count``."""
    out: list[_Range] = []
    for table in _TABLES:
        group = sorted((r for r in regs if r.table == table), key=lambda r: r.address)
        cur: list[_Reg] = []
        start = end = 0
        limit = max_count if table not in _BITS else 2000
        for r in group:
            r_end = r.address + r.words
            if cur and r.address <= end and max(end, r_end) - start <= limit:
                cur.append(r)
                end = max(end, r_end)
                continue
            if cur:
                out.append(_Range(table, start, end - start, tuple(cur)))
            cur, start, end = [r], r.address, r_end
        if cur:
            out.append(_Range(table, start, end - start, tuple(cur)))
    return out


class ModbusSource:
    """Poll a Modbus TCP server's holding/input registers, coils and discrete inputs.

    Station-YAML keys (``type: modbus``)::

        host: 10.0.0.5            # required
        port: 502                 # default 502
        unit_id: 1                # Modbus unit (device) id, default 1
        device: press1            # sensor_samples.device (default: the source name)
        rate_hz: 20               # polls per second (default 10)
        timeout_s: 1.0            # per request (default 1)
        reconnect_max_s: 5.0      # reconnect backoff cap (starts at 0.1 s, doubles)
        max_registers_per_read: 125   # contiguous channels are read in one request up to this
        channels:
          - name: oil_temp        # channel name in sensor_samples
            table: holding        # holding | input | coil | discrete
            address: 0            # 0-based protocol address
            data_type: float32    # int16 uint16 int32 uint32 float32 float64 bool (coil/discrete: bool)
            word_order: big       # big (high word first, default) | little
            byte_order: big       # byte order inside each register: big (default) | little
            scale: 0.1            # value = raw * scale + offset
            offset: 0.0
            unit: degC

    Timestamps are poll times on the recorder's clock (Modbus has no source timestamps). A lost
    connection is reported as one :class:`Gap` from the last good poll to the first good poll after
    reconnecting; nothing is interpolated. An exception response (illegal address) found at
    :meth:`open` is a :class:`CaptureError` naming the channel; later ones count as ``dropped``.
    """

    def __init__(self, name: str, cfg: Mapping[str, Any]) -> None:
        c = Cfg(name, cfg, "", _KEYS)
        require(name, "pymodbus", "modbus")
        regs: list[_Reg] = []
        specs: list[ChannelSpec] = []
        rate = c.number("rate_hz", 10.0, positive=True)
        assert rate is not None
        for i, e in enumerate(c.entries("channels", _CHANNEL_KEYS)):
            ch = e.text("name", required=True)
            assert ch is not None
            table = e.choice("table", _TABLES, "holding")
            dtype = e.choice("data_type", list(_TYPES), "bool" if table in _BITS else "uint16")
            if table in _BITS and dtype != "bool":
                raise e.error("data_type", f"{table} carries bits: use bool, not {dtype}")
            address = e.integer("address", lo=0, hi=65535)
            if address is None:
                raise e.error("address", "missing")
            regs.append(
                _Reg(
                    index=i,
                    table=table,
                    address=address,
                    data_type=dtype,
                    words=1 if table in _BITS else _TYPES[dtype][0],
                    word_order=e.choice("word_order", ("big", "little"), "big"),
                    byte_order=e.choice("byte_order", ("big", "little"), "big"),
                    scale=float(e.number("scale", 1.0)),  # type: ignore[arg-type]
                    offset=float(e.number("offset", 0.0)),  # type: ignore[arg-type]
                )
            )
            specs.append(ChannelSpec(ch, e.text("unit"), f"{table}:{address}", rate))
        names = [s.name for s in specs]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup:
            raise c.error("channels", f"channel {dup!r} appears twice")
        self.name, self.channels = name, specs
        self.device = c.text("device", name) or name
        self.host = c.text("host", required=True) or ""
        self.port = c.integer("port", 502, lo=1, hi=65535) or 502
        self.unit_id = c.integer("unit_id", 1, lo=0, hi=255) or 0
        self.rate_hz = rate
        self.timeout_s = c.number("timeout_s", 1.0, positive=True) or 1.0
        self.reconnect_max_s = c.number("reconnect_max_s", 5.0, positive=True) or 5.0
        self._ranges = _ranges(regs, c.integer("max_registers_per_read", 125, lo=1, hi=125) or 125)
        self._buf = SampleBuffer(name, self.device, names)
        self._outage = Outage()
        self._client: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._health = SourceHealth(extra={"timestamps": "poll", "reads_per_poll": len(self._ranges)})
        self._last_ok: float | None = None
        self._late = 0
        self._refused = 0

    @classmethod
    def from_config(cls, name: str, cfg: Mapping[str, Any]) -> ModbusSource:
        """Build from the station-YAML mapping (keys in the class docstring); CaptureError names bad fields."""
        return cls(name, cfg)

    # -- life cycle ------------------------------------------------------------------------------------

    def _endpoint(self) -> str:
        return f"modbus {self.host}:{self.port} (unit {self.unit_id})"

    def _connect(self) -> bool:
        from pymodbus.client import ModbusTcpClient

        if self._client is not None:
            self._client.close()
        self._client = ModbusTcpClient(self.host, port=self.port, timeout=self.timeout_s, retries=0)
        return bool(self._client.connect())

    def open(self) -> None:
        """Connect, read every range once (to refuse bad addresses now), then poll in a background thread.

        Raises:
            CaptureError: The server is unreachable, or a channel's address is refused.
        """
        if not self._connect():
            raise CaptureError(
                f"source {self.name}: {self._endpoint()} unreachable", hint="check host/port and the network"
            )
        from pymodbus.exceptions import ModbusException

        for r in self._ranges:
            try:
                self._read_range(r)
            except _Refused as exc:
                self._client.close()
                chans = ", ".join(self.channels[g.index].name for g in r.regs)
                raise CaptureError(
                    f"source {self.name}: {r.table} {r.address}..{r.address + r.count - 1} ({chans}): "
                    f"refused by the server ({exc})",
                    hint="check the channels' table/address against the device's register map",
                ) from exc
            except ModbusException as exc:
                raise CaptureError(f"source {self.name}: {self._endpoint()}: {exc}") from exc
        self._health.connected = True
        self._thread = threading.Thread(target=self._loop, name=f"jangin-modbus-{self.name}", daemon=True)
        self._thread.start()

    def _read_range(self, r: _Range) -> list[int] | list[bool]:
        c, kw = self._client, {"count": r.count, "device_id": self.unit_id}
        if r.table == "holding":
            resp = c.read_holding_registers(r.address, **kw)
        elif r.table == "input":
            resp = c.read_input_registers(r.address, **kw)
        elif r.table == "coil":
            resp = c.read_coils(r.address, **kw)
        else:
            resp = c.read_discrete_inputs(r.address, **kw)
        if resp.isError():
            raise _Refused(str(resp))
        return list(resp.bits[: r.count]) if r.table in _BITS else list(resp.registers)

    def _poll(self) -> tuple[list[int], list[float], list[float], float]:
        t = time.time()
        ch: list[int] = []
        vals: list[float] = []
        for r in self._ranges:
            data = self._read_range(r)
            for g in r.regs:
                k = g.address - r.address
                ch.append(g.index)
                vals.append(g.decode(data[k : k + g.words]))  # type: ignore[arg-type]
        return ch, [t] * len(ch), vals, t

    def _loop(self) -> None:
        from pymodbus.exceptions import ModbusException

        period = 1.0 / self.rate_hz
        delay = 0.1
        next_t = time.monotonic()
        while not self._stop.is_set():
            if self._outage.active:
                if self._stop.wait(delay):
                    break
                try:
                    ok = self._connect()
                except OSError:
                    ok = False
                if not ok:
                    delay = min(delay * 2, self.reconnect_max_s)
                    continue
                delay = 0.1
                self._health.reconnects += 1
                next_t = time.monotonic()
            try:
                ch, t, v, t0 = self._poll()
            except _Refused as exc:
                self._refused += 1
                self._health.last_error = str(exc)
            except (ModbusException, OSError) as exc:
                self._health.last_error = f"{type(exc).__name__}: {exc}"
                if self._outage.lost(self._last_ok if self._last_ok is not None else time.time(), str(exc)):
                    log.warning("source %s: %s lost: %s", self.name, self._endpoint(), exc)
                self._health.connected = False
                continue
            else:
                span = self._outage.back(t0)
                if span is not None:
                    self._buf.add_gap(*span)
                    log.warning("source %s: reconnected after %.1f s", self.name, span[1] - span[0])
                self._health.connected = True
                self._buf.add_many(ch, t, v)
                self._last_ok = t0
                self._health.lag_s = time.time() - t0
            next_t += period
            now = time.monotonic()
            if now > next_t + period:  # fell behind (slow server): skip the missed polls, count them
                missed = int((now - next_t) / period)
                self._late += missed
                self._health.extra["late_polls"] = self._late
                next_t += missed * period
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    def read(self, timeout_s: float) -> list[SampleBatch | Gap | Frame]:
        """Samples polled since the last call (one batch per run between gaps), waiting at most ``timeout_s``."""
        return list(self._buf.take(timeout_s))

    def ack(self, token: Any) -> None:
        """Nothing to acknowledge: a Modbus server cannot redeliver a poll."""

    def health(self) -> SourceHealth:
        self._health.samples = self._buf.samples
        self._health.dropped = self._refused + self._buf.dropped
        return self._health

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5 + self.timeout_s)
        if self._client is not None:
            self._client.close()
        self._health.connected = False
        self._buf.wake()


class _Refused(Exception):
    """The server answered with a Modbus exception response (e.g. illegal data address)."""
