"""Inference beside the line: ONNX Runtime models, verdicts and the inspection log.

Runs without torch or Ultralytics: an edge box installs ``jangin-inference`` alone. Importing this
package is cheap; ONNX Runtime and OpenCV load on first use.

Example:
    >>> det = OnnxDetector.load("jangin-data/models", "weld-defects:v3")    # doctest: +SKIP
    >>> det.predict_bytes(open("part.jpg", "rb").read()).names              # doctest: +SKIP
"""

from __future__ import annotations

from jangin.inference._detector import Letterbox, OnnxDetector, letterbox
from jangin.inference._inspect import inspect_images
from jangin.inference._runtime import load_session

__all__ = ["Letterbox", "OnnxDetector", "inspect_images", "letterbox", "load_session"]
