"""Live sources for the station recorder; implementations are imported lazily by type name."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from jangin.capture.sources.base import ChannelSpec, Frame, Gap, SampleBatch, SensorSource, SourceHealth

#: station-YAML ``type`` -> "module:Class" (module under jangin.capture.sources)
SOURCE_TYPES: dict[str, str] = {
    "opcua": "opcua:OpcUaSource",
    "modbus": "modbus:ModbusSource",
    "mqtt": "mqtt:MqttSource",
    "camera": "camera:CameraSource",
    "replay": "replay:ReplaySource",
}


def make_source(name: str, cfg: Mapping[str, Any]) -> SensorSource:
    """Build the source ``name`` from its station-YAML mapping (``cfg["type"]`` picks the class)."""
    from jangin.core import CaptureError

    kind = str(cfg.get("type", ""))
    if kind not in SOURCE_TYPES:
        raise CaptureError(
            f"source {name}: unknown type {kind!r}", hint=f"one of: {', '.join(sorted(SOURCE_TYPES))}"
        )
    module, cls = SOURCE_TYPES[kind].split(":")
    factory = getattr(importlib.import_module(f"jangin.capture.sources.{module}"), cls)
    return factory(name, cfg)  # type: ignore[no-any-return]


__all__ = [
    "SOURCE_TYPES",
    "ChannelSpec",
    "Frame",
    "Gap",
    "SampleBatch",
    "SensorSource",
    "SourceHealth",
    "make_source",
]
