"""Live sources against real servers on loopback, each beside a bare client of the same library reading
the same tags in the same run (separate processes, so each one's CPU and memory are its own):

- OPC UA: one asyncua server, 200 tags written at 10 Hz (sampling 100 ms) + 20 tags at 100 Hz (sampling
  10 ms), publishing interval 100 ms; ``OpcUaSource`` vs a bare asyncua subscription.
- Modbus TCP: 100 holding registers polled at 20 Hz; ``ModbusSource`` vs a bare pymodbus polling loop.
- MQTT: one channel at 1 kHz (one QoS 1 message per sample) through mosquitto; ``MqttSource`` (acks
  after each read) vs a bare paho subscriber.

    python bench/bench_live_sources.py --seconds 60 [--only opcua,modbus,mqtt]

Three clients per protocol, each its own process, in the same run: the whole recorder (``Recorder``: the
source, every batch staged and fsync'ed before its ack, the session processed into a dataset; what is
counted is what landed in ``sensor_samples``), the bare ``SensorSource`` alone, and the bare library
client. Per client: samples/s, ratio to the bare client, loss (the tags carry counters, so a missing value is
seen), CPU seconds and RSS after connecting and at the end. Prints one JSON object per protocol.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1] / "tests" / "capture" / "live"))

SLOW, FAST = 200, 20
DRAIN_S = 10.0  # MQTT clients keep reading this long after the publisher's run (to see every message)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _loss(seqs: dict[str, set[float]]) -> tuple[int, int]:
    """(received, expected) over channels whose values count 0, 1, 2...: a hole is a lost value."""
    got = exp = 0
    for vals in seqs.values():
        if vals:
            got += len(vals)
            exp += int(max(vals) - min(vals)) + 1
    return got, exp


# -- servers -------------------------------------------------------------------------------------------


def serve(proto: str, port: int, seconds: float, ready: Path) -> None:
    import plant_sim

    logging.getLogger("asyncua").setLevel(logging.ERROR)
    logging.getLogger("pymodbus").setLevel(logging.ERROR)
    if proto == "opcua":
        sim: Any = plant_sim.OpcUaSim(
            port, fast=FAST, fast_hz=100.0, slow=SLOW, slow_hz=10.0, counter=True
        ).start()
    else:
        sim = plant_sim.ModbusSim(port, size=200).start()
        sim.ramp = list(range(100))
    ready.write_text("ok")
    time.sleep(seconds)
    if proto == "opcua":
        print(json.dumps({"written": sum(sim.written.values())}), flush=True)
        sim.close()
    else:
        sim.stop()


# -- clients -------------------------------------------------------------------------------------------


def _opcua_cfg(port: int) -> dict[str, Any]:
    chans = [
        {"name": f"s{k}", "node": f"ns=2;s=Machine.Slow.{k}", "sampling_interval_ms": 100}
        for k in range(SLOW)
    ] + [
        {"name": f"f{k}", "node": f"ns=2;s=Machine.Fast.{k}", "sampling_interval_ms": 10} for k in range(FAST)
    ]
    return {
        "type": "opcua",
        "url": f"opc.tcp://127.0.0.1:{port}/jangin/",
        "publishing_interval_ms": 100,
        "channels": chans,
    }


def _modbus_cfg(port: int) -> dict[str, Any]:
    chans = [{"name": f"r{k}", "address": k} for k in range(100)]
    return {"type": "modbus", "host": "127.0.0.1", "port": port, "rate_hz": 20, "channels": chans}


def _mqtt_cfg(port: int, cid: str) -> dict[str, Any]:
    return {
        "type": "mqtt",
        "host": "127.0.0.1",
        "port": port,
        "topic": "bench/#",
        "client_id": cid,
        "channels": [{"topic": "bench/x", "channel": "x", "device": "d"}],
    }


def _source_cfg(proto: str, port: int, client_id: str) -> dict[str, Any]:
    """The source config both Jangin clients read (an MQTT client needs its own client id)."""
    return (
        _mqtt_cfg(port, client_id)
        if proto == "mqtt"
        else {"opcua": _opcua_cfg, "modbus": _modbus_cfg}[proto](port)
    )


def client_jangin(proto: str, port: int, seconds: float, ready: Path) -> dict[str, Any]:
    from jangin.capture.sources import SampleBatch, make_source

    src = make_source("bench", _source_cfg(proto, port, "jangin"))
    src.open()
    ready.write_text("ok")
    cpu0, rss0, t0 = time.process_time(), _rss_mb(), time.monotonic()
    n = 0
    seqs: dict[str, set[float]] = defaultdict(set)
    polls: set[float] = set()
    first = last = None
    while time.monotonic() - t0 < seconds + (DRAIN_S if proto == "mqtt" else 0):
        for b in src.read(0.2):
            if isinstance(b, SampleBatch):
                n += len(b)
                last = time.monotonic()
                first = first or last
                if proto == "modbus":
                    polls.update(b.t.tolist())
                else:
                    for ch, v in zip(b.channel.tolist(), b.value.tolist(), strict=True):
                        seqs[ch].add(v)
                src.ack(b.token)
    # MQTT: messages arrive as published (drained after the run): the rate over first..last arrival, as
    # the bare client measures it
    wall = (last - first) if proto == "mqtt" and first and last and last > first else time.monotonic() - t0
    out = {
        "samples": n,
        "samples_per_s": n / wall,
        "cpu_s": time.process_time() - cpu0,
        "rss_mb": [rss0, _rss_mb()],
    }
    out["health"] = dict(vars(src.health()))  # a copy: close() below changes it
    src.close()
    out.update(_lossinfo(proto, seqs, polls, wall))
    return out


def client_recorder(proto: str, port: int, seconds: float, ready: Path) -> dict[str, Any]:
    """The whole recorder (``jangin capture record``'s :class:`Recorder`): the same source, every batch
    staged and fsync'ed before its ack, the session processed into a dataset at the end. What is
    counted is what landed in the dataset's ``sensor_samples``; RSS is sampled every 5 s."""
    import threading

    import numpy as np
    import yaml

    from jangin.capture._recorder import Recorder
    from jangin.capture._recorder_sink import DatasetSink
    from jangin.capture._station import load_station
    from jangin.core import Dataset
    from jangin.core.settings import get_settings

    cfg = _source_cfg(proto, port, "recorder")
    root = ready.parent / f"{proto}-recorder-ds"
    st = load_station(
        text=yaml.safe_dump(
            {"station": "bench", "site": "bench", "dataset": str(root), "sources": {"bench": cfg}}
        )
    )
    sink = DatasetSink(st.dataset, get_settings(dataset=st.dataset), st.station)
    rec = Recorder(st, sink, say=lambda m: None)
    rss: list[float] = []
    mark: dict[str, float] = {}

    def watch() -> None:  # ready once connected (as the bare client), then RSS every 5 s
        while not rec.sources["bench"].health().connected and not rec.stop_event.is_set():
            time.sleep(0.05)
        mark["cpu0"], mark["t0"], mark["w0"] = time.process_time(), time.monotonic(), time.time()
        ready.write_text("ok")
        end = mark["t0"] + seconds + (DRAIN_S if proto == "mqtt" else 0)
        while not rec.stop_event.wait(min(5.0, max(0.0, end - time.monotonic()))):
            if time.monotonic() >= end:
                mark["t1"], mark["w1"] = time.monotonic(), time.time()
                rec.stop_event.set()  # the recorder then finishes and processes the session
                break
            rss.append(_rss_mb())

    threading.Thread(target=watch, daemon=True).start()
    res = rec.run()
    wall = mark.get("t1", time.monotonic()) - mark["t0"]
    cpu = time.process_time() - mark["cpu0"]
    process_s = time.monotonic() - mark.get("t1", time.monotonic())
    sink.close()
    ds = Dataset.open(root)
    rows = ds.query("SELECT channel, value, epoch_us(ts) us FROM sensor_samples").to_pylist()
    seqs: dict[str, set[float]] = defaultdict(set)
    polls: set[float] = set()
    for r in rows:
        seqs[r["channel"]].add(r["value"])
        polls.add(r["us"])
    us = np.array([r["us"] for r in rows], np.float64) / 1e6
    if proto == "mqtt":  # as the bare client: the rate over the messages' span (all drained by the stop)
        rate = len(us) / (us.max() - us.min()) if len(us) > 1 else 0.0
    else:  # samples stamped while the other clients ran (what came before "ready" is not counted)
        rate = float(((us >= mark["w0"]) & (us <= mark.get("w1", time.time()))).sum()) / wall
    out = {
        "samples": len(rows),
        "samples_per_s": rate,
        "cpu_s": cpu,  # recording and processing the session into the dataset
        "rss_mb": [rss[0] if rss else _rss_mb(), _rss_mb()],
        "rss_mb_samples": [round(x, 1) for x in rss],
        "process_s": round(process_s, 2),  # stop -> session processed into the dataset
        "sessions": len(res.sessions),
        "gaps": res.gaps,
        "dropped": res.dropped,
    }
    out.update(_lossinfo(proto, seqs, polls, wall))
    holes = {ch: int(max(v) - min(v)) + 1 - len(v) for ch, v in seqs.items() if v}
    out["holes"] = {ch: n for ch, n in sorted(holes.items(), key=lambda kv: -kv[1])[:5] if n}
    return out


def _lossinfo(proto: str, seqs: dict[str, set[float]], polls: set[float], wall: float) -> dict[str, Any]:
    if proto == "modbus":
        expected = int(wall * 20)
        return {"polls": len(polls), "polls_expected": expected, "loss": max(0.0, 1 - len(polls) / expected)}
    got, exp = _loss(seqs)
    return {"received": got, "expected": exp, "loss": 1 - got / exp if exp else None}


def client_bare(proto: str, port: int, seconds: float, ready: Path) -> dict[str, Any]:
    seqs: dict[str, set[float]] = defaultdict(set)
    polls: set[float] = set()
    count = [0]
    if proto == "opcua":
        import asyncio

        from asyncua import Client

        async def run() -> float:
            class H:
                def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
                    count[0] += 1
                    seqs[str(node.nodeid)].add(float(val))

            # the same watchdog as OpcUaSource's default (asyncua's 1 s drops a busy server on a loaded box)
            async with Client(f"opc.tcp://127.0.0.1:{port}/jangin/", watchdog_intervall=5.0) as c:
                sub = await c.create_subscription(100, H())
                slow = [c.get_node(f"ns=2;s=Machine.Slow.{k}") for k in range(SLOW)]
                fast = [c.get_node(f"ns=2;s=Machine.Fast.{k}") for k in range(FAST)]
                await sub.subscribe_data_change(slow, sampling_interval=100, queuesize=3)
                await sub.subscribe_data_change(fast, sampling_interval=10, queuesize=21)
                ready.write_text("ok")
                t0 = time.monotonic()
                await asyncio.sleep(seconds)
                return time.monotonic() - t0

        cpu0, rss0 = time.process_time(), _rss_mb()
        wall = asyncio.run(run())
    elif proto == "modbus":
        from pymodbus.client import ModbusTcpClient

        c = ModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0)
        c.connect()
        ready.write_text("ok")
        cpu0, rss0, t0 = time.process_time(), _rss_mb(), time.monotonic()
        nxt = t0
        while time.monotonic() - t0 < seconds:
            t = time.time()
            regs = c.read_holding_registers(0, count=100, device_id=1).registers
            vals = [float(r) for r in regs]
            count[0] += len(vals)
            polls.add(t)
            nxt += 0.05
            time.sleep(max(0.0, nxt - time.monotonic()))
        wall = time.monotonic() - t0
        c.close()
    else:
        import paho.mqtt.client as mqtt

        span = [0.0, 0.0]

        def on_message(cl: Any, u: Any, msg: Any) -> None:
            m = json.loads(msg.payload)
            count[0] += 1
            span[1] = time.monotonic()
            span[0] = span[0] or span[1]
            seqs[m["channel"]].add(float(m["value"]))

        cl = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bare", clean_session=False)
        cl.on_message = on_message
        cl.on_connect = lambda c, u, f, rc, p=None: c.subscribe("bench/#", qos=1)
        cl.connect("127.0.0.1", port)
        cl.loop_start()
        time.sleep(1.0)
        ready.write_text("ok")
        cpu0, rss0, t0 = time.process_time(), _rss_mb(), time.monotonic()
        time.sleep(seconds + DRAIN_S)
        cl.loop_stop()
        wall = span[1] - span[0] if span[1] > span[0] else time.monotonic() - t0
    out = {"samples": count[0], "samples_per_s": count[0] / wall, "cpu_s": time.process_time() - cpu0}
    out["rss_mb"] = [rss0, _rss_mb()]
    out.update(_lossinfo(proto, seqs, polls, wall))
    return out


