"""Image classifiers on ONNX Runtime (``task = "classify"``, ``outputs.format = "cls_v1"``): numpy and
OpenCV, no torch.

The contract with the training side (``jangin.training._classify``): ``InputSpec`` with
``resize = "center_crop"`` (shorter side to ``width``, then a centred square crop), RGB, ``1/255``; ONNX
input ``(N, 3, S, S)`` float32; one output ``(N, n_classes)`` of class probabilities (softmax inside the
model when ``outputs.softmax``), classes in ``manifest.classes`` order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from jangin.core import InferenceError, ModelLoadError, ModelManifest, ModelVersion
from jangin.inference._open import ServedOnnx
from jangin.inference._runtime import ort_errors

__all__ = ["ClassResult", "OnnxClassifier"]


@dataclass(frozen=True)
class ClassResult:
    """One image's class probabilities.

    Attributes:
        probs: ``(n_classes,)`` probabilities in ``classes`` order.
        classes: The class names.
    """

    probs: np.ndarray
    classes: tuple[str, ...]

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable classes, best first, as ``(name, probability)``."""
        order = np.argsort(-self.probs)[:k]
        return [(self.classes[i], float(self.probs[i])) for i in order]


class OnnxClassifier(ServedOnnx):
    """A ``cls_v1`` image classifier (see the module docstring)."""

    def __init__(self, session: Any, version: ModelVersion) -> None:
        m = version.manifest
        if m.input is None or not m.classes:
            raise ModelLoadError(f"{version.name}:{version.version}: a classifier needs input and classes")
        self._bind(session, version)
        self.input = m.input
        self.classes: tuple[str, ...] = tuple(m.classes)
        self.softmax = bool(m.outputs.get("softmax", True))

    @classmethod
    def from_version(
        cls,
        mv: ModelVersion,
        *,
        providers: Sequence[str] | None = None,
        prefer: Sequence[str] | None = None,
    ) -> OnnxClassifier:
        """Load and warm a published classifier (checksums verified).

        Raises:
            ModelLoadError: Not a ``cls_v1`` model, a checksum mismatch, or a broken file.
        """

        def check(m: ModelManifest) -> None:
            if m.task != "classify" or m.outputs.get("format", "cls_v1") != "cls_v1":
                raise ModelLoadError(
                    f"{mv.name}:{mv.version} is not a cls_v1 classifier (task {m.task}, "
                    f"format {m.outputs.get('format')!r})"
                )
            if m.input is None or m.input.channels != 3:
                raise ModelLoadError(f"{mv.name}:{mv.version}: unsupported input {m.input}")

        mv, session = cls.open_verified(mv, check, providers=providers, prefer=prefer)
        m = mv.manifest
        assert m.input is not None  # checked above
        model = cls(session, mv)
        model.predict([np.zeros((m.input.height, m.input.width, 3), np.uint8)])
        return model

    def prepare(self, img: np.ndarray) -> np.ndarray:
        """A BGR uint8 image → the ``(3, S, S)`` float32 input (resize as the manifest says)."""
        import cv2

        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise InferenceError(
                f"expected an (h, w, 3) uint8 BGR image, got {getattr(img, 'shape', type(img))}"
            )
        spec = self.input
        if spec.resize == "center_crop":
            h, w = img.shape[:2]
            s = spec.width / min(h, w)
            nh, nw = max(spec.height, round(h * s)), max(spec.width, round(w * s))
            x = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
            top, left = (nh - spec.height) // 2, (nw - spec.width) // 2
            x = x[top : top + spec.height, left : left + spec.width]
        else:
            x = cv2.resize(img, (spec.width, spec.height), interpolation=cv2.INTER_LINEAR)
        if spec.color == "rgb":
            x = x[..., ::-1]
        x = x.transpose(2, 0, 1).astype(np.float32) * np.float32(spec.scale)
        mean = np.asarray(spec.mean, np.float32)[:, None, None]
        std = np.asarray(spec.std, np.float32)[:, None, None]
        return np.ascontiguousarray((x - mean) / std)

    def predict(self, images: Sequence[np.ndarray]) -> list[ClassResult]:
        """Class probabilities of BGR uint8 images of any size.

        Raises:
            InferenceError: A bad input, or ONNX Runtime fails on it.
        """
        xs = [self.prepare(im) for im in images]
        out: list[ClassResult] = []
        step = 32 if self._dynamic_batch else 1
        for start in range(0, len(xs), step):
            x = np.stack(xs[start : start + step])
            try:
                (p,) = self.session.run(None, {self._input_name: x})[:1]
            except ort_errors() as exc:
                raise InferenceError(f"ONNX Runtime failed on {len(x)} image(s): {exc}") from exc
            p = np.asarray(p, np.float32).reshape(len(x), -1)
            if p.shape[1] != len(self.classes):
                raise InferenceError(f"{self}: {p.shape[1]} outputs for {len(self.classes)} classes")
            if not self.softmax:
                e = np.exp(p - p.max(axis=1, keepdims=True))
                p = e / e.sum(axis=1, keepdims=True)
            out.extend(ClassResult(row, self.classes) for row in p)
        return out

    def __repr__(self) -> str:
        return f"OnnxClassifier({self.name}:{self.model_version})"
