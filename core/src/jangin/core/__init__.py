"""Jangin core: what every stage shares — table schemas, the dataset store, settings, errors,
model artifacts and the ``jangin`` command.

Importing this package is cheap: heavy modules (pyarrow, deltalake, DuckDB) load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from jangin.core._errors import (
    CaptureError,
    ConfigError,
    DatasetError,
    InferenceError,
    JanginError,
    LabelStudioError,
    ModelLoadError,
    NotFoundError,
    SchemaError,
    TrainingError,
    WeightsError,
)

if TYPE_CHECKING:
    from jangin.core._dataset import Dataset, Snapshot
    from jangin.core.artifacts import ModelManifest, ModelRegistry, ModelVersion
    from jangin.core.detections import Detections
    from jangin.core.settings import Settings, get_settings

__all__ = [
    "CaptureError",
    "ConfigError",
    "Dataset",
    "DatasetError",
    "Detections",
    "InferenceError",
    "JanginError",
    "LabelStudioError",
    "ModelLoadError",
    "ModelManifest",
    "ModelRegistry",
    "ModelVersion",
    "NotFoundError",
    "SchemaError",
    "Settings",
    "Snapshot",
    "TrainingError",
    "WeightsError",
    "get_settings",
]

_LAZY = {
    "Dataset": "jangin.core._dataset",
    "Snapshot": "jangin.core._dataset",
    "ModelManifest": "jangin.core.artifacts",
    "ModelRegistry": "jangin.core.artifacts",
    "ModelVersion": "jangin.core.artifacts",
    "Detections": "jangin.core.detections",
    "Settings": "jangin.core.settings",
    "get_settings": "jangin.core.settings",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'jangin.core' has no attribute {name!r}")
