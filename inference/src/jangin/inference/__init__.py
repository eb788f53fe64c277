"""Inference beside the line: ONNX Runtime models, verdict rules and the inspection log."""

from __future__ import annotations

__all__: list[str] = []