def publish(port: int, seconds: float) -> None:
    """One channel at 1 kHz, one QoS 1 message per sample, value = sequence number."""
    import paho.mqtt.client as mqtt

    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-pub")
    pub.max_inflight_messages_set(0)
    pub.max_queued_messages_set(0)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    t0 = time.monotonic()
    k = 0
    while (now := time.monotonic()) - t0 < seconds:
        due = t0 + k / 1000.0
        if due > now:
            time.sleep(due - now)
        pub.publish(
            "bench/x", json.dumps({"device": "d", "channel": "x", "ts": time.time(), "value": k}), qos=1
        )
        k += 1
    time.sleep(1.0)
    pub.loop_stop()
    print(json.dumps({"published": k, "rate_hz": k / seconds}), flush=True)


# -- driver --------------------------------------------------------------------------------------------


def _spawn(args: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, str(HERE), *args], stdout=subprocess.PIPE, text=True, env=env)


def _wait_file(p: Path, timeout_s: float = 120.0) -> None:
    end = time.monotonic() + timeout_s
    while not p.exists():
        if time.monotonic() > end:
            raise RuntimeError(f"{p.name} not ready after {timeout_s} s")
        time.sleep(0.1)


def _last_json(proc: subprocess.Popen[str], timeout_s: float) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout_s)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {"error": f"exit {proc.returncode}"}


