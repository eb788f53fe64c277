"""The station recorder (``jangin capture record``) with the replay source, into real Delta datasets:
a recorded session equals an uploaded one, the trigger tag cuts one session per cycle with steps,
outages are gaps, the clock offset is recovered, the station YAML is checked."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import yaml

from jangin.capture._recorder import Recorder
from jangin.capture._recorder_sink import DatasetSink
from jangin.capture._station import StationConfig, load_station
from jangin.core import ConfigError, Dataset
from jangin.core.settings import get_settings

T0 = "2026-03-02T08:00:00+00:00"
T0S = 1_772_438_400.0


def cycle_file(
    path: Path,
    *,
    seconds: float = 3.0,
    rate: float = 20.0,
    cycles: list[tuple[float, float]] | None = None,
    phases: list[tuple[float, str]] | None = None,
) -> Path:
    """A wide CSV.gz at ``rate`` Hz: ``pressure`` = 100 + t, ``power`` = 50 sin t, a ``step`` column
    (``phases``: (from t, name)), and ``cycle_active`` (1 inside ``cycles``) when cycles are given."""
    n = int(seconds * rate)
    t = np.arange(n) / rate
    phases = phases or [(0.0, "load"), (0.5, "run"), (1.5, "hold"), (2.0, "run")]
    step = [max((p for p in phases if p[0] <= x + 1e-9), key=lambda p: p[0])[1] for x in t]
    cols = ["pressure", "power", "step"] + (["cycle_active"] if cycles is not None else [])
    lines = [",".join(cols)]
    for i, x in enumerate(t):
        row = [f"{100 + x:.3f}", f"{50 * np.sin(x):.4f}", step[i]]
        if cycles is not None:
            row.append("1" if any(a <= x + 1e-9 < b for a, b in cycles) else "0")
        lines.append(",".join(row))
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")
    return path


def station(tmp_path: Path, src: dict[str, Any], **kw: Any) -> StationConfig:
    cfg = {
        "station": "press-3",
        "site": "plant",
        "process": "pressing",
        "dataset": str(tmp_path / "ds"),
        "sources": {"machine": {"type": "replay", "rate_hz": 20, "units": {"pressure": "bar"}, **src}},
        **kw,
    }
    return load_station(text=yaml.safe_dump(cfg))


def record(st: StationConfig, key: str | None = None, duration: float = 60) -> tuple[Any, Dataset]:
    assert st.dataset is not None
    sink = DatasetSink(st.dataset, get_settings(dataset=st.dataset), st.station, retry_s=0.5)
    rec = Recorder(st, sink, session_key=key, say=lambda m: None)
    res = rec.run(duration)
    sink.close()
    for sid in res.sessions:
        assert sink.status(sid)["state"] == "processed", sink.status(sid)
    return res, Dataset.open(st.dataset)


def samples(ds: Dataset, sid: str) -> list[tuple[Any, ...]]:
    return [
        tuple(r.values())
        for r in ds.query(
            f"""SELECT device, channel, epoch_us(ts) AS us, value, unit FROM sensor_samples
            WHERE session_id = '{sid}' ORDER BY channel, us"""
        ).to_pylist()
    ]


def events(ds: Dataset, sid: str) -> list[tuple[Any, ...]]:
    return [
        tuple(r.values())
        for r in ds.query(
            f"""SELECT epoch_us(ts) AS us, kind, name, occurrence, epoch_us(segment_start) AS a,
            epoch_us(segment_end) AS b FROM events WHERE session_id = '{sid}' ORDER BY us, kind"""
        ).to_pylist()
    ]


def test_a_recorded_replay_equals_the_same_data_uploaded(tmp_path: Path) -> None:
    from jangin.capture._rows import phase_steps
    from jangin.capture.server import FinishIn, SessionIn

    f = cycle_file(tmp_path / "run.csv.gz")
    src = {"file": str(f), "phase_column": "step", "speed": 10, "start_at": T0}
    st = station(tmp_path, src, clocks={"machine": 0.0}, session={"step_tag": "step"})
    res, ds = record(st, key="recorded")
    assert len(res.sessions) == 1

    # the same data through the ingest API's service: create, a sensor batch, step events, finish
    sink = DatasetSink(ds.root, get_settings(dataset=ds.root), "other")
    t = T0S + np.arange(60) / 20.0
    import pyarrow.csv as pcsv

    table = pcsv.read_csv(f)
    body = SessionIn.model_validate(
        {
            "session_key": "uploaded",
            "site": "plant",
            "started_at": T0,
            "devices": [
                {
                    "name": "machine",
                    "clock_offset_s": 0.0,
                    "channels": [{"name": "pressure", "unit": "bar"}, {"name": "power"}],
                }
            ],
        }
    )
    sid = sink.svc.create(body)["session_id"]
    wide = pa.table({"t": t, "pressure": table.column("pressure"), "power": table.column("power")})
    sink.staging.append_sensors(sid, "machine", 0, wide)
    steps = phase_steps(sid, np.rint(t * 1e6).astype(np.int64), table.column("step"), column="step")
    sink.staging.append_events(
        sid,
        0,
        [
            {"ts": e["ts"].timestamp(), "kind": e["kind"], "name": e["name"], "author": "recorder"}
            for e in steps
        ],
    )
    sink.svc.finish(sid, FinishIn())
    sink.close()
    ds = Dataset.open(ds.root)

    rec = res.sessions[0]
    assert len(samples(ds, rec)) == 120
    assert samples(ds, rec) == samples(ds, sid)
    assert events(ds, rec) == events(ds, sid)
    assert [e[1:4] for e in events(ds, rec)][:4] == [
        ("step_start", "load", 1),
        ("step_end", "load", 1),
        ("step_start", "run", 1),
        ("step_end", "run", 1),
    ]
    assert ("step_start", "run", 2) in [e[1:4] for e in events(ds, rec)]


# two press cycles (start, end in seconds) and the phase column that runs through them
TWO_CYCLES = [(1.0, 2.5), (3.5, 5.0)]
TWO_CYCLE_PHASES = [
    (0.0, "idle"),
    (1.0, "clamp"),
    (1.5, "press"),
    (2.5, "idle"),
    (3.5, "clamp"),
    (4.0, "press"),
    (5.0, "idle"),
]


def test_the_trigger_tag_makes_one_session_per_cycle_with_steps(tmp_path: Path) -> None:
    cycles = TWO_CYCLES
    f = cycle_file(tmp_path / "cycles.csv.gz", seconds=6.0, cycles=cycles, phases=TWO_CYCLE_PHASES)
    src = {"file": str(f), "phase_column": "step", "speed": 10, "start_at": T0}
    st = station(
        tmp_path,
        src,
        clocks={"machine": 0.0},
        session={"trigger": "cycle_active == 1", "step_tag": "step"},
    )
    res, ds = record(st)
    assert len(res.sessions) == 2
    for sid, (a, b) in zip(res.sessions, cycles, strict=True):
        rows = samples(ds, sid)
        us = sorted({r[2] for r in rows})
        assert us[0] == round((T0S + a) * 1e6) and us[-1] == round((T0S + b - 0.05) * 1e6)
        assert {r[1] for r in rows} == {"pressure", "power", "cycle_active"}  # the step tag is events
        assert all(r[3] == 1.0 for r in rows if r[1] == "cycle_active")
        assert [e[1:4] for e in events(ds, sid)] == [
            ("step_start", "clamp", 1),
            ("step_end", "clamp", 1),
            ("step_start", "press", 1),
            ("step_end", "press", 1),
        ]
        row = ds.query(
            f"SELECT started_at, status FROM current_sessions WHERE session_id = '{sid}'"
        ).to_pylist()[0]
        assert row["status"] == "processed" and row["started_at"].timestamp() == pytest.approx(T0S + a)


def test_an_outage_is_a_gap_event_and_nothing_is_interpolated(tmp_path: Path) -> None:
    f = cycle_file(tmp_path / "run.csv.gz")
    src = {"file": str(f), "speed": 10, "start_at": T0, "outages": [[1.0, 1.5]]}
    res, ds = record(station(tmp_path, src, clocks={"machine": 0.0}))
    sid = res.sessions[0]
    assert res.gaps == 1
    us = np.asarray([r[2] for r in samples(ds, sid)])
    lo, hi = round((T0S + 1.0) * 1e6), round((T0S + 1.5) * 1e6)
    assert len(us) == 2 * (60 - 10) and not ((us >= lo) & (us < hi)).any()
    gaps = ds.query(
        f"SELECT name, value, epoch_us(segment_start) a, epoch_us(segment_end) b FROM events WHERE session_id = '{sid}' AND kind = 'note'"
    ).to_pylist()
    assert len(gaps) == 1 and gaps[0]["name"] == "gap"
    assert (gaps[0]["a"], gaps[0]["b"]) == (lo, hi)
    assert '"source": "machine"' in gaps[0]["value"] and "simulated outage" in gaps[0]["value"]


def test_a_skewed_source_clock_is_measured(tmp_path: Path) -> None:
    f = cycle_file(tmp_path / "run.csv.gz", seconds=1.5, rate=50)
    src = {"file": str(f), "rate_hz": 50, "clock_offset_s": 0.35}  # the source clock runs 0.35 s ahead
    res, ds = record(station(tmp_path, src))
    row = ds.query(
        f"SELECT devices, meta_json FROM current_sessions WHERE session_id = '{res.sessions[0]}'"
    ).to_pylist()[0]
    dev = row["devices"][0]
    assert dev["offset_method"] == "received_median"
    assert dev["clock_offset_ns"] / 1e9 == pytest.approx(-0.35, abs=0.02)
    assert '"ntp"' in row["meta_json"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"sources": {"plc": {"type": "opcua", "endpoint": "opc.tcp://x:4840", "password": "hunter2"}}},
            "sources.plc.password: credentials are never written",
        ),
        ({"sources": {"plc": {"type": "modbus", "auth": [{"token": "abc"}]}}}, r"plc.auth\[0\].token"),
        ({"sources": {"plc": {"type": "profinet"}}}, "plc.type: unknown 'profinet'"),
        ({"server": "http://127.0.0.1:8000"}, "exactly one of dataset"),
        ({"session": {"trigger": "cycle_active is on"}}, "session.trigger"),
        ({"stations": "x"}, "stations: Extra inputs are not permitted"),
        ({"clocks": {"nope": 0.0}}, "clocks: no source named nope"),
        ({"sources": {"s": {"type": "mqtt", "host": "h", "topic": "a/#"}}}, "s.channels: list the topics"),
    ],
)
def test_the_station_yaml_names_what_is_wrong(change: dict[str, Any], message: str) -> None:
    cfg = {
        "station": "press-3",
        "dataset": "ds",
        "sources": {"m": {"type": "replay", "file": "x.csv"}},
        **change,
    }
    with pytest.raises(ConfigError, match=message):
        load_station(text=yaml.safe_dump(cfg))


def test_credentials_from_env_or_files_are_accepted() -> None:
    cfg = {
        "station": "press-3",
        "dataset": "ds",
        "sources": {
            "plc": {
                "type": "opcua",
                "endpoint": "opc.tcp://x:4840",
                "password_env": "PLC_PW",
                "password_file": "/run/secrets/pw",
            }
        },
    }
    assert load_station(text=yaml.safe_dump(cfg)).sources["plc"]["password_env"] == "PLC_PW"


def test_mqtt_topics_of_other_devices_are_declared_under_those_devices() -> None:
    """A mapped topic's ``device`` is where the session declares its channel (else its samples, routed
    to that device, would be dropped as undeclared)."""
    pytest.importorskip("paho.mqtt")
    cfg = {
        "station": "oven-2",
        "dataset": "ds",
        "sources": {
            "oven": {
                "type": "mqtt",
                "host": "127.0.0.1",
                "channels": [
                    {"topic": "p/temp", "channel": "temp", "unit": "degC", "device": "thermo"},
                    {"topic": "p/fan", "channel": "fan"},
                ],
            }
        },
    }
    rec = Recorder(load_station(text=yaml.safe_dump(cfg)), sink=None, say=lambda m: None)
    devices = {d["name"]: [c["name"] for c in d["channels"]] for d in rec._devices()}
    assert devices == {"thermo": ["temp"], "oven": ["fan"]}


def _cli(args: list[str], env: dict[str, str] | None = None) -> Any:
    import os
    import subprocess
    import sys

    code = "import sys; from jangin.core.cli import main; sys.argv[0] = 'jangin'; sys.exit(main())"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.mark.slow
def test_kill_9_mid_cycle_and_restart_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """The recorder is killed twice mid-recording (a crash point between staging and acknowledging,
    then SIGKILL at an arbitrary moment); the replay source redelivers what was not acknowledged, as an
    MQTT broker does. Each cycle's session ends up with every sample exactly once and its steps once."""
    import time

    cycles = TWO_CYCLES
    f = cycle_file(tmp_path / "cycles.csv.gz", seconds=6.0, cycles=cycles, phases=TWO_CYCLE_PHASES)
    cfg = {
        "station": "press-3",
        "site": "plant",
        "dataset": "ds",
        "sources": {
            "machine": {
                "type": "replay",
                "file": str(f),
                "rate_hz": 20,
                "phase_column": "step",
                "speed": 2,
                "start_at": T0,
                "state_file": str(tmp_path / "broker-state.json"),
            }
        },
        "clocks": {"machine": 0.0},
        "session": {"trigger": "cycle_active == 1", "step_tag": "step", "close_wait_s": 0.2},
        "buffer": {"batch_s": 0.1},
        "health_interval_s": 1,
    }
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(cfg))
    args = ["capture", "record", str(path)]

    p = _cli(args, {"JANGIN_TEST_CRASH_AT": "recorder:before_ack:4"})
    assert p.wait(60) == 137, p.stdout.read().decode()
    p = _cli(args)
    time.sleep(1.2)
    p.kill()
    p.wait(10)
    p = _cli(args)
    out = p.communicate(timeout=120)[0].decode()
    assert p.returncode == 0, out

    ds = Dataset.open(tmp_path / "ds")
    sessions = ds.query(
        "SELECT session_id, started_at, status FROM current_sessions ORDER BY started_at"
    ).to_pylist()
    assert [s["status"] for s in sessions] == ["processed", "processed"], out
    for s, (a, b) in zip(sessions, cycles, strict=True):
        rows = samples(ds, s["session_id"])
        expected = {
            (ch, round((T0S + i / 20) * 1e6))
            for i in range(120)
            if a <= i / 20 < b
            for ch in ("pressure", "power", "cycle_active")
        }
        assert len(rows) == len(expected)  # nothing duplicated
        assert {(r[1], r[2]) for r in rows} == expected  # nothing lost
        assert [e[1:4] for e in events(ds, s["session_id"])] == [
            ("step_start", "clamp", 1),
            ("step_end", "clamp", 1),
            ("step_start", "press", 1),
            ("step_end", "press", 1),
        ]


