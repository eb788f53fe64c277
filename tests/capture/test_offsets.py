"""Clock offsets estimated from the sync event, checked against the sample sessions' truth.json."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from jangin.capture import import_session
from jangin.capture._offsets import step_time, video_step_time
from jangin.core import CaptureError, Dataset

SESSIONS = Path(__file__).resolve().parents[2] / "sample_data" / "sessions"
KEYS = ["weld-01", "weld-02", "weld-03", "weld-04", "weld-05"]


def _csv(path: Path) -> np.ndarray:
    with gzip.open(path, "rt") as f:
        return np.loadtxt(f, delimiter=",", skiprows=1)


@pytest.mark.parametrize("key", KEYS)
def test_current_step_and_video_jump_match_truth(key: str) -> None:
    truth = json.loads((SESSIONS / key / "truth.json").read_text())
    a = _csv(SESSIONS / key / "sensors" / "power_source.csv.gz")
    strike = step_time(a[:, 0], a[:, 1], name="arc_current_A")
    assert abs(strike - truth["sync"]["device_ts"]["power_source"]) < 0.002  # a few ms at 1 kHz
    t_video = video_step_time(SESSIONS / key / "video.mp4")
    offset = truth["sync"]["reference_ts"] - truth["started_at"] - t_video
    assert abs(offset - truth["clock_offsets_s"]["torch_cam"]) <= 1 / 15  # within one frame


@pytest.mark.parametrize("device", ["travel", "thermocouple", "torch_imu", "wire_feeder"])
def test_slow_or_absent_steps_are_refused(device: str) -> None:
    a = _csv(SESSIONS / "weld-01" / "sensors" / f"{device}.csv.gz")
    with pytest.raises(CaptureError, match="step"):
        step_time(a[:, 0], a[:, 1], name=device)


def test_import_estimates_missing_offsets_and_records_method(tmp_path: Path) -> None:
    d = tmp_path / "weld-02"
    shutil.copytree(SESSIONS / "weld-02", d, ignore=shutil.ignore_patterns("truth.json"))
    m = yaml.safe_load((d / "session.yaml").read_text())
    m["devices"][0].pop("clock_offset_s")  # power_source
    m["cameras"][0].pop("clock_offset_s")
    (d / "session.yaml").write_text(yaml.safe_dump(m))
    truth = json.loads((SESSIONS / "weld-02" / "truth.json").read_text())["clock_offsets_s"]
    ds = Dataset.create(tmp_path / "ds")
    r = import_session(ds, d, frame_interval_s=5.0, keep_video=False)
    devices = {x["name"]: x for x in ds.query("SELECT devices FROM sessions").column("devices")[0].as_py()}
    assert devices["power_source"]["offset_method"] == "sync_event:arc_current_A"
    assert abs(devices["power_source"]["clock_offset_ns"] / 1e9 - truth["power_source"]) < 0.002
    assert devices["torch_cam"]["offset_method"] == "sync_event:video_brightness"
    assert abs(devices["torch_cam"]["clock_offset_ns"] / 1e9 - truth["torch_cam"]) <= 1 / 15
    assert devices["travel"]["offset_method"] == "given"
    assert r.offsets["travel"] == (truth["travel"], "given")


def test_import_without_a_usable_step_is_rejected_and_writes_nothing(tmp_path: Path) -> None:
    d = tmp_path / "weld-01"
    shutil.copytree(SESSIONS / "weld-01", d, ignore=shutil.ignore_patterns("truth.json", "video.mp4"))
    m = yaml.safe_load((d / "session.yaml").read_text())
    m["cameras"] = []
    m["devices"][3].pop("clock_offset_s")  # torch_imu: no step at the arc strike
    (d / "session.yaml").write_text(yaml.safe_dump(m))
    ds = Dataset.create(tmp_path / "ds")
    with pytest.raises(CaptureError, match="torch_imu"):
        import_session(ds, d)
    assert sum(ds.counts().values()) == 0
