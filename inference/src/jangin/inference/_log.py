"""Moved to :mod:`jangin.inference.inspection._log`; kept so existing imports work."""

from __future__ import annotations

from jangin.inference.inspection._log import InspectionLog, Retention, class_scores, inspection_row

__all__ = ["InspectionLog", "Retention", "class_scores", "inspection_row"]