@pytest.mark.slow
def test_server_mode_spools_while_the_server_is_away_then_sends_everything(tmp_path: Path) -> None:
    """``server:`` mode against a real ``jangin serve`` (uvicorn subprocess) that only comes up after the
    recording started: the batches wait in the spool and the server ends with the same rows as a
    recording straight into a dataset."""
    import threading

    from _serve import KEY, Server

    from jangin.capture._recorder_sink import ServerSink

    f = cycle_file(tmp_path / "run.csv.gz")
    src = {"file": str(f), "phase_column": "step", "speed": 4, "start_at": T0}
    kw = {"clocks": {"machine": 0.0}, "session": {"step_tag": "step"}}
    direct, ds_direct = record(station(tmp_path / "direct", src, **kw), key="k1")

    srv = Server(tmp_path / "served")
    st = station(tmp_path, src, **kw).model_copy(update={"dataset": None, "server": srv.url})
    sink = ServerSink(srv.url, KEY, tmp_path / "spool", st.station, retry_s=0.2)
    threading.Timer(1.0, srv.start).start()  # the server is away at first
    try:
        res = Recorder(st, sink, session_key="k1", say=lambda m: None).run(60)
        sink.close(timeout_s=120)
        assert sink.outages >= 1 and sink.refused == 0  # it did wait for the server
        from jangin.capture._client import IngestClient

        with IngestClient(srv.url, KEY) as c:
            assert c.wait(res.sessions[0], timeout_s=60)["state"] == "processed"
    finally:
        srv.stop()
    assert res.sessions == direct.sessions  # same site + key: the same session id
    served = Dataset.open(tmp_path / "served")
    sid = res.sessions[0]
    assert samples(served, sid) == samples(ds_direct, sid) and len(samples(served, sid)) == 120
    assert events(served, sid) == events(ds_direct, sid)


