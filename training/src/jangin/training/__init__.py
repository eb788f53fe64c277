"""Training: detection sets from a dataset snapshot, Ultralytics detectors trained offline, evaluation,
and parity-gated ONNX export into the model registry.

Example:
    >>> from jangin.core import Dataset, ModelRegistry                           # doctest: +SKIP
    >>> ds = Dataset.open("jangin-data")                                         # doctest: +SKIP
    >>> data = build_detection_set(ds, cache_dir=Path("cache"))                  # doctest: +SKIP
    >>> mv = train_detector(data, registry=ModelRegistry(ds.models_dir), work_dir=Path("runs"))  # doctest: +SKIP

Importing this package is cheap: torch, Ultralytics, anomalib, ONNX Runtime and OpenCV load on first use.

Serving contracts (what ``jangin.inference`` implements from a version's ``manifest.json``):

``task = "anomaly"`` (:func:`train_anomaly`), ``outputs.format = "anomaly_v1"``:
    * ``input``: ``InputSpec`` with ``resize = "stretch"`` to ``width`` × ``height``, ``color = "rgb"``,
      ``scale = 1/255``, then ``(x - mean) / std`` per channel (ImageNet mean / std).
    * ONNX input ``images`` ``(N, 3, H, W)`` float32; outputs ``pred_score`` ``(N,)`` (raw image score) and
      ``anomaly_map`` ``(N, 1, H, W)`` (raw), both dynamic in N.
    * ``thresholds = {"image": raw image threshold, "pixel": raw pixel threshold}``;
      ``outputs.norm = {"score_min", "score_max", "map_min", "map_max"}``.
    * Normalised score (anomalib's min-max normalisation, the threshold maps to 0.5):
      ``clip((raw - thresholds.image) / (score_max - score_min) + 0.5, 0, 1)``; maps likewise with
      ``thresholds.pixel`` and ``map_min`` / ``map_max``. Anomalous when the normalised score ≥ 0.5.

``task = "process"`` (:func:`train_process`), ``outputs.format = "process_v1"``:
    * Features of a window: ``jangin.core.features.window_features(samples, outputs.feature_spec)``
      (``samples = {channel: (times_us, values)}`` inside the window), then ``[outputs.feature_index]``.
    * ONNX input ``features`` ``(N, F)`` float32; outputs ``label`` ``(N,)`` int64 and ``probabilities``
      ``(N, 2)``; column ``outputs.ng_column`` is P(NG). NG when P(NG) ≥ ``thresholds.ng``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jangin.training._anomaly import AnomalyConfig, train_anomaly
    from jangin.training._classify import ClassificationSet, build_classification_set, train_classifier
    from jangin.training._detect import train_detector
    from jangin.training._detection_set import DetectionSet, build_detection_set
    from jangin.training._eval import detection_map
    from jangin.training._parity import check_parity
    from jangin.training._process import ProcessConfig, train_process
    from jangin.training._ultralytics_env import ultralytics_offline

__all__ = [
    "AnomalyConfig",
    "ClassificationSet",
    "DetectionSet",
    "ProcessConfig",
    "build_classification_set",
    "build_detection_set",
    "check_parity",
    "detection_map",
    "train_anomaly",
    "train_classifier",
    "train_detector",
    "train_process",
    "ultralytics_offline",
]

_LAZY = {
    "ClassificationSet": "jangin.training._classify",
    "build_classification_set": "jangin.training._classify",
    "train_classifier": "jangin.training._classify",
    "AnomalyConfig": "jangin.training._anomaly",
    "train_anomaly": "jangin.training._anomaly",
    "ProcessConfig": "jangin.training._process",
    "train_process": "jangin.training._process",
    "DetectionSet": "jangin.training._detection_set",
    "build_detection_set": "jangin.training._detection_set",
    "check_parity": "jangin.training._parity",
    "detection_map": "jangin.training._eval",
    "train_detector": "jangin.training._detect",
    "ultralytics_offline": "jangin.training._ultralytics_env",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'jangin.training' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
