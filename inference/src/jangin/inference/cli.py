"""``jangin inspect`` and ``jangin serve``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the inference commands to the ``jangin`` command."""