def test_every_station_yaml_in_the_readme_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's "Record a station" section: each YAML block is a valid station, and each source's
    own class accepts its mapping (built, not connected)."""
    import re

    from jangin.capture.sources import make_source

    root = Path(__file__).resolve().parents[2]
    text = (root / "README.md").read_text()
    section = text.split("### Record a station", 1)[1].split("\n### ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    types = set()
    monkeypatch.chdir(root)
    monkeypatch.setenv("OPCUA_PASSWORD", "from-the-environment")
    monkeypatch.setenv("MQTT_PASSWORD", "from-the-environment")
    for block in blocks:
        st = load_station(text=block)
        for name, cfg in st.sources.items():
            types.add(cfg["type"])
            try:
                make_source(name, cfg)
            except ModuleNotFoundError as exc:  # an optional extra (asyncua, pymodbus) not installed here
                assert exc.name in ("asyncua", "pymodbus"), exc
    assert types == {"opcua", "modbus", "mqtt", "camera", "replay"}


@pytest.mark.slow
def test_processing_failures_keep_everything_staged_and_are_retried(tmp_path: Path) -> None:
    """The dataset's sensor table is unusable while the first cycle is processed (as a full or
    unmounted disk would make it): that session fails, the recorder keeps recording the next cycle,
    says so, and processes the failed one again once the table is back. Metrics are served meanwhile."""
    import shutil
    import threading
    import time

    import httpx

    cycles = [(0.5, 1.5), (4.0, 5.0)]
    f = cycle_file(tmp_path / "cycles.csv.gz", seconds=6.0, cycles=cycles)
    src = {"file": str(f), "speed": 2, "start_at": T0}
    st = station(
        tmp_path,
        src,
        clocks={"machine": 0.0},
        session={"trigger": "cycle_active == 1", "close_wait_s": 0.1},
        health_interval_s=0.5,
    )
    assert st.dataset is not None
    Dataset.create(st.dataset)
    table = st.dataset / "tables" / "sensor_samples"
    shutil.move(table, tmp_path / "away")
    table.write_text("not a table")  # the dataset's disk is away
    sink = DatasetSink(st.dataset, get_settings(dataset=st.dataset), st.station, retry_s=0.3)
    lines: list[str] = []
    rec = Recorder(st, sink, say=lines.append, metrics_port=0)

    def restore() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            failed = [
                p for p in (st.dataset / "staging").glob("*/status.json") if '"failed"' in p.read_text()
            ]
            if failed:
                table.unlink()
                shutil.move(tmp_path / "away", table)
                return
            time.sleep(0.05)

    threading.Thread(target=restore, daemon=True).start()
    res = rec.run(60)
    metrics = httpx.get(f"http://127.0.0.1:{rec.health.metrics_port}/metrics").text
    sink.close()
    assert len(res.sessions) == 2
    assert sink.retried >= 1
    assert [sink.status(s)["state"] for s in res.sessions] == ["processed", "processed"]
    assert sink.status(res.sessions[0]).get("retries", 0) >= 1
    ds = Dataset.open(st.dataset)
    assert len(samples(ds, res.sessions[0])) == 3 * 20  # nothing of the failed session was lost
    assert 'jangin_recorder_samples_total{source="machine"} 360.0' in metrics
    assert "jangin_recorder_buffered_bytes" in metrics


@pytest.mark.slow
def test_camera_frames_become_the_sessions_video(tmp_path: Path, make_session: Any) -> None:
    """A video file played as a camera stream (the camera source) beside a replayed sensor file: the
    session gets the camera's video, sampled into frames as an uploaded video would be."""
    video = make_session("cam", seconds=2) / "video.mp4"
    f = cycle_file(tmp_path / "run.csv.gz", seconds=2.0)
    st = station(tmp_path, {"file": str(f)}, clocks={"machine": 0.0})
    st = st.model_copy(
        update={"sources": {**st.sources, "cam": {"type": "camera", "url": str(video), "camera": "cell_cam"}}}
    )
    res, ds = record(st, duration=3.0)
    sid = res.sessions[0]
    media = ds.query(f"SELECT camera, frames, fps FROM media WHERE session_id = '{sid}'").to_pylist()
    assert [m["camera"] for m in media] == ["cell_cam"]
    assert media[0]["frames"] >= 15 and media[0]["fps"] == pytest.approx(10, abs=1)  # 10 fps stream
    n = ds.query(f"SELECT count(*) n FROM frames WHERE session_id = '{sid}'").column("n")[0].as_py()
    assert n >= 1
    assert len(samples(ds, sid)) == 2 * 40


