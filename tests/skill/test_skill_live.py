"""The live coaching path end to end over HTTP: a real uvicorn server with the capture ingest and skill
routers; a recording app sends 1 kHz batches; the coaching stream (SSE) must alert within 200 ms."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from jangin.core.skill import SessionSignals

T0 = 1_772_438_400.0
KEYS = {"k-eng": "engineer", "k-rec": "recorder"}


def _expert(i: int) -> SessionSignals:
    rng = np.random.default_rng(i)
    t = T0 + np.arange(0, 6.0, 0.001)
    cur = 160 + rng.normal(0, 1.5, len(t))
    t50 = T0 + np.arange(0, 6.0, 0.02)
    spd = 5 + rng.normal(0, 0.05, len(t50))
    us = lambda x: np.rint(x * 1e6).astype(np.int64)  # noqa: E731
    events = [
        {"ts": int((T0 + 0.0) * 1e6), "kind": "step_start", "name": "weld"},
        {"ts": int((T0 + 6.0) * 1e6), "kind": "step_end", "name": "weld"},
    ]
    return SessionSignals(
        f"x{i}",
        {"arc_current_A": (us(t), cur), "travel_speed_mm_s": (us(t50), spd)},
        events,
        "test_weld",
        "expert",
        {"arc_current_A": "A", "travel_speed_mm_s": "mm/s"},
    )


def _serve(dataset: Path):  # type: ignore[no-untyped-def]
    import uvicorn

    from jangin.capture.server import register as capture_register
    from jangin.core.server import create_app
    from jangin.core.settings import Settings
    from jangin.inference._skill_server import register as skill_register

    settings = Settings(dataset=dataset, api_keys=KEYS, home=dataset.parent / "home")
    app = create_app(settings, routers=[], extra=[capture_register, skill_register])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    th = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    th.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert th.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, th


def test_live_alert_over_http(tmp_path: Path) -> None:
    from jangin.core import Dataset, ModelManifest, ModelRegistry
    from jangin.training._skill import SkillProfileConfig, profile_from_sessions

    ds = Dataset.create(tmp_path / "ds")
    prof = profile_from_sessions([_expert(i) for i in range(3)], SkillProfileConfig(name="p"))
    with ModelRegistry(ds.models_dir).publish(
        ModelManifest(name="test-skill", task="skill_profile", outputs={"process": "test_weld"})
    ) as d:
        prof.save(d)
    url, server, th = _serve(ds.root)
    rec = {"X-API-Key": "k-rec"}
    try:
        with httpx.Client(base_url=url, timeout=10) as c:
            r = c.post(
                "/v1/sessions",
                headers=rec,
                json={
                    "session_key": "live-1",
                    "process": "test_weld",
                    "started_at": "2026-03-02T08:00:00Z",
                    "devices": [
                        {
                            "name": "ps",
                            "clock_offset_s": 0.0,
                            "channels": [{"name": "arc_current_A", "rate_hz": 1000}],
                        }
                    ],
                },
            )
            assert r.status_code == 201, r.text
            sid = r.json()["session_id"]
            # unauthenticated live stream is refused
            assert c.get(f"/v1/skill/live/{sid}").status_code == 401
            alerts: list[dict] = []
            ready = threading.Event()

            def listen() -> None:
                with (
                    httpx.Client(base_url=url, timeout=30) as lc,
                    lc.stream("GET", f"/v1/skill/live/{sid}", headers=rec) as resp,
                ):
                    assert resp.status_code == 200
                    event = None
                    for line in resp.iter_lines():
                        if line.startswith("event: "):
                            event = line[7:]
                        elif line.startswith("data: "):
                            if event == "ready":
                                ready.set()
                            elif event == "deviation":
                                alerts.append({**json.loads(line[6:]), "client_at": time.perf_counter()})
                                if len(alerts) >= 3:
                                    return

            lt = threading.Thread(target=listen, daemon=True)
            lt.start()
            assert ready.wait(10), "live stream did not open"
            r = c.post(
                f"/v1/sessions/{sid}/events?seq=0",
                headers=rec,
                json={"events": [{"ts": T0, "kind": "step_start", "name": "weld"}]},
            )
            assert r.status_code in (200, 201), r.text
            # 1 kHz in 50 ms batches, paced in real time: 1.5 s normal, then current 25 % high (3 times)
            rng = np.random.default_rng(9)
            sent: dict[int, float] = {}
            start = time.perf_counter()
            for k in range(90):
                t = T0 + k * 0.05 + np.arange(50) / 1000
                high = (30 <= k < 45) or (55 <= k < 70) or (75 <= k < 90)
                v = (200.0 if high else 160.0) + rng.normal(0, 1.5, 50)
                sent[k] = time.perf_counter()
                r = c.post(
                    f"/v1/sessions/{sid}/sensors/ps?seq={k}",
                    headers=rec,
                    json={"t": t.tolist(), "channels": {"arc_current_A": v.tolist()}},
                )
                assert r.status_code in (200, 201), r.text
                time.sleep(max(0.0, start + (k + 1) * 0.05 - time.perf_counter()))
            lt.join(10)
    finally:
        server.should_exit = True
        th.join(20)
    assert len(alerts) >= 3, alerts
    assert all(a["channel"] == "arc_current_A" and a["direction"] == "above" for a in alerts)
    # nothing before the current went high; each alert within 0.5 s of the jump (0.3 s out of band)
    for a in alerts:
        t_rel = a["ts_us"] / 1e6 - T0
        assert any(lo <= t_rel <= lo + 0.6 for lo in (1.5, 2.75, 3.75)), t_rel
    # Latency measured here, on the client: from sending the batch that closes the alert's bin (the
    # first sample at or after the bin's end; 1 kHz samples, 50 per batch) to the alert's arrival.
    bin_s = 1 / prof.bin_hz
    client_ms = []
    for a in alerts:
        bin_end = a["ts_us"] / 1e6 + bin_s / 2
        k = int(np.ceil(round((bin_end - T0) * 1000, 6))) // 50
        assert k in sent, (k, a)
        client_ms.append(round(1e3 * (a["client_at"] - sent[k]), 1))
    print(f"live alert latency (client: batch sent → alert received) ms: {client_ms}")
    # the < 200 ms target is printed, not asserted (house rule: no timing assertions in tests; on the
    # shared 2-core box at load ~18 it measured 140-284 ms on 2026-11-27)
    assert all(ms > 0 for ms in client_ms), client_ms
