"""Station-YAML errors of the live sources: each names the source and the field (no server needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jangin.capture.sources import SOURCE_TYPES, SensorSource, make_source
from jangin.core import CaptureError

MODBUS = {"type": "modbus", "host": "127.0.0.1", "channels": [{"name": "x", "address": 0}]}
OPCUA = {"type": "opcua", "url": "opc.tcp://127.0.0.1:4840/", "channels": [{"name": "x", "node": "ns=2;s=X"}]}
MQTT = {"type": "mqtt", "host": "127.0.0.1", "topic": "a/#"}
CAMERA = {"type": "camera", "url": "0"}


def _with(base: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {**base, **kw}


def _chan(base: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {**base, "channels": [{**base["channels"][0], **kw}]}


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        (_with(MODBUS, hots="x"), r"source s: hots: unknown key \(hint: known keys: .*host"),
        ({k: v for k, v in MODBUS.items() if k != "host"}, r"source s: host: missing"),
        (_with(MODBUS, rate_hz=0), r"source s: rate_hz: must be > 0"),
        (_with(MODBUS, port="502"), r"source s: port: must be an integer"),
        (_with(MODBUS, channels=[]), r"source s: channels: must be a non-empty list"),
        (_chan(MODBUS, data_type="float16"), r"source s: channels\[0\]\.data_type: 'float16' is not one of"),
        (_chan(MODBUS, table="coil", data_type="float32"), r"channels\[0\]\.data_type: coil carries bits"),
        (_chan(MODBUS, address=70000), r"channels\[0\]\.address: must be an integer in \[0, 65535\]"),
        (
            _chan(MODBUS, word_order="middle"),
            r"channels\[0\]\.word_order: 'middle' is not one of big, little",
        ),
        (_chan(MODBUS, colour="red"), r"channels\[0\]\.colour: unknown key"),
        (
            _with(MODBUS, channels=[{"name": "x", "address": 0}, {"name": "x", "address": 1}]),
            r"channel 'x' appears twice",
        ),
        (_with(OPCUA, url="http://plc"), r"source s: url: 'http://plc' is not an opc\.tcp:// URL"),
        (_chan(OPCUA, path="Objects/X"), r"channels\[0\]\.node: give exactly one of node .* or path"),
        (_chan(OPCUA, node="Machine.Temp"), r"channels\[0\]\.node: 'Machine\.Temp' is not a node id"),
        (_chan(OPCUA, map={"on": "yes"}), r"channels\[0\]\.map: must map text values to numbers"),
        (
            _with(OPCUA, password_env="JANGIN_TEST_UNSET_VAR"),
            r"password_env: environment variable JANGIN_TEST_UNSET_VAR is not set",
        ),
        (_with(OPCUA, security={"policy": "Basic256Sha256"}), r"source s: security\.certificate: missing"),
        (
            _with(OPCUA, security={"policy": "Basic128Rsa15", "certificate": "c", "private_key": "k"}),
            r"security\.policy: 'Basic128Rsa15' is not one of",
        ),
        (
            _with(OPCUA, password="hunter2"),
            r"source s: password: unknown key",
        ),  # never a password in the YAML
        ({"type": "mqtt", "host": "h"}, r"source s: topic: missing"),
        (
            _with(MQTT, channels=[{"topic": "a/+", "channel": "x"}]),
            r"channels\[0\]\.topic: 'a/\+': a mapped topic names one topic",
        ),
        (_with(MQTT, offsets={"dev": "fast"}), r"source s: offsets: must map device names to seconds"),
        (_with(CAMERA, url=""), r"source s: url: missing"),
        (_with(CAMERA, max_queue=0), r"source s: max_queue: must be an integer"),
        (_with(CAMERA, realtime="yes"), r"source s: realtime: must be true or false"),
        ({"type": "profinet"}, r"source s: unknown type 'profinet'"),
    ],
)
def test_config_errors_name_source_and_field(
    cfg: dict[str, Any], match: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JANGIN_TEST_UNSET_VAR", raising=False)
    with pytest.raises(CaptureError, match=match):
        make_source("s", cfg)


def test_password_file_unreadable_names_it(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match=r"source s: password_file: cannot read .*missing"):
        make_source("s", _with(MQTT, password_file=str(tmp_path / "missing")))


def test_every_type_builds_from_a_minimal_config() -> None:
    built = {
        kind: make_source("s", cfg)
        for kind, cfg in (("modbus", MODBUS), ("opcua", OPCUA), ("mqtt", MQTT), ("camera", CAMERA))
    }
    assert set(built) <= set(SOURCE_TYPES)
    assert built["modbus"].channels[0].ref == "holding:0" and built["modbus"].device == "s"
    assert built["opcua"].channels[0].rate_hz == 10.0  # default sampling 100 ms
    assert built["mqtt"].client_id == "jangin-s"
    for src in built.values():
        assert isinstance(src, SensorSource) and src.health().connected is False
