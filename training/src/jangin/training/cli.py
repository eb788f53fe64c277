"""``jangin train`` and ``jangin models`` commands."""

from __future__ import annotations

import typer

train_app = typer.Typer(name="train", help="Train and evaluate models.", no_args_is_help=True)
models_app = typer.Typer(name="models", help="The model registry: list, show, promote.", no_args_is_help=True)
