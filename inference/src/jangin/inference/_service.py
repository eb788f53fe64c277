"""Moved to :mod:`jangin.inference.inspection`; kept so existing imports work."""

from __future__ import annotations

from jangin.inference.inspection import InferenceConfig, InspectionService, ServedModel

__all__ = ["InferenceConfig", "InspectionService", "ServedModel"]
