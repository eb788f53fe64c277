"""The station recorder against a real OPC UA server on loopback (the simulated machine of
``tests/capture/live/plant_sim.py``): sessions per machine cycle with steps from the recipe-step tag,
and a server outage recorded as a gap with no samples inside it."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

pytest.importorskip("asyncua")
sys.path.insert(0, str(Path(__file__).parent / "live"))
import plant_sim

from jangin.capture._recorder import Recorder
from jangin.capture._recorder_sink import DatasetSink
from jangin.capture._station import load_station
from jangin.core import Dataset
from jangin.core.settings import get_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def machine() -> Iterator[plant_sim.OpcUaSim]:
    for name in ("asyncua", "pymodbus"):
        logging.getLogger(name).setLevel(logging.ERROR)
    sim = plant_sim.OpcUaSim(fast=1, slow=0).start()
    yield sim
    sim.close()


def _station(tmp_path: Path, url: str, **kw: Any) -> Any:
    cfg = {
        "station": "cell-7",
        "site": "plant",
        "dataset": str(tmp_path / "ds"),
        "sources": {
            "plc": {
                "type": "opcua",
                "url": url,
                "watchdog_s": 0.5,
                "reconnect_max_s": 0.5,
                "publishing_interval_ms": 50,
                "channels": [
                    {"name": "temp", "node": "ns=2;s=Machine.Temp", "unit": "degC"},
                    {"name": "fast0", "node": "ns=2;s=Machine.Fast.0", "sampling_interval_ms": 10},
                    {"name": "cycle_active", "node": "ns=2;s=Machine.cycle_active"},
                    {"name": "recipe_step", "node": "ns=2;s=Machine.recipe_step"},
                ],
            }
        },
        **kw,
    }
    return load_station(text=yaml.safe_dump(cfg))


def _record(st: Any, duration: float, during: Any = None) -> tuple[Any, Dataset]:
    sink = DatasetSink(st.dataset, get_settings(dataset=st.dataset), st.station, retry_s=0.5)
    rec = Recorder(st, sink, say=lambda m: None)
    if during is not None:
        threading.Thread(target=during, daemon=True).start()
    res = rec.run(duration)
    sink.close()
    return res, Dataset.open(st.dataset)


def test_one_session_per_machine_cycle_with_steps_from_opc_ua(tmp_path: Path, machine: Any) -> None:
    st = _station(
        tmp_path,
        machine.url,
        session={
            "trigger": "cycle_active == 1",
            "step_tag": "recipe_step",
            "step_names": {1: "load", 2: "press", 3: "eject"},
        },
    )
    _, ds = _record(st, 5.5)
    rows = ds.query(
        "SELECT session_id, status, started_at, ended_at FROM current_sessions ORDER BY started_at"
    ).to_pylist()
    assert len(rows) >= 2 and all(r["status"] == "processed" for r in rows)
    whole = 0
    for r in rows:
        sid = r["session_id"]
        active = (
            ds.query(
                f"SELECT value FROM sensor_samples WHERE session_id = '{sid}' AND channel = 'cycle_active'"
            )
            .column("value")
            .to_pylist()
        )
        assert active and set(active) == {1.0}  # only samples inside the cycle
        n = (
            ds.query(
                f"SELECT count(*) n FROM sensor_samples WHERE session_id = '{sid}' AND channel = 'fast0'"
            )
            .column("n")[0]
            .as_py()
        )
        if (r["ended_at"] - r["started_at"]).total_seconds() > 0.8:  # a whole cycle (1 s), not a cut one
            whole += 1
            assert n > 20  # Fast.0 changes at 100 Hz
        steps = (
            ds.query(
                f"SELECT name FROM events WHERE session_id = '{sid}' AND kind = 'step_start' ORDER BY ts"
            )
            .column("name")
            .to_pylist()
        )
        assert steps and set(steps) <= {"load", "press", "eject"}
    assert whole >= 1


def test_an_opc_ua_server_outage_is_a_gap_without_samples(tmp_path: Path, machine: Any) -> None:
    import time

    def outage() -> None:
        time.sleep(1.5)
        machine.stop()
        time.sleep(1.5)
        machine.restart()

    res, ds = _record(_station(tmp_path, machine.url), 6.0, during=outage)
    assert len(res.sessions) == 1 and res.gaps >= 1
    sid = res.sessions[0]
    gaps = ds.query(
        f"SELECT value, epoch_us(segment_start) a, epoch_us(segment_end) b FROM events WHERE session_id = '{sid}' AND name = 'gap'"
    ).to_pylist()
    assert gaps and '"source": "plc"' in gaps[0]["value"]
    a, b = gaps[0]["a"], gaps[0]["b"]
    assert b - a > 1_000_000  # the server was away 1.5 s
    us = (
        ds.query(f"SELECT epoch_us(ts) us FROM sensor_samples WHERE session_id = '{sid}'")
        .column("us")
        .to_numpy()
    )
    assert len(us) and not ((us > a) & (us < b)).any()  # nothing interpolated inside the gap
    assert (us < a).any() and (us > b).any()  # recorded before and after
    assert np.isfinite(us).all()


def test_kill_9_with_mqtt_redelivery_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """A real mosquitto broker; the recorder (``jangin capture record``) is killed with SIGKILL while
    samples stream in at 100 Hz and started again: the broker redelivers what was not acknowledged
    (staged or not), and the session holds every published sample exactly once."""
    import json
    import os
    import signal
    import subprocess
    import time

    import paho.mqtt.client as mqtt

    broker = plant_sim.Mosquitto(tmp_path).start()
    cfg = {
        "station": "oven-2",
        "site": "plant",
        "dataset": "ds",
        "sources": {
            "oven": {
                "type": "mqtt",
                "host": "127.0.0.1",
                "port": broker.port,
                "client_id": "jangin-oven-2",
                "channels": [{"topic": "plant/oven-2/temp", "channel": "temp", "unit": "degC"}],
            }
        },
        "clocks": {"oven": 0.0},
        "session": {"control": "auto"},
        "buffer": {"batch_s": 0.1},
    }
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(cfg))
    code = "import sys; from jangin.core.cli import main; sys.argv[0] = 'jangin'; sys.exit(main())"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def recorder(*extra: str) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-c", code, "capture", "record", str(path), "--session-key", "k", *extra]
        return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-pub")
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    t0 = 1_772_438_400.0
    sent = 0
    try:
        p = recorder()
        deadline = time.monotonic() + 60
        while not list((tmp_path / "ds" / "staging").glob("*/session.json")):  # subscribed and recording
            assert time.monotonic() < deadline and p.poll() is None
            _pub = pub.publish("plant/oven-2/temp", json.dumps({"ts": t0 + sent / 100, "value": sent}), qos=1)
            _pub.wait_for_publish(5)
            sent += 1
            time.sleep(0.01)
        began = sent  # the session exists: what is published from here on must all be recorded
        for _ in range(150):  # 1.5 s more, then kill -9 mid-stream
            pub.publish(
                "plant/oven-2/temp", json.dumps({"ts": t0 + sent / 100, "value": sent}), qos=1
            ).wait_for_publish(5)
            sent += 1
            time.sleep(0.01)
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        for _ in range(100):  # published while the recorder is down: the broker keeps them
            pub.publish(
                "plant/oven-2/temp", json.dumps({"ts": t0 + sent / 100, "value": sent}), qos=1
            ).wait_for_publish(5)
            sent += 1
        p = recorder("--duration", "6")
        time.sleep(1.0)
        for _ in range(100):
            pub.publish(
                "plant/oven-2/temp", json.dumps({"ts": t0 + sent / 100, "value": sent}), qos=1
            ).wait_for_publish(5)
            sent += 1
            time.sleep(0.01)
        out = p.communicate(timeout=120)[0].decode()
        assert p.returncode == 0, out
    finally:
        pub.loop_stop()
        broker.stop()
    ds = Dataset.open(tmp_path / "ds")
    rows = ds.query("SELECT session_id, value, epoch_us(ts) us FROM sensor_samples ORDER BY us").to_pylist()
    assert len({r["session_id"] for r in rows}) == 1, out  # the restart went on with the same session
    values = [int(r["value"]) for r in rows]
    # everything published after the session began is there, once (earlier ones predate the subscription)
    assert values == list(range(values[0], sent)), (values[:5], len(values), sent)
    assert values[0] <= began
