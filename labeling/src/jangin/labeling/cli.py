"""``jangin labeling`` commands."""

from __future__ import annotations

import typer

app = typer.Typer(name="labeling", help="Label frames, sensor spans and sessions (Label Studio, YOLO/COCO).", no_args_is_help=True)
