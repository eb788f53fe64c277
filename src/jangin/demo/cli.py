"""Registers ``jangin demo`` on the ``jangin`` command."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to ``app``."""

    @app.command()
    def demo() -> None:
        """Run the whole chain on the sample data (offline, CPU)."""
        raise NotImplementedError
