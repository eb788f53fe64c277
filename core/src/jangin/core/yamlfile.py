"""Read a YAML file (or text) into a pydantic model, with errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from jangin.core._errors import ConfigError, JanginError

__all__ = ["load_yaml_model"]

M = TypeVar("M", bound=BaseModel)


def load_yaml_model(
    model: type[M],
    source: str | Path,
    *,
    what: str = "configuration",
    error: type[JanginError] = ConfigError,
    hint: str | None = None,
) -> M:
    """Parse ``source`` (a :class:`~pathlib.Path` to read, or YAML text) and validate it as ``model``.

    Args:
        model: The pydantic model class (use ``extra="forbid"`` so unknown keys are named).
        source: A file path, or the YAML text itself.
        what: What the document is, for messages about text that has no file name.
        error: The :class:`JanginError` subclass to raise (``ConfigError``, ``CaptureError``…).
        hint: Advice printed under a field error.

    Raises:
        JanginError: (``error``) The file is missing or unreadable, is not YAML, is not a mapping, or a
            field is wrong: every wrong field is named with its path (``channels.3.role: …``).
    """
    import yaml

    where = str(source) if isinstance(source, Path) else what
    if isinstance(source, Path):
        if not source.is_file():
            raise error(f"{where}: not found")
        try:
            text = source.read_text()
        except OSError as exc:
            raise error(f"{where}: cannot read: {exc}") from exc
    else:
        text = source
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{where}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise error(f"{where}: expected a mapping of {what} fields")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise error(f"{where}: {problems}", hint=hint) from exc
