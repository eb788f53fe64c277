"""Jangin's exceptions.

Every error Jangin raises on purpose derives from :class:`JanginError`. Third-party errors are
re-raised as one of these with ``raise ... from exc`` so that callers catch one tree::

    JanginError
    ├── ConfigError          settings, YAML configs, CLI options that do not fit together
    ├── SchemaError          rows that do not match a table's schema (names the column / row)
    ├── DatasetError         a dataset directory that is missing, not a dataset, or a table that is
    │   └── NotFoundError    a session, frame, model or inspection that does not exist
    ├── CaptureError         input files and streams that cannot be read or fail validation
    ├── LabelStudioError     the Label Studio server: unreachable, bad token, unknown project / label
    ├── TrainingError        a training run, an evaluation or an export (parity gate) that failed
    ├── ModelLoadError       a model artifact that cannot be loaded for serving
    ├── WeightsError         registered weights: unknown name, changed file, refused download
    └── InferenceError       an input the inference runtime cannot process

Bad arguments to a function are ``ValueError`` / ``TypeError``, as usual in Python.
"""

from __future__ import annotations

__all__ = [
    "CaptureError",
    "ConfigError",
    "DatasetError",
    "InferenceError",
    "JanginError",
    "LabelStudioError",
    "ModelLoadError",
    "NotFoundError",
    "SchemaError",
    "TrainingError",
    "WeightsError",
]


class JanginError(Exception):
    """Base class of every error Jangin raises on purpose.

    Args:
        message: What went wrong, naming the file, row, column or id involved.
        hint: Optional advice on how to fix it; the CLI prints it on its own line.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class ConfigError(JanginError):
    """Settings, a YAML config or CLI options are invalid or do not fit together."""


class SchemaError(JanginError):
    """Rows do not match a table's schema. The message names the table, column and, where known, row."""


class DatasetError(JanginError):
    """A dataset directory or one of its tables is missing or unusable."""


class NotFoundError(DatasetError):
    """A session, frame, model, inspection or other record does not exist."""


class CaptureError(JanginError):
    """An input file or live stream cannot be read, or fails validation."""


class LabelStudioError(JanginError):
    """Talking to the Label Studio server failed (connection, authentication, unknown project or label)."""


class TrainingError(JanginError):
    """A training run, evaluation or export failed, including a refused export at the parity gate."""


class ModelLoadError(JanginError):
    """A model artifact cannot be loaded for serving (missing file, checksum mismatch, bad manifest)."""


class WeightsError(JanginError):
    """Registered weights: an unknown name, a file changed or missing, a checksum mismatch, a refused fetch."""


class InferenceError(JanginError):
    """An input that the inference runtime cannot process (not an image, too many pixels, …)."""
