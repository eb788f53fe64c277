"""Live sources: a video file played as a camera stream (with drop-outs), and MQTT sensor samples
through a real mosquitto broker on loopback."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from jangin.capture._live import CameraRecorder, MqttSensorSource
from jangin.core import CaptureError, Dataset


def _frames(path: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_file_played_as_stream_reconnects_at_each_drop(
    tmp_path: Path, make_session: Callable[..., Path]
) -> None:
    video = make_session("live", seconds=2) / "video.mp4"  # 20 frames
    out = tmp_path / "rec" / "cam.mp4"
    stats = CameraRecorder(str(video), out, reconnect_delay_s=0.01).record(max_frames=50)
    assert stats.frames == 50 and stats.reconnects == 2  # the stream ended twice and came back
    assert _frames(out) == 50
    assert len(out.with_suffix(".ts.csv").read_text().splitlines()) == 51


def test_source_that_disappears_and_comes_back(tmp_path: Path, make_session: Callable[..., Path]) -> None:
    video = make_session("live2", seconds=2) / "video.mp4"
    src = tmp_path / "stream.mp4"  # not there yet: the camera is unplugged
    threading.Timer(0.5, lambda: shutil.copy(video, src)).start()
    stats = CameraRecorder(str(src), tmp_path / "cam.mp4", reconnect_delay_s=0.1, max_reconnects=20).record(
        max_frames=20, max_seconds=30
    )
    assert stats.frames == 20 and stats.failed_opens >= 1 and stats.reconnects == 1


def test_source_that_never_comes_gives_up(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="no frame recorded"):
        CameraRecorder(
            str(tmp_path / "nothing.mp4"), tmp_path / "x.mp4", reconnect_delay_s=0.01, max_reconnects=3
        ).record(max_seconds=5)


def _mosquitto() -> str:
    exe = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if exe is None:
        pytest.fail("mosquitto is not installed: run scripts/ci-capture.sh (apt-get install -y mosquitto)")
    return exe


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen(
        [_mosquitto(), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("mosquitto did not start")
    yield port
    proc.terminate()
    proc.wait(10)


def test_mqtt_samples_reach_the_dataset_in_batches(tmp_path: Path, broker: int) -> None:
    import paho.mqtt.client as mqtt

    ds = Dataset.create(tmp_path / "ds")
    src = MqttSensorSource(
        ds, "ses-live", port=broker, topic="plant/st-01/#", offsets={"power_source": 0.25}, batch_s=0.3
    )
    src.start()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-pub")
    pub.connect("127.0.0.1", broker)
    pub.loop_start()
    t0 = 1_772_438_400.0
    infos = []
    for k in range(10):  # 10 batches of 100 samples at 1 kHz, plus single samples of a slow channel
        t = t0 + (k * 100 + np.arange(100)) / 1000
        infos.append(
            pub.publish(
                "plant/st-01/power",
                json.dumps(
                    {
                        "device": "power_source",
                        "t": t.tolist(),
                        "channels": {"arc_current_A": (100 + np.arange(100)).tolist()},
                        "units": {"arc_current_A": "A"},
                    }
                ),
                qos=1,
            )
        )
        infos.append(
            pub.publish(
                "plant/st-01/temp",
                json.dumps(
                    {
                        "device": "thermo",
                        "channel": "plate_temp_C",
                        "ts": t0 + k / 10,
                        "value": 20 + k,
                        "unit": "degC",
                    }
                ),
                qos=1,
            )
        )
    infos.append(pub.publish("plant/st-01/junk", b"not json", qos=1))
    for i in infos:
        i.wait_for_publish(5)
    deadline = time.monotonic() + 20
    while (src.samples + src._n < 1010 or src.bad_messages < 1) and time.monotonic() < deadline:
        time.sleep(0.05)
    src.stop()
    pub.loop_stop()
    pub.disconnect()
    rows = ds.query(
        "SELECT channel, count(*) n, count(DISTINCT ts) d, min(epoch(ts)) t FROM sensor_samples GROUP BY 1 ORDER BY 1"
    ).to_pylist()
    assert [(r["channel"], r["n"], r["d"]) for r in rows] == [
        ("arc_current_A", 1000, 1000),
        ("plate_temp_C", 10, 10),
    ]
    assert rows[0]["t"] == pytest.approx(t0 + 0.25)  # device clock offset applied
    assert src.bad_messages == 1 and src.batches >= 1
    assert ds.committed("sensor_samples", "mqtt/ses-live/plant/st-01/#") == src.batches
