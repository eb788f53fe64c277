"""Labeling: labels from expert judgments and files, and the Label Studio round trip."""

from __future__ import annotations

__all__: list[str] = []
