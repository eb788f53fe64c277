"""Anomaly models on ONNX Runtime (``outputs.format == "anomaly_v1"``): numpy and OpenCV, no torch.

The contract with the training side:

* ``manifest.task == "anomaly"``; ``manifest.input`` gives the size, ``resize: stretch``, colour,
  ``scale`` and ``mean`` / ``std``.
* ONNX input ``(N, 3, H, W)`` float32; outputs ``pred_score`` ``(N,)`` and ``anomaly_map``
  ``(N, 1, H, W)``, both raw.
* ``manifest.thresholds = {"image": t_img, "pixel": t_px}`` (raw units);
  ``manifest.outputs = {"format": "anomaly_v1", "norm": {"score_min", "score_max", "map_min", "map_max"}}``.
* Normalised value = ``clip((raw - threshold) / (max - min) + 0.5, 0, 1)``: the threshold maps to 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jangin.core import InferenceError, ModelLoadError, ModelManifest, ModelRegistry, ModelVersion
from jangin.inference._open import ServedOnnx
from jangin.inference._runtime import ort_errors

__all__ = ["AnomalyResult", "OnnxAnomaly", "heatmap_overlay", "normalise"]


def normalise(raw: np.ndarray | float, threshold: float, lo: float, hi: float) -> np.ndarray:
    """``clip((raw - threshold) / (hi - lo) + 0.5, 0, 1)``; the threshold maps to 0.5."""
    span = float(hi) - float(lo)
    if span <= 0:
        span = 1.0
    return np.clip((np.asarray(raw, dtype=np.float32) - threshold) / span + 0.5, 0.0, 1.0)


@dataclass(frozen=True)
class AnomalyResult:
    """One image's anomaly output.

    Attributes:
        score: Normalised image score in 0..1 (0.5 = the manifest's image threshold).
        raw_score: The model's raw ``pred_score``.
        anomaly_map: ``(H, W)`` normalised map in 0..1, at the model's input size (0.5 = pixel threshold).
    """

    score: float
    raw_score: float
    anomaly_map: np.ndarray


class OnnxAnomaly(ServedOnnx):
    """An anomaly model exported as ONNX under the ``anomaly_v1`` contract (see the module docstring).

    Example:
        >>> model = OnnxAnomaly.load("jangin-data/models", "bead-anomaly")   # doctest: +SKIP
        >>> model.predict([cv2.imread("part.jpg")])[0].score                 # doctest: +SKIP
    """

    def __init__(self, session: Any, version: ModelVersion) -> None:
        m = version.manifest
        if m.input is None:
            raise ModelLoadError(f"{version} has no input spec")
        norm = m.outputs.get("norm") or {}
        missing = {"score_min", "score_max", "map_min", "map_max"} - set(norm)
        if missing or "image" not in m.thresholds:
            raise ModelLoadError(
                f"{version.name}:{version.version}: anomaly_v1 needs outputs.norm "
                f"{{score_min, score_max, map_min, map_max}} and thresholds.image (missing {sorted(missing) or ['image']})"
            )
        self._bind(session, version)
        self.input = m.input
        self.classes: tuple[str, ...] = tuple(m.classes)
        self.norm = {k: float(v) for k, v in norm.items()}
        self.t_image = float(m.thresholds["image"])
        self.t_pixel = float(m.thresholds.get("pixel", self.t_image))
        names = [o.name for o in session.get_outputs()]
        if not {"pred_score", "anomaly_map"} <= set(names):
            raise ModelLoadError(
                f"{version.name}:{version.version}: outputs {names}, expected pred_score and anomaly_map"
            )

    @classmethod
    def from_version(
        cls,
        mv: ModelVersion,
        *,
        providers: Sequence[str] | None = None,
        prefer: Sequence[str] | None = None,
    ) -> OnnxAnomaly:
        """Load and warm a published anomaly model (checksums verified; nothing unpickled).

        Raises:
            ModelLoadError: Not an ``anomaly_v1`` model, a checksum mismatch, or a broken file.
        """

        def check(m: ModelManifest) -> None:
            if m.task != "anomaly" or m.outputs.get("format") != "anomaly_v1":
                raise ModelLoadError(
                    f"{mv.name}:{mv.version} is not an anomaly_v1 model (task {m.task}, format {m.outputs.get('format')!r})"
                )
            if m.input is None or m.input.resize != "stretch" or m.input.channels != 3:
                raise ModelLoadError(f"{mv.name}:{mv.version}: unsupported input {m.input}")

        mv, session = cls.open_verified(mv, check, providers=providers, prefer=prefer)
        m = mv.manifest
        assert m.input is not None  # checked above
        model = cls(session, mv)
        model.predict([np.zeros((m.input.height, m.input.width, 3), np.uint8)])
        return model

    @classmethod
    def load(
        cls, registry_root: str | Path, ref: str, *, providers: Sequence[str] | None = None
    ) -> OnnxAnomaly:
        """Load ``name[:version]`` from a registry."""
        return cls.from_version(ModelRegistry(registry_root).get(ref, verify=False), providers=providers)

    def prepare(self, img: np.ndarray) -> np.ndarray:
        """A BGR uint8 image → the model's ``(3, H, W)`` float32 input (stretch resize)."""
        import cv2

        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise InferenceError(
                f"expected an (h, w, 3) uint8 BGR image, got {getattr(img, 'shape', type(img))}"
            )
        spec = self.input
        x = cv2.resize(img, (spec.width, spec.height), interpolation=cv2.INTER_LINEAR)
        if spec.color == "rgb":
            x = x[..., ::-1]
        x = x.transpose(2, 0, 1).astype(np.float32) * np.float32(spec.scale)
        mean = np.asarray(spec.mean, np.float32)[:, None, None]
        std = np.asarray(spec.std, np.float32)[:, None, None]
        return np.ascontiguousarray((x - mean) / std)

    def predict(self, images: Sequence[np.ndarray]) -> list[AnomalyResult]:
        """Score BGR uint8 images of any size.

        Raises:
            InferenceError: A bad input, or ONNX Runtime fails on it.
        """
        xs = [self.prepare(im) for im in images]
        out: list[AnomalyResult] = []
        step = 16 if self._dynamic_batch else 1
        n = self.norm
        for start in range(0, len(xs), step):
            x = np.stack(xs[start : start + step])
            try:
                scores, maps = self.session.run(["pred_score", "anomaly_map"], {self._input_name: x})
            except ort_errors() as exc:
                raise InferenceError(f"ONNX Runtime failed on {len(x)} image(s): {exc}") from exc
            scores = np.asarray(scores, np.float32).reshape(len(x))
            maps = np.asarray(maps, np.float32).reshape(len(x), *maps.shape[-2:])
            s_norm = normalise(scores, self.t_image, n["score_min"], n["score_max"])
            m_norm = normalise(maps, self.t_pixel, n["map_min"], n["map_max"])
            out.extend(
                AnomalyResult(float(s), float(r), m) for s, r, m in zip(s_norm, scores, m_norm, strict=True)
            )
        return out

    def __repr__(self) -> str:
        return f"OnnxAnomaly({self.name}:{self.model_version})"


def heatmap_overlay(img: np.ndarray, anomaly_map: np.ndarray, *, alpha: float = 0.45) -> bytes:
    """PNG of ``img`` (BGR) with the normalised ``anomaly_map`` as a JET heat map over it."""
    import cv2

    h, w = img.shape[:2]
    m = cv2.resize(np.clip(anomaly_map, 0, 1).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    heat = cv2.applyColorMap((m * 255).astype(np.uint8), cv2.COLORMAP_JET)
    out = cv2.addWeighted(img, 1 - alpha, heat, alpha, 0)
    ok, buf = cv2.imencode(".png", out)
    if not ok:
        raise InferenceError("cannot encode the heat map")
    return buf.tobytes()
