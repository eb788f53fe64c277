"""``jangin capture`` commands."""

from __future__ import annotations

import typer

app = typer.Typer(name="capture", help="Record and import expert sessions (video, sensors, events).", no_args_is_help=True)
