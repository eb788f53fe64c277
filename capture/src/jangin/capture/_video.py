"""Video: probe, sample frames (sharp, not near-duplicate), blur faces, store the file under media/."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jangin.core import CaptureError

__all__ = ["FaceBlurrer", "VideoInfo", "encode_jpeg", "probe_video", "sample_frames", "sharpness"]

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


class FaceBlurrer:
    """Blurs faces with OpenCV's bundled Haar cascades (frontal and profile); nothing downloads.

    A candidate face counts only when an eye is found in its upper part: Haar cascades alone fire
    on weld-bead textures now and then (about 1 in 30 bead images here), and blurring a defect
    destroys the data it was recorded for.
    """

    def __init__(self, *, min_size: int = 24, max_side: int = 960) -> None:
        import cv2

        root = Path(cv2.data.haarcascades)
        names = ("haarcascade_frontalface_default.xml", "haarcascade_profileface.xml", "haarcascade_eye.xml")
        cascades = [cv2.CascadeClassifier(str(root / n)) for n in names]
        if any(c.empty() for c in cascades):
            raise CaptureError(f"OpenCV's face detectors are missing under {root}")
        self._faces, self._eyes = cascades[:2], cascades[2]
        self.min_size = min_size
        self.max_side = max_side

    def faces(self, bgr: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Face boxes as (x, y, w, h) in the pixels of ``bgr``."""
        import cv2

        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
        scale = min(1.0, self.max_side / max(gray.shape[:2]))
        if scale < 1.0:
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        # Local contrast (CLAHE), not a global histogram equalisation: a large flat background
        # (a welding table) would otherwise squash the face's contrast and hide it.
        gray = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(gray)
        found: list[tuple[int, int, int, int]] = []
        for cascade in self._faces:
            boxes = cascade.detectMultiScale(
                gray, scaleFactor=1.15, minNeighbors=5, minSize=(self.min_size, self.min_size)
            )
            for x, y, w, h in boxes:
                # Eyes are ~w/6 px: look for them in the upper face, upscaled so they exceed the eye
                # cascade's 20 px window even on a small face.
                top = gray[y : y + int(h * 0.6), x : x + w]
                f = max(1.0, 160.0 / max(1, w))
                top = cv2.equalizeHist(cv2.resize(top, None, fx=f, fy=f, interpolation=cv2.INTER_LINEAR))
                eyes = self._eyes.detectMultiScale(top, scaleFactor=1.1, minNeighbors=3, minSize=(20, 20))
                if len(eyes):
                    found.append(tuple(int(round(v / scale)) for v in (x, y, w, h)))  # type: ignore[arg-type]
        return found

    def __call__(self, bgr: np.ndarray) -> tuple[np.ndarray, int]:
        """Return a copy of ``bgr`` with every face blurred beyond recognition, and the face count."""

        faces = self.faces(bgr)
        return self.blur_boxes(bgr, faces), len(faces)

    @staticmethod
    def blur_boxes(bgr: np.ndarray, faces: list[tuple[int, int, int, int]]) -> np.ndarray:
        """Return a copy of ``bgr`` with each (x, y, w, h) box (grown by a quarter) blurred."""
        import cv2

        if not faces:
            return bgr
        out = bgr.copy()
        h, w = out.shape[:2]
        for x, y, fw, fh in faces:
            # Grow the box: Haar boxes are tight and hair/ears identify people too.
            x0, y0 = max(0, x - fw // 4), max(0, y - fh // 4)
            x1, y1 = min(w, x + fw + fw // 4), min(h, y + fh + fh // 4)
            roi = out[y0:y1, x0:x1]
            k = max(31, (max(x1 - x0, y1 - y0) // 2) | 1)
            small = cv2.resize(
                roi, (max(1, (x1 - x0) // 12), max(1, (y1 - y0) // 12)), interpolation=cv2.INTER_AREA
            )
            out[y0:y1, x0:x1] = cv2.GaussianBlur(
                cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST), (k, k), 0
            )
        return out


def deidentify_video(src: Path, dst: Path, blur: FaceBlurrer, *, detect_hz: float = 2.0) -> int:
    """Re-encode ``src`` to ``dst`` (MP4, ``mp4v``) with faces blurred in every frame.

    Haar detection costs ~100x a frame decode, so faces are detected ``detect_hz`` times a second
    (every frame if the video is slower); each frame blurs the boxes of the last two detections,
    so a face that moves between detections stays covered.

    Returns:
        Frames in which at least one face was blurred.

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
    cur: list[tuple[int, int, int, int]] = []
    blurred = i = 0
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
                prev, cur = cur, blur.faces(frame)
            boxes = prev + cur
            if boxes:
                frame = blur.blur_boxes(frame, boxes)
                blurred += 1
            writer.write(frame)
            i += 1
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    if i == 0:
        raise CaptureError(f"{src}: no decodable frame")
    return blurred


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
    t_s: float  # seconds from the start of the video
    image: np.ndarray
    sharpness: float
    faces: int


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
    """Yield frames every ``interval_s`` seconds, plus frames within ``window_s`` of each time in
    ``around_s`` (seconds from the video start), skipping blurred frames (Laplacian variance below
    ``min_sharpness``, or below ``relative_sharpness`` × the median of the last 15 candidates, since
    what is sharp depends on the scene) and near-duplicates (mean absolute difference to the previously kept frame
    below ``dedupe_threshold`` grey levels). Faces are blurred when ``blur`` is given.

    Raises:
        CaptureError: The video stops decoding before its declared end (truncated file).
    """
    import cv2

    wanted = _wanted_indices(info, interval_s, around_s or [], window_s)
    cap = cv2.VideoCapture(str(info.path))
    last: np.ndarray | None = None
    recent: list[float] = []
    decoded = 0
    try:
        index = 0
        while True:
            ok = cap.grab()
            if not ok:
                break
            decoded += 1
            if index in wanted:
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
                    faces = 0
                    if blur is not None:
                        frame, faces = blur(frame)
                    last = small
                    yield SampledFrame(index, index / info.fps, frame, sharp, faces)
            index += 1
    finally:
        cap.release()
    if info.frames and decoded < 0.9 * info.frames:
        raise CaptureError(
            f"{info.path}: only {decoded} of {info.frames} frames decode (truncated or corrupt video)"
        )


def _wanted_indices(info: VideoInfo, interval_s: float, around_s: list[float], window_s: float) -> set[int]:
    n = info.frames or int(1e9)
    step = max(1, round(interval_s * info.fps))
    wanted = set(range(0, n, step))
    half = max(1, round(window_s * info.fps / 2))
    for t in around_s:
        c = round(t * info.fps)
        wanted.update(i for i in range(c - 2 * half, c + 2 * half + 1, half) if 0 <= i < n)
    return wanted


def frame_meta(bgr: Any) -> tuple[int, int]:
    """(width, height) of an image array."""
    return int(bgr.shape[1]), int(bgr.shape[0])
