"""Video: probe, sample frames (sharp, not near-duplicate), blur faces, store the file under media/."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jangin.capture._faces import Detection, FaceBlurrer
from jangin.core import CaptureError

__all__ = [
    "Detection",
    "FaceBlurrer",
    "VideoInfo",
    "deidentify_video",
    "encode_jpeg",
    "frame_times",
    "probe_video",
    "sample_frames",
    "sharpness",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoInfo:
    """What OpenCV reports about a video file."""

    path: Path
    fps: float
    frames: int
    width: int
    height: int
    codec: str

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps if self.fps > 0 else 0.0


def probe_video(path: Path) -> VideoInfo:
    """Open ``path`` and read its properties; the first frame must decode.

    Raises:
        CaptureError: Missing, not a video, or the first frame cannot be decoded.
    """
    import cv2

    if not path.is_file():
        raise CaptureError(f"{path}: video file not found")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise CaptureError(f"{path}: not a readable video")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC))
        codec = "".join(chr((fourcc >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00") or "unknown"
        ok, _ = cap.read()
        if not ok or fps <= 0 or w <= 0 or h <= 0:
            raise CaptureError(f"{path}: no decodable frame (truncated or corrupt video?)")
        return VideoInfo(path, fps, frames, w, h, codec)
    finally:
        cap.release()


def sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian: low values mean a blurred frame."""
    import cv2

    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def deidentify_video(src: Path, dst: Path, blur: FaceBlurrer, *, detect_hz: float = 2.0) -> dict[str, Any]:
    """Re-encode ``src`` to ``dst`` (MP4, ``mp4v``) with faces blurred in every frame.

    Faces are detected ``detect_hz`` times a second (every frame if the video is slower). The frames
    between two detections are held back and blurred with the boxes of both, so a face is covered
    from the detection before it to the one after it, whichever way it moves.

    Returns:
        A summary: ``frames``, ``detections`` (frames the detector ran on), ``blurred_frames`` (frames
        with at least one box blurred), ``faces`` (detections summed), ``max_score`` and the JSON text for
        ``media.deid_json`` under ``record``.

    Raises:
        CaptureError: ``src`` cannot be decoded or ``dst`` cannot be written.
    """
    import cv2

    cap = cv2.VideoCapture(str(src))
    if not cap.isOpened():
        raise CaptureError(f"{src}: not a readable video")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or 25.0
    detect_every = max(1, round(fps / detect_hz))
    writer = None
    prev: list[tuple[int, int, int, int]] = []
    held: list[np.ndarray] = []
    blurred = i = detections = faces = 0
    max_score = 0.0

    def flush(boxes: list[tuple[int, int, int, int]]) -> None:
        nonlocal blurred
        assert writer is not None
        for f in held:
            if boxes:
                f = blur.blur_boxes(f, boxes)
                blurred += 1
            writer.write(f)
        held.clear()

    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                if not writer.isOpened():
                    raise CaptureError(f"{dst}: cannot write an mp4v video here")
            if i % detect_every == 0:
                dets = blur.detect(frame)
                detections += 1
                faces += len(dets)
                max_score = max([max_score, *(d.score for d in dets)])
                cur = [d.xywh for d in dets]
                flush(prev + cur)  # the frames since the last detection: covered by both
                prev = cur
            held.append(frame)
            i += 1
        if writer is not None:
            flush(prev)
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    if i == 0:
        raise CaptureError(f"{src}: no decodable frame")
    summary = {"frames": i, "detections": detections, "blurred_frames": blurred, "faces": faces}
    record = json.dumps(
        {
            "detector": blur.name,
            "version": blur.version,
            "detect_hz": detect_hz,
            **summary,
            "max_score": round(max_score, 4),
        },
        separators=(",", ":"),
    )
    return {**summary, "max_score": max_score, "record": record}


