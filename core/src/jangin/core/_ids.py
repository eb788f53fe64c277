"""Identifiers: random ones for new records, deterministic ones where re-running must not duplicate."""

from __future__ import annotations

import hashlib
import uuid

__all__ = ["new_id", "stable_id"]


def new_id(prefix: str) -> str:
    """A new random id such as ``insp-4f1c…`` (time-ordered UUIDv7-like hex, 26 characters)."""
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def stable_id(prefix: str, *parts: object) -> str:
    """A deterministic id from ``parts``: the same inputs always give the same id.

    Used wherever a re-run or a retried request must produce the same row (imports, pulls).
    """
    h = hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:20]
    return f"{prefix}-{h}"
