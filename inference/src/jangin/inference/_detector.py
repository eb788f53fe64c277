"""Object detection with an exported YOLO model on ONNX Runtime: numpy and OpenCV, no torch."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jangin.core import InferenceError, ModelLoadError, ModelManifest, ModelRegistry, ModelVersion
from jangin.core.detections import Detections, letterbox_geometry, nms
from jangin.inference._open import ServedOnnx
from jangin.inference._runtime import ort_errors

__all__ = ["Letterbox", "OnnxDetector", "letterbox"]

log = logging.getLogger(__name__)

#: Class offset that separates classes in one NMS pass (as Ultralytics does).
_MAX_WH = 7680.0
_MAX_NMS = 30000
#: Images per ONNX Runtime call when the model takes a dynamic batch.
MAX_BATCH = 8


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into the model input: ``input = original * gain + pad``."""

    gain_x: float
    gain_y: float
    pad_x: int
    pad_y: int
    width: int
    height: int

    def to_original(self, xyxy: np.ndarray) -> np.ndarray:
        """Boxes in input pixels to pixels of the original image, clipped to it."""
        out = (np.asarray(xyxy, dtype=np.float32) - [self.pad_x, self.pad_y, self.pad_x, self.pad_y]) / [
            self.gain_x,
            self.gain_y,
            self.gain_x,
            self.gain_y,
        ]
        return np.clip(out, 0, [self.width, self.height, self.width, self.height]).astype(np.float32)


