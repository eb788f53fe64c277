"""Face blurring on a real photograph (scikit-image's astronaut), in frames and in the stored video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jangin.capture._video import FaceBlurrer, deidentify_video

# Eileen Collins' face in the 512x512 astronaut photo (x0, y0, x1, y1).
FACE = (185, 75, 265, 160)
AT = (300, 100)  # where the photo is pasted into the frame


def _frame() -> np.ndarray:
    try:
        from skimage import data
    except ImportError:  # pragma: no cover - dev dependency
        pytest.fail("scikit-image is missing: run scripts/ci-capture.sh (it installs the test dependencies)")
    import cv2

    frame = np.full((720, 1280, 3), 90, np.uint8)
    cv2.line(frame, (0, 600), (1280, 600), (200, 200, 200), 6)  # a seam, far from the face
    x, y = AT
    frame[y : y + 512, x : x + 512] = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    return frame


def _regions(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    x0, y0, x1, y1 = FACE
    ax, ay = AT
    diff = np.abs(before.astype(np.int16) - after.astype(np.int16)).mean(axis=2)
    face = float(diff[ay + y0 : ay + y1, ax + x0 : ax + x1].mean())
    mask = np.ones(diff.shape, bool)
    mask[ay : ay + 512, ax : ax + 512] = False  # the rest of the frame, outside the photo
    return face, float(diff[mask].mean())


def test_real_face_is_blurred_and_the_rest_is_untouched() -> None:
    frame = _frame()
    out, n = FaceBlurrer()(frame)
    assert n >= 1
    face, rest = _regions(frame, out)
    assert face > 12.0, f"face region changed by only {face:.1f} grey levels"
    assert rest == 0.0
    import cv2

    # the blurred face has lost its detail: far less high-frequency energy than before
    x0, y0, x1, y1 = FACE
    ax, ay = AT
    crop = lambda im: cv2.cvtColor(im[ay + y0 : ay + y1, ax + x0 : ax + x1], cv2.COLOR_BGR2GRAY)  # noqa: E731
    assert cv2.Laplacian(crop(out), cv2.CV_64F).var() < 0.1 * cv2.Laplacian(crop(frame), cv2.CV_64F).var()


def test_stored_video_is_deidentified(tmp_path: Path) -> None:
    import cv2

    frame = _frame()
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    w = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"mp4v"), 10, (1280, 720))
    for i in range(6):
        w.write(np.roll(frame, 2 * i, axis=1))
    w.release()
    blurred = deidentify_video(src, dst, FaceBlurrer(max_side=640), detect_hz=10)
    assert blurred == 6
    a, b = cv2.VideoCapture(str(src)), cv2.VideoCapture(str(dst))
    for _ in range(6):
        ok1, f1 = a.read()
        ok2, f2 = b.read()
        assert ok1 and ok2
        face, rest = _regions(f1, f2)
        assert face > 12.0 and rest < 4.0  # rest: only re-encoding noise (the face: ~30)