@pytest.mark.slow
def test_ctrl_c_finishes_the_session_cleanly(tmp_path: Path) -> None:
    """``jangin capture record`` stopped with SIGINT (Ctrl-C) mid-recording: the session so far is
    finished and processed, and the command says so and exits 0."""
    import signal
    import time

    f = cycle_file(tmp_path / "long.csv.gz", seconds=60.0)
    cfg = {
        "station": "press-3",
        "site": "plant",
        "dataset": "ds",
        "sources": {"machine": {"type": "replay", "file": str(f), "rate_hz": 20}},
        "health_interval_s": 0.5,
    }
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(cfg))
    p = _cli(["capture", "record", str(path), "--session-key", "until-ctrl-c"])
    deadline = time.monotonic() + 60
    while not list((tmp_path / "ds" / "staging").glob("*/sensors/machine/*.arrow")):
        assert time.monotonic() < deadline and p.poll() is None
        time.sleep(0.1)
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    out = p.communicate(timeout=120)[0].decode()
    assert p.returncode == 0, out
    assert ": processed" in out and "recorded 1 session(s)" in out
    ds = Dataset.open(tmp_path / "ds")
    row = ds.query("SELECT session_id, status, meta_json FROM current_sessions").to_pylist()
    assert len(row) == 1 and row[0]["status"] == "processed" and "until-ctrl-c" in row[0]["meta_json"]
    n = len(samples(ds, row[0]["session_id"]))
    assert 0 < n < 2 * 1200  # what was recorded until the stop, not the whole file


