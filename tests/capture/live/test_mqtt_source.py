"""MqttSource against Debian's mosquitto on loopback: message forms, acknowledgement after staging
(redelivery of what was not acknowledged), and a killed broker."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from jangin.capture.sources import Gap, SampleBatch, make_source


def _publisher(port: int, cid: str = "test-pub") -> Any:
    import paho.mqtt.client as mqtt

    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid)
    pub.reconnect_delay_set(0.1, 0.5)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    return pub


def _send(pub: Any, topic: str, payload: Any, qos: int = 1) -> None:
    info = pub.publish(topic, payload if isinstance(payload, bytes) else json.dumps(payload), qos=qos)
    if qos:
        info.wait_for_publish(5)


def _collect(src: Any, pred: Any, timeout_s: float = 10.0) -> list[Any]:
    out: list[Any] = []
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and not pred(out):
        out += src.read(0.1)
    return out


def _n(out: list[Any]) -> int:
    return sum(len(b) for b in out if isinstance(b, SampleBatch))


def test_every_message_form_with_its_times_and_units(mosquitto: Any) -> None:
    src = make_source(
        "st01",
        {
            "type": "mqtt",
            "host": "127.0.0.1",
            "port": mosquitto.port,
            "topic": "plant/st-01/#",
            "offsets": {"power": 0.25},
            "channels": [{"topic": "plant/st-01/humidity", "channel": "rh", "unit": "%", "device": "env"}],
        },
    )
    src.open()
    pub = _publisher(mosquitto.port)
    t0 = 1_772_438_400.0
    try:
        t = t0 + np.arange(100) / 1000
        _send(
            pub,
            "plant/st-01/p",
            {
                "device": "power",
                "t": t.tolist(),
                "channels": {"current_A": list(range(100))},
                "units": {"current_A": "A"},
            },
        )
        _send(
            pub,
            "plant/st-01/temp",
            {"device": "thermo", "channel": "plate_C", "ts": t0 + 0.5, "value": 21.5, "unit": "degC"},
        )
        _send(pub, "plant/st-01/humidity", {"ts": t0 + 0.7, "value": 40})
        before = time.time()
        _send(pub, "plant/st-01/humidity", b"41.5")
        _send(pub, "plant/st-01/junk", b"not json")
        out = _collect(src, lambda o: _n(o) >= 103 and src.health().extra["bad_messages"] >= 1)
    finally:
        pub.loop_stop()
        src.close()
    batches = [b for b in out if isinstance(b, SampleBatch)]
    by_dev = {  # one device's samples may come in several reads
        d: SampleBatch(
            "st01",
            d,
            np.concatenate([b.channel for b in batches if b.device == d]),
            np.concatenate([b.t for b in batches if b.device == d]),
            np.concatenate([b.value for b in batches if b.device == d]),
            0.0,
            [tok for b in batches if b.device == d for tok in b.token],
        )
        for d in {b.device for b in batches}
    }
    assert set(by_dev) == {"power", "thermo", "env"} and not any(isinstance(x, Gap) for x in out)
    p = by_dev["power"]
    np.testing.assert_allclose(p.t, t + 0.25)  # the device's clock offset is applied
    assert list(p.value) == list(range(100)) and set(p.channel) == {"current_A"}
    assert list(by_dev["thermo"].t) == [t0 + 0.5] and list(by_dev["thermo"].value) == [21.5]
    env = by_dev["env"]
    assert list(env.value) == [40.0, 41.5] and env.t[0] == t0 + 0.7 and env.t[1] >= before
    assert (
        src.unit("power", "current_A") == "A"
        and src.unit("thermo", "plate_C") == "degC"
        and src.unit("env", "rh") == "%"
    )
    h = src.health()
    assert h.extra["bad_messages"] == 1 and h.extra["receive_time"] == 1  # the bare number's time is said
    assert all(isinstance(b.token, list) and b.token for b in by_dev.values())


def test_unacked_messages_come_again_after_a_restart(mosquitto: Any) -> None:
    cfg = {
        "type": "mqtt",
        "host": "127.0.0.1",
        "port": mosquitto.port,
        "topic": "line/#",
        "client_id": "rec-1",
    }
    pub = _publisher(mosquitto.port)

    def sample(k: int) -> dict[str, Any]:
        return {"device": "d", "channel": "x", "ts": 1000.0 + k, "value": k}

    try:
        src = make_source("line", cfg)
        src.open()
        for k in range(5):
            _send(pub, "line/x", sample(k))
        staged = _collect(src, lambda o: _n(o) >= 5)
        for b in staged:
            src.ack(b.token)  # staged and acknowledged: never again
        for k in range(5, 10):
            _send(pub, "line/x", sample(k))
        unacked = _collect(src, lambda o: _n(o) >= 5)  # read, never acknowledged (the recorder died)
        time.sleep(0.3)  # let the acks of the first five reach the broker
        src.close()
        for k in range(10, 12):  # published while the recorder is away: the broker queues them
            _send(pub, "line/x", sample(k))
        again = make_source("line", cfg)
        again.open()
        try:
            redelivered = _collect(again, lambda o: _n(o) >= 7)
            redelivered += _collect(again, lambda o: False, 0.5)  # nothing more comes
            for b in redelivered:
                again.ack(b.token)
        finally:
            again.close()
    finally:
        pub.loop_stop()

    def values(out: list[Any]) -> list[float]:
        return sorted(float(v) for b in out if isinstance(b, SampleBatch) for v in b.value)

    assert values(staged) == [0, 1, 2, 3, 4] and values(unacked) == [5, 6, 7, 8, 9]
    assert values(redelivered) == [5, 6, 7, 8, 9, 10, 11]


def test_broker_killed_and_restarted_gives_one_gap(mosquitto: Any) -> None:
    cfg = {
        "type": "mqtt",
        "host": "127.0.0.1",
        "port": mosquitto.port,
        "topic": "cell/#",
        "reconnect_max_s": 1,
    }
    src = make_source("cell", cfg)
    src.open()
    pub = _publisher(mosquitto.port)
    out: list[Any] = []
    t_stop = t_back = 0.0

    def publish_for(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if pub.is_connected():  # QoS 0: nothing published into a dead link is held and sent later
                pub.publish(
                    "cell/v",
                    json.dumps({"device": "cell", "channel": "v", "ts": time.time(), "value": 1.0}),
                    qos=0,
                )
            out.extend(src.read(0.02))

    try:
        publish_for(1.0)
        mosquitto.stop()
        t_stop = time.time()
        publish_for(1.0)
        assert src.health().connected is False
        mosquitto.start()
        t_back = time.time()
        publish_for(4.0)
        h = src.health()
        assert h.connected and h.reconnects == 1
    finally:
        pub.loop_stop()
        src.close()
    out += src.read(0.1)
    gaps = [g for g in out if isinstance(g, Gap)]
    assert len(gaps) == 1, gaps
    g = gaps[0]
    assert g.device == "cell" and g.start <= t_stop and g.end is not None and g.end >= t_back
    t = np.concatenate([b.t for b in out if isinstance(b, SampleBatch)])
    assert not ((t > g.start) & (t < g.end)).any()
    assert (t <= g.start).sum() > 10 and (t >= g.end).sum() > 10
