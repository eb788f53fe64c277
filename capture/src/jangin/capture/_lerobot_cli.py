"""``jangin capture import-lerobot DIR`` (see :mod:`jangin.capture._lerobot_import`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jangin.core.cli import DatasetOption, console, progress_bar, resolve_dataset

__all__ = ["import_lerobot_cmd"]


def import_lerobot_cmd(
    directory: Annotated[
        Path, typer.Argument(help="LeRobot v3.0 dataset root (meta/info.json).", exists=True)
    ],
    process: Annotated[
        str | None,
        typer.Option(help="Process of the sessions [default: the episodes' own, else robot_type]."),
    ] = None,
    site: Annotated[str, typer.Option(help="Site of the sessions (part of their id).")] = "lerobot",
    deidentify: Annotated[bool, typer.Option(help="Blur faces in the imported video.")] = True,
    dataset: DatasetOption = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Import a LeRobot v3.0 dataset: one session per episode (state/action channels, steps, video)."""
    from jangin.capture._lerobot_import import import_lerobot
    from jangin.core import Dataset

    ds = Dataset.open_or_create(resolve_dataset(dataset))
    with progress_bar(progress) as bar:
        results = import_lerobot(
            ds, directory, process=process, site=site, deidentify=deidentify, progress=bar
        )
    for r in results:
        what = (
            "skipped (already imported)"
            if r.skipped
            else (f"{r.samples} samples, {r.events} events, {r.frames} frames, {r.labels} labels")
        )
        console().print(f"{r.session_key} -> {r.session_id}: {what}")