def test_sessions_started_and_stopped_over_http(tmp_path: Path) -> None:
    """``session.control: http``: nothing is recorded until ``POST /session/start``; each start/stop
    pair is one session holding the samples between them (the replay runs on the recorder's clock)."""
    import threading
    import time

    import httpx

    f = cycle_file(tmp_path / "run.csv.gz", seconds=4.0)
    st = station(tmp_path, {"file": str(f), "speed": 1}, session={"control": "http", "close_wait_s": 0.1})
    sink = DatasetSink(st.dataset, get_settings(dataset=st.dataset), st.station, retry_s=0.5)  # type: ignore[arg-type]
    rec = Recorder(st, sink, say=lambda m: None)
    url = f"http://127.0.0.1:{rec.control_port}"
    marks: list[float] = []

    def operator() -> None:
        for at, cmd in ((0.8, "start?key=first"), (1.6, "stop"), (2.2, "start?key=second"), (3.0, "stop")):
            time.sleep(max(0.0, t0 + at - time.time()))
            r = httpx.post(f"{url}/session/{cmd}")
            assert r.status_code == 202
            marks.append(r.json()["at"])  # when the recorder took the request: the session's bound
        assert httpx.get(f"{url}/session").json()["closing"] in (True, False)

    t0 = time.time()
    threading.Thread(target=operator, daemon=True).start()
    res = rec.run(30)
    sink.close()
    assert len(res.sessions) == 2
    ds = Dataset.open(st.dataset)  # type: ignore[arg-type]
    for sid, (a, b) in zip(res.sessions, [(marks[0], marks[1]), (marks[2], marks[3])], strict=True):
        us = np.asarray([r[2] for r in samples(ds, sid)]) / 1e6
        assert sink.status(sid)["state"] == "processed"
        assert us.min() >= a and us.max() < b  # within the start/stop window
        assert abs(len(us) - 2 * 20 * (b - a)) <= 6  # and all of it (20 Hz, 2 channels)
    assert httpx.post(f"{url}/session/start?key=../x").status_code == 422
