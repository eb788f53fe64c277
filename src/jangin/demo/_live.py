"""The demo's live recording: a simulated machine (an OPC UA server replaying a sample etch run) is
recorded by the station recorder into the demo's server, while live coaching alerts stream back over
Server-Sent Events, as a coach's tablet beside the line would see them."""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["demo_live", "live_report_section"]

#: Channels of the replayed run (the operator's set points and what the chamber does with them).
CHANNELS = [
    "rf_forward_setpoint_W",
    "rf_forward_W",
    "rf_reflected_W",
    "pressure_setpoint_mTorr",
    "chamber_pressure_mTorr",
    "cf4_flow_sccm",
    "chf3_flow_sccm",
    "endpoint_signal",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_live(
    ds_root: Path,
    data: Path,
    settings: Any,
    out: Path,
    *,
    run: str = "etch-02",
    seconds: float = 40.0,
    speed: float = 8.0,
    profile: str | None = None,
    session_key: str | None = None,
    opcua: bool = True,
    say: Any = print,
) -> dict[str, Any]:
    """Record ``seconds`` of the sample run ``run`` live and collect the coaching alerts.

    The machine is an OPC UA server (``jangin.capture.sources.simulate``) when asyncua is installed,
    else the replay source plays the file directly (said in the result's ``source``).

    Returns:
        ``session_id``, ``state``, ``samples``, ``steps``, ``alerts`` (the first few), ``n_alerts``,
        ``source``, ``seconds``.
    """
    import os

    if "live" in os.environ.get("JANGIN_DEMO_SKIP", "").split(","):
        say("live recording: skipped (JANGIN_DEMO_SKIP=live)")
        return {"skipped": True}
    import logging

    import httpx
    import uvicorn

    from jangin.capture._recorder import Recorder
    from jangin.capture._recorder_sink import ServerSink
    from jangin.capture._station import load_station
    from jangin.capture.server import register as capture_router
    from jangin.core import CaptureError
    from jangin.core.server import create_app
    from jangin.inference._skill_server import register as skill_router

    logging.getLogger("asyncua").setLevel(logging.ERROR)  # its connection chatter is not the demo's
    t0 = time.perf_counter()
    skey = session_key or f"live-{run}"
    key = secrets.token_hex(16)
    cfg = settings.model_copy(
        update={"api_keys": {**settings.api_keys, key: "recorder"}, "dataset": Path(ds_root)}
    )
    app = create_app(cfg, routers=[], extra=[capture_router, skill_router])
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    threading.Thread(target=server.run, name="jangin-demo-live", daemon=True).start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise CaptureError("demo live server did not start")
        time.sleep(0.05)

    file = data / "etch" / f"{run}.csv.gz"
    machine = None
    try:
        if not opcua:
            raise ImportError("replay asked for")
        from jangin.capture.sources.simulate import SimulatedMachine

        machine = SimulatedMachine(
            file,
            rate_hz=10,
            phase_column="recipe_step",
            channels=CHANNELS,
            speed=speed,
            seconds=seconds,
            start_at=time.time(),
        ).start()
        names = {float(v): k for k, v in machine.codes.items()}
        source: dict[str, Any] = {
            "type": "opcua",
            "url": machine.url,
            "device": "chamber",
            "publishing_interval_ms": 50,
            "channels": [c for c in machine.station_channels() if c["name"] != "cycle_active"],
        }
        kind = "opcua (simulated machine)"
    except ImportError:
        names = {}
        source = {
            "type": "replay",
            "file": str(file),
            "rate_hz": 10,
            "phase_column": "recipe_step",
            "channels": CHANNELS,
            "speed": speed,
            "start_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
            "device": "chamber",
        }
        kind = "replay (asyncua not installed)"
    station = load_station(
        text=json.dumps(
            {
                "station": "etch-pm1",
                "site": "demo-fab",
                "process": "plasma_etch",
                "technician": "Live Demo",
                "server": url,
                "sources": {"chamber": source},
                "clocks": {"chamber": 0.0},  # the simulated machine stamps file time from now: no skew
                "session": {"step_tag": "recipe_step", "step_names": names},
                "buffer": {"batch_s": 0.2},
                "health_interval_s": 5,
            }
        )
    )
    sink = ServerSink(url, key, out / "spool", station.station, retry_s=0.5)
    rec = Recorder(station, sink, session_key=skey, say=lambda m: None)
    alerts: list[dict[str, Any]] = []

    def listen() -> None:
        from jangin.capture._import import session_id_for

        sid = session_id_for("demo-fab", skey)
        params = {"profile": profile} if profile else {}
        for _ in range(200):
            try:
                with httpx.stream(
                    "GET", f"{url}/v1/skill/live/{sid}", headers={"X-API-Key": key}, params=params, timeout=30
                ) as r:
                    if r.status_code != 200:
                        time.sleep(0.1)
                        continue
                    event = None
                    for line in r.iter_lines():
                        if line.startswith("event: "):
                            event = line[7:]
                        elif line.startswith("data: ") and event not in (None, "ready"):
                            a = json.loads(line[6:])
                            alerts.append(a)
                            if len(alerts) <= 5:
                                say(f"  live coaching alert: {a.get('message') or a.get('type')}")
                    return
            except httpx.HTTPError:
                time.sleep(0.1)

    threading.Thread(target=listen, name="jangin-demo-sse", daemon=True).start()
    try:
        if machine is not None:
            machine.play()
        marks = {"setup_s": time.perf_counter() - t0}
        res = rec.run(seconds / speed + 1.5)
        marks["record_s"] = time.perf_counter() - t0 - marks["setup_s"]
        sink.close(timeout_s=60)
        marks["forward_s"] = time.perf_counter() - t0 - marks["setup_s"] - marks["record_s"]
        if not res.sessions:
            raise CaptureError("demo live recording: no session was recorded")
        sid = res.sessions[0]
        st: dict[str, Any] = {}
        with httpx.Client(base_url=url, headers={"X-API-Key": key}) as h:
            for _ in range(300):
                st = h.get(f"/v1/sessions/{sid}").json()
                if st.get("state") in ("processed", "failed"):
                    break
                time.sleep(0.1)
    finally:
        if machine is not None:
            machine.close()
        server.should_exit = True
    return {
        "session_id": sid,
        "session_key": skey,
        "state": st.get("state"),
        "samples": st.get("samples", 0),
        "events": st.get("events", 0),
        "n_alerts": len(alerts),
        "alerts": alerts[:10],
        "source": kind,
        "seconds": round(time.perf_counter() - t0, 2),
        **{k: round(v, 2) for k, v in marks.items()},
    }


def live_report_section(live: dict[str, Any]) -> dict[str, Any]:
    """The demo report's section on the live recording (the session and the alerts that streamed)."""
    rows = [{k: v for k, v in live.items() if k != "alerts"}] if live and not live.get("skipped") else []
    alerts = [str(a.get("message") or a.get("type")) for a in live.get("alerts", [])]
    text = (
        "A simulated machine served a sample etch run over OPC UA; the station recorder (jangin capture "
        "record) recorded it into the server while live coaching alerts streamed back (Server-Sent Events). "
        + (f"First alerts: {'; '.join(alerts[:5])}." if alerts else "No coaching alert arrived.")
    )
    return {"title": "Live recording of a station, with live coaching", "text": text, "table": rows}
