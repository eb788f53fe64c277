"""Training: dataset views, detectors and classifiers (Ultralytics), evaluation, registry and parity-gated ONNX export."""

from __future__ import annotations

__all__: list[str] = []
