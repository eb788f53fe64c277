"""OpcUaSource against a real asyncua server on loopback (a simulated machine writing tags at 10-100 Hz)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jangin.capture.sources import Gap, SampleBatch, make_source
from jangin.core import CaptureError

LOGIN = {"username": "operator", "password_env": "JANGIN_TEST_OPCUA_PW"}


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JANGIN_TEST_OPCUA_PW", "s3cret")


def _cfg(url: str, channels: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {"type": "opcua", "url": url, "publishing_interval_ms": 50, "channels": channels, **LOGIN, **kw}


def _drain(src: Any, seconds: float) -> list[Any]:
    out: list[Any] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        out += src.read(0.1)
    return out


def _samples(out: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    b = [x for x in out if isinstance(x, SampleBatch)]
    return (
        np.concatenate([x.channel for x in b]).astype(str),
        np.concatenate([x.t for x in b]),
        np.concatenate([x.value for x in b]),
    )


def test_tags_by_node_id_and_browse_path_with_source_timestamps(opcua_machine: Any) -> None:
    m = opcua_machine
    src = make_source(
        "machine",
        _cfg(
            m.url,
            [
                {"name": "temp", "node": "ns=2;s=Machine.Temp", "unit": "degC"},
                {"name": "f1", "path": "Objects/2:Machine/2:Fast/2:F1", "sampling_interval_ms": 10},
                {"name": "s0", "path": "Objects/Machine/Slow/S0"},
                {"name": "cycle_active", "node": "ns=2;s=Machine.cycle_active"},
                {"name": "recipe_step", "node": "ns=2;s=Machine.recipe_step"},
                {"name": "recipe", "node": "ns=2;s=Machine.recipe_name", "map": {"prep": 1, "run": 2}},
            ],
            device="press-7",
        ),
    )
    src.open()
    try:
        out = _drain(src, 2.0)
    finally:
        src.close()
    assert not any(isinstance(x, Gap) for x in out)
    ch, t, v = _samples(out)
    rel = t - m.t0
    assert {b.device for b in out} == {"press-7"}
    # every value is the machine's function of its own source timestamp: the timestamps are the server's
    np.testing.assert_allclose(v[ch == "temp"], m.temp(rel[ch == "temp"]), atol=1e-6)
    np.testing.assert_allclose(v[ch == "f1"], m.fast_value(1, rel[ch == "f1"]), atol=1e-6)
    np.testing.assert_allclose(v[ch == "s0"], m.slow_value(0, rel[ch == "s0"]), atol=1e-6)
    assert set(v[ch == "cycle_active"]) <= {0.0, 1.0}
    assert set(v[ch == "recipe_step"]) <= {1.0, 2.0, 3.0}
    step = 1 + (rel[ch == "recipe"].astype(int) % 3)  # text mapped to numbers; "cool" (step 3) is not mapped
    assert len(step) and (v[ch == "recipe"] == step).all() and 3 not in step
    # 100 Hz tag sampled at 10 ms: no value lost between notifications (spacing stays ~10 ms)
    tf = np.sort(t[ch == "f1"])
    assert len(tf) >= 100 and np.diff(tf).max() < 0.1
    assert 10 <= (ch == "temp").sum() <= 25
    h = src.health()
    unmapped = h.extra.get("unmapped_text", 0)
    assert h.extra["timestamps"]["source"] == len(t) + unmapped and h.extra["timestamps"]["receive"] == 0
    assert unmapped == (rel[ch == "recipe_step"].astype(int) % 3 == 2).sum()  # each "cool" value, counted
    assert src.channels[0].unit == "degC" and src.channels[1].rate_hz == 100.0


def test_server_restart_gives_one_gap_and_resubscribes(opcua_machine: Any, sim: Any) -> None:
    m = opcua_machine
    src = make_source(
        "machine",
        _cfg(
            m.url,
            [
                {"name": "temp", "node": "ns=2;s=Machine.Temp"},
                {"name": "f0", "node": "ns=2;s=Machine.Fast.0"},
            ],
            reconnect_max_s=0.5,
            watchdog_s=0.5,
        ),
    )
    src.open()
    try:
        out = _drain(src, 1.0)
        t_stop = time.time()
        m.stop()
        out += _drain(src, 1.5)
        assert src.health().connected is False
        m.restart()
        t_back = time.time()
        assert sim.run_until(lambda: out.extend(src.read(0.1)) or src.health().connected, 15)
        out += _drain(src, 1.5)
        h = src.health()
        assert h.reconnects == 1 and h.connected
    finally:
        src.close()
    gaps = [g for g in out if isinstance(g, Gap)]
    assert len(gaps) == 1, gaps
    g = gaps[0]
    assert g.start <= t_stop and g.end is not None and g.end >= t_back - 0.5
    ch, t, v = _samples(out)
    assert not ((t > g.start) & (t < g.end)).any()  # the outage holds no value at all
    for name in ("temp", "f0"):
        assert (t[ch == name] < g.start + 1e-9).sum() > 3 and (t[ch == name] > g.end - 1e-9).sum() > 3
    np.testing.assert_allclose(v[ch == "temp"], m.temp(t[ch == "temp"] - m.t0), atol=1e-6)


@pytest.mark.parametrize(
    ("channel", "match"),
    [
        ({"name": "ghost", "node": "ns=2;s=Machine.Ghost"}, r"channel ghost: ns=2;s=Machine\.Ghost refused"),
        ({"name": "lost", "path": "Objects/Machine/Nope"}, r"channel lost: browse path .* has no 'Nope'"),
    ],
)
def test_unknown_node_is_named(opcua_machine: Any, channel: dict[str, Any], match: str) -> None:
    src = make_source(
        "machine", _cfg(opcua_machine.url, [{"name": "temp", "node": "ns=2;s=Machine.Temp"}, channel])
    )
    with pytest.raises(CaptureError, match=match):
        src.open()


def test_wrong_password_is_refused(
    opcua_machine: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pw = tmp_path / "pw"
    pw.write_text("wrong\n")
    cfg = _cfg(opcua_machine.url, [{"name": "temp", "node": "ns=2;s=Machine.Temp"}])
    del cfg["password_env"]
    cfg["password_file"] = str(pw)
    with pytest.raises(CaptureError, match=r"source machine: cannot connect to opc\.tcp://"):
        make_source("machine", cfg).open()
    pw.write_text("s3cret\n")  # the same file with the right password logs in
    src = make_source("machine", cfg)
    src.open()
    try:
        assert any(isinstance(x, SampleBatch) for x in _drain(src, 0.5))
    finally:
        src.close()


def test_basic256sha256_sign_and_encrypt(opcua_machine: Any, sim: Any, tmp_path: Path) -> None:
    import asyncio

    key, cert = asyncio.run(
        sim.make_certificate(tmp_path, "client", "urn:example.org:FreeOpcUa:opcua-asyncio")
    )
    security = {
        "policy": "Basic256Sha256",
        "mode": "SignAndEncrypt",
        "certificate": str(cert),
        "private_key": str(key),
    }
    src = make_source(
        "machine",
        _cfg(opcua_machine.url, [{"name": "temp", "node": "ns=2;s=Machine.Temp"}], security=security),
    )
    src.open()
    try:
        out = _drain(src, 0.6)
    finally:
        src.close()
    _, t, v = _samples(out)
    assert len(t) >= 2
    np.testing.assert_allclose(v, opcua_machine.temp(t - opcua_machine.t0), atol=1e-6)