def letterbox(img: np.ndarray, width: int, height: int, pad_value: int = 114) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio, then pad to ``width`` × ``height`` with the image centred.

    The same arithmetic as Ultralytics' ``LetterBox`` (``auto=False``): scale ``r = min(H/h, W/w)``,
    resized size ``round(w·r) × round(h·r)`` (at least 1), padding split in two with the odd pixel on
    the right / bottom, bilinear resize.

    Args:
        img: ``(h, w, 3)`` uint8 image.
        width: Input width of the model.
        height: Input height of the model.
        pad_value: Grey level of the padding.

    Returns:
        The ``(height, width, 3)`` image and the :class:`Letterbox` that maps boxes back.
    """
    import cv2

    h, w = img.shape[:2]
    nw, nh, top, bottom, left, right = letterbox_geometry(h, w, height, width)
    if (nw, nh) != (w, h):
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(pad_value,) * 3)
    return img, Letterbox(nw / w, nh / h, left, top, w, h)


class OnnxDetector(ServedOnnx):
    """A detector exported as ONNX (``outputs.format == "yolo_v8"``), run with ONNX Runtime.

    Loads the manifest and the ONNX file only: nothing is unpickled, and torch is never imported.
    Build it with :meth:`from_version` or :meth:`load`.

    Example:
        >>> det = OnnxDetector.load("jangin-data/models", "defects")        # doctest: +SKIP
        >>> det.predict([cv2.imread("part.jpg")])[0].names                  # doctest: +SKIP
    """

    def __init__(
        self, session: Any, version: ModelVersion, *, conf: float, iou: float, max_det: int = 300
    ) -> None:
        m = version.manifest
        if m.input is None:
            raise ValueError(f"{version} has no input spec")
        self._bind(session, version)
        self.classes: tuple[str, ...] = tuple(m.classes)
        self.conf = float(conf)
        self.iou = float(iou)
        self.max_det = max_det
        self.input = m.input

    @classmethod
    def from_version(
        cls,
        mv: ModelVersion,
        *,
        providers: Sequence[str] | None = None,
        conf: float | None = None,
        iou: float | None = None,
        prefer: Sequence[str] | None = None,
    ) -> OnnxDetector:
        """Load a published detector version.

        The manifest is read again and every file's sha256 checked; the ONNX bytes that were hashed
        are the ones given to ONNX Runtime.

        Args:
            mv: The model version.
            providers: ONNX Runtime providers (see :func:`load_session`).
            conf: Confidence threshold; default the manifest's (else 0.25).
            iou: NMS IoU threshold; default the manifest's (else 0.45).
            prefer: Runtime preference (``["openvino:int8"]`` …; see :func:`open_model`).

        Raises:
            ModelLoadError: Not a detector this runtime decodes, a checksum mismatch, or a broken file.
        """

        def check(m: ModelManifest) -> None:
            if m.task != "detect":
                raise ModelLoadError(f"{mv.name}:{mv.version} is a {m.task} model, not a detector")
            fmt = m.outputs.get("format")
            if fmt != "yolo_v8" or m.outputs.get("nms"):
                raise ModelLoadError(
                    f"{mv.name}:{mv.version} has output format {fmt!r}; this runtime decodes yolo_v8 without NMS"
                )
            if (
                m.input is None
                or m.input.resize != "letterbox"
                or m.input.color not in ("rgb", "bgr")
                or m.input.channels != 3
            ):
                raise ModelLoadError(f"{mv.name}:{mv.version}: unsupported input {m.input}")

        mv, session = cls.open_verified(mv, check, providers=providers, prefer=prefer)
        m = mv.manifest
        assert m.input is not None  # checked above
        out = session.get_outputs()[0].shape
        if len(out) != 3 or (isinstance(out[1], int) and out[1] != 4 + len(m.classes)):
            raise ModelLoadError(
                f"{mv.file('model.onnx')}: output shape {out} does not fit {len(m.classes)} classes"
            )
        t = m.thresholds
        det = cls(
            session,
            mv,
            conf=t.get("conf", 0.25) if conf is None else conf,
            iou=t.get("iou", 0.45) if iou is None else iou,
        )
        # Warm the whole pipeline (OpenCV import, allocations) so the first part on the line is not slow.
        det.predict([np.full((m.input.height, m.input.width, 3), m.input.pad_value, np.uint8)])
        return det

    @classmethod
    def load(
        cls,
        registry_root: str | Path,
        ref: str,
        *,
        providers: Sequence[str] | None = None,
        conf: float | None = None,
        iou: float | None = None,
    ) -> OnnxDetector:
        """Load ``name[:version]`` from a registry (no version: the active one, else the latest).

        Raises:
            NotFoundError: No such model or version.
            ModelLoadError: As :meth:`from_version`.
        """
        mv = ModelRegistry(registry_root).get(ref, verify=False)
        return cls.from_version(mv, providers=providers, conf=conf, iou=iou)

    # -- prediction ---------------------------------------------------------------------------------

    def predict(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detect objects in BGR uint8 images of any size.

        Args:
            images: ``(h, w, 3)`` BGR (OpenCV order) uint8 arrays; ``(h, w)`` grey and ``(h, w, 4)``
                BGRA are converted.

        Returns:
            One :class:`Detections` per image, boxes as fractions of that image's size.

        Raises:
            InferenceError: An input is not such an image, or ONNX Runtime fails on it.
        """
        for i, im in enumerate(images):  # every input is checked before any model call
            self._check(im, i)
        out: list[Detections] = []
        step = MAX_BATCH if self._dynamic_batch else 1
        spec = self.input
        for start in range(0, len(images), step):
            chunk = images[start : start + step]
            # each image is letterboxed straight into its slot of the batch: no per-image tensor, no stack
            x = np.empty((len(chunk), 3, spec.height, spec.width), np.float32)
            lbs = [self._prepare(im, start + i, out=x[i])[1] for i, im in enumerate(chunk)]
            try:
                raw = self.session.run(None, {self._input_name: x})[0]
            except ort_errors() as exc:
                raise InferenceError(f"ONNX Runtime failed on {len(chunk)} image(s): {exc}") from exc
            for lb, pred in zip(lbs, raw, strict=True):
                out.append(self._decode(pred, lb))
        return out

    def predict_bytes(self, data: bytes) -> Detections:
        """Detect objects in an encoded image (JPEG, PNG, BMP, TIFF, WebP …).

        Raises:
            InferenceError: ``data`` is not a decodable image.
        """
        return self.predict([decode_image(data)])[0]

    @staticmethod
    def _check(img: Any, index: int) -> None:
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
            kind = img.dtype if isinstance(img, np.ndarray) else type(img).__name__
            raise InferenceError(f"image {index}: expected a uint8 numpy array, got {kind}")
        if img.ndim == 3 and img.shape[2] in (3, 4) and img.shape[0] > 0 and img.shape[1] > 0:
            return
        if img.ndim == 2 and img.shape[0] > 0 and img.shape[1] > 0:
            return
        raise InferenceError(f"image {index}: expected an (h, w, 3) BGR image, got shape {img.shape}")

    def _prepare(self, img: Any, index: int, out: np.ndarray | None = None) -> tuple[np.ndarray, Letterbox]:
        """The model input ``(3, H, W)`` float32 of one image (written into ``out`` when given) and its
        :class:`Letterbox`.

        The same values as letterbox → channel order → ``astype(float32) * scale`` → ``(x - mean) / std``
        (what training's ``preprocess`` computes, so INT8 calibration and parity hold), in fewer passes:
        the resized pixels are scaled straight into the padded float tensor (one strided pass, no padded
        uint8 copy, no separate transpose copy). ``img`` is one :meth:`_check` passed (``predict``
        checks every input before any model call)."""
        import cv2

        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        elif img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
        spec = self.input
        h, w = img.shape[:2]
        nw, nh, top, bottom, left, right = letterbox_geometry(h, w, spec.height, spec.width)
        if (nw, nh) != (w, h):
            img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
        x = np.empty((3, spec.height, spec.width), np.float32) if out is None else out
        scale = np.float32(spec.scale)
        if top or bottom or left or right:
            x[...] = np.float32(spec.pad_value) * scale
        chw = img.transpose(2, 0, 1)
        if spec.color == "rgb":
            chw = chw[::-1]
        np.multiply(chw, scale, out=x[:, top : top + nh, left : left + nw], dtype=np.float32)
        if any(spec.mean) or any(s != 1 for s in spec.std):
            x -= np.asarray(spec.mean, np.float32)[:, None, None]
            x /= np.asarray(spec.std, np.float32)[:, None, None]
        return x, Letterbox(nw / w, nh / h, left, top, w, h)

    def _decode(self, pred: np.ndarray, lb: Letterbox) -> Detections:
        """``(4 + nc, anchors)`` → best class per anchor → threshold → class-wise NMS → normalised boxes."""
        scores_all = pred[4:]
        score = scores_all.max(0)
        keep = score > self.conf
        if not keep.any():
            return Detections.empty(self.classes)
        # the class (argmax) only of the anchors kept: the same as argmax of all, then filtered
        xywh, score, cls = pred[:4, keep].T, score[keep], scores_all[:, keep].argmax(0)
        if len(score) > _MAX_NMS:
            top = np.argsort(-score, kind="stable")[:_MAX_NMS]
            xywh, score, cls = xywh[top], score[top], cls[top]
        xyxy = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
        idx = nms(xyxy + cls[:, None] * _MAX_WH, score, self.iou)[: self.max_det]
        boxes = (lb.to_original(xyxy[idx]) / np.array([lb.width, lb.height, lb.width, lb.height])).astype(
            np.float32
        )
        return Detections(boxes, score[idx], cls[idx], self.classes)

    def __repr__(self) -> str:
        return f"OnnxDetector({self.name}:{self.model_version}, {self.session.get_providers()[0]})"


def decode_image(data: bytes) -> np.ndarray:
    """Decode image bytes to a BGR uint8 array.

    Raises:
        InferenceError: Empty or not a decodable image.
    """
    import cv2

    if not isinstance(data, bytes | bytearray | memoryview) or len(data) == 0:
        raise InferenceError("no image data")
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        head = bytes(data[:8])
        raise InferenceError(
            f"{len(data)} bytes are not a decodable image (starting {head!r})", hint="send a JPEG or PNG"
        )
    return img
