"""ModbusSource against a real pymodbus TCP server on loopback."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from jangin.capture.sources import Gap, SampleBatch, make_source
from jangin.core import CaptureError


def _cfg(port: int, channels: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {"type": "modbus", "host": "127.0.0.1", "port": port, "rate_hz": 50, "channels": channels, **kw}


def _drain(src: Any, seconds: float) -> list[Any]:
    out: list[Any] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        out += src.read(0.1)
    return out


def test_reads_every_type_and_order_with_poll_times(modbus_server: Any, sim: Any) -> None:
    s = modbus_server
    layout = [  # (address, struct format, value, word order)
        (0, ">h", -123, "big"),
        (1, ">H", 54321, "big"),
        (2, ">f", 3.25, "big"),
        (4, ">f", -7.5, "little"),
        (6, ">i", -100_000, "big"),
        (8, ">I", 3_000_000_000, "little"),
        (10, ">d", -2.0625, "big"),
    ]
    for addr, fmt, value, order in layout:
        for k, w in enumerate(sim.words(fmt, value, order)):
            s.holding[addr + k] = w
    s.holding[14] = 0x3412  # uint16 0x1234 with its two bytes swapped
    s.input[3] = 421
    s.coils.update({0: True, 2: True})
    s.discrete[5] = True
    channels = [
        {"name": "i16", "address": 0, "data_type": "int16"},
        {"name": "u16", "address": 1, "data_type": "uint16"},
        {"name": "f32_big", "address": 2, "data_type": "float32"},
        {"name": "f32_little", "address": 4, "data_type": "float32", "word_order": "little"},
        {"name": "i32", "address": 6, "data_type": "int32"},
        {"name": "u32_little", "address": 8, "data_type": "uint32", "word_order": "little"},
        {"name": "f64", "address": 10, "data_type": "float64"},
        {"name": "swapped", "address": 14, "byte_order": "little"},
        {"name": "pressure", "table": "input", "address": 3, "scale": 0.1, "offset": -2.0, "unit": "bar"},
        {"name": "c0", "table": "coil", "address": 0},
        {"name": "c1", "table": "coil", "address": 1},
        {"name": "c2", "table": "coil", "address": 2},
        {"name": "d5", "table": "discrete", "address": 5},
    ]
    src = make_source("press", _cfg(s.port, channels, device="press1"))
    t_before = time.time()
    src.open()
    try:
        out = _drain(src, 0.5)
    finally:
        src.close()
    t_after = time.time()
    batches = [b for b in out if isinstance(b, SampleBatch)]
    assert batches and not any(isinstance(b, Gap) for b in out)
    ch = np.concatenate([b.channel for b in batches])
    val = np.concatenate([b.value for b in batches])
    t = np.concatenate([b.t for b in batches])
    last = {str(c): float(v) for c, v in zip(ch, val, strict=True)}
    assert last == {
        "i16": -123,
        "u16": 54321,
        "f32_big": 3.25,
        "f32_little": -7.5,
        "i32": -100_000,
        "u32_little": 3_000_000_000,
        "f64": -2.0625,
        "swapped": 0x1234,
        "pressure": pytest.approx(40.1),
        "c0": 1.0,
        "c1": 0.0,
        "c2": 1.0,
        "d5": 1.0,
    }
    assert batches[0].device == "press1" and batches[0].source == "press"
    assert t_before <= t.min() and t.max() <= t_after
    polls = np.unique(t)  # one time per poll, shared by its samples
    assert len(t) == len(polls) * len(channels)
    assert 10 <= len(polls) <= 30  # 50 Hz for 0.5 s (loaded CI: at least 10)
    h = src.health()
    assert (
        h.extra["timestamps"] == "poll" and h.extra["reads_per_poll"] == 4
    )  # holding, input, coil, discrete
    assert h.samples == len(t)


def test_server_stopped_and_restarted_gives_one_gap(modbus_server: Any, sim: Any) -> None:
    s = modbus_server
    s.ramp = [0]
    src = make_source(
        "plc",
        _cfg(s.port, [{"name": "ramp", "address": 0}, {"name": "k", "address": 1}], reconnect_max_s=0.4),
    )
    s.holding[1] = 7
    src.open()
    try:
        out = _drain(src, 0.6)
        s.stop()
        t_stop = time.time()
        out += _drain(src, 1.0)
        assert src.health().connected is False
        s.start()
        t_back = time.time()
        out += _drain(src, 0.3)
        assert sim.run_until(lambda: out.extend(src.read(0.1)) or src.health().connected, 10)
        out += _drain(src, 0.5)
    finally:
        src.close()
    gaps = [g for g in out if isinstance(g, Gap)]
    assert len(gaps) == 1, gaps
    g = gaps[0]
    assert g.source == "plc" and g.device == "plc" and g.end is not None
    assert g.start <= t_stop and g.end >= t_back
    t = np.concatenate([b.t for b in out if isinstance(b, SampleBatch)])
    assert not ((t > g.start) & (t < g.end)).any()  # nothing inside the gap: no interpolation
    assert (t <= g.start).sum() >= 10 and (t >= g.end).sum() >= 10
    i = out.index(g)
    assert all(b.t.max() <= g.start for b in out[:i]) and all(b.t.min() >= g.end for b in out[i + 1 :])
    assert src.health().reconnects == 1


def test_refused_address_names_the_channel(modbus_server: Any) -> None:
    src = make_source(
        "plc", _cfg(modbus_server.port, [{"name": "ok", "address": 0}, {"name": "far_away", "address": 5000}])
    )
    with pytest.raises(CaptureError, match=r"far_away.*refused"):
        src.open()


def test_unreachable_server_names_the_endpoint(sim: Any) -> None:
    src = make_source("plc", _cfg(sim.free_port(), [{"name": "x", "address": 0}], timeout_s=0.5))
    with pytest.raises(CaptureError, match=r"source plc: modbus 127\.0\.0\.1:\d+ .*unreachable"):
        src.open()
