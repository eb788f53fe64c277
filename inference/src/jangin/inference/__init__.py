"""Inference beside the line: ONNX Runtime models (detectors, anomaly models), verdict rules and the
inspection log; the HTTP API and review page are in :mod:`jangin.inference.server`.

Runs without torch or Ultralytics: an edge box installs ``jangin-inference`` alone. Importing this
package is cheap; ONNX Runtime and OpenCV load on first use.

Example:
    >>> det = OnnxDetector.load("jangin-data/models", "defects:v3")    # doctest: +SKIP
    >>> det.predict_bytes(open("part.jpg", "rb").read()).names              # doctest: +SKIP
"""

from __future__ import annotations

from jangin.inference._anomaly import AnomalyResult, OnnxAnomaly
from jangin.inference._detector import Letterbox, OnnxDetector, letterbox
from jangin.inference._inspect import inspect_images
from jangin.inference._rules import RulesConfig, StationRules, load_rules
from jangin.inference._runtime import load_session

__all__ = [
    "AnomalyResult",
    "Letterbox",
    "OnnxAnomaly",
    "OnnxDetector",
    "RulesConfig",
    "StationRules",
    "inspect_images",
    "letterbox",
    "load_rules",
    "load_session",
]
