"""OnnxDetector: letterbox maths, agreement with Ultralytics, bad inputs, checksums, no torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jangin.core import InferenceError, ModelLoadError, ModelVersion
from jangin.core.detections import box_iou
from jangin.inference import Letterbox, OnnxDetector, letterbox, load_session


def test_letterbox_matches_a_hand_computed_case() -> None:
    # 100 x 45 into 64 x 64: r = min(64/45, 64/100) = 0.64 -> 64 x round(28.8) = 64 x 29;
    # vertical padding 35 = 17 on top (round(17.5 - 0.1)) + 18 at the bottom (round(17.5 + 0.1)).
    img = np.full((45, 100, 3), 200, np.uint8)
    out, lb = letterbox(img, 64, 64)
    assert out.shape == (64, 64, 3)
    assert lb == Letterbox(gain_x=0.64, gain_y=29 / 45, pad_x=0, pad_y=17, width=100, height=45)
    assert (out[:17] == 114).all() and (out[17:46] == 200).all() and (out[46:] == 114).all()
    # a box in input pixels maps back: x / 0.64, (y - 17) / (29/45)
    back = lb.to_original(np.array([[0.0, 17.0, 32.0, 46.0]]))
    assert back == pytest.approx(np.array([[0.0, 0.0, 50.0, 45.0]]), abs=1e-4)


@pytest.mark.parametrize(
    "spec",
    [
        {"width": 64, "height": 64},
        {"width": 48, "height": 48, "color": "bgr", "pad_value": 0},
        {"width": 80, "height": 64},
        {"width": 64, "height": 64, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)},
    ],
)
def test_prepare_equals_the_plain_letterbox_arithmetic(spec: dict[str, Any]) -> None:
    """The fused pre-processing (resize into the padded float batch slot in one pass) gives exactly
    letterbox -> channel order -> astype(float32) * scale -> (x - mean) / std, what training computes
    for calibration and parity."""
    import cv2

    from jangin.core.artifacts import InputSpec

    s = InputSpec(**spec)
    det = OnnxDetector.__new__(OnnxDetector)
    det.input = s
    rng = np.random.default_rng(1)
    for shape in [(64, 64, 3), (50, 70, 3), (120, 33, 3), (31, 31), (40, 40, 4)]:
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        bgr = img if img.ndim == 3 and shape[2] == 3 else None
        if img.ndim == 2:
            bgr = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        elif bgr is None:
            bgr = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
        padded, lb_ref = letterbox(bgr, s.width, s.height, s.pad_value)
        if s.color == "rgb":
            padded = padded[..., ::-1]
        ref = padded.transpose(2, 0, 1).astype(np.float32) * np.float32(s.scale)
        ref = (ref - np.asarray(s.mean, np.float32)[:, None, None]) / np.asarray(s.std, np.float32)[
            :, None, None
        ]
        x, lb = det._prepare(img, 0)
        batch = np.full((2, 3, s.height, s.width), np.nan, np.float32)
        det._prepare(img, 0, out=batch[1])
        assert lb == lb_ref and x.dtype == np.float32 and x.flags.c_contiguous
        assert np.array_equal(x, ref) and np.array_equal(batch[1], ref), shape
        assert np.isnan(batch[0]).all()  # the other slot untouched


def test_letterbox_pads_width_and_matches_ultralytics(trained: dict[str, Any]) -> None:
    from ultralytics.data.augment import LetterBox  # ultralytics_offline() ran in the trained fixture

    rng = np.random.default_rng(1)
    for h, w in [(80, 96), (33, 101), (120, 40), (64, 64), (7, 300)]:
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        ours, _ = letterbox(img, 64, 64)
        theirs = LetterBox((64, 64), auto=False, stride=32)(image=img)
        np.testing.assert_array_equal(ours, theirs)


def _images(trained: dict[str, Any]) -> list[np.ndarray]:
    import cv2

    imgs = [cv2.imread(str(p)) for p in trained["data"].images("train")]
    # other sizes and aspect ratios exercise the letterbox
    return [*imgs, cv2.resize(imgs[0], (150, 60)), cv2.resize(imgs[1], (50, 130))]


def test_predictions_match_ultralytics(trained: dict[str, Any]) -> None:
    from ultralytics import YOLO

    mv: ModelVersion = trained["mv"]
    det = OnnxDetector.from_version(mv, conf=0.001, iou=0.45)
    imgs = _images(trained)
    ours = det.predict(imgs)
    theirs = YOLO(str(mv.file("best.pt")), task="detect").predict(
        imgs,
        imgsz=64,
        conf=0.001,
        iou=0.45,
        verbose=False,
        rect=False,  # a square letterbox, like the export
    )
    compared = 0
    for d, r, img in zip(ours, theirs, imgs, strict=True):
        h, w = img.shape[:2]
        ref = r.boxes.xyxy.numpy() / np.array([w, h, w, h], np.float32)
        assert len(d) == len(ref)
        if not len(d):
            continue
        iou = box_iou(d.xyxy, ref)
        ref_cls, ref_conf = r.boxes.cls.numpy().astype(int), r.boxes.conf.numpy()
        free = set(range(len(ref)))
        for i in range(len(d)):  # each box has an unmatched twin: same class, IoU >= 0.95, same score
            twins = [j for j in free if ref_cls[j] == d.class_ids[i] and iou[i, j] >= 0.95]
            assert twins, f"no Ultralytics box matches {d.xyxy[i]} ({d.names[i]} {d.scores[i]:.4f})"
            j = min(twins, key=lambda j: abs(ref_conf[j] - d.scores[i]))
            assert d.scores[i] == pytest.approx(ref_conf[j], abs=1e-4)
            free.remove(j)
        assert (d.xyxy >= 0).all() and (d.xyxy <= 1).all()
        compared += len(d)
    assert compared >= len(imgs)


def test_batched_and_single_predictions_agree(trained: dict[str, Any]) -> None:
    det = OnnxDetector.from_version(trained["mv"], conf=0.001)
    imgs = _images(trained)
    batched = det.predict(imgs)
    for img, b in zip(imgs, batched, strict=True):
        (s,) = det.predict([img])
        np.testing.assert_allclose(s.xyxy, b.xyxy, atol=1e-5)
        np.testing.assert_allclose(s.scores, b.scores, atol=1e-6)


def test_load_by_name_and_manifest_thresholds(trained: dict[str, Any]) -> None:
    det = OnnxDetector.load(trained["registry"].root, "squares:v1")
    assert (det.name, det.model_version, det.classes) == ("squares", "v1", ("green", "red"))
    assert (det.conf, det.iou) == (0.25, 0.45)


@pytest.mark.parametrize(
    "data", [b"", b"not an image at all", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", b"\x89PNG\r\n\x1a\n"]
)
def test_non_images_are_an_inference_error(trained: dict[str, Any], data: bytes) -> None:
    det = OnnxDetector.from_version(trained["mv"])
    with pytest.raises(InferenceError):
        det.predict_bytes(data)


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((10, 10, 3), np.float32),
        np.zeros((0, 10, 3), np.uint8),
        np.zeros((4, 4, 2), np.uint8),
        "img.jpg",
    ],
)
def test_bad_arrays_are_an_inference_error(trained: dict[str, Any], image: Any) -> None:
    det = OnnxDetector.from_version(trained["mv"])
    with pytest.raises(InferenceError):
        det.predict([image])


def test_predict_bytes_decodes_jpeg_and_png(trained: dict[str, Any]) -> None:
    import cv2

    det = OnnxDetector.from_version(trained["mv"], conf=0.001)
    img = _images(trained)[0]
    ref = det.predict([img])[0]
    png = cv2.imencode(".png", img)[1].tobytes()
    got = det.predict_bytes(png)
    np.testing.assert_allclose(got.xyxy, ref.xyxy, atol=1e-5)


def test_a_changed_file_is_refused(trained: dict[str, Any], tmp_path: Path) -> None:
    copy = tmp_path / "v1"
    shutil.copytree(trained["mv"].path, copy)
    with open(copy / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelLoadError, match="checksum"):
        OnnxDetector.from_version(ModelVersion.load(copy, verify=False))


def test_load_session_rejects_garbage_and_remote_providers(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(ModelLoadError):
        load_session(bad)
    with pytest.raises(ModelLoadError, match="not found"):
        load_session(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="off the box"):
        load_session(bad, ["AzureExecutionProvider"])


def test_inference_never_imports_torch_nor_sends_telemetry(trained: dict[str, Any], tmp_path: Path) -> None:
    code = """
import json, sys
import numpy as np
import jangin.inference
from jangin.inference import OnnxDetector
after_import = sorted(m for m in ("torch", "torchvision", "ultralytics") if m in sys.modules)
det = OnnxDetector.load(sys.argv[1], "squares")
det.predict([np.zeros((80, 96, 3), np.uint8)])
det.predict_bytes(open(sys.argv[2], "rb").read())
print(json.dumps([after_import, sorted(m for m in ("torch", "torchvision", "ultralytics") if m in sys.modules)]))
"""
    image = trained["data"].images("test")[0]
    cache = tmp_path / "xdg-cache"
    cache.mkdir()
    out = subprocess.run(
        [sys.executable, "-c", code, str(trained["registry"].root), str(image)],
        capture_output=True,
        text=True,
        # the subprocess's cache directory is the one looked at below
        env={**os.environ, "XDG_CACHE_HOME": str(cache)},
        timeout=120,
        check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [[], []]
    # ONNX Runtime's native telemetry would have queued events under $XDG_CACHE_HOME/Microsoft
    assert list(cache.iterdir()) == []
