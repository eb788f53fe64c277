"""Capture: recording sessions, readers for video, sensor files and events, time alignment, frame sampling, de-identification."""

from __future__ import annotations

__all__: list[str] = []
