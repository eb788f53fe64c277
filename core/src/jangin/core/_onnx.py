"""ONNX Runtime, imported the one way Jangin allows: with its telemetry off. Used by training (the
parity gate) and inference (serving); core itself never imports onnxruntime."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

__all__ = ["import_onnxruntime"]

log = logging.getLogger(__name__)
_ORT_CHECKED: list[bool] = []


def import_onnxruntime() -> Any:
    """Import ``onnxruntime`` with its telemetry switched off, and return the module.

    ONNX Runtime 1.32 on Linux records usage events (a device id, OS, CPU, the executable's path) in
    ``$XDG_CACHE_HOME/Microsoft/DeveloperTools/.onnxruntime/`` and sends them to
    ``mobile.events.data.microsoft.com`` from native code (invisible to Python-level network guards).
    ``ORT_DISABLE_TELEMETRY=1`` switches that off, but only when set before the library loads.
    """
    was_off = os.environ.get("ORT_DISABLE_TELEMETRY") == "1"
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    if "onnxruntime" in sys.modules and not was_off and not _ORT_CHECKED:
        log.warning(
            "onnxruntime was imported before Jangin could switch its telemetry off (ORT_DISABLE_TELEMETRY=1)"
        )
    _ORT_CHECKED.append(True)
    import onnxruntime

    return onnxruntime
