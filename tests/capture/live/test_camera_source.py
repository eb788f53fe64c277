"""CameraSource on a video file played as a stream (OpenCV reads the file: no RTSP server is needed)."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jangin.capture.sources import Frame, Gap, make_source
from jangin.core import CaptureError


def _collect(src: Any, pred: Callable[[list[Any]], bool], timeout_s: float = 15.0) -> list[Any]:
    out: list[Any] = []
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and not pred(out):
        out += src.read(0.1)
    return out


def _frames(out: list[Any]) -> list[Frame]:
    return [f for f in out if isinstance(f, Frame)]


def test_file_paced_at_its_fps_with_stream_times_and_a_gap_per_loop(
    make_session: Callable[..., Path],
) -> None:
    video = make_session("cam", seconds=1) / "video.mp4"  # 10 frames at 10 fps
    src = make_source(
        "cam", {"type": "camera", "url": str(video), "camera": "torch_cam", "reconnect_min_s": 0.3}
    )
    start = time.time()
    src.open()
    try:
        out = _collect(src, lambda o: len(_frames(o)) >= 25)
    finally:
        src.close()
    took = time.time() - start
    frames = _frames(out)
    gaps = [g for g in out if isinstance(g, Gap)]
    assert len(frames) >= 25 and frames[0].image.shape == (96, 160, 3) and frames[0].camera == "torch_cam"
    assert took >= 2.0  # 25 frames of a 10 fps file in real time (plus two reopen waits) take > 2 s
    first = np.array([f.t for f in frames[:10]])
    np.testing.assert_allclose(np.diff(first), 0.1, atol=1e-3)  # the file's own spacing, not arrival times
    assert len(gaps) == 2  # the "stream" ended twice and came back
    for g in gaps:
        i = out.index(g)
        before, after = _frames(out[:i])[-1], _frames(out[i + 1 :])[0]
        assert g.start == before.t and g.end == after.t and g.end - g.start >= 0.3
    assert src.health().extra["timestamps"] == "stream" and src.health().reconnects == 2


def test_camera_that_appears_later_is_waited_for(tmp_path: Path, make_session: Callable[..., Path]) -> None:
    video = make_session("late", seconds=1) / "video.mp4"
    path = tmp_path / "stream.mp4"  # not there yet: the camera is still booting
    timer = threading.Timer(0.6, lambda: shutil.copy(video, path))
    timer.start()
    src = make_source(
        "cam", {"type": "camera", "url": str(path), "reconnect_min_s": 0.1, "open_timeout_s": 20}
    )
    src.open()
    try:
        out = _collect(src, lambda o: len(_frames(o)) >= 3)
    finally:
        src.close()
        timer.cancel()
    assert len(_frames(out)) >= 3 and src.health().extra["failed_opens"] >= 1


def test_camera_that_never_opens_names_it(tmp_path: Path) -> None:
    src = make_source("cam", {"type": "camera", "url": str(tmp_path / "nothing.mp4"), "open_timeout_s": 0.5})
    with pytest.raises(CaptureError, match=r"source cam: camera .*nothing\.mp4 did not open in 0\.5 s"):
        src.open()


def test_full_queue_drops_the_oldest_frames_and_counts_them(make_session: Callable[..., Path]) -> None:
    video = make_session("fast", seconds=1) / "video.mp4"
    src = make_source("cam", {"type": "camera", "url": str(video), "realtime": False, "max_queue": 4})
    src.open()
    try:
        time.sleep(1.0)  # nobody reads: at most 4 frames wait
        out = src.read(0.1)
    finally:
        src.close()
    assert len(_frames(out)) == 4 and src.health().dropped > 0