def run(proto: str, seconds: float, tmp: Path) -> dict[str, Any]:
    import plant_sim

    port = plant_sim.free_port()
    broker = server = None
    if proto == "mqtt":
        broker = plant_sim.Mosquitto(tmp, port).start()
    else:
        server = _spawn(
            [
                "--role",
                "serve",
                "--proto",
                proto,
                "--port",
                str(port),
                "--seconds",
                str(seconds + 200),
                "--ready",
                str(tmp / f"{proto}-server"),
            ]
        )
        _wait_file(tmp / f"{proto}-server", 180)
    clients = {}
    for impl in ("recorder", "jangin", "bare"):
        ready = tmp / f"{proto}-{impl}"
        clients[impl] = _spawn(
            [
                "--role",
                impl,
                "--proto",
                proto,
                "--port",
                str(port),
                "--seconds",
                str(seconds),
                "--ready",
                str(ready),
            ]
        )
    for impl in clients:
        _wait_file(tmp / f"{proto}-{impl}")
    pub = (
        _spawn(["--role", "publish", "--port", str(port), "--seconds", str(seconds)])
        if proto == "mqtt"
        else None
    )
    res: dict[str, Any] = {"proto": proto, "seconds": seconds}
    for impl, proc in clients.items():
        res[impl] = _last_json(proc, seconds + DRAIN_S + 120)
    if pub is not None:
        res["publisher"] = _last_json(pub, 60)
        for impl in clients:  # loss against what was published (a tail never delivered counts too)
            got = res[impl].get("received", 0)
            res[impl]["loss"] = 1 - got / res["publisher"]["published"]
    if server is not None:
        server.terminate()
        server.wait(30)
    if broker is not None:
        broker.stop()
    bare = res["bare"].get("samples_per_s") or 0.0
    res["ratio"] = res["jangin"].get("samples_per_s", 0.0) / bare if bare else None
    res["recorder_ratio"] = res["recorder"].get("samples_per_s", 0.0) / bare if bare else None
    if proto == "opcua":  # what the Python test server managed to write (it is the limit on 2 cores)
        res["offered_per_s"] = res["bare"].get("expected", 0) / seconds
        res["nominal_per_s"] = SLOW * 10 + FAST * 100
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--only", default="opcua,modbus,mqtt")
    ap.add_argument("--role", default="driver", help=argparse.SUPPRESS)
    ap.add_argument("--proto", default="", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--ready", default="", help=argparse.SUPPRESS)
    a = ap.parse_args()
    for name in ("asyncua", "pymodbus"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if a.role == "serve":
        serve(a.proto, a.port, a.seconds, Path(a.ready))
    elif a.role in ("recorder", "jangin", "bare"):
        fn = {"recorder": client_recorder, "jangin": client_jangin, "bare": client_bare}[a.role]
        print(json.dumps(fn(a.proto, a.port, a.seconds, Path(a.ready))), flush=True)
    elif a.role == "publish":
        publish(a.port, a.seconds)
    else:
        with tempfile.TemporaryDirectory() as d:
            for proto in a.only.split(","):
                print(json.dumps(run(proto, a.seconds, Path(d))), flush=True)


if __name__ == "__main__":
    main()