def encode_jpeg(bgr: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of an image."""
    import cv2

    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise CaptureError("JPEG encoding failed")
    return bytes(buf)


@dataclass
class SampledFrame:
    """A frame chosen for the dataset."""

    index: int
    t_s: float  # presentation time (container PTS) in seconds from the start of the video
    image: np.ndarray
    sharpness: float
    faces: int
    detections: list[Detection] = field(default_factory=list)


def _pts_s(cap: Any, index: int, fps: float, last: float | None) -> float:
    """The presentation time (s) of the frame just grabbed, from the container's PTS (FFmpeg backend).

    Phone video is variable-frame-rate, so ``index / fps`` drifts from the real time. A backend that
    reports no time (0 after the first frame) or a time that goes backwards falls back to the
    previous time plus one nominal frame.
    """
    import cv2

    t = float(cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
    if last is None:
        return t if np.isfinite(t) and t >= 0 else 0.0
    if not np.isfinite(t) or t <= last:
        return last + 1.0 / (fps or 25.0)
    return t


def frame_times(path: Path) -> list[float]:
    """Presentation time (s, from the video start) of every frame of ``path``, in decode order."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise CaptureError(f"{path}: not a readable video")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    out: list[float] = []
    try:
        while cap.grab():
            out.append(_pts_s(cap, len(out), fps, out[-1] if out else None))
    finally:
        cap.release()
    return out


def sample_frames(
    info: VideoInfo,
    *,
    interval_s: float = 1.0,
    around_s: list[float] | None = None,
    window_s: float = 0.5,
    min_sharpness: float = 2.0,
    relative_sharpness: float = 0.6,
    dedupe_threshold: float = 1.0,
    blur: FaceBlurrer | None = None,
) -> Iterator[SampledFrame]:
    """Yield frames every ``interval_s`` seconds, plus frames at ``window_s / 2`` steps within
    ``window_s`` of each time in ``around_s`` (seconds from the video start), skipping blurred frames
    (Laplacian variance below ``min_sharpness``, or below ``relative_sharpness`` × the median of the last
    15 candidates, since what is sharp depends on the scene) and near-duplicates (mean absolute
    difference to the previously kept frame below ``dedupe_threshold`` grey levels). Times are the
    container's presentation times (PTS), so a variable-frame-rate video is sampled at the right
    moments. Only chosen frames are decoded to pixels; faces are blurred when ``blur`` is given.

    Raises:
        CaptureError: The video stops decoding before its declared end (truncated file).
    """
    import cv2

    tol = 0.5 / (info.fps or 25.0)  # half a nominal frame
    half = window_s / 2
    targets = sorted(t + k * half for t in (around_s or []) for k in (-2, -1, 0, 1, 2))
    p = 0
    while p < len(targets) and targets[p] < -tol:
        p += 1
    next_grid = 0.0
    cap = cv2.VideoCapture(str(info.path))
    last: np.ndarray | None = None
    recent: list[float] = []
    decoded = 0
    t_prev: float | None = None
    try:
        index = 0
        while True:
            ok = cap.grab()
            if not ok:
                break
            decoded += 1
            t = t_prev = _pts_s(cap, index, info.fps, t_prev)
            wanted = False
            if t >= next_grid - tol:
                wanted = True
                while next_grid <= t + tol:
                    next_grid += interval_s
            while p < len(targets) and targets[p] <= t + tol:
                wanted = True
                p += 1
            if wanted:
                ok, frame = cap.retrieve()
                if not ok:
                    raise CaptureError(f"{info.path}: frame {index} cannot be decoded")
                gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
                sharp = sharpness(gray)
                recent = [*recent[-14:], sharp]
                sharp_enough = sharp >= min_sharpness and sharp >= relative_sharpness * float(
                    np.median(recent)
                )
                small = cv2.resize(gray, (64, 36), interpolation=cv2.INTER_AREA).astype(np.float32)
                dup = last is not None and float(np.abs(small - last).mean()) < dedupe_threshold
                if sharp_enough and not dup:
                    dets: list[Detection] = []
                    if blur is not None:
                        frame, dets = blur.blur(frame)
                    last = small
                    yield SampledFrame(index, t, frame, sharp, len(dets), dets)
            index += 1
    finally:
        cap.release()
    if info.frames and decoded < 0.9 * info.frames:
        raise CaptureError(
            f"{info.path}: only {decoded} of {info.frames} frames decode (truncated or corrupt video)"
        )


def frame_meta(bgr: Any) -> tuple[int, int]:
    """(width, height) of an image array."""
    return int(bgr.shape[1]), int(bgr.shape[0])
