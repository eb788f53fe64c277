"""Inspection: the :class:`Inspector` (image or window → verdict → logged, durable), the model slots
(load, warm, hot swap), the inspection log with its write-ahead log, reviews and quality statistics;
:class:`InspectionService` puts them together for the HTTP API."""

from __future__ import annotations

from jangin.inference.inspection._config import InferenceConfig
from jangin.inference.inspection._inspector import Inspection, Inspector
from jangin.inference.inspection._log import InspectionLog, Retention
from jangin.inference.inspection._models import ModelSlots, ServedModel
from jangin.inference.inspection._service import InspectionService
from jangin.inference.inspection._wal import WriteAheadLog

__all__ = [
    "InferenceConfig",
    "Inspection",
    "InspectionLog",
    "InspectionService",
    "Inspector",
    "ModelSlots",
    "Retention",
    "ServedModel",
    "WriteAheadLog",
]
