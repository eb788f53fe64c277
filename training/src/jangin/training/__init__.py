"""Training: detection sets from a dataset snapshot, Ultralytics detectors trained offline, evaluation,
and parity-gated ONNX export into the model registry.

Example:
    >>> from jangin.core import Dataset, ModelRegistry                           # doctest: +SKIP
    >>> ds = Dataset.open("jangin-data")                                         # doctest: +SKIP
    >>> data = build_detection_set(ds, cache_dir=Path("cache"))                  # doctest: +SKIP
    >>> mv = train_detector(data, registry=ModelRegistry(ds.models_dir), work_dir=Path("runs"))  # doctest: +SKIP

Importing this package is cheap: torch, Ultralytics, ONNX Runtime and OpenCV load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jangin.training._detect import train_detector
    from jangin.training._detection_set import DetectionSet, build_detection_set
    from jangin.training._eval import detection_map
    from jangin.training._parity import check_parity
    from jangin.training._ultralytics_env import ultralytics_offline

__all__ = [
    "DetectionSet",
    "build_detection_set",
    "check_parity",
    "detection_map",
    "train_detector",
    "ultralytics_offline",
]

_LAZY = {
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
