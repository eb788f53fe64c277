"""Station-YAML checks shared by the live sources: known keys, typed fields, secrets from env vars or files.

Every error is a :class:`jangin.core.CaptureError` naming the source and the field (``source plc1:
channels[3].type: ...``), so a bad station YAML is fixed from the one line the CLI prints.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jangin.core import CaptureError

__all__ = ["Cfg", "Outage", "require"]


def require(source: str, module: str, extra: str) -> None:
    """Refuse early, with the install command, when an optional client library is missing."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise CaptureError(
            f"source {source}: needs the Python package {module}, which is not installed",
            hint=f"pip install 'jangin-capture[{extra}]'",
        )


class Cfg:
    """A view of one source's mapping (or of one of its entries) that checks what it hands out.

    Args:
        source: Source name (as in the station YAML), for messages.
        cfg: The mapping.
        where: Path of this mapping inside the source's (``"channels[2]"``), for messages.
        known: Every key allowed here; any other key is refused.
    """

    def __init__(self, source: str, cfg: Any, where: str, known: Iterable[str]) -> None:
        self.source, self.where = source, where
        if not isinstance(cfg, Mapping):
            raise self.error(None, f"must be a mapping, got {type(cfg).__name__}")
        self.cfg = cfg
        allowed = set(known)
        unknown = sorted(str(k) for k in cfg if k not in allowed)
        if unknown:
            raise self.error(unknown[0], "unknown key", hint=f"known keys: {', '.join(sorted(allowed))}")

    def error(self, key: str | None, message: str, *, hint: str | None = None) -> CaptureError:
        """The error for ``key`` (or for this mapping as a whole when ``key`` is None)."""
        path = ".".join(p for p in (self.where, key) if p)
        return CaptureError(f"source {self.source}: {path + ': ' if path else ''}{message}", hint=hint)

    def has(self, key: str) -> bool:
        return key in self.cfg and self.cfg[key] is not None

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        """A string field (numbers are refused: a YAML ``port: 0x1`` typo should not pass silently)."""
        if not self.has(key):
            if required:
                raise self.error(key, "missing")
            return default
        v = self.cfg[key]
        if not isinstance(v, str) or not v:
            raise self.error(key, f"must be a non-empty string, got {v!r}")
        return v

    def choice(self, key: str, options: Iterable[str], default: str) -> str:
        opts = list(options)
        v = self.text(key, default)
        assert v is not None
        if v not in opts:
            raise self.error(key, f"{v!r} is not one of {', '.join(opts)}")
        return v

    def number(
        self, key: str, default: float | None = None, *, required: bool = False, positive: bool = False
    ) -> float | None:
        if not self.has(key):
            if required:
                raise self.error(key, "missing")
            return default
        v = self.cfg[key]
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.error(key, f"must be a number, got {v!r}")
        if positive and not v > 0:
            raise self.error(key, f"must be > 0, got {v!r}")
        return float(v)

    def integer(self, key: str, default: int | None = None, *, lo: int = 0, hi: int = 2**31) -> int | None:
        if not self.has(key):
            return default
        v = self.cfg[key]
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self.error(key, f"must be an integer in [{lo}, {hi}], got {v!r}")
        return v

    def flag(self, key: str, default: bool) -> bool:
        if not self.has(key):
            return default
        v = self.cfg[key]
        if not isinstance(v, bool):
            raise self.error(key, f"must be true or false, got {v!r}")
        return v

    def entries(self, key: str, known: Iterable[str], *, required: bool = True) -> list[Cfg]:
        """A list of mappings under ``key``, each checked against ``known``."""
        if not self.has(key):
            if required:
                raise self.error(key, "missing (a list of mappings)")
            return []
        v = self.cfg[key]
        if not isinstance(v, list) or (required and not v):
            raise self.error(key, "must be a non-empty list of mappings")
        base = f"{self.where}.{key}" if self.where else key
        known = list(known)
        return [Cfg(self.source, e, f"{base}[{i}]", known) for i, e in enumerate(v)]

    def secret(self, env_key: str, file_key: str | None = None) -> str | None:
        """A secret named by an env var (``env_key`` holds the variable's NAME) or a file path; never a value.

        Raises:
            CaptureError: The named variable is unset or the file is unreadable.
        """
        var = self.text(env_key)
        if var is not None:
            value = os.environ.get(var)
            if value is None:
                raise self.error(env_key, f"environment variable {var} is not set")
            return value
        path = self.text(file_key) if file_key else None
        if path is not None:
            try:
                return Path(path).expanduser().read_text().strip()
            except OSError as exc:
                raise self.error(file_key, f"cannot read {path}: {exc.strerror}") from exc
        return None


class Outage:
    """Turns a lost/regained connection into exactly one :class:`Gap` per outage.

    ``lost(t)`` starts an outage at ``t`` (the last good sample's time when known, else the time the
    loss was seen); a second ``lost()`` during the same outage changes nothing. ``back(t)`` ends it and
    returns ``(start, end)`` once; ``back()`` without an outage returns None.
    """

    def __init__(self) -> None:
        self.start: float | None = None
        self.reason = ""

    def lost(self, t: float, reason: str) -> bool:
        """Start an outage at ``t``; True if this call started it."""
        if self.start is not None:
            return False
        self.start, self.reason = t, reason
        return True

    def back(self, t: float) -> tuple[float, float, str] | None:
        if self.start is None:
            return None
        span = (self.start, max(t, self.start), self.reason)
        self.start = None
        return span

    @property
    def active(self) -> bool:
        return self.start is not None
