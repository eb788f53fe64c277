"""Frame times come from the container's presentation timestamps (PTS), not index / fps: a
variable-frame-rate video (as phones record) is written with PyAV and read back through capture."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from jangin.capture._import import camera_rows
from jangin.capture._offsets import video_step_time
from jangin.capture._video import frame_times, probe_video, sample_frames

# 1 s at 30 fps, 2 s at 10 fps, 1 s at 60 fps: a phone slowing down in the dark, then catching up.
STEPS_MS = [33] * 30 + [100] * 20 + [17] * 60


def _av():  # type: ignore[no-untyped-def]
    try:
        import av
    except ImportError:  # pragma: no cover - dev dependency
        pytest.fail("PyAV is missing: pip install -e '.[dev]' (it writes the variable-frame-rate test video)")
    return av


def _vfr_video(path: Path, bright_from: int | None = None) -> list[float]:
    """Write a VFR MPEG-4 video (textured frames, each different; brighter from frame ``bright_from``)
    and return its PTS in seconds."""
    av = _av()
    rng = np.random.default_rng(7)
    base = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    out = av.open(str(path), "w")
    stream = out.add_stream("mpeg4", rate=30)
    stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
    stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
    pts, t = [], 0
    for i, step in enumerate(STEPS_MS):
        img = np.kron(np.roll(base, 3 * i, axis=1), np.ones((2, 2, 1), np.uint8))  # sharp, moving
        if bright_from is not None:
            img = img // 4 + (150 if i >= bright_from else 20)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts, frame.time_base = t, Fraction(1, 1000)
        for packet in stream.encode(frame):
            out.mux(packet)
        pts.append(t / 1000)
        t += step
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return pts


def _container_pts(path: Path) -> list[float]:
    av = _av()
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [float(f.pts * s.time_base) for f in c.decode(s)]


def test_frame_times_are_the_container_pts(tmp_path: Path) -> None:
    video = tmp_path / "vfr.mp4"
    written = _vfr_video(video)
    truth = _container_pts(video)
    assert truth == pytest.approx(written, abs=1e-6)  # the container kept our timestamps
    got = frame_times(video)
    assert len(got) == len(truth) == len(STEPS_MS)
    assert got == pytest.approx(truth, abs=0.0015)
    # index / nominal fps would be off by more than a second by the end: the test can tell them apart
    fps = probe_video(video).fps
    assert max(abs(i / fps - t) for i, t in enumerate(truth)) > 1.0


def test_sampled_frames_and_rows_carry_pts_times(tmp_path: Path) -> None:
    video = tmp_path / "vfr.mp4"
    _vfr_video(video)
    truth = _container_pts(video)
    info = probe_video(video)
    frames = list(sample_frames(info, interval_s=0.5, dedupe_threshold=0.0, min_sharpness=0.0))
    assert len(frames) >= 8
    for fr in frames:
        assert fr.t_s == pytest.approx(truth[fr.index], abs=0.0015)
    # one frame per half second of real time: the first frame at or after each grid time
    for k, fr in enumerate(frames):
        assert fr.index == next(i for i, t in enumerate(truth) if t >= k * 0.5 - 0.017)

    start = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    rows, _, _ = camera_rows(
        "ses-vfr",
        "phone",
        video,
        video_start=start,
        offset_s=2.5,
        events=[],
        frame_interval_s=0.5,
        blur=None,
        source_uri="vfr.mp4",
        station=None,
    )
    assert [r["pts"] for r in rows] == [f.index for f in frames]
    for r in rows:
        expect = start + timedelta(seconds=2.5 + truth[r["pts"]])
        assert abs((r["ts"] - expect).total_seconds()) < 0.002
        assert r["deid_json"] is None and r["deidentified"] is False


def test_sync_flash_time_uses_pts(tmp_path: Path) -> None:
    """The brightness jump that aligns a camera's clock is timed by PTS too (frame 40: in the 10 fps part,
    where index / fps would say 1.33 s instead of 1.99 s)."""
    video = tmp_path / "flash.mp4"
    pts = _vfr_video(video, bright_from=40)
    assert pts[40] == pytest.approx(1.99)
    # the flash happened in the frame period before the first bright frame: half of it earlier
    assert video_step_time(video) == pytest.approx(pts[40] - 0.5 * (pts[40] - pts[39]), abs=0.002)
